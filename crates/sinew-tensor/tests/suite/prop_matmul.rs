//! Matmul against a triple loop at sizes chosen to break blocked kernels: every m, k, n in
//! 0..=17, 17x257, 266x265 (large enough to be split across threads), transposed and strided
//! operands read in place, broadcast batches, 1-d promotion, and every float dtype. Integer-valued
//! inputs make f32 products exact, so most checks are exact.

use crate::common;

use common::*;
use proptest::prelude::*;
use sinew_tensor::{DType, Device, Tensor};

/// Small integers from a fixed-seed LCG.
fn ints(n: usize, seed: u64) -> Vec<f64> {
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..n)
        .map(|_| {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((s >> 33) % 9) as f64 - 4.0
        })
        .collect()
}

/// Row-major `[m, k] @ [k, n]` in f64.
fn naive(a: &[f64], b: &[f64], m: usize, k: usize, n: usize) -> Vec<f64> {
    let mut out = vec![0.0; m * n];
    for i in 0..m {
        for j in 0..n {
            out[i * n + j] = (0..k).map(|p| a[i * k + p] * b[p * n + j]).sum();
        }
    }
    out
}

/// The transpose of a row-major `[r, c]` matrix.
fn transpose(a: &[f64], r: usize, c: usize) -> Vec<f64> {
    (0..c * r).map(|i| a[(i % r) * c + i / r]).collect()
}

#[test]
fn every_small_size_matches_the_triple_loop() {
    for m in 0..=17 {
        for k in 0..=17 {
            for n in 0..=17 {
                let (a, b) = (
                    ints(m * k, (m * 31 + k) as u64),
                    ints(k * n, (k * 37 + n) as u64),
                );
                let out = f64s(&a, &[m, k])
                    .to_dtype(DType::F32)
                    .unwrap()
                    .matmul(&f64s(&b, &[k, n]).to_dtype(DType::F32).unwrap())
                    .unwrap();
                assert_eq!(out.dims(), &[m, n]);
                assert_close(
                    &out.to_vec_f64().unwrap(),
                    &naive(&a, &b, m, k, n),
                    0.0,
                    0.0,
                );
            }
        }
    }
}

#[test]
fn transposed_and_strided_operands_are_read_in_place() {
    for &(m, k, n) in &[
        (1, 1, 1),
        (3, 5, 7),
        (8, 8, 8),
        (17, 16, 15),
        (13, 1, 9),
        (2, 17, 1),
    ] {
        let (a, b) = (ints(m * k, 1), ints(k * n, 2));
        let expect = naive(&a, &b, m, k, n);
        for (ka, kb) in LAYOUTS
            .iter()
            .flat_map(|&x| LAYOUTS.iter().map(move |&y| (x, y)))
        {
            for dtype in [DType::F32, DType::F64] {
                let (ta, tb) = (
                    with_layout(&a, &[m, k], dtype, ka),
                    with_layout(&b, &[k, n], dtype, kb),
                );
                let out = ta.matmul(&tb).unwrap();
                assert_close(&out.to_vec_f64().unwrap(), &expect, 0.0, 0.0);
            }
        }
        // A transposed view, as used by linear layers: x @ w.T with w stored [n, k].
        let w = f64s(&transpose(&b, k, n), &[n, k]);
        assert_close(
            &f64s(&a, &[m, k])
                .matmul(&w.t().unwrap())
                .unwrap()
                .to_vec_f64()
                .unwrap(),
            &expect,
            0.0,
            0.0,
        );
        // A broadcast (stride-0) row as the left operand.
        let row = f64s(&a[..k], &[1, k]).expand([m, k]).unwrap();
        let rows_expect = naive(&a[..k].repeat(m), &b, m, k, n);
        assert_close(
            &row.matmul(&f64s(&b, &[k, n]))
                .unwrap()
                .to_vec_f64()
                .unwrap(),
            &rows_expect,
            0.0,
            0.0,
        );
    }
}

