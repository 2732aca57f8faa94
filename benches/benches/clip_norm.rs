//! Gradient clipping's joint norm over the 784-512-512-10 MLP's gradients (535,818 f32
//! values): `Tensor::pow_sum_many` (the CPU's fold, where the gradients lie, no copies) next
//! to the tensor ops `clip_grad_norm_` ran per gradient before it (an f64 copy, then `norm` and
//! its square: `abs`, `square`, a sum, a zero test, `sqrt` and `powf`, each a new tensor).
//!
//! `cargo bench -p sinew-benches --bench clip_norm -- --warm-up-time 1 --measurement-time 3`

use std::hint::black_box;

use criterion::{Criterion, criterion_main};
use sinew_tensor::{DType, Device, Generator, Result, Tensor};

/// Gradients of the MLP's shapes.
fn gradients() -> Vec<Tensor> {
    let mut g = Generator::new(0);
    let shapes: [&[usize]; 6] = [&[512, 784], &[512], &[512, 512], &[512], &[10, 512], &[10]];
    shapes
        .iter()
        .map(|&s| {
            g.uniform(s, -1.0, 1.0, DType::F32, &Device::cpu())
                .expect("random tensor")
        })
        .collect()
}

/// `Σ g²` with one tensor-op chain per gradient (the former `clip_grad_norm_`).
fn tensor_ops(grads: &[Tensor]) -> Result<f64> {
    let mut total = Tensor::zeros((), DType::F64, &Device::cpu())?;
    for g in grads {
        let part = g.to_dtype(DType::F64)?.norm(2.0, &[], false)?.powf(2.0)?;
        total = total.add(&part)?;
    }
    total.item()
}

fn fold(grads: &[&Tensor]) -> Result<f64> {
    Tensor::pow_sum_many(grads, 2.0)?.item()
}

fn clip_norm(c: &mut Criterion) {
    let mut group = c.benchmark_group("clip_norm_mlp");
    let grads = gradients();
    let refs: Vec<&Tensor> = grads.iter().collect();
    let (a, b) = (fold(&refs).expect("fold"), tensor_ops(&grads).expect("ops"));
    assert!((a - b).abs() <= 1e-12 * b, "{a} vs {b}");
    group.bench_function("tensor_ops", |bench| {
        bench.iter(|| tensor_ops(black_box(&grads)).expect("norm"))
    });
    group.bench_function("pow_sum_many", |bench| {
        bench.iter(|| fold(black_box(&refs)).expect("norm"))
    });
    group.finish();
}

/// The benchmark group, in a private module so the macro's undocumented function stays internal.
mod group {
    use super::clip_norm;
    criterion::criterion_group!(benches, clip_norm);
}

criterion_main!(group::benches);
