//! GPU parity of reductions, arg-reductions and softmax against the CPU backend.

#![cfg(feature = "cuda")]

mod common;

use common::{both, check, gpu, kernel_launches, poison, randn, tol};
use sinew_tensor::op_table::{ARG_REDUCE_OPS, REDUCE_OPS};
use sinew_tensor::{DType, Tensor};

const FLOATS: [DType; 4] = [DType::F32, DType::F16, DType::BF16, DType::F64];

/// Dim lists over a rank-3 tensor: single dims, pairs, all (empty = all).
const DIM_SETS: [&[isize]; 7] = [&[0], &[1], &[2], &[0, 2], &[1, 2], &[0, 1], &[]];

#[test]
#[ignore = "needs a CUDA GPU"]
fn reductions_over_any_dims_match_the_cpu() {
    let dev = gpu();
    for dtype in FLOATS {
        let mut worst = 0.0f64;
        let x = randn(51, &[7, 33, 129], dtype);
        let xt = randn(52, &[129, 7, 33], dtype).permute(&[1, 2, 0]).unwrap();
        for op in REDUCE_OPS {
            // Products of many normals under- or overflow; keep them near 1.
            let prep = |t: &Tensor| {
                if op.name() == "prod" {
                    t.mul_scalar(0.05).unwrap().add_scalar(1.0).unwrap()
                } else {
                    t.clone()
                }
            };
            for dims in DIM_SETS {
                for (name, input) in [("contiguous", prep(&x)), ("permuted", prep(&xt))] {
                    let (c, g) = both(&dev, &[&input], |t| t[0].reduce(op, dims, false));
                    let what = format!("{} {dtype} {dims:?} {name}", op.name());
                    worst = worst.max(check(&what, &c, &g, tol(dtype)));
                }
            }
        }
        let (c, g) = both(&dev, &[&x], |t| t[0].mean(&[1, 2], true));
        worst = worst.max(check(&format!("mean {dtype}"), &c, &g, tol(dtype)));
        println!("reduce {dtype}: max error {worst:e}");
    }
    // Long rows take the two-pass path: a sum over 300k elements and one over all 1.2M (the
    // partial sums in f32 for f16/bf16, so the result is rounded once).
    for dtype in [DType::F32, DType::F16, DType::BF16] {
        let long = randn(53, &[4, 300_001], dtype);
        for dims in [&[1isize][..], &[]] {
            let (c, g) = both(&dev, &[&long], |t| t[0].sum(dims, false));
            let err = check(&format!("long sum {dtype} {dims:?}"), &c, &g, tol(dtype));
            let (c, g) = both(&dev, &[&long], |t| t[0].max(dims, false));
            check(&format!("long max {dtype} {dims:?}"), &c, &g, 0.0);
            println!("long sum {dtype} {dims:?}: max error {err:e}");
        }
    }
    let ints = randn(54, &[9, 1000], DType::F64)
        .mul_scalar(1e6)
        .unwrap()
        .to_dtype(DType::I64)
        .unwrap();
    for op in REDUCE_OPS {
        let (c, g) = both(&dev, &[&ints], |t| t[0].reduce(op, &[1], true));
        assert_eq!(
            c.to_vec::<i64>().unwrap(),
            g.to_vec::<i64>().unwrap(),
            "{} i64",
            op.name()
        );
    }
    let with_nan = Tensor::from_vec(vec![1.0f32, f32::NAN, 3.0, 2.0, 5.0, -1.0], [2, 3]).unwrap();
    let (c, g) = both(&dev, &[&with_nan], |t| t[0].max(&[1], false));
    check("max with NaN", &c, &g, 0.0);
}

