//! GPU parity of the elementwise kernels (unary, binary, compare, where, cast, fill, copies)
//! against the CPU backend, on awkward shapes, strided and broadcast views, outputs poisoned.

#![cfg(feature = "cuda")]

mod common;

use common::{both, check, gpu, kernel_launches, poison, randn, tol};
use sinew_tensor::op_table::{BINARY_OPS, CMP_OPS, unary_ops};
use sinew_tensor::{BinaryOp, DType, Device, Tensor, UnaryOp};

const FLOATS: [DType; 4] = [DType::F32, DType::F16, DType::BF16, DType::F64];

/// A contiguous [37, 53], its transpose and a stepped slice: three layouts the kernels must walk.
fn views(seed: u64, dtype: DType) -> Vec<(&'static str, Tensor)> {
    let base = randn(seed, &[37, 53], dtype).mul_scalar(2.0).unwrap();
    let t = randn(seed + 1, &[53, 37], dtype).t().unwrap();
    let stepped = randn(seed + 2, &[40, 106], dtype)
        .slice(1, 0, 106, 2)
        .unwrap()
        .narrow(0, 3, 37)
        .unwrap();
    vec![
        ("contiguous", base),
        ("transposed", t),
        ("stepped", stepped),
    ]
}

#[test]
#[ignore = "needs a CUDA GPU"]
fn unary_ops_match_the_cpu() {
    let dev = gpu();
    for dtype in FLOATS {
        let mut worst = 0.0f64;
        for op in unary_ops() {
            for (name, x) in views(11, dtype) {
                let (c, g) = both(&dev, &[&x], |t| t[0].unary(op));
                worst = worst.max(check(
                    &format!("{} {dtype} {name}", op.name()),
                    &c,
                    &g,
                    tol(dtype),
                ));
            }
        }
        println!(
            "unary {dtype}: max error {worst:e} over {} ops x 3 layouts",
            unary_ops().len()
        );
    }
    let ints = randn(5, &[37, 53], DType::F64)
        .mul_scalar(50.0)
        .unwrap()
        .to_dtype(DType::I64)
        .unwrap();
    for op in unary_ops().into_iter().filter(UnaryOp::supports_integers) {
        let op = match op {
            UnaryOp::MulScalar(_) => UnaryOp::MulScalar(-3.0),
            UnaryOp::AddScalar(_) => UnaryOp::AddScalar(7.0),
            UnaryOp::RSubScalar(_) => UnaryOp::RSubScalar(2.0),
            UnaryOp::Clamp { .. } => UnaryOp::Clamp {
                min: -10.5,
                max: 20.5,
            },
            other => other,
        };
        let (c, g) = both(&dev, &[&ints.t().unwrap()], |t| t[0].unary(op));
        assert_eq!(
            c.to_vec::<i64>().unwrap(),
            g.to_vec::<i64>().unwrap(),
            "{} i64",
            op.name()
        );
    }
    let half = ints.to_device(&dev).unwrap().unary(UnaryOp::AddScalar(0.5));
    assert!(half.is_err(), "a fractional scalar on i64 must be an error");
}

#[test]
#[ignore = "needs a CUDA GPU"]
fn binary_ops_broadcast_like_the_cpu() {
    let dev = gpu();
    for dtype in FLOATS {
        let mut worst = 0.0f64;
        let a = randn(21, &[37, 1, 53], dtype);
        let b = randn(22, &[19, 53], dtype).add_scalar(0.1).unwrap();
        let bt = randn(23, &[53, 19], dtype).t().unwrap();
        let scalar = Tensor::full((), 1.5, dtype, &Device::cpu()).unwrap();
        for op in BINARY_OPS {
            for (name, rhs) in [("broadcast", &b), ("transposed", &bt), ("scalar", &scalar)] {
                let (c, g) = both(&dev, &[&a, rhs], |t| t[0].binary(op, &t[1]));
                worst = worst.max(check(
                    &format!("{} {dtype} {name}", op.name()),
                    &c,
                    &g,
                    tol(dtype),
                ));
            }
        }
        println!(
            "binary {dtype}: max error {worst:e} over {} ops x 3 layouts",
            BINARY_OPS.len()
        );
    }
    let nan = Tensor::from_vec(vec![f32::NAN, 1.0, -2.0], [3]).unwrap();
    let other = Tensor::from_vec(vec![0.0f32, f32::NAN, 5.0], [3]).unwrap();
    let (c, g) = both(&dev, &[&nan, &other], |t| t[0].maximum(&t[1]));
    check("maximum NaN", &c, &g, 0.0);
    let ia = randn(24, &[33, 17], DType::F64)
        .mul_scalar(1e3)
        .unwrap()
        .to_dtype(DType::I64)
        .unwrap();
    let ib = randn(25, &[17], DType::F64)
        .mul_scalar(1e3)
        .unwrap()
        .to_dtype(DType::I64)
        .unwrap();
    for op in BINARY_OPS
        .into_iter()
        .filter(|o| sinew_cuda::names::binary(*o, DType::I64).is_some())
    {
        // i64 division is `div_trunc` (`binary`'s division of integers is PyTorch's true
        // division, in f32).
        let (c, g) = both(&dev, &[&ia, &ib], |t| match op {
            BinaryOp::Div => t[0].div_trunc(&t[1]),
            _ => t[0].binary(op, &t[1]),
        });
        assert_eq!(
            c.to_vec::<i64>().unwrap(),
            g.to_vec::<i64>().unwrap(),
            "{} i64",
            op.name()
        );
    }
}

