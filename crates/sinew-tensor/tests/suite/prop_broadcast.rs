//! Property tests: binary ops, comparisons and `where` with NumPy broadcasting, on every float
//! dtype and on awkward layouts, against a naive per-element reference computed in f64.

use crate::common;

use common::*;
use proptest::prelude::*;
use sinew_tensor::{BinaryOp, CmpOp, DType, Tensor, bf16, f16};

/// Rounds an f64 to `dtype` the way a kernel storing its result would.
fn round_to(v: f64, dtype: DType) -> f64 {
    match dtype {
        DType::F32 => v as f32 as f64,
        DType::F16 => f16::from_f64(v).to_f64(),
        DType::BF16 => bf16::from_f64(v).to_f64(),
        _ => v,
    }
}

/// An output shape and two operand shapes that broadcast to it (each dim kept or set to 1, and
/// leading dims dropped).
fn broadcast_shapes() -> impl Strategy<Value = (Vec<usize>, Vec<usize>, Vec<usize>)> {
    shape(4, 4).prop_flat_map(|out| {
        let r = out.len();
        let operand = (0..=r, prop::collection::vec(any::<bool>(), r)).prop_map({
            let out = out.clone();
            move |(drop, ones)| {
                (drop..r)
                    .map(|i| if ones[i] { 1 } else { out[i] })
                    .collect::<Vec<usize>>()
            }
        });
        (Just(out), operand.clone(), operand)
    })
}

/// The broadcast shape of `a` and `b`, computed naively.
fn naive_broadcast_shape(a: &[usize], b: &[usize]) -> Vec<usize> {
    let r = a.len().max(b.len());
    let at = |s: &[usize], i: usize| {
        if i + s.len() >= r {
            s[i + s.len() - r]
        } else {
            1
        }
    };
    (0..r)
        .map(|i| at(a, i).max(at(b, i)) * (at(a, i).min(at(b, i)) != 0) as usize)
        .collect()
}

/// The element of `values` (shape `dims`) that output position `idx` reads under broadcasting.
fn read(values: &[f64], dims: &[usize], idx: &[usize]) -> f64 {
    let lead = idx.len() - dims.len();
    let own: Vec<usize> = dims
        .iter()
        .enumerate()
        .map(|(i, &d)| if d == 1 { 0 } else { idx[lead + i] })
        .collect();
    values[ravel(&own, dims)]
}

fn naive_binary(op: BinaryOp, a: f64, b: f64) -> f64 {
    match op {
        BinaryOp::Add => a + b,
        BinaryOp::Sub => a - b,
        BinaryOp::Mul => a * b,
        BinaryOp::Div => a / b,
        BinaryOp::Pow => a.powf(b),
        BinaryOp::Maximum => {
            if a.is_nan() || b.is_nan() {
                f64::NAN
            } else {
                a.max(b)
            }
        }
        BinaryOp::Minimum => {
            if a.is_nan() || b.is_nan() {
                f64::NAN
            } else {
                a.min(b)
            }
        }
    }
}

fn naive_cmp(op: CmpOp, a: f64, b: f64) -> bool {
    match op {
        CmpOp::Eq => a == b,
        CmpOp::Ne => a != b,
        CmpOp::Lt => a < b,
        CmpOp::Le => a <= b,
        CmpOp::Gt => a > b,
        CmpOp::Ge => a >= b,
    }
}

fn values_for(dims: &[usize]) -> impl Strategy<Value = Vec<f64>> + use<> {
    exact_values(dims.iter().product())
}

fn binary_op() -> impl Strategy<Value = BinaryOp> {
    prop::sample::select(sinew_tensor::op_table::BINARY_OPS.to_vec())
}

fn cmp_op() -> impl Strategy<Value = CmpOp> {
    prop::sample::select(sinew_tensor::op_table::CMP_OPS.to_vec())
}