#[test]
fn awkward_large_sizes_match_the_triple_loop() {
    // (2048, 1, 1100) is a large output of thin operands: the row-block split over rayon.
    for &(m, k, n) in &[
        (17, 257, 17),
        (257, 17, 257),
        (266, 265, 266),
        (1, 1000, 1),
        (300, 2, 300),
        (2048, 1, 1100),
    ] {
        let (a, b) = (ints(m * k, 3), ints(k * n, 4));
        let expect = naive(&a, &b, m, k, n);
        for kind in [LayoutKind::Contiguous, LayoutKind::Transposed] {
            let out = with_layout(&a, &[m, k], DType::F32, kind)
                .matmul(&with_layout(&b, &[k, n], DType::F32, kind))
                .unwrap();
            assert_close(&out.to_vec_f64().unwrap(), &expect, 0.0, 0.0);
        }
    }
}

#[test]
fn batches_broadcast_like_torch_matmul() {
    // [2, 1, 3, 4] @ [5, 4, 6] -> [2, 5, 3, 6]; [3, 4] @ [5, 4, 6] -> [5, 3, 6].
    let (a, b) = (ints(2 * 3 * 4, 5), ints(5 * 4 * 6, 6));
    let out = f64s(&a, &[2, 1, 3, 4])
        .matmul(&f64s(&b, &[5, 4, 6]))
        .unwrap();
    assert_eq!(out.dims(), &[2, 5, 3, 6]);
    let got = out.to_vec_f64().unwrap();
    for i in 0..2 {
        for j in 0..5 {
            let e = naive(&a[i * 12..(i + 1) * 12], &b[j * 24..(j + 1) * 24], 3, 4, 6);
            assert_close(&got[(i * 5 + j) * 18..(i * 5 + j + 1) * 18], &e, 0.0, 0.0);
        }
    }
    let out = f64s(&a[..12], &[3, 4])
        .matmul(&f64s(&b, &[5, 4, 6]))
        .unwrap();
    assert_eq!(out.dims(), &[5, 3, 6]);
    // Two large matrices (each product threaded inside matrixmultiply), the second batch transposed.
    let (a, b) = (ints(2 * 150 * 140, 15), ints(2 * 140 * 130, 16));
    let bt = with_layout(&b, &[2, 140, 130], DType::F32, LayoutKind::Transposed);
    let out = with_layout(&a, &[2, 150, 140], DType::F32, LayoutKind::Strided)
        .matmul(&bt)
        .unwrap()
        .to_vec_f64()
        .unwrap();
    for i in 0..2 {
        let e = naive(
            &a[i * 21000..(i + 1) * 21000],
            &b[i * 18200..(i + 1) * 18200],
            150,
            140,
            130,
        );
        assert_close(&out[i * 19500..(i + 1) * 19500], &e, 0.0, 0.0);
    }
    // Many small batches (the rayon-over-batches path) and a batch of zero.
    let (a, b) = (ints(64 * 5 * 7, 7), ints(64 * 7 * 3, 8));
    let out = f64s(&a, &[64, 5, 7])
        .matmul(&f64s(&b, &[64, 7, 3]))
        .unwrap()
        .to_vec_f64()
        .unwrap();
    for i in 0..64 {
        let e = naive(&a[i * 35..(i + 1) * 35], &b[i * 21..(i + 1) * 21], 5, 7, 3);
        assert_close(&out[i * 15..(i + 1) * 15], &e, 0.0, 0.0);
    }
    let z = Tensor::zeros([0, 3, 4], DType::F32, &Device::cpu()).unwrap();
    assert_eq!(
        z.matmul(&Tensor::zeros([4, 2], DType::F32, &Device::cpu()).unwrap())
            .unwrap()
            .dims(),
        &[0, 3, 2]
    );
    // Batch dims that do not broadcast are named in the error.
    let err = Tensor::zeros([2, 3, 4], DType::F32, &Device::cpu())
        .unwrap()
        .matmul(&Tensor::zeros([3, 4, 5], DType::F32, &Device::cpu()).unwrap());
    assert_eq!(
        err.unwrap_err().to_string(),
        "matmul: shape mismatch between [2, 3, 4] and [3, 4, 5]"
    );
}

