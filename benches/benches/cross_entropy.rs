//! Cross entropy of logits against class indices, forward and backward: the fused kernels
//! (`cross_entropy`, the path `CrossEntropyLoss` takes for f32/f64 index targets) next to the
//! op-by-op form it replaced (`nll_loss(log_softmax(x))`: log-softmax, gather, masks, weights
//! and the mean as separate ops, each way). MLP-sized logits `[64, 10]` and ImageNet-sized
//! `[256, 1000]`, f32.
//!
//! `cargo bench -p sinew-benches --bench cross_entropy -- --warm-up-time 1 --measurement-time 3`

use std::hint::black_box;

use criterion::{Criterion, criterion_main};
use sinew_nn::loss::{cross_entropy, nll_loss};
use sinew_tensor::{DType, Device, Generator, Result, Tensor};

/// Logits that need a gradient and in-range class indices.
fn inputs(rows: usize, classes: usize) -> (Tensor, Tensor) {
    let mut g = Generator::new(3);
    let x = g
        .randn([rows, classes], DType::F32, &Device::cpu())
        .expect("logits")
        .requires_grad_();
    let t: Vec<i64> = (0..rows).map(|i| ((i * 7) % classes) as i64).collect();
    (x, Tensor::from_vec(t, [rows]).expect("targets"))
}

/// Forward and backward of `loss`, the gradient dropped after.
fn step(x: &Tensor, loss: impl Fn(&Tensor) -> Result<Tensor>) -> Result<()> {
    loss(x)?.backward()?;
    x.zero_grad();
    Ok(())
}

fn forward_backward(c: &mut Criterion) {
    for (rows, classes) in [(64, 10), (256, 1000)] {
        let mut group = c.benchmark_group(format!("cross_entropy_{rows}x{classes}"));
        let (x, t) = inputs(rows, classes);
        group.bench_function("fused", |b| {
            b.iter(|| step(black_box(&x), |x| cross_entropy(x, &t)).expect("step"))
        });
        group.bench_function("op_by_op", |b| {
            b.iter(|| step(black_box(&x), |x| nll_loss(&x.log_softmax(1)?, &t)).expect("step"))
        });
        group.finish();
    }
}

/// The benchmark group, in a private module so the macro's undocumented function stays internal.
mod group {
    use super::forward_backward;
    criterion::criterion_group!(benches, forward_backward);
}

criterion_main!(group::benches);
