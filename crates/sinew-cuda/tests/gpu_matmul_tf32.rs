//! f32 matrix products in TF32 (`CudaBackend::set_matmul_tf32`, off by default as in PyTorch's
//! `torch.backends.cuda.matmul.allow_tf32`): each must be the exact product of the operands
//! rounded to TF32, summed in f32, at sizes that break the 64x128x16 tiles, in every orientation,
//! batched with broadcast and strided operands, and through the bias + ReLU epilogue.

#![cfg(feature = "cuda")]

mod common;

use common::{check, gpu, max_error, orientations, oriented, poison, randn, tf32_rounded};
use sinew_cuda::CudaBackend;
use sinew_tensor::{Activation, DType, Device, MatmulOptions, Result, Tensor};

/// TF32 matrix products on a device while it lives; dropping it restores the default (off), also
/// when a failed assertion unwinds.
struct Tf32Matmul(Device);

impl Tf32Matmul {
    fn new(dev: &Device) -> Self {
        CudaBackend::of(dev).unwrap().set_matmul_tf32(true);
        Tf32Matmul(dev.clone())
    }
}

impl Drop for Tf32Matmul {
    fn drop(&mut self) {
        if let Some(backend) = CudaBackend::of(&self.0) {
            backend.set_matmul_tf32(false);
        }
    }
}

/// Errors of `f` on the GPU: `(against the exact result with the two multiplied operands (the
/// first two) rounded to TF32, against the exact result of the operands themselves)`; the first
/// must be within f32 accumulation (1e-4, as for the full-f32 kernel: k runs to 784 here).
/// Further operands (a bias) stay f32.
fn tf32_errors(
    dev: &Device,
    what: &str,
    operands: &[&Tensor],
    f: impl Fn(&[Tensor]) -> Result<Tensor>,
) -> (f64, f64) {
    let exact_of = |round: bool| {
        let wide: Vec<Tensor> = operands
            .iter()
            .enumerate()
            .map(|(i, t)| {
                let t = if round && i < 2 {
                    tf32_rounded(t)
                } else {
                    (*t).clone()
                };
                t.to_dtype(DType::F64).unwrap()
            })
            .collect();
        f(&wide).unwrap().to_dtype(DType::F32).unwrap()
    };
    let on_gpu: Vec<Tensor> = operands.iter().map(|t| t.to_device(dev).unwrap()).collect();
    let want = exact_of(true);
    poison(dev, want.elem_count() * 4);
    let got = f(&on_gpu).unwrap().to_device(&Device::cpu()).unwrap();
    (
        check(what, &want, &got, 1e-4),
        max_error(&exact_of(false), &got),
    )
}

#[test]
#[ignore = "needs a CUDA GPU"]
fn tf32_matmul_multiplies_rounded_operands_when_allowed() {
    let dev = gpu();
    assert!(
        !CudaBackend::of(&dev).unwrap().matmul_tf32(),
        "on by default"
    );
    let _tf32 = Tf32Matmul::new(&dev);
    let (mut worst, mut rounding) = (0.0f64, 0.0f64);
    let mut note = |(err, round): (f64, f64)| {
        worst = worst.max(err);
        rounding = rounding.max(round);
    };
    // (m, k, n): single elements, edges in every axis and k-stage counts, exact tiles.
    let sizes = [
        (1, 1, 1),
        (5, 3, 9),
        (17, 257, 33),
        (130, 70, 301),
        (64, 784, 128),
        (128, 128, 128),
        (200, 16, 264),
    ];
    for (m, k, n) in sizes {
        for (name, [lhs, rhs], transposed) in orientations(81, (m, k, n), DType::F32) {
            let what = format!("tf32 matmul {m}x{k}x{n} {name}");
            note(tf32_errors(&dev, &what, &[&lhs, &rhs], |t| {
                oriented(t, transposed)
            }));
        }
    }
    // Batched, with a broadcast batch dim and a strided (stepped) operand.
    let a = randn(85, &[2, 1, 37, 45], DType::F32);
    let b = randn(86, &[3, 45, 90], DType::F32);
    note(tf32_errors(&dev, "batched tf32 matmul", &[&a, &b], |t| {
        t[0].matmul(&t[1].slice(2, 0, 90, 2)?)
    }));
    // A linear layer's fused bias + ReLU, written on the f32 accumulator.
    let x = randn(90, &[70, 33], DType::F32);
    let w = randn(91, &[130, 33], DType::F32);
    let bias = randn(92, &[130], DType::F32);
    note(tf32_errors(
        &dev,
        "tf32 linear + relu",
        &[&x, &w, &bias],
        |t| {
            let opts = MatmulOptions::new()
                .with_bias(&t[2])
                .with_activation(Activation::Relu);
            t[0].matmul_with(&t[1].t()?, opts)
        },
    ));
    println!(
        "TF32 matmul: max error {worst:e} against the rounded operands' exact product, \
         {rounding:e} against the unrounded ones'"
    );
    // TF32's rounding (up to 2^-11 of each operand) summed over k up to 784 products: about
    // 1e-2 on these random operands; 7-bit (bf16-like) rounding would be 8 times that.
    assert!(
        (1e-3..6e-2).contains(&rounding),
        "TF32 products differ from the exact f32 ones by {rounding:e}: not TF32's rounding"
    );
}
