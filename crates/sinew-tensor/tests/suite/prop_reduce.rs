//! Property tests: reductions over any set of dims (with and without keepdim) on every float
//! dtype and awkward layouts, against naive f64 loops; arg-reductions with ties; statistics,
//! logsumexp, norms and softmax. One large case per path exercises the parallel kernels.

use crate::common;

use common::*;
use proptest::prelude::*;
use sinew_tensor::{DType, ReduceOp, Tensor, bf16, f16};

fn round_to(v: f64, dtype: DType) -> f64 {
    match dtype {
        DType::F32 => v as f32 as f64,
        DType::F16 => f16::from_f64(v).to_f64(),
        DType::BF16 => bf16::from_f64(v).to_f64(),
        _ => v,
    }
}

/// Output dims of a reduction (reduced dims kept as 1 when `keepdim`).
fn out_dims(dims: &[usize], reduced: &[usize], keepdim: bool) -> Vec<usize> {
    dims.iter()
        .enumerate()
        .filter_map(|(i, &d)| match (reduced.contains(&i), keepdim) {
            (false, _) => Some(d),
            (true, true) => Some(1),
            (true, false) => None,
        })
        .collect()
}

/// For each output element (row-major), the input values folded into it.
fn groups(values: &[f64], dims: &[usize], reduced: &[usize]) -> Vec<Vec<f64>> {
    let kept = out_dims(dims, reduced, true);
    let mut out = vec![Vec::new(); kept.iter().product()];
    for (lin, &v) in values.iter().enumerate() {
        let mut idx = unravel(lin, dims);
        for &d in reduced {
            idx[d] = 0;
        }
        out[ravel(&idx, &kept)].push(v);
    }
    out
}

/// A shape, values, a sorted set of dims to reduce (as given to the op, possibly negative) and
/// whether the set is the empty list that means "all dims".
fn reduce_case(
    max_rank: usize,
    max_dim: usize,
) -> impl Strategy<Value = (Vec<usize>, Vec<f64>, Vec<usize>, Vec<isize>)> {
    shape_and_values(max_rank, max_dim).prop_flat_map(|(dims, vals)| {
        let r = dims.len();
        (
            Just(dims),
            Just(vals),
            prop::collection::vec(any::<bool>(), r),
            any::<bool>(),
        )
            .prop_map(|(dims, vals, pick, negative)| {
                let reduced: Vec<usize> = (0..dims.len()).filter(|&i| pick[i]).collect();
                let r = dims.len() as isize;
                let arg: Vec<isize> = reduced
                    .iter()
                    .map(|&d| if negative { d as isize - r } else { d as isize })
                    .collect();
                // An empty list means every dim.
                let reduced = if arg.is_empty() {
                    (0..dims.len()).collect()
                } else {
                    reduced
                };
                (dims, vals, reduced, arg)
            })
    })
}

