//! A convolution's epilogue on the GPU is the implicit GEMM's own kernel: `conv2d` with a bias is
//! one launch, in f32 with the bits of the convolution followed by the in-place add (the
//! accumulator is f32 either way), in f16 and bf16 rounded once, near the CPU's values; a bias
//! the kernel cannot read in place (a strided view) takes the in-place add, with the same values.
//! A ReLU after it (`conv2d_then`) joins the same kernel, with the bits of the convolution
//! followed by `relu` and the same gradients. The input gradient's kernel adds autograd's sum so
//! far (a residual block's shortcut gradient) in its store, with the bits of the separate add;
//! the weight-gradient kernel writes an f32 weight's gradient when the weight was cast down for
//! the product (autocast), with the bits of the cast after it.

#![cfg(feature = "cuda")]

mod common;

use common::{CastParams, bits, check, gpu, kernel_launches, poison, randn};
use sinew_tensor::{
    Activation, BackwardOptions, Conv2dConfig, DType, Device, Result, Tensor, Unfold2d,
};

/// An output gradient for `y` with a different value at every position: `cos` of the index.
fn probe(y: &Tensor) -> Tensor {
    Tensor::arange(0.0, y.elem_count() as f64, 1.0, y.dtype(), y.device())
        .unwrap()
        .reshape(y.shape().clone())
        .unwrap()
        .cos()
        .unwrap()
}

#[test]
#[ignore = "needs a CUDA GPU"]
fn bias_joins_the_convolutions_kernel() {
    let dev = gpu();
    let cfg = Conv2dConfig {
        padding: (1, 1),
        groups: 2,
        ..Conv2dConfig::default()
    };
    for dtype in [DType::F32, DType::F16, DType::BF16] {
        let x = randn(90, &[4, 6, 13, 11], dtype);
        let w = randn(91, &[10, 3, 3, 3], dtype).mul_scalar(0.3).unwrap();
        let b = randn(92, &[10], dtype);
        let want = x.conv2d(&w, Some(&b), cfg).unwrap();
        let [gx, gw, gb] = [&x, &w, &b].map(|t| t.to_device(&dev).unwrap());
        gx.conv2d(&gw, Some(&gb), cfg).unwrap(); // the first run loads the kernels
        let before = kernel_launches(&dev);
        let got = gx.conv2d(&gw, Some(&gb), cfg).unwrap();
        assert_eq!(kernel_launches(&dev) - before, 1, "{dtype}: kernels");
        let what = format!("conv2d with bias {dtype}");
        let cpu = got.to_device(&Device::cpu()).unwrap();
        check(
            &what,
            &want,
            &cpu,
            if dtype == DType::F32 { 1e-2 } else { 5e-2 },
        );
        let unfused = gx
            .conv2d(&gw, None, cfg)
            .unwrap()
            .add(&gb.reshape([1, 10, 1, 1]).unwrap())
            .unwrap();
        if dtype == DType::F32 {
            assert_eq!(bits(&got), bits(&unfused), "{what}: the add's bits");
        } else {
            check(
                &what,
                &unfused.to_device(&Device::cpu()).unwrap(),
                &cpu,
                2e-2,
            );
        }
        // Every other element of a longer vector: the in-place add after the convolution.
        let wide = randn(92, &[10, 2], dtype).to_device(&dev).unwrap();
        let strided = wide.narrow(1, 0, 1).unwrap().squeeze(1).unwrap();
        assert!(!strided.is_contiguous());
        let before = kernel_launches(&dev);
        let slow = gx.conv2d(&gw, Some(&strided), cfg).unwrap();
        assert_eq!(
            kernel_launches(&dev) - before,
            2,
            "{dtype}: strided bias kernels"
        );
        let dense = strided.contiguous().unwrap();
        let fused = gx.conv2d(&gw, Some(&dense), cfg).unwrap();
        if dtype == DType::F32 {
            assert_eq!(bits(&slow), bits(&fused), "{what}: strided bias");
        } else {
            let slow = slow.to_device(&Device::cpu()).unwrap();
            check(
                &what,
                &slow,
                &fused.to_device(&Device::cpu()).unwrap(),
                2e-2,
            );
        }
    }
}