#[test]
fn vectors_are_promoted_and_the_added_dims_removed() {
    let (v, m) = (ints(4, 9), ints(4 * 3, 10));
    // torch.matmul rules: [4] @ [4, 3] -> [3]; [3, 4] @ [4] -> [3]; [2, 3, 4] @ [4] -> [2, 3]; [4] @ [2, 4, 3] -> [2, 3].
    let out = f64s(&v, &[4]).matmul(&f64s(&m, &[4, 3])).unwrap();
    assert_tensor(&out, &[3], &naive(&v, &m, 1, 4, 3), 0.0, 0.0);
    let mt = transpose(&m, 4, 3);
    let out = f64s(&mt, &[3, 4]).matmul(&f64s(&v, &[4])).unwrap();
    assert_tensor(&out, &[3], &naive(&mt, &v, 3, 4, 1), 0.0, 0.0);
    let batch = ints(2 * 3 * 4, 11);
    assert_eq!(
        f64s(&batch, &[2, 3, 4])
            .matmul(&f64s(&v, &[4]))
            .unwrap()
            .dims(),
        &[2, 3]
    );
    let rhs = ints(2 * 4 * 3, 12);
    assert_eq!(
        f64s(&v, &[4])
            .matmul(&f64s(&rhs, &[2, 4, 3]))
            .unwrap()
            .dims(),
        &[2, 3]
    );
    // 0-d operands are rejected.
    assert!(Tensor::scalar(1.0f64).matmul(&f64s(&v, &[4])).is_err());
}

#[test]
fn half_precision_goes_through_f32() {
    let (m, k, n) = (9, 33, 5);
    let (a, b) = (ints(m * k, 13), ints(k * n, 14));
    // Sums reach 33 * 16 = 528: exact in f16 (integers up to 2048), rounded in bf16 above 256.
    let expect = naive(&a, &b, m, k, n);
    for dtype in [DType::F16, DType::BF16] {
        let out = f64s(&a, &[m, k])
            .to_dtype(dtype)
            .unwrap()
            .matmul(
                &f64s(&b, &[k, n])
                    .to_dtype(dtype)
                    .unwrap()
                    .t()
                    .unwrap()
                    .t()
                    .unwrap(),
            )
            .unwrap();
        assert_eq!(out.dtype(), dtype);
        assert_close(&out.to_vec_f64().unwrap(), &expect, rtol(dtype), 0.0);
    }
    let err = f64s(&a, &[m, k])
        .matmul(&f64s(&b, &[k, n]).to_dtype(DType::F32).unwrap())
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "matmul: dtype mismatch between F64 and F32"
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn random_batched_strided_products(
        batch in shape(2, 3), m in 0usize..12, k in 0usize..12, n in 0usize..12,
        ka in layout_kind(), kb in layout_kind(), seed in any::<u64>(),
    ) {
        let bsz: usize = batch.iter().product();
        let (a, b) = (ints(bsz * m * k, seed), ints(bsz * k * n, seed ^ 1));
        let mut da = batch.clone();
        da.extend([m, k]);
        let mut db = batch.clone();
        db.extend([k, n]);
        let out = with_layout(&a, &da, DType::F32, ka).matmul(&with_layout(&b, &db, DType::F32, kb)).unwrap();
        let mut dims = batch.clone();
        dims.extend([m, n]);
        prop_assert_eq!(out.dims(), &dims[..]);
        let expect: Vec<f64> = (0..bsz)
            .flat_map(|i| naive(&a[i * m * k..(i + 1) * m * k], &b[i * k * n..(i + 1) * k * n], m, k, n))
            .collect();
        assert_close(&out.to_vec_f64().unwrap(), &expect, 0.0, 0.0);
    }
}
