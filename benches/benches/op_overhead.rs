//! The fixed cost of one op (issue 13: small work must stay cheap): `add` and `relu` on
//! 1-element f32 tensors through plain `Tensor` (no gradient), the same through autograd
//! (inputs that require a gradient, so each call also records a graph node), and a backward
//! pass of a three-op graph (`mul`, `relu`, `sum`) with its two leaf gradients.
//!
//! `cargo bench -p sinew-benches --bench op_overhead -- --warm-up-time 1 --measurement-time 3`
//! (`cargo xtask bench --cpu --only op1` prints the same costs as ns/op lines.)

use std::hint::black_box;

use criterion::{Criterion, criterion_main};
use sinew_tensor::Tensor;

fn one(value: f32) -> Tensor {
    Tensor::from_vec(vec![value], [1]).expect("1-element tensor")
}

fn overhead(c: &mut Criterion) {
    let mut group = c.benchmark_group("op1");
    let (a, b) = (one(0.5), one(-0.25));
    group.bench_function("add_tensor", |bn| {
        bn.iter(|| black_box(&a).add(black_box(&b)).expect("add"))
    });
    group.bench_function("relu_tensor", |bn| {
        bn.iter(|| black_box(&a).relu().expect("relu"))
    });
    let (ga, gb) = (a.clone().requires_grad_(), b.clone().requires_grad_());
    group.bench_function("add_autograd", |bn| {
        bn.iter(|| black_box(&ga).add(black_box(&gb)).expect("add"))
    });
    group.bench_function("relu_autograd", |bn| {
        bn.iter(|| black_box(&ga).relu().expect("relu"))
    });
    group.bench_function("backward", |bn| {
        bn.iter(|| -> sinew_tensor::Result<()> {
            let loss = ga.mul(&gb)?.relu()?.sum_all()?;
            loss.backward()?;
            ga.zero_grad();
            gb.zero_grad();
            Ok(())
        })
    });
    group.finish();
}

/// The benchmark group, in a private module so the macro's undocumented function stays internal.
mod group {
    use super::overhead;
    criterion::criterion_group!(benches, overhead);
}

criterion_main!(group::benches);