#[test]
#[ignore = "needs a CUDA GPU"]
fn relu_joins_the_convolutions_kernel() {
    let dev = gpu();
    let cfg = Conv2dConfig {
        padding: (1, 1),
        stride: (2, 1),
        ..Conv2dConfig::default()
    };
    let relu = Some(Activation::Relu);
    for dtype in [DType::F32, DType::F16, DType::BF16, DType::F64] {
        let x = randn(93, &[3, 5, 12, 9], dtype).to_device(&dev).unwrap();
        let w = randn(94, &[8, 5, 3, 3], dtype).mul_scalar(0.3).unwrap();
        let w = w.to_device(&dev).unwrap();
        let b = randn(95, &[8], dtype).to_device(&dev).unwrap();
        for bias in [Some(&b), None] {
            let what = format!("conv2d + relu {dtype} bias={}", bias.is_some());
            x.conv2d_then(&w, bias, cfg, relu).unwrap(); // the first run loads the kernels
            let before = kernel_launches(&dev);
            let fused = x.conv2d_then(&w, bias, cfg, relu).unwrap();
            let launches = kernel_launches(&dev) - before;
            if dtype != DType::F64 {
                assert_eq!(launches, 1, "{what}: kernels");
            }
            let unfused = x.conv2d(&w, bias, cfg).unwrap().relu().unwrap();
            assert_eq!(bits(&fused), bits(&unfused), "{what}: values");
            let zeros = bits(&fused).iter().filter(|&&v| v == 0).count();
            assert!(
                zeros > 0 && zeros < fused.elem_count(),
                "{what}: {zeros} zeros"
            );
            // The gradients of both forms, for a probe with a different value everywhere.
            let grads = |fused: bool| {
                let (x, w) = (x.detach().requires_grad_(), w.detach().requires_grad_());
                let b = bias.map(|b| b.detach().requires_grad_());
                let y = if fused {
                    x.conv2d_then(&w, b.as_ref(), cfg, relu).unwrap()
                } else {
                    x.conv2d(&w, b.as_ref(), cfg).unwrap().relu().unwrap()
                };
                y.backward_with(Some(probe(&y)), BackwardOptions::default())
                    .unwrap();
                let mut out = vec![bits(&x.grad().unwrap()), bits(&w.grad().unwrap())];
                out.extend(b.map(|b| bits(&b.grad().unwrap())));
                out
            };
            assert_eq!(grads(true), grads(false), "{what}: gradients");
        }
    }
}

/// The input gradient of the `[n, o, oh, ow]` gradient `g` through the weight `w` by the
/// backend's kernel, plus `add` when given (an error where the backend refuses it).
fn input_grad(g: &Tensor, w: &Tensor, spec: &Unfold2d, add: Option<&Tensor>) -> Result<Tensor> {
    let backend = g.device().backend();
    let dims = [spec.n, spec.c, spec.h, spec.w];
    let dx = g.with_storage(|gs, gl| {
        w.with_storage(|ws, wl| match add {
            None => backend.conv2d_input_grad((gs, gl), (ws, wl), spec, 1, None),
            Some(a) => a.with_storage(|s, l| {
                backend.conv2d_input_grad((gs, gl), (ws, wl), spec, 1, Some((s, l)))
            }),
        })
    })?;
    let dx = dx.expect("an input-gradient kernel");
    Tensor::from_storage(dx, dims, g.device().clone())
}

/// With an addend the input-gradient kernel stores `add + gradient`, bit for bit the GPU's
/// separate add of its gradient, on poisoned memory, in the launches of the gradient alone: a
/// 3x3 stride-1 convolution (one phase), a 1x1 stride-2 shortcut (one launch that also writes
/// the sums at the positions no tap reaches), and a padded one whose gradient is zero-filled
/// first (then the add is a launch of its own). An addend of another shape is an error.
#[test]
#[ignore = "needs a CUDA GPU"]
fn an_addend_joins_the_input_gradients_kernel() {
    let dev = gpu();
    for dtype in [DType::F32, DType::F16, DType::BF16] {
        for (k, stride, pad, launches) in [(3, 1, 1, 1u64), (1, 2, 0, 1), (1, 2, 1, 3)] {
            let what = format!("{dtype} {k}x{k} stride {stride} padding {pad}");
            let x = randn(96, &[3, 16, 9, 9], dtype);
            let spec = x
                .unfold_spec("test", (k, k), (stride, stride), (pad, pad), (1, 1), 0.0)
                .unwrap();
            let (oh, ow) = spec.out_hw();
            let on_gpu = |t: Tensor| t.to_device(&dev).unwrap();
            let g = on_gpu(randn(97, &[3, 24, oh, ow], dtype));
            let w = on_gpu(randn(98, &[24, 16, k, k], dtype));
            let add = on_gpu(randn(99, &[3, 16, 9, 9], dtype));
            let want = add.add(&input_grad(&g, &w, &spec, None).unwrap()).unwrap();
            poison(&dev, x.elem_count() * dtype.size_in_bytes());
            let before = kernel_launches(&dev);
            let got = input_grad(&g, &w, &spec, Some(&add)).unwrap();
            assert_eq!(kernel_launches(&dev) - before, launches, "{what}: kernels");
            assert_eq!(bits(&got), bits(&want), "{what}: values");
            let narrow = add.narrow(3, 0, 8).unwrap().contiguous().unwrap();
            assert!(input_grad(&g, &w, &spec, Some(&narrow)).is_err(), "{what}");
        }
    }
}