/// Reductions over leading dims of a contiguous view (a bias gradient's sum over the batch) read
/// it in place: one launch, or two when the axis is long and the outputs few (the parts summed
/// by a second launch), never a transposing copy first; values as the CPU's.
#[test]
#[ignore = "needs a CUDA GPU"]
fn leading_dim_reductions_read_in_place() {
    let dev = gpu();
    let launched = |f: &dyn Fn() -> Tensor| {
        let before = kernel_launches(&dev);
        let out = f();
        (out, kernel_launches(&dev) - before)
    };
    for dtype in FLOATS {
        // (shape, dims, launches): a linear layer's bias gradient, a sum over two leading dims
        // of a rank-4 view, and a long batch with few outputs (two passes).
        let cases: [(&[usize], &[isize], u64); 3] = [
            (&[64, 512], &[0], 1),
            (&[5, 6, 7, 9], &[1, 2], 1),
            (&[300_001, 3], &[0], 2),
        ];
        for (shape, dims, launches) in cases {
            let x = randn(61, shape, dtype);
            for op in REDUCE_OPS.into_iter().filter(|op| op.name() != "prod") {
                let want = x.reduce(op, dims, true).unwrap();
                let on_gpu = x.to_device(&dev).unwrap();
                poison(&dev, want.elem_count() * dtype.size_in_bytes());
                let (got, n) = launched(&|| on_gpu.reduce(op, dims, true).unwrap());
                let what = format!("{} {dtype} {shape:?} {dims:?}", op.name());
                let got = got.to_device(&sinew_tensor::Device::cpu()).unwrap();
                check(
                    &what,
                    &want,
                    &got,
                    if op.name() == "sum" { tol(dtype) } else { 0.0 },
                );
                assert_eq!(n, launches, "{what}: kernels launched");
            }
        }
    }
    // i64 sums wrap like the CPU's; a NaN in a column is that column's max.
    let ints = randn(62, &[1000, 9], DType::F64)
        .mul_scalar(1e18)
        .unwrap()
        .to_dtype(DType::I64)
        .unwrap();
    let (c, g) = both(&dev, &[&ints], |t| t[0].sum(&[0], false));
    assert_eq!(
        c.to_vec::<i64>().unwrap(),
        g.to_vec::<i64>().unwrap(),
        "i64 sum"
    );
    let with_nan = Tensor::from_vec(vec![1.0f32, f32::NAN, 3.0, 2.0, 5.0, -1.0], [3, 2]).unwrap();
    let (c, g) = both(&dev, &[&with_nan], |t| t[0].max(&[0], false));
    assert!(c.to_vec::<f32>().unwrap()[1].is_nan());
    check("max with NaN over dim 0", &c, &g, 0.0);
}

/// A reduction over a leading and a trailing run of dims with dims kept between (a
/// convolution's bias gradient: `[n, c, h, w]` over `(0, 2, 3)`) reads the view in place, in two
/// launches (the trailing run, then the leading one; three where the leading run is long for
/// few outputs and folds in two passes): nothing near the input's size is allocated, as the
/// transposing copy would be; values as the CPU's (i64 sums exactly).
#[test]
#[ignore = "needs a CUDA GPU"]
fn bias_gradient_sums_read_in_place() {
    let dev = gpu();
    let cuda = sinew_cuda::CudaBackend::of(&dev).unwrap();
    let shape = [64usize, 6, 24, 24];
    for dtype in [DType::F32, DType::F64, DType::I64] {
        let x = randn(63, &shape, DType::F64).mul_scalar(100.0).unwrap();
        let x = x.to_dtype(dtype).unwrap();
        let on_gpu = x.to_device(&dev).unwrap();
        for (dims, kernels) in [(&[0isize, 2, 3][..], 2), (&[0, 1, 3][..], 3)] {
            for op in REDUCE_OPS.into_iter().filter(|op| op.name() != "prod") {
                let want = x.reduce(op, dims, false).unwrap();
                let input_bytes = x.elem_count() * dtype.size_in_bytes();
                cuda.reset_peak_memory_stats();
                let before = cuda.memory_stats().allocated;
                let launches = kernel_launches(&dev);
                let got = on_gpu.reduce(op, dims, false).unwrap();
                let what = format!("{} {dtype} {dims:?}", op.name());
                assert_eq!(kernel_launches(&dev) - launches, kernels, "{what}: kernels");
                let extra = cuda.memory_stats().peak_allocated - before;
                assert!(
                    extra < input_bytes / 8,
                    "{what}: {extra} bytes for {input_bytes}"
                );
                let got = got.to_device(&sinew_tensor::Device::cpu()).unwrap();
                if dtype == DType::I64 || op.name() != "sum" {
                    assert_eq!(
                        got.to_vec_f64().unwrap(),
                        want.to_vec_f64().unwrap(),
                        "{what}"
                    );
                } else {
                    check(&what, &want, &got, tol(dtype));
                }
            }
        }
    }
}