fn naive(op: ReduceOp, g: &[f64]) -> f64 {
    match op {
        ReduceOp::Sum => g.iter().sum(),
        ReduceOp::Prod => g.iter().product(),
        ReduceOp::Max => g.iter().copied().fold(f64::NEG_INFINITY, f64::max),
        ReduceOp::Min => g.iter().copied().fold(f64::INFINITY, f64::min),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    #[test]
    fn sum_max_min_are_exact_on_exact_inputs(
        (dims, vals, reduced, arg) in reduce_case(4, 4),
        op in prop::sample::select(vec![ReduceOp::Sum, ReduceOp::Max, ReduceOp::Min]),
        keepdim in any::<bool>(),
        dtype in float_dtype(),
        kind in layout_kind(),
    ) {
        let t = with_layout(&vals, &dims, dtype, kind);
        let g = groups(&vals, &dims, &reduced);
        if op != ReduceOp::Sum && reduced.iter().any(|&d| dims[d] == 0) {
            // max/min over an empty dim is an error, as in PyTorch (`amin(): Expected reduction
            // dim 0 to have non-zero size`), even when the output is empty.
            prop_assert!(t.reduce(op, &arg, keepdim).is_err());
            return Ok(());
        }
        let out = t.reduce(op, &arg, keepdim).unwrap();
        prop_assert_eq!(out.dims(), &out_dims(&dims, &reduced, keepdim)[..]);
        prop_assert_eq!(out.dtype(), dtype);
        let expect: Vec<f64> = g.iter().map(|g| round_to(naive(op, g), dtype)).collect();
        assert_close(&out.to_vec_f64().unwrap(), &expect, 0.0, 0.0);
    }

    #[test]
    fn prod_and_mean_match_within_tolerance(
        (dims, vals, reduced, arg) in reduce_case(3, 3),
        keepdim in any::<bool>(),
        dtype in float_dtype(),
        kind in layout_kind(),
    ) {
        let vals: Vec<f64> = vals.iter().map(|v| (v * 2.0).round() / 8.0).collect();
        let t = with_layout(&vals, &dims, dtype, kind);
        let g = groups(&vals, &dims, &reduced);
        let prod: Vec<f64> = g.iter().map(|g| round_to(naive(ReduceOp::Prod, g), dtype)).collect();
        assert_close(&t.prod(&arg, keepdim).unwrap().to_vec_f64().unwrap(), &prod, 2.0 * rtol(dtype), 0.0);
        let mean: Vec<f64> = g.iter().map(|g| round_to(g.iter().sum::<f64>() / g.len() as f64, dtype)).collect();
        assert_close(&t.mean(&arg, keepdim).unwrap().to_vec_f64().unwrap(), &mean, 2.0 * rtol(dtype), 0.0);
    }

    #[test]
    fn argmax_and_argmin_pick_the_first_extreme(
        (dims, vals) in shape_and_values(4, 4),
        dim in 0usize..4,
        keepdim in any::<bool>(),
        dtype in prop_oneof![float_dtype(), Just(DType::I64)],
        kind in layout_kind(),
    ) {
        prop_assume!(!dims.is_empty());
        let d = dim % dims.len();
        // Few distinct values, so ties are common.
        let vals: Vec<f64> = vals.iter().map(|v| v.trunc().clamp(-2.0, 2.0)).collect();
        let t = with_layout(&vals, &dims, dtype, kind);
        if dims[d] == 0 {
            prop_assert!(t.argmax(d as isize, keepdim).is_err());
            return Ok(());
        }
        let kept = out_dims(&dims, &[d], true);
        let n_out: usize = kept.iter().product();
        let (mut amax, mut amin) = (vec![0i64; n_out], vec![0i64; n_out]);
        for o in 0..n_out {
            let mut idx = unravel(o, &kept);
            let at = |idx: &mut Vec<usize>, j: usize| { idx[d] = j; vals[ravel(idx, &dims)] };
            let (mut bmax, mut bmin) = (at(&mut idx, 0), at(&mut idx, 0));
            for j in 1..dims[d] {
                let v = at(&mut idx, j);
                if v > bmax { bmax = v; amax[o] = j as i64; }
                if v < bmin { bmin = v; amin[o] = j as i64; }
            }
        }
        let got_max = t.argmax(d as isize, keepdim).unwrap();
        prop_assert_eq!(got_max.dims(), &out_dims(&dims, &[d], keepdim)[..]);
        prop_assert_eq!(got_max.to_vec::<i64>().unwrap(), amax);
        prop_assert_eq!(t.argmin(d as isize - dims.len() as isize, keepdim).unwrap().to_vec::<i64>().unwrap(), amin);
    }

    #[test]
    fn var_std_logsumexp_norm_match_f64_loops(
        (dims, vals, reduced, arg) in reduce_case(3, 4),
        correction in 0usize..2,
        dtype in prop_oneof![Just(DType::F32), Just(DType::F64)],
        kind in layout_kind(),
    ) {
        let t = with_layout(&vals, &dims, dtype, kind);
        let g = groups(&vals, &dims, &reduced);
        let tol = if dtype == DType::F32 { 1e-5 } else { 1e-12 };
        let var: Vec<f64> = g.iter().map(|g| {
            let m = g.iter().sum::<f64>() / g.len() as f64;
            g.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (g.len() as f64 - correction as f64).max(0.0)
        }).collect();
        assert_close(&t.var(&arg, correction, false).unwrap().to_vec_f64().unwrap(), &var, tol, tol);
        let std: Vec<f64> = var.iter().map(|v| v.sqrt()).collect();
        assert_close(&t.std(&arg, correction, true).unwrap().to_vec_f64().unwrap(), &std, tol, tol);
        let lse: Vec<f64> = g.iter().map(|g| g.iter().map(|x| x.exp()).sum::<f64>().ln()).collect();
        assert_close(&t.logsumexp(&arg, false).unwrap().to_vec_f64().unwrap(), &lse, tol, tol);
        for p in [1.0, 2.0, 3.0, f64::INFINITY] {
            if p == f64::INFINITY && reduced.iter().any(|&d| dims[d] == 0) {
                // PyTorch: "cannot compute the inf norm on the dimension 0 because this dimension is empty".
                prop_assert!(t.norm(p, &arg, false).is_err());
                continue;
            }
            let norm: Vec<f64> = g.iter().map(|g| {
                if p == f64::INFINITY { g.iter().fold(0.0f64, |m, x| m.max(x.abs())) }
                else { g.iter().map(|x| x.abs().powf(p)).sum::<f64>().powf(1.0 / p) }
            }).collect();
            assert_close(&t.norm(p, &arg, false).unwrap().to_vec_f64().unwrap(), &norm, tol, tol);
        }
    }

    #[test]
    fn softmax_and_log_softmax_match_f64(
        (dims, vals) in shape_and_values(4, 4),
        dim in 0usize..4,
        dtype in float_dtype(),
        kind in layout_kind(),
    ) {
        prop_assume!(!dims.is_empty());
        let d = dim % dims.len();
        // Scale up so a naive exp would overflow in f32: the kernel must subtract the max.
        let vals: Vec<f64> = vals.iter().map(|v| v * 16.0).collect();
        let t = with_layout(&vals, &dims, dtype, kind);
        let mut soft = vec![0.0; vals.len()];
        let mut log_soft = vec![0.0; vals.len()];
        let g_index = |lin: usize| { let mut idx = unravel(lin, &dims); idx[d] = 0; idx };
        for lin in 0..vals.len() {
            let base = g_index(lin);
            let row: Vec<f64> = (0..dims[d]).map(|j| { let mut i = base.clone(); i[d] = j; vals[ravel(&i, &dims)] }).collect();
            let m = row.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            let s: f64 = row.iter().map(|x| (x - m).exp()).sum();
            soft[lin] = round_to((vals[lin] - m).exp() / s, dtype);
            log_soft[lin] = round_to(vals[lin] - m - s.ln(), dtype);
        }
        let tol = 8.0 * rtol(dtype);
        assert_close(&t.softmax(d as isize).unwrap().to_vec_f64().unwrap(), &soft, tol, tol);
        assert_close(&t.log_softmax(d as isize).unwrap().to_vec_f64().unwrap(), &log_soft, tol, tol);
    }
}

#[test]
fn large_reductions_take_the_parallel_paths() {
    // 8 x 70 x 64 = 35,840 elements, above the parallel threshold.
    let dims = [8usize, 70, 64];
    let n: usize = dims.iter().product();
    let vals: Vec<f64> = (0..n)
        .map(|i| ((i * 7919) % 1000) as f64 / 8.0 - 60.0)
        .collect();
    for kind in LAYOUTS {
        for dtype in [DType::F32, DType::F64] {
            let t = with_layout(&vals, &dims, dtype, kind);
            for reduced in [
                vec![0],
                vec![1],
                vec![2],
                vec![0, 1],
                vec![0, 2],
                vec![1, 2],
                vec![0, 1, 2],
            ] {
                let arg: Vec<isize> = reduced.iter().map(|&d| d as isize).collect();
                let g = groups(&vals, &dims, &reduced);
                for op in [ReduceOp::Sum, ReduceOp::Max, ReduceOp::Min] {
                    let expect: Vec<f64> =
                        g.iter().map(|g| round_to(naive(op, g), dtype)).collect();
                    let got = t.reduce(op, &arg, false).unwrap().to_vec_f64().unwrap();
                    assert_close(&got, &expect, 0.0, 0.0);
                }
            }
            let s = t
                .softmax(2)
                .unwrap()
                .sum(&[2], false)
                .unwrap()
                .to_vec_f64()
                .unwrap();
            assert_close(&s, &vec![1.0; 8 * 70], 1e-5, 0.0);
            let am = t.argmax(1, false).unwrap().to_vec::<i64>().unwrap();
            assert_eq!(am.len(), 8 * 64);
        }
    }
}

#[test]
fn float_sums_are_accurate_where_naive_f32_is_not() {
    // 1e8 + 1 + ... : an f32 running sum loses the ones; the kernel accumulates in f64.
    let mut v = vec![1.0f32; 100_001];
    v[0] = 1e8;
    let t = Tensor::from_vec(v, [100_001]).unwrap();
    assert_eq!(
        t.sum_all().unwrap().to_scalar::<f32>().unwrap(),
        100_100_000.0
    );
}
