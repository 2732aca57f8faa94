//! In-place ops (`add_`, `axpy_`, `addcmul_`, `clamp_`, `fill_`, ...) against their out-of-place
//! compositions on contiguous, transposed and narrowed destinations with same-shape,
//! transposed and broadcast sources; version counting; expanded destinations; bad arguments.

use crate::common;

use common::assert_close;
use sinew_tensor::{DType, Device, Error, Generator, Result, Tensor, UnaryOp};

type InplaceFn = fn(&Tensor, &[Tensor]) -> Result<()>;
type RefFn = fn(&Tensor, &[Tensor]) -> Result<Tensor>;

/// (name, sources, in-place, out-of-place reference, sources must be away from zero)
const OPS: &[(&str, usize, InplaceFn, RefFn, bool)] = &[
    ("add_", 1, |d, s| d.add_(&s[0]), |d, s| d.add(&s[0]), false),
    ("sub_", 1, |d, s| d.sub_(&s[0]), |d, s| d.sub(&s[0]), false),
    ("mul_", 1, |d, s| d.mul_(&s[0]), |d, s| d.mul(&s[0]), false),
    ("div_", 1, |d, s| d.div_(&s[0]), |d, s| d.div(&s[0]), true),
    (
        "add_scalar_",
        0,
        |d, _| d.add_scalar_(1.5),
        |d, _| d.add_scalar(1.5),
        false,
    ),
    (
        "mul_scalar_",
        0,
        |d, _| d.mul_scalar_(0.9),
        |d, _| d.mul_scalar(0.9),
        false,
    ),
    (
        "axpy_",
        1,
        |d, s| d.axpy_(-0.25, &s[0]),
        |d, s| d.add(&s[0].mul_scalar(-0.25)?),
        false,
    ),
    (
        "addcmul_",
        2,
        |d, s| d.addcmul_(0.5, &s[0], &s[1]),
        |d, s| d.add(&s[0].mul(&s[1])?.mul_scalar(0.5)?),
        false,
    ),
    (
        "addcdiv_",
        2,
        |d, s| d.addcdiv_(-2.0, &s[0], &s[1]),
        |d, s| d.add(&s[0].div(&s[1])?.mul_scalar(-2.0)?),
        true,
    ),
    (
        "lerp_ 0.3",
        1,
        |d, s| d.lerp_(&s[0], 0.3),
        |d, s| d.add(&s[0].sub(d)?.mul_scalar(0.3)?),
        false,
    ),
    (
        "lerp_ 0.8",
        1,
        |d, s| d.lerp_(&s[0], 0.8),
        |d, s| d.add(&s[0].sub(d)?.mul_scalar(0.8)?),
        false,
    ),
    (
        "mul_axpy_",
        1,
        |d, s| d.mul_axpy_(0.9, 0.7, &s[0]),
        |d, s| d.mul_scalar(0.9)?.add(&s[0].mul_scalar(0.7)?),
        false,
    ),
    (
        "mul_max_abs_",
        1,
        |d, s| d.mul_max_abs_(0.999, 1e-3, &s[0]),
        |d, s| d.mul_scalar(0.999)?.maximum(&s[0].abs()?.add_scalar(1e-3)?),
        false,
    ),
    (
        "mul_addcmul_",
        2,
        |d, s| d.mul_addcmul_(0.999, 0.001, &s[0], &s[1]),
        |d, s| {
            d.mul_scalar(0.999)?
                .add(&s[0].mul(&s[1])?.mul_scalar(0.001)?)
        },
        false,
    ),
    (
        "addcdiv_sqrt_",
        2,
        |d, s| d.addcdiv_sqrt_(-0.5, &s[0], &s[1].abs()?, 1.25, 1e-3),
        |d, s| {
            let den = s[1].abs()?.sqrt()?.mul_scalar(1.25)?.add_scalar(1e-3)?;
            d.add(&s[0].div(&den)?.mul_scalar(-0.5)?)
        },
        true,
    ),
    (
        "clamp_",
        0,
        |d, _| d.clamp_(-0.4, 0.3),
        |d, _| d.clamp(-0.4, 0.3),
        false,
    ),
    (
        "unary_ sqrt∘abs",
        0,
        |d, _| d.unary_(UnaryOp::Abs).and_then(|_| d.unary_(UnaryOp::Sqrt)),
        |d, _| d.abs()?.sqrt(),
        false,
    ),
    (
        "fill_",
        0,
        |d, _| d.fill_(-3.0),
        |d, _| d.full_like(-3.0),
        false,
    ),
    ("zero_", 0, |d, _| d.zero_(), |d, _| d.zeros_like(), false),
];

