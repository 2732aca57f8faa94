//! A convolution's epilogue on the GPU is the implicit GEMM's own kernel: `conv2d` with a bias is
//! one launch, in f32 with the bits of the convolution followed by the in-place add (the
//! accumulator is f32 either way), in f16 and bf16 rounded once, near the CPU's values; a bias
//! the kernel cannot read in place (a strided view) takes the in-place add, with the same values.
//! A ReLU after it (`conv2d_then`) joins the same kernel, with the bits of the convolution
//! followed by `relu` and the same gradients.

#![cfg(feature = "cuda")]

mod common;

use common::{bits, check, gpu, kernel_launches, randn};
use sinew_tensor::{Activation, BackwardOptions, Conv2dConfig, DType, Device, Tensor};

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
                let probe = Tensor::arange(0.0, y.elem_count() as f64, 1.0, dtype, &dev)
                    .unwrap()
                    .reshape(y.shape().clone())
                    .unwrap()
                    .cos()
                    .unwrap();
                y.backward_with(Some(probe), BackwardOptions::default())
                    .unwrap();
                let mut out = vec![bits(&x.grad().unwrap()), bits(&w.grad().unwrap())];
                out.extend(b.map(|b| bits(&b.grad().unwrap())));
                out
            };
            assert_eq!(grads(true), grads(false), "{what}: gradients");
        }
    }
}