/// A residual block's input on the GPU: the 3x3 convolution is recorded before the 1x1
/// shortcut, so its rule finds the shortcut's gradient pending and its input-gradient kernel
/// adds it; the input's gradient is bit for bit the GPU's sum of the two paths' gradients.
#[test]
#[ignore = "needs a CUDA GPU"]
fn a_residual_inputs_gradient_is_summed_in_the_kernel() {
    let dev = gpu();
    for (dtype, stride) in [(DType::F32, 1), (DType::F32, 2), (DType::F16, 2)] {
        let on_gpu = |t: Tensor| t.to_device(&dev).unwrap();
        let x = on_gpu(randn(100, &[2, 16, 9, 9], dtype));
        let w3 = on_gpu(randn(101, &[8, 16, 3, 3], dtype));
        let w1 = on_gpu(randn(102, &[8, 16, 1, 1], dtype));
        let main = Conv2dConfig {
            stride: (stride, stride),
            padding: (1, 1),
            ..Conv2dConfig::default()
        };
        let shortcut = Conv2dConfig {
            stride: (stride, stride),
            ..Conv2dConfig::default()
        };
        let grad = |paths: [bool; 2]| {
            let x = x.detach().requires_grad_();
            let ys: Vec<Tensor> = [(&w3, main), (&w1, shortcut)]
                .into_iter()
                .zip(paths)
                .filter(|p| p.1)
                .map(|((w, cfg), _)| x.conv2d(w, None, cfg).unwrap())
                .collect();
            let y = ys[1..].iter().fold(ys[0].clone(), |y, s| y.add(s).unwrap());
            y.backward_with(Some(probe(&y)), BackwardOptions::default())
                .unwrap();
            x.grad().unwrap()
        };
        let sum = grad([true, false]).add(&grad([false, true])).unwrap();
        assert_eq!(
            bits(&grad([true, true])),
            bits(&sum),
            "{dtype} stride {stride}"
        );
    }
}

/// Autocast's form of a convolution, `conv2d(x16, w32.to_dtype(f16), b32.to_dtype(f16))`:
/// backward launches the kernels of the convolution with f16 leaf parameters and no casts
/// after, and the f32 weight's and bias's gradients are bit for bit those leaves' gradients
/// converted to f32 (f16 and bf16). With a second use of the cast parameters the casts run
/// (the uses' sums are in f16).
#[test]
#[ignore = "needs a CUDA GPU"]
fn a_cast_weights_gradient_comes_from_the_kernel_in_f32() {
    let dev = gpu();
    let cfg = Conv2dConfig {
        padding: (1, 1),
        ..Conv2dConfig::default()
    };
    for dtype in [DType::F16, DType::BF16] {
        let x = randn(103, &[2, 8, 9, 9], dtype).to_device(&dev).unwrap();
        let w32 = randn(104, &[16, 8, 3, 3], DType::F32)
            .to_device(&dev)
            .unwrap();
        let b32 = randn(105, &[16], DType::F32).to_device(&dev).unwrap();
        // The weight's and bias's gradients and backward's launches, from leaves in `dtype` or
        // cast f32 leaves, used `uses` times.
        let run = |cast: bool, uses: usize| {
            let params = CastParams::new([&w32, &b32], dtype, cast);
            let used = &params.used;
            let conv = || x.conv2d(&used[0], Some(&used[1]), cfg).unwrap();
            let mut y = conv();
            if uses == 2 {
                y = y.add(&conv()).unwrap();
            }
            let probe = probe(&y);
            let before = kernel_launches(&dev);
            y.backward_with(Some(probe), BackwardOptions::default())
                .unwrap();
            let launches = kernel_launches(&dev) - before;
            (params.grads(), launches)
        };
        run(false, 2); // loads the kernels and makes the weight gradient's tickets
        for uses in [1, 2] {
            let what = format!("{dtype} with {uses} uses");
            let (leaf_grads, leaf_launches) = run(false, uses);
            let (grads, launches) = run(true, uses);
            let casts = 2 * (uses - 1); // the casts of the uses' f16 sums
            assert_eq!(launches, leaf_launches + casts as u64, "{what}: kernels");
            for (grad, leaf_grad) in grads.iter().zip(&leaf_grads) {
                assert_eq!(grad.dtype(), DType::F32, "{what}");
                let want = leaf_grad.to_dtype(DType::F32).unwrap();
                assert_eq!(bits(grad), bits(&want), "{what}: values");
            }
        }
    }
}