#[derive(Debug, Clone, Copy)]
enum DstKind {
    Contiguous,
    Transposed,
    Narrowed,
}

#[derive(Debug, Clone, Copy)]
enum SrcKind {
    Same,
    Transposed,
    Row,
    Column,
}

fn rand(g: &mut Generator, dims: &[usize], dtype: DType, away_from_zero: bool) -> Tensor {
    let t = if away_from_zero {
        g.uniform(dims.to_vec(), 0.5, 2.0, dtype, &Device::cpu())
    } else {
        g.uniform(dims.to_vec(), -1.0, 1.0, dtype, &Device::cpu())
    };
    t.unwrap()
}

/// A `[r, c]` destination view of the given kind and the base tensor it lives in.
fn destination(
    g: &mut Generator,
    r: usize,
    c: usize,
    dtype: DType,
    kind: DstKind,
) -> (Tensor, Tensor) {
    match kind {
        DstKind::Contiguous => {
            let base = rand(g, &[r, c], dtype, false);
            (base.clone(), base)
        }
        DstKind::Transposed => {
            let base = rand(g, &[c, r], dtype, false);
            let view = base.t().unwrap();
            (base, view)
        }
        DstKind::Narrowed => {
            let base = rand(g, &[r, c + 3], dtype, false);
            let view = base.narrow(1, 1, c).unwrap();
            (base, view)
        }
    }
}

fn source(
    g: &mut Generator,
    r: usize,
    c: usize,
    dtype: DType,
    kind: SrcKind,
    away: bool,
) -> Tensor {
    match kind {
        SrcKind::Same => rand(g, &[r, c], dtype, away),
        SrcKind::Transposed => rand(g, &[c, r], dtype, away).t().unwrap(),
        SrcKind::Row => rand(g, &[c], dtype, away),
        SrcKind::Column => rand(g, &[r, 1], dtype, away),
    }
}

fn tolerance(dtype: DType) -> (f64, f64) {
    match dtype {
        DType::F64 => (1e-12, 1e-12),
        DType::F32 => (1e-5, 1e-6),
        DType::F16 => (1e-2, 1e-2),
        _ => (3e-2, 3e-2),
    }
}

fn check_all(dtype: DType, r: usize, c: usize) {
    let mut g = Generator::new(7);
    let (rtol, atol) = tolerance(dtype);
    for &(name, n_src, inplace, reference, away) in OPS {
        for dst_kind in [DstKind::Contiguous, DstKind::Transposed, DstKind::Narrowed] {
            for src_kind in [
                SrcKind::Same,
                SrcKind::Transposed,
                SrcKind::Row,
                SrcKind::Column,
            ] {
                if n_src == 0 && !matches!(src_kind, SrcKind::Same) {
                    continue;
                }
                let (base, view) = destination(&mut g, r, c, dtype, dst_kind);
                let srcs: Vec<Tensor> = (0..n_src)
                    .map(|_| source(&mut g, r, c, dtype, src_kind, away))
                    .collect();
                let base_before = base.to_vec_f64().unwrap();
                let expected = reference(&view.force_contiguous().unwrap(), &srcs).unwrap();
                let version = view.version();
                inplace(&view, &srcs).unwrap();
                let bumps = if name.starts_with("unary_") { 2 } else { 1 };
                assert_eq!(view.version(), version + bumps, "{name}: version");
                assert_eq!(
                    base.version(),
                    view.version(),
                    "{name}: views share the counter"
                );
                let ctx = format!("{name} {dtype:?} {dst_kind:?} {src_kind:?} [{r}, {c}]");
                let (got, want) = (view.to_vec_f64().unwrap(), expected.to_vec_f64().unwrap());
                if got
                    .iter()
                    .zip(&want)
                    .any(|(a, b)| !common::close(*a, *b, rtol, atol))
                {
                    panic!("{ctx}: values differ");
                }
                if let DstKind::Narrowed = dst_kind {
                    // Columns outside the view are untouched.
                    let after = base.to_vec_f64().unwrap();
                    for row in 0..r {
                        for col in [0, c + 1, c + 2] {
                            let i = row * (c + 3) + col;
                            assert_eq!(after[i].to_bits(), base_before[i].to_bits(), "{ctx}");
                        }
                    }
                }
            }
        }
    }
}