fn case() -> impl Strategy<Value = (Vec<usize>, Vec<usize>, Vec<f64>, Vec<f64>)> {
    broadcast_shapes().prop_flat_map(|(_, a, b)| {
        let (va, vb) = (values_for(&a), values_for(&b));
        (Just(a), Just(b), va, vb)
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    #[test]
    fn binary_ops_match_a_naive_broadcast(
        (da, db, va, vb) in case(),
        op in binary_op(),
        dtype in float_dtype(),
        (ka, kb) in (layout_kind(), layout_kind()),
    ) {
        let a = with_layout(&va, &da, dtype, ka);
        let b = with_layout(&vb, &db, dtype, kb);
        let out = a.binary(op, &b).unwrap();
        let dims = naive_broadcast_shape(&da, &db);
        prop_assert_eq!(out.dims(), &dims[..]);
        prop_assert_eq!(out.dtype(), dtype);
        let expect: Vec<f64> = (0..dims.iter().product())
            .map(|lin| {
                let idx = unravel(lin, &dims);
                round_to(naive_binary(op, read(&va, &da, &idx), read(&vb, &db, &idx)), dtype)
            })
            .collect();
        // Inputs are exact; add/sub/mul/max/min are exact in f32 before rounding, div and pow are not.
        let tol = if matches!(op, BinaryOp::Div | BinaryOp::Pow) { 2.0 * rtol(dtype) } else { 0.0 };
        assert_close(&out.to_vec_f64().unwrap(), &expect, tol, 0.0);
        // Broadcasting is symmetric in shape.
        let swapped = b.binary(op, &a).unwrap();
        prop_assert_eq!(swapped.dims(), &dims[..]);
    }

    #[test]
    fn comparisons_match_a_naive_broadcast(
        (da, db, va, vb) in case(),
        op in cmp_op(),
        dtype in prop_oneof![float_dtype(), Just(DType::I64)],
        (ka, kb) in (layout_kind(), layout_kind()),
    ) {
        let int = |v: &Vec<f64>| v.iter().map(|x| x.trunc()).collect::<Vec<f64>>();
        let (va, vb) = if dtype == DType::I64 { (int(&va), int(&vb)) } else { (va, vb) };
        let a = with_layout(&va, &da, dtype, ka);
        let b = with_layout(&vb, &db, dtype, kb);
        let out = a.compare(op, &b).unwrap();
        prop_assert_eq!(out.dtype(), DType::Bool);
        let dims = naive_broadcast_shape(&da, &db);
        let expect: Vec<bool> = (0..dims.iter().product())
            .map(|lin| {
                let idx = unravel(lin, &dims);
                naive_cmp(op, read(&va, &da, &idx), read(&vb, &db, &idx))
            })
            .collect();
        prop_assert_eq!(out.to_vec::<bool>().unwrap(), expect);
    }

    #[test]
    fn where_broadcasts_three_ways(
        (out_dims, dc, dt) in broadcast_shapes(),
        df_choice in any::<bool>(),
        seed in any::<u64>(),
        kinds in (layout_kind(), layout_kind(), layout_kind()),
    ) {
        // The false branch is either a full-size operand or a scalar.
        let df = if df_choice { out_dims.clone() } else { vec![] };
        let n = |d: &[usize]| d.iter().product::<usize>();
        let mut rng = seed;
        let mut next = || { rng = rng.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407); (rng >> 33) as f64 };
        let vc: Vec<f64> = (0..n(&dc)).map(|_| (next() as u64 % 2) as f64).collect();
        let vt: Vec<f64> = (0..n(&dt)).map(|_| next() % 100.0).collect();
        let vf: Vec<f64> = (0..n(&df)).map(|_| -(next() % 100.0) - 1.0).collect();
        let cond = with_layout(&vc, &dc, DType::Bool, kinds.0);
        let t = with_layout(&vt, &dt, DType::F32, kinds.1);
        let f = with_layout(&vf, &df, DType::F32, kinds.2);
        let out = cond.where_cond(&t, &f).unwrap();
        let dims = naive_broadcast_shape(&naive_broadcast_shape(&dc, &dt), &df);
        prop_assert_eq!(out.dims(), &dims[..]);
        let expect: Vec<f64> = (0..n(&dims))
            .map(|lin| {
                let idx = unravel(lin, &dims);
                if read(&vc, &dc, &idx) != 0.0 { read(&vt, &dt, &idx) } else { read(&vf, &df, &idx) }
            })
            .collect();
        assert_close(&out.to_vec_f64().unwrap(), &expect, 0.0, 0.0);
    }

    #[test]
    fn incompatible_shapes_name_the_op_and_both_shapes(
        a in 2usize..6, b in 2usize..6, lead in shape(2, 3),
    ) {
        prop_assume!(a != b);
        let mut da = lead.clone();
        da.push(a);
        let x = Tensor::zeros(da.clone(), DType::F32, &sinew_tensor::Device::cpu()).unwrap();
        let y = Tensor::zeros([b], DType::F32, &sinew_tensor::Device::cpu()).unwrap();
        let msg = x.sub(&y).unwrap_err().to_string();
        prop_assert_eq!(msg, format!("sub: shape mismatch between {:?} and [{}]", da, b));
    }
}

#[test]
fn large_broadcasts_take_the_parallel_paths() {
    // 2 * 70_000 elements is above the parallel threshold; every fast path must agree.
    let n = 70_000;
    let a: Vec<f64> = (0..2 * n).map(|i| (i % 97) as f64).collect();
    let row: Vec<f64> = (0..n).map(|i| (i % 13) as f64).collect();
    let col = [1.0, -1.0];
    for kind in LAYOUTS {
        let x = with_layout(&a, &[2, n], DType::F32, kind);
        let r = with_layout(&row, &[n], DType::F32, kind);
        let c = f64s(&col, &[2, 1]).to_dtype(DType::F32).unwrap();
        let s = Tensor::scalar(0.5f32);
        let expect_row: Vec<f64> = (0..2 * n).map(|i| a[i] + row[i % n]).collect();
        assert_close(
            &x.add(&r).unwrap().to_vec_f64().unwrap(),
            &expect_row,
            0.0,
            0.0,
        );
        assert_close(
            &r.add(&x).unwrap().to_vec_f64().unwrap(),
            &expect_row,
            0.0,
            0.0,
        );
        let expect_col: Vec<f64> = (0..2 * n).map(|i| a[i] * col[i / n]).collect();
        assert_close(
            &x.mul(&c).unwrap().to_vec_f64().unwrap(),
            &expect_col,
            0.0,
            0.0,
        );
        assert_close(
            &c.mul(&x).unwrap().to_vec_f64().unwrap(),
            &expect_col,
            0.0,
            0.0,
        );
        let expect_scalar: Vec<f64> = a.iter().map(|v| v - 0.5).collect();
        assert_close(
            &x.sub(&s).unwrap().to_vec_f64().unwrap(),
            &expect_scalar,
            0.0,
            0.0,
        );
        let expect_rsub: Vec<f64> = a.iter().map(|v| 0.5 - v).collect();
        assert_close(
            &s.sub(&x).unwrap().to_vec_f64().unwrap(),
            &expect_rsub,
            0.0,
            0.0,
        );
        let mask = x.gt_scalar(48.0).unwrap();
        let picked = mask.where_cond(&x, &s).unwrap().to_vec_f64().unwrap();
        let expect_where: Vec<f64> = a.iter().map(|&v| if v > 48.0 { v } else { 0.5 }).collect();
        assert_close(&picked, &expect_where, 0.0, 0.0);
    }
}
