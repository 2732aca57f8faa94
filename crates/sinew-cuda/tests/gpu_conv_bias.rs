//! A convolution's bias on the GPU is added by the implicit GEMM's own kernel: `conv2d` with a
//! bias is one launch, in f32 with the bits of the convolution followed by the in-place add (the
//! accumulator is f32 either way), in f16 and bf16 rounded once, near the CPU's values; a bias
//! the kernel cannot read in place (a strided view) takes the in-place add, with the same values.

#![cfg(feature = "cuda")]

mod common;

use common::{bits, check, gpu, kernel_launches, randn};
use sinew_tensor::{Conv2dConfig, DType, Device};

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