#[test]
fn float_ops_match_out_of_place_small() {
    for dtype in [DType::F32, DType::F64, DType::F16, DType::BF16] {
        check_all(dtype, 5, 7);
    }
}

#[test]
fn float_ops_match_out_of_place_parallel_sizes() {
    // 300 * 130 = 39000 elements: above the parallel threshold, contiguous and strided.
    check_all(DType::F32, 300, 130);
    check_all(DType::BF16, 300, 130);
}

/// The fused optimizer updates round where the op-by-op sequences do: equal bit for bit in f32
/// and f64 (what keeps the optimizers' trajectories unchanged by the fusion).
/// `exp_` and `sigmoid_` give their out-of-place ops' bits (one formula each, whatever the
/// layout): f32, f16 and bf16 on contiguous (large enough to split across threads),
/// transposed and narrowed destinations; the values outside a narrowed view stay as they were.
#[test]
fn exp_and_sigmoid_in_place_are_their_out_of_place_ops_bit_for_bit() {
    let mut g = Generator::new(11);
    for dtype in [DType::F32, DType::F16, DType::BF16] {
        for (r, c) in [(5, 7), (300, 257)] {
            for kind in [DstKind::Contiguous, DstKind::Transposed, DstKind::Narrowed] {
                for (op, out_of_place) in [
                    (UnaryOp::Exp, Tensor::exp as fn(&Tensor) -> Result<Tensor>),
                    (UnaryOp::Sigmoid, Tensor::sigmoid),
                ] {
                    let (base, view) = destination(&mut g, r, c, dtype, kind);
                    // Values in [-8, 8): sigmoid's and exp's whole useful range.
                    base.mul_scalar_(8.0).unwrap();
                    let before = base.to_vec_f64().unwrap();
                    let want = out_of_place(&view).unwrap().to_vec_f64().unwrap();
                    view.unary_(op).unwrap();
                    let got = view.to_vec_f64().unwrap();
                    let ctx = format!("{}_ {dtype:?} {kind:?} [{r}, {c}]", op.name());
                    assert!(want.iter().any(|&v| !(0.01..=0.99).contains(&v)), "{ctx}");
                    for (i, (a, b)) in got.iter().zip(&want).enumerate() {
                        assert_eq!(a.to_bits(), b.to_bits(), "{ctx}: element {i}");
                    }
                    if let DstKind::Narrowed = kind {
                        let after = base.to_vec_f64().unwrap();
                        for row in 0..r {
                            for col in [0, c + 1, c + 2] {
                                let i = row * (c + 3) + col;
                                assert_eq!(after[i].to_bits(), before[i].to_bits(), "{ctx}");
                            }
                        }
                    }
                }
            }
        }
    }
}