#[test]
#[ignore = "needs a CUDA GPU"]
fn comparisons_and_where_match_the_cpu() {
    let dev = gpu();
    for dtype in [
        DType::F32,
        DType::F16,
        DType::BF16,
        DType::F64,
        DType::I64,
        DType::U8,
    ] {
        // Few distinct values so that equality is exercised.
        let a = randn(31, &[29, 1, 31], DType::F64)
            .mul_scalar(2.0)
            .unwrap()
            .abs()
            .unwrap()
            .to_dtype(dtype)
            .unwrap();
        let b = randn(32, &[7, 31], DType::F64)
            .mul_scalar(2.0)
            .unwrap()
            .abs()
            .unwrap()
            .to_dtype(dtype)
            .unwrap();
        for op in CMP_OPS {
            let (c, g) = both(&dev, &[&a, &b], |t| t[0].compare(op, &t[1]));
            assert_eq!(
                c.to_vec::<bool>().unwrap(),
                g.to_vec::<bool>().unwrap(),
                "{} {dtype}",
                op.name()
            );
        }
        let cond = randn(33, &[29, 7, 1], DType::F32).gt_scalar(0.0).unwrap();
        let (c, g) = both(
            &dev,
            &[
                &cond,
                &a,
                &b.t().unwrap().contiguous().unwrap().t().unwrap(),
            ],
            |t| t[0].where_cond(&t[1], &t[2]),
        );
        check(&format!("where {dtype}"), &c, &g, 0.0);
    }
    let mask = Tensor::from_vec(vec![true, false, true], [3]).unwrap();
    let (c, g) = both(&dev, &[&mask, &mask.logical_not_for_test()], |t| {
        t[0].where_cond(&t[0], &t[1])
    });
    assert_eq!(c.to_vec::<bool>().unwrap(), g.to_vec::<bool>().unwrap());
}

/// `!mask` through a comparison, so the test needs no logical-not op.
trait NotForTest {
    fn logical_not_for_test(&self) -> Tensor;
}

impl NotForTest for Tensor {
    fn logical_not_for_test(&self) -> Tensor {
        let f = Tensor::full((), 0.0, DType::Bool, self.device()).unwrap();
        self.eq(&f).unwrap()
    }
}

/// Exact equality: bytes for integers and bools, values (any NaN payload) for floats.
fn same(what: &str, cpu: &Tensor, gpu: &Tensor) {
    if cpu.dtype().is_float() {
        check(what, cpu, gpu, 0.0);
    } else {
        assert_eq!(
            cpu.to_cpu_storage().unwrap(),
            gpu.to_cpu_storage().unwrap(),
            "{what}"
        );
    }
}

