//! Layer norm with its elementwise affine, forward and backward, over `[512, 768]` f32 (a
//! BERT-base batch of tokens): the fused form `layer_norm` takes for f32/f64 (per-row
//! statistics and normalisation through the per-channel kernels, a recorded backward) next
//! to the op-by-op form it replaced (mean, variance, subtract, scale, affine, each recorded).
//!
//! `cargo bench -p sinew-benches --bench layer_norm -- --warm-up-time 1 --measurement-time 3`

use std::hint::black_box;

use criterion::{Criterion, criterion_main};
use sinew_nn::layers::group_norm::layer_norm;
use sinew_tensor::{DType, Device, Generator, Result, Tensor};

/// The op-by-op layer norm over the last dim (the form before the fused one).
fn op_by_op(x: &Tensor, w: &Tensor, b: &Tensor) -> Result<Tensor> {
    let mean = x.mean(&[-1], true)?;
    let var = x.var(&[-1], 0, true)?;
    x.sub(&mean)?
        .mul(&var.add_scalar(1e-5)?.rsqrt()?)?
        .mul(w)?
        .add(b)
}

/// Forward, then backward of the sum of the output times a fixed probe; gradients dropped.
fn step(
    params: &[&Tensor; 3],
    probe: &Tensor,
    f: impl Fn(&Tensor, &Tensor, &Tensor) -> Result<Tensor>,
) -> Result<()> {
    let [x, w, b] = *params;
    f(x, w, b)?.mul(probe)?.sum_all()?.backward()?;
    for t in params {
        t.zero_grad();
    }
    Ok(())
}

fn forward_backward(c: &mut Criterion) {
    let mut g = Generator::new(1);
    let cpu = Device::cpu();
    let mut randn = |shape: &[usize]| g.randn(shape, DType::F32, &cpu).expect("randn");
    let (x, w, b, probe) = (
        randn(&[512, 768]).requires_grad_(),
        randn(&[768]).requires_grad_(),
        randn(&[768]).requires_grad_(),
        randn(&[512, 768]),
    );
    let params = [&x, &w, &b];
    let mut group = c.benchmark_group("layer_norm_512x768");
    group.bench_function("fused", |bench| {
        bench.iter(|| {
            step(black_box(&params), &probe, |x, w, b| {
                layer_norm(x, &[768], Some(w), Some(b), 1e-5)
            })
            .expect("step")
        })
    });
    group.bench_function("op_by_op", |bench| {
        bench.iter(|| step(black_box(&params), &probe, op_by_op).expect("step"))
    });
    group.finish();
}

/// The benchmark group, in a private module so the macro's undocumented function stays internal.
mod group {
    use super::forward_backward;
    criterion::criterion_group!(benches, forward_backward);
}

criterion_main!(group::benches);