#[test]
fn fused_updates_equal_their_op_by_op_sequences_exactly() {
    let mut g = Generator::new(21);
    for dtype in [DType::F32, DType::F64] {
        let d = rand(&mut g, &[37, 29], dtype, false);
        let x = rand(&mut g, &[37, 29], dtype, false);
        let v = rand(&mut g, &[37, 29], dtype, true).abs().unwrap();
        let bits = |t: &Tensor| t.to_vec_f64().unwrap();
        // A fresh tensor with the same values (times 1 is exact).
        let copy = |t: &Tensor| t.mul_scalar(1.0).unwrap();
        let (a, b) = (copy(&d), copy(&d));
        a.mul_axpy_(0.9, 0.75, &x).unwrap();
        b.mul_scalar_(0.9).unwrap();
        b.axpy_(0.75, &x).unwrap();
        assert_eq!(bits(&a), bits(&b), "{dtype} mul_axpy_");
        let (a, b) = (copy(&d), copy(&d));
        a.mul_addcmul_(0.999, 1.0 - 0.999, &x, &x).unwrap();
        b.mul_scalar_(0.999).unwrap();
        b.addcmul_(1.0 - 0.999, &x, &x).unwrap();
        assert_eq!(bits(&a), bits(&b), "{dtype} mul_addcmul_");
        let (a, b) = (copy(&d), copy(&d));
        let (scale, eps) = (1.0 / (1.0f64 - 0.999f64.powi(3)).sqrt(), 1e-8);
        a.addcdiv_sqrt_(-1e-3 / 0.271, &x, &v, scale, eps).unwrap();
        let den = copy(&v);
        den.unary_(UnaryOp::Sqrt).unwrap();
        den.mul_scalar_(scale).unwrap();
        den.add_scalar_(eps).unwrap();
        b.addcdiv_(-1e-3 / 0.271, &x, &den).unwrap();
        assert_eq!(bits(&a), bits(&b), "{dtype} addcdiv_sqrt_");
        let (a, b) = (copy(&d), copy(&d));
        a.mul_max_abs_(0.999, 1e-8, &x).unwrap();
        b.mul_scalar_(0.999).unwrap();
        let magnitude = x.abs().unwrap().add_scalar(1e-8).unwrap();
        b.maximum_(&magnitude).unwrap();
        assert_eq!(bits(&a), bits(&b), "{dtype} mul_max_abs_");
    }
    let ints = Tensor::zeros([3], DType::I64, &Device::cpu()).unwrap();
    assert!(ints.mul_axpy_(1.0, 1.0, &ints.clone()).is_err());
}

#[test]
fn integer_ops() {
    let t = Tensor::from_vec(vec![1i64, -2, 3, 4, 5, -6], [2, 3]).unwrap();
    let s = Tensor::from_vec(vec![2i64, 2, 2], [3]).unwrap();
    t.add_(&s).unwrap();
    assert_eq!(t.to_vec::<i64>().unwrap(), vec![3, 0, 5, 6, 7, -4]);
    t.mul_scalar_(3.0).unwrap();
    assert_eq!(t.to_vec::<i64>().unwrap(), vec![9, 0, 15, 18, 21, -12]);
    assert!(t.div_(&s).unwrap_err().to_string().contains("div_trunc_"));
    t.div_trunc_(&s).unwrap();
    assert_eq!(t.to_vec::<i64>().unwrap(), vec![4, 0, 7, 9, 10, -6]);
    t.axpy_(-2.0, &s).unwrap();
    assert_eq!(t.to_vec::<i64>().unwrap(), vec![0, -4, 3, 5, 6, -10]);
    t.addcmul_(2.0, &s, &s).unwrap();
    assert_eq!(t.to_vec::<i64>().unwrap(), vec![8, 4, 11, 13, 14, -2]);
    t.clamp_(0.0, 12.0).unwrap();
    assert_eq!(t.to_vec::<i64>().unwrap(), vec![8, 4, 11, 12, 12, 0]);
    t.sub_(&t.t().unwrap().t().unwrap()).unwrap();
    assert_eq!(t.to_vec::<i64>().unwrap(), vec![0; 6]);
    // Division by zero: an error, nothing written.
    t.fill_(5.0).unwrap();
    let zero = Tensor::from_vec(vec![1i64, 0, 1], [3]).unwrap();
    assert!(
        t.div_trunc_(&zero)
            .unwrap_err()
            .to_string()
            .contains("division by zero")
    );
    assert_eq!(t.to_vec::<i64>().unwrap(), vec![5; 6]);
    // Non-integer scalars and float-only ops.
    assert!(
        t.add_scalar_(0.5)
            .unwrap_err()
            .to_string()
            .contains("not an integer")
    );
    assert!(matches!(
        t.lerp_(&t.clone().contiguous().unwrap(), 0.5),
        Err(Error::UnsupportedDType { op: "lerp_", .. })
    ));
    assert!(matches!(
        t.addcdiv_(1.0, &s, &s),
        Err(Error::UnsupportedDType { op: "addcdiv_", .. })
    ));
}

#[test]
fn fill_any_dtype_and_bool_arithmetic_is_refused() {
    let b = Tensor::from_vec(vec![false; 4], [4]).unwrap();
    b.fill_(1.0).unwrap();
    assert_eq!(b.to_vec::<bool>().unwrap(), vec![true; 4]);
    assert!(matches!(
        b.add_scalar_(1.0),
        Err(Error::UnsupportedDType {
            op: "add_scalar_",
            dtype: DType::Bool
        })
    ));
}

