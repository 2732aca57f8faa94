//! Batch norm's per-channel kernels on the GPU against the CPU backend: sums (one and two
//! operands, strided views) and the per-channel affine map, f32 and f64.

#![cfg(feature = "cuda")]

mod common;

use common::{check, gpu, poison, randn};
use sinew_tensor::{DType, Device, Tensor};

#[test]
#[ignore = "needs a CUDA GPU"]
fn channel_sums_and_lincomb_match_the_cpu() {
    let dev = gpu();
    let cpu = Device::cpu();
    for dtype in [DType::F32, DType::F64] {
        // ResNet-like and awkward shapes; the permuted view is not contiguous.
        for dims in [
            vec![128usize, 64, 8, 8],
            vec![3, 5, 7, 11],
            vec![17, 3],
            vec![2, 1, 1, 1],
        ] {
            let a = randn(160, &dims, dtype)
                .mul_scalar(2.0)
                .unwrap()
                .add_scalar(0.5)
                .unwrap();
            let b = randn(161, &dims, dtype);
            let c = dims[1];
            let (ga, gb) = (a.to_device(&dev).unwrap(), b.to_device(&dev).unwrap());
            poison(&dev, 2 * c * 8);
            for (name, cpu_out, gpu_out) in [
                (
                    "sums",
                    a.channel_sums(None).unwrap(),
                    ga.channel_sums(None).unwrap(),
                ),
                (
                    "sums with b",
                    a.channel_sums(Some(&b)).unwrap(),
                    ga.channel_sums(Some(&gb)).unwrap(),
                ),
            ] {
                let err = check(
                    &format!("channel {name} {dtype} {dims:?}"),
                    &cpu_out,
                    &gpu_out.to_device(&cpu).unwrap(),
                    1e-9,
                );
                println!("channel {name} {dtype} {dims:?}: max error {err:e}");
            }
            let coef = randn(162, &[3, c], DType::F64);
            let gcoef = coef.to_device(&dev).unwrap();
            poison(&dev, a.elem_count() * dtype.size_in_bytes());
            let want = a.channel_lincomb(Some(&b), &coef).unwrap();
            let got = ga.channel_lincomb(Some(&gb), &gcoef).unwrap();
            let err = check("lincomb", &want, &got.to_device(&cpu).unwrap(), 0.0);
            println!("channel lincomb {dtype} {dims:?}: max error {err:e}");
            let want = a.channel_lincomb(None, &coef).unwrap();
            let got = ga.channel_lincomb(None, &gcoef).unwrap();
            check(
                "lincomb without b",
                &want,
                &got.to_device(&cpu).unwrap(),
                0.0,
            );
        }
        // A strided (channels-last) view.
        let a = randn(163, &[4, 6, 5, 3], dtype)
            .permute(&[0, 3, 1, 2])
            .unwrap();
        let ga = a.to_device(&dev).unwrap();
        let want = a.channel_sums(None).unwrap();
        let got = ga.channel_sums(None).unwrap().to_device(&cpu).unwrap();
        check("strided sums", &want, &got, 1e-9);
    }
    let half = Tensor::zeros([2, 3], DType::F16, &dev).unwrap();
    assert!(
        half.channel_sums(None).is_err(),
        "f16 has no per-channel kernel"
    );
}