/// `Backend::reduce_widened` writes an f16/bf16 reduction as f32 holding the values `reduce`
/// gives in the dtype, bit for bit, in as many launches (the cast folded in), through every path:
/// rows in one and two passes, the middle axis in one and two, and a transposing copy first (a
/// convolution's bias gradient); f32 input is left to the caller.
#[test]
#[ignore = "needs a CUDA GPU"]
fn widened_reductions_hold_the_narrow_results() {
    use sinew_tensor::{Device, ReduceOp};
    let dev = gpu();
    let cases: [(&[usize], &[usize]); 5] = [
        (&[7, 33, 129], &[2]),
        (&[2, 70_000], &[1]),
        (&[64, 512], &[0]),
        (&[300_001, 3], &[0]),
        (&[4, 6, 5, 5], &[0, 2, 3]),
    ];
    for dtype in [DType::F16, DType::BF16, DType::F32] {
        for (shape, dims) in cases {
            let x = randn(64, shape, dtype).to_device(&dev).unwrap();
            for op in [ReduceOp::Sum, ReduceOp::Max] {
                let what = format!("{} {dtype} {shape:?} {dims:?}", op.name());
                let before = kernel_launches(&dev);
                let signed: Vec<isize> = dims.iter().map(|&d| d as isize).collect();
                let narrow = x.reduce(op, &signed, true).unwrap();
                let narrow_launches = kernel_launches(&dev) - before;
                poison(&dev, narrow.elem_count() * 4);
                let before = kernel_launches(&dev);
                let wide = x
                    .with_storage(|s, l| dev.backend().reduce_widened(op, s, l, dims))
                    .unwrap();
                let launches = kernel_launches(&dev) - before;
                let Some(wide) = wide else {
                    assert_eq!(dtype, DType::F32, "{what}: no kernel");
                    continue;
                };
                assert_eq!(wide.dtype(), DType::F32, "{what}");
                assert_eq!(launches, narrow_launches, "{what}: kernels");
                let wide = Tensor::from_storage(wide, narrow.shape().clone(), dev.clone()).unwrap();
                let host = |t: &Tensor| t.to_device(&Device::cpu()).unwrap();
                let want = host(&narrow.to_dtype(DType::F32).unwrap());
                assert_eq!(common::bits(&host(&wide)), common::bits(&want), "{what}");
            }
        }
    }
}

/// `mean` is the sum's launches with the division folded into the last one (ResNet's global
/// pooling: one launch, not two), the CPU's values through every path: rows in one and two
/// passes, the middle axis in one and two, a leading and a trailing run, a transposing copy
/// first; an empty reduction is NaN, as the CPU's. The division comes before the rounding to
/// the dtype, as in PyTorch: f16 values whose sum overflows f16 have a finite mean.
#[test]
#[ignore = "needs a CUDA GPU"]
fn means_fold_the_division_into_the_sum() {
    let dev = gpu();
    let cases: [(&[usize], &[isize]); 7] = [
        (&[8, 64, 7, 7], &[2, 3]),
        (&[4, 300_001], &[1]),
        (&[64, 512], &[0]),
        (&[300_001, 3], &[0]),
        (&[16, 6, 12, 12], &[0, 2, 3]),
        (&[7, 33, 129], &[0, 2]),
        (&[5, 0, 3], &[1]),
    ];
    for dtype in FLOATS {
        for (shape, dims) in cases {
            let what = format!("mean {dtype} {shape:?} {dims:?}");
            let x = randn(65, shape, dtype);
            let on_gpu = x.to_device(&dev).unwrap();
            let count: usize = dims.iter().map(|&d| shape[d as usize]).product();
            let before = kernel_launches(&dev);
            let sum = on_gpu.sum(dims, false).unwrap();
            let sum_launches = kernel_launches(&dev) - before;
            poison(&dev, sum.elem_count() * dtype.size_in_bytes());
            let before = kernel_launches(&dev);
            let mean = on_gpu.mean(dims, false).unwrap();
            assert_eq!(kernel_launches(&dev) - before, sum_launches, "{what}");
            let cpu = x.mean(dims, false).unwrap();
            let gpu_mean = mean.to_device(&sinew_tensor::Device::cpu()).unwrap();
            check(&what, &cpu, &gpu_mean, tol(dtype));
            if count == 0 {
                let values = gpu_mean.to_vec_f64().unwrap();
                assert!(values.iter().all(|v| v.is_nan()), "{what}: {values:?}");
            }
        }
    }
    // torch.full((4, 600), 60000., dtype=torch.half).mean(1) == 60000 (the sum is 3.6e7).
    let cases: [(&[usize], &[isize]); 2] = [(&[4, 600], &[1]), (&[3, 300_001], &[1])];
    for (shape, dims) in cases {
        let cpu_device = sinew_tensor::Device::cpu();
        let big = Tensor::full(shape, 60000.0, DType::F16, &cpu_device).unwrap();
        let mean = big.to_device(&dev).unwrap().mean(dims, false).unwrap();
        let values = mean.to_device(&cpu_device).unwrap().to_vec_f64().unwrap();
        assert_eq!(values, vec![60000.0; shape[0]], "f16 mean {shape:?}");
        let cpu = big.mean(dims, false).unwrap().to_vec_f64().unwrap();
        assert_eq!(cpu, values, "f16 mean {shape:?} on the CPU");
    }
    let ints = Tensor::from_vec(vec![1i64, 2, 3], [3]).unwrap();
    let on_gpu = ints.to_device(&dev).unwrap();
    let err = on_gpu
        .with_storage(|s, l| dev.backend().mean(s, l, &[0]))
        .unwrap_err();
    assert!(err.to_string().contains("mean"), "{err}");
}