#[test]
fn a_source_aliasing_the_destination_reads_the_old_values() {
    let x = Tensor::from_vec(vec![1.0f32, 2.0, 3.0, 4.0], [2, 2]).unwrap();
    x.add_(&x).unwrap();
    assert_eq!(x.to_vec::<f32>().unwrap(), vec![2.0, 4.0, 6.0, 8.0]);
    // x += x.T, where the transposed read would see half-updated values without a copy.
    x.add_(&x.t().unwrap()).unwrap();
    assert_eq!(x.to_vec::<f32>().unwrap(), vec![4.0, 10.0, 10.0, 16.0]);
}

#[test]
fn version_counts_one_bump_per_op() {
    let x = Tensor::zeros([3], DType::F32, &Device::cpu()).unwrap();
    let y = Tensor::ones([3], DType::F32, &Device::cpu()).unwrap();
    assert_eq!(x.version(), 0);
    x.add_(&y).unwrap();
    x.axpy_(2.0, &y).unwrap();
    x.copy_(&y).unwrap();
    x.zero_().unwrap();
    assert_eq!(x.version(), 4);
    assert_eq!(y.version(), 0, "sources are not bumped");
}

#[test]
fn writing_into_an_expanded_view_is_refused() {
    let base = Tensor::from_vec(vec![1.0f32, 2.0, 3.0], [3]).unwrap();
    let expanded = base.expand([4, 3]).unwrap();
    let other = Tensor::ones([4, 3], DType::F32, &Device::cpu()).unwrap();
    let attempts: [(&str, Result<()>); 4] = [
        ("add_", expanded.add_(&other)),
        ("mul_scalar_", expanded.mul_scalar_(2.0)),
        ("fill_", expanded.fill_(0.0)),
        ("copy_", expanded.copy_(&other)),
    ];
    for (name, r) in attempts {
        let msg = r.unwrap_err().to_string();
        assert!(
            msg.contains("refer to a single memory location"),
            "{name}: {msg}"
        );
    }
    assert_eq!(base.to_vec::<f32>().unwrap(), vec![1.0, 2.0, 3.0]);
    assert_eq!(base.version(), 0);
    // An empty expanded view writes nothing: no overlap.
    let empty = Tensor::zeros([0], DType::F32, &Device::cpu()).unwrap();
    empty.expand([2, 0]).unwrap().fill_(1.0).unwrap();
    // A size-1 dim with stride 0 is not an overlap.
    let single = base.narrow(0, 1, 1).unwrap().expand([1]).unwrap();
    single.fill_(9.0).unwrap();
    assert_eq!(base.to_vec::<f32>().unwrap(), vec![1.0, 9.0, 3.0]);
}

#[test]
fn bad_operands_are_clear_errors() {
    let x = Tensor::zeros([2, 3], DType::F32, &Device::cpu()).unwrap();
    let f64s = Tensor::zeros([2, 3], DType::F64, &Device::cpu()).unwrap();
    assert_eq!(
        x.add_(&f64s).unwrap_err(),
        Error::DTypeMismatch {
            op: "add_",
            lhs: DType::F32,
            rhs: DType::F64
        }
    );
    // The destination never broadcasts; the source must broadcast to it.
    for bad in [vec![3, 3], vec![2], vec![4, 2, 3], vec![1, 2]] {
        let s = Tensor::zeros(bad.clone(), DType::F32, &Device::cpu()).unwrap();
        assert!(
            matches!(
                x.axpy_(1.0, &s),
                Err(Error::ShapeMismatch { op: "axpy_", .. })
            ),
            "{bad:?}"
        );
    }
    let ok = Tensor::zeros([1, 3], DType::F32, &Device::cpu()).unwrap();
    x.addcmul_(1.0, &ok, &x.clone().contiguous().unwrap())
        .unwrap();
    assert!(
        x.clamp_(1.0, 0.0)
            .unwrap_err()
            .to_string()
            .contains("greater than max")
    );
    assert_close(&x.to_vec_f64().unwrap(), &[0.0; 6], 0.0, 0.0);
}