#[test]
#[ignore = "needs a CUDA GPU"]
fn casts_fills_and_copies_match_the_cpu() {
    let dev = gpu();
    let mut values = randn(41, &[300], DType::F64)
        .mul_scalar(100.0)
        .unwrap()
        .to_vec::<f64>()
        .unwrap();
    values.extend([
        f64::NAN,
        f64::INFINITY,
        f64::NEG_INFINITY,
        1e30,
        -1e30,
        255.5,
        256.0,
        -0.7,
        0.0,
        65504.0,
        70000.0,
    ]);
    let n = values.len();
    let source = Tensor::from_vec(values, [n]).unwrap();
    for from in DType::ALL {
        let x = source.to_dtype(from).unwrap();
        for to in DType::ALL {
            let (c, g) = both(&dev, &[&x], |t| t[0].to_dtype(to));
            same(&format!("cast {from} -> {to}"), &c, &g);
        }
        let strided = x
            .narrow(0, 0, n - n % 2)
            .unwrap()
            .reshape([n / 2, 2])
            .unwrap()
            .t()
            .unwrap();
        let (c, g) = both(&dev, &[&strided], |t| t[0].contiguous());
        same(&format!("copy {from}"), &c, &g);
        for value in [0.0, -2.5, 1.0, 300.0] {
            let g = Tensor::full([5, 7], value, from, &dev).unwrap();
            let c = Tensor::full([5, 7], value, from, &Device::cpu()).unwrap();
            same(
                &format!("full {value} {from}"),
                &c,
                &g.to_device(&Device::cpu()).unwrap(),
            );
        }
    }
    // Strided writes into a view: cat and copy_ into a narrowed column block.
    let a = randn(42, &[5, 3], DType::F32);
    let b = randn(43, &[4, 5], DType::F32).t().unwrap();
    let (c, g) = both(&dev, &[&a, &b], |t| {
        Tensor::cat(&[t[0].clone(), t[1].clone()], 1)
    });
    check("cat", &c, &g, 0.0);
    let base = Tensor::zeros([6, 9], DType::F32, &dev).unwrap();
    base.narrow(1, 2, 5)
        .unwrap()
        .t()
        .unwrap()
        .copy_(&randn(44, &[5, 6], DType::F32).to_device(&dev).unwrap())
        .unwrap();
    let cpu_base = Tensor::zeros([6, 9], DType::F32, &Device::cpu()).unwrap();
    cpu_base
        .narrow(1, 2, 5)
        .unwrap()
        .t()
        .unwrap()
        .copy_(&randn(44, &[5, 6], DType::F32))
        .unwrap();
    check(
        "copy_ into a view",
        &cpu_base,
        &base.to_device(&Device::cpu()).unwrap(),
        0.0,
    );
}

/// `len` values cycling through -2, -1, 0, 1, 2 (exact in every float dtype), then NaN, +inf
/// and -inf at every 11th, 13th and 17th position when `specials`.
fn ladder(len: usize, specials: bool) -> Vec<f64> {
    (0..len)
        .map(|i| match i {
            _ if specials && i % 11 == 3 => f64::NAN,
            _ if specials && i % 13 == 4 => f64::INFINITY,
            _ if specials && i % 17 == 5 => f64::NEG_INFINITY,
            _ => ((i * 7) % 5) as f64 - 2.0 + 0.25 * (i % 3) as f64,
        })
        .collect()
}

/// ReLU's backward on the GPU is one kernel (`relu_backward_<dtype>`), with the CPU's values bit
/// for bit: gradients in a transposed and a stepped layout, outputs with exact zeros, and NaN
/// and infinite gradients where the output is zero (selected away: 0, PyTorch's
/// `threshold_backward`) and positive (kept).
#[test]
#[ignore = "needs a CUDA GPU"]
fn relu_backward_is_one_kernel_with_the_cpus_values() {
    let dev = gpu();
    let cpu = Device::cpu();
    let (rows, cols) = (37, 53);
    for dtype in FLOATS {
        let x = Tensor::from_vec(ladder(rows * cols, false), [rows, cols])
            .unwrap()
            .to_dtype(dtype)
            .unwrap();
        let specials = Tensor::from_vec(ladder(rows * cols * 2, true), [cols, 2 * rows])
            .unwrap()
            .to_dtype(dtype)
            .unwrap();
        let grads = [
            (
                "transposed",
                specials.narrow(1, 0, rows).unwrap().t().unwrap(),
            ),
            (
                "stepped",
                specials
                    .reshape([rows, 2 * cols])
                    .unwrap()
                    .slice(1, 1, 2 * cols, 2)
                    .unwrap(),
            ),
        ];
        for (layout, g) in grads {
            assert!(!g.is_contiguous(), "{layout}");
            let input_grad = |device: &Device| {
                let x = x.to_device(device).unwrap().requires_grad_();
                let y = x.relu().unwrap();
                let g = g.to_device(device).unwrap();
                let before = kernel_launches(device);
                y.backward_with(Some(g), Default::default()).unwrap();
                let launches = kernel_launches(device) - before;
                (x.grad().unwrap().to_device(&cpu).unwrap(), launches)
            };
            let (want, _) = input_grad(&cpu);
            poison(&dev, rows * cols * dtype.size_in_bytes());
            let (got, launches) = input_grad(&dev);
            same(&format!("relu backward {dtype} {layout}"), &want, &got);
            assert_eq!(
                launches, 1,
                "relu backward {dtype} {layout}: kernels launched"
            );
            let nans = want
                .to_vec_f64()
                .unwrap()
                .iter()
                .filter(|v| v.is_nan())
                .count();
            assert!(nans > 0, "the case must carry NaN gradients through");
        }
    }
}