#[test]
#[ignore = "needs a CUDA GPU"]
fn argmax_and_argmin_match_the_cpu() {
    let dev = gpu();
    for dtype in [
        DType::F32,
        DType::F16,
        DType::BF16,
        DType::F64,
        DType::I64,
        DType::U8,
    ] {
        // Coarse values give ties; the first index must win.
        let x = randn(61, &[17, 600, 5], DType::F64)
            .mul_scalar(3.0)
            .unwrap()
            .abs()
            .unwrap()
            .round_for_test()
            .to_dtype(dtype)
            .unwrap();
        for op in ARG_REDUCE_OPS {
            for dim in [0isize, 1, 2] {
                let (c, g) = both(&dev, &[&x], |t| t[0].arg_reduce(op, dim, false));
                assert_eq!(
                    c.to_vec::<i64>().unwrap(),
                    g.to_vec::<i64>().unwrap(),
                    "{} {dtype} dim {dim}",
                    op.name()
                );
            }
        }
    }
    let nan = Tensor::from_vec(vec![1.0f32, f32::NAN, 7.0, f32::NAN], [1, 4]).unwrap();
    let (c, g) = both(&dev, &[&nan], |t| t[0].argmax(1, false));
    assert_eq!(c.to_vec::<i64>().unwrap(), g.to_vec::<i64>().unwrap());
}

/// Rounds to whole numbers through i64 (the tensor API has no round op).
trait RoundForTest {
    fn round_for_test(&self) -> Tensor;
}

impl RoundForTest for Tensor {
    fn round_for_test(&self) -> Tensor {
        self.to_dtype(DType::I64)
            .unwrap()
            .to_dtype(DType::F64)
            .unwrap()
    }
}

#[test]
#[ignore = "needs a CUDA GPU"]
fn softmax_and_log_softmax_match_the_cpu() {
    let dev = gpu();
    for dtype in FLOATS {
        let mut worst = 0.0f64;
        let x = randn(71, &[7, 33, 129], dtype).mul_scalar(4.0).unwrap();
        let long = randn(72, &[3, 5001], dtype);
        for (input, dims) in [(&x, &[0isize, 1, 2][..]), (&long, &[1, 0][..])] {
            for &dim in dims {
                let (c, g) = both(&dev, &[input], |t| t[0].softmax(dim));
                worst = worst.max(check(
                    &format!("softmax {dtype} dim {dim}"),
                    &c,
                    &g,
                    tol(dtype),
                ));
                let (c, g) = both(&dev, &[input], |t| t[0].log_softmax(dim));
                worst = worst.max(check(
                    &format!("log_softmax {dtype} dim {dim}"),
                    &c,
                    &g,
                    tol(dtype),
                ));
            }
        }
        let strided = x.permute(&[2, 0, 1]).unwrap();
        let (c, g) = both(&dev, &[&strided], |t| t[0].log_softmax(-1));
        worst = worst.max(check(
            &format!("log_softmax {dtype} strided"),
            &c,
            &g,
            tol(dtype),
        ));
        println!("softmax/log_softmax {dtype}: max error {worst:e}");
    }
    let inf = Tensor::from_vec(
        vec![f32::NEG_INFINITY, f32::NEG_INFINITY, 1000.0, 1001.0],
        [2, 2],
    )
    .unwrap();
    let (c, g) = both(&dev, &[&inf], |t| t[0].softmax(1));
    check("softmax -inf row", &c, &g, 1e-6);
}
