//! Helpers shared by the integration tests: tensors with awkward layouts, naive references and
//! tolerance checks that name the first element out of tolerance.
#![allow(dead_code)]

use proptest::prelude::*;
use sinew_tensor::{DType, Tensor};

/// Relative tolerance per dtype (f32 ~1e-6, f16/bf16 ~1e-2), as in `docs/style.md`.
pub fn rtol(dtype: DType) -> f64 {
    match dtype {
        DType::F64 => 1e-12,
        DType::F32 => 1e-6,
        DType::F16 => 2e-3,
        DType::BF16 => 1e-2,
        _ => 0.0,
    }
}

/// True when `a` and `b` agree within `rtol` relative and `atol` absolute; NaN matches NaN and
/// infinities must match exactly.
pub fn close(a: f64, b: f64, rtol: f64, atol: f64) -> bool {
    if a.is_nan() || b.is_nan() {
        return a.is_nan() && b.is_nan();
    }
    if a.is_infinite() || b.is_infinite() {
        return a == b;
    }
    (a - b).abs() <= atol + rtol * b.abs()
}

/// Asserts elementwise closeness, naming the first element out of tolerance.
#[track_caller]
pub fn assert_close(actual: &[f64], expected: &[f64], rtol: f64, atol: f64) {
    assert_eq!(
        actual.len(),
        expected.len(),
        "length {} vs expected {}",
        actual.len(),
        expected.len()
    );
    if let Some(i) = (0..actual.len()).find(|&i| !close(actual[i], expected[i], rtol, atol)) {
        panic!(
            "element {i} out of tolerance: got {}, expected {} (rtol {rtol}, atol {atol})",
            actual[i], expected[i]
        );
    }
}

/// Asserts a tensor's values (as f64) against expected values.
#[track_caller]
pub fn assert_tensor(t: &Tensor, dims: &[usize], expected: &[f64], rtol: f64, atol: f64) {
    assert_eq!(t.dims(), dims, "shape");
    assert_close(&t.to_vec_f64().unwrap(), expected, rtol, atol);
}

/// A CPU f32 tensor from a slice.
pub fn f32s(v: &[f32], dims: &[usize]) -> Tensor {
    Tensor::from_slice(v, dims).unwrap()
}

/// A CPU f64 tensor from a slice.
pub fn f64s(v: &[f64], dims: &[usize]) -> Tensor {
    Tensor::from_slice(v, dims).unwrap()
}

/// A CPU i64 tensor from a slice.
pub fn i64s(v: &[i64], dims: &[usize]) -> Tensor {
    Tensor::from_slice(v, dims).unwrap()
}

/// Row-major strides of `dims`.
pub fn strides_of(dims: &[usize]) -> Vec<usize> {
    let mut s = vec![1; dims.len()];
    for i in (0..dims.len().saturating_sub(1)).rev() {
        s[i] = s[i + 1] * dims[i + 1];
    }
    s
}

/// Multi-index of linear position `lin` in `dims`.
pub fn unravel(mut lin: usize, dims: &[usize]) -> Vec<usize> {
    let mut idx = vec![0; dims.len()];
    for i in (0..dims.len()).rev() {
        if dims[i] > 0 {
            idx[i] = lin % dims[i];
            lin /= dims[i];
        }
    }
    idx
}

/// Linear position of a multi-index in `dims`.
pub fn ravel(idx: &[usize], dims: &[usize]) -> usize {
    idx.iter().zip(strides_of(dims)).map(|(i, s)| i * s).sum()
}

/// How [`with_layout`] lays the same logical values out in storage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LayoutKind {
    /// Dense row-major.
    Contiguous,
    /// Stored with the dims reversed, then permuted back (column-major like).
    Transposed,
    /// Every other element of a larger buffer, starting at an offset.
    Strided,
}

/// Every layout kind.
pub const LAYOUTS: [LayoutKind; 3] = [
    LayoutKind::Contiguous,
    LayoutKind::Transposed,
    LayoutKind::Strided,
];

/// Proptest strategy over [`LayoutKind`].
pub fn layout_kind() -> impl Strategy<Value = LayoutKind> {
    prop_oneof![
        Just(LayoutKind::Contiguous),
        Just(LayoutKind::Transposed),
        Just(LayoutKind::Strided)
    ]
}

/// A tensor of `dtype` with the given logical row-major `values`, laid out as `kind` says.
pub fn with_layout(values: &[f64], dims: &[usize], dtype: DType, kind: LayoutKind) -> Tensor {
    let n: usize = dims.iter().product();
    assert_eq!(values.len(), n);
    let rank = dims.len();
    let t = match kind {
        LayoutKind::Transposed if rank >= 2 => {
            let rev: Vec<usize> = dims.iter().rev().copied().collect();
            let mut data = vec![0.0; n];
            for (lin, &v) in values.iter().enumerate() {
                let mut idx = unravel(lin, dims);
                idx.reverse();
                data[ravel(&idx, &rev)] = v;
            }
            let order: Vec<usize> = (0..rank).rev().collect();
            Tensor::from_vec(data, rev)
                .unwrap()
                .to_dtype(dtype)
                .unwrap()
                .permute(&order)
                .unwrap()
        }
        LayoutKind::Strided if rank >= 1 => {
            let mut big = dims.to_vec();
            big[rank - 1] = 2 * dims[rank - 1] + 1;
            let mut data = vec![-7.0; big.iter().product()];
            for (lin, &v) in values.iter().enumerate() {
                let mut idx = unravel(lin, dims);
                idx[rank - 1] = 2 * idx[rank - 1] + 1;
                data[ravel(&idx, &big)] = v;
            }
            let base = Tensor::from_vec(data, big.clone())
                .unwrap()
                .to_dtype(dtype)
                .unwrap();
            base.slice(rank as isize - 1, 1, big[rank - 1], 2).unwrap()
        }
        _ => Tensor::from_vec(values.to_vec(), dims)
            .unwrap()
            .to_dtype(dtype)
            .unwrap(),
    };
    assert_eq!(t.dims(), dims);
    t
}

/// Values exactly representable in every float dtype (small multiples of 1/4), so references
/// computed in f64 compare tightly.
pub fn exact_values(n: usize) -> impl Strategy<Value = Vec<f64>> {
    prop::collection::vec((-32i32..=32).prop_map(|v| v as f64 / 4.0), n)
}

/// Shapes of rank `0..=max_rank` with dims in `0..=max_dim`.
pub fn shape(max_rank: usize, max_dim: usize) -> impl Strategy<Value = Vec<usize>> {
    prop::collection::vec(0..=max_dim, 0..=max_rank)
}

/// A shape with matching values.
pub fn shape_and_values(
    max_rank: usize,
    max_dim: usize,
) -> impl Strategy<Value = (Vec<usize>, Vec<f64>)> {
    shape(max_rank, max_dim).prop_flat_map(|dims| {
        let n = dims.iter().product();
        (Just(dims), exact_values(n))
    })
}

/// The float dtypes.
pub fn float_dtype() -> impl Strategy<Value = DType> {
    prop_oneof![
        Just(DType::F32),
        Just(DType::F64),
        Just(DType::F16),
        Just(DType::BF16)
    ]
}
