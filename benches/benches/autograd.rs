//! Autograd bookkeeping overhead: one forward+backward step of a 784-512-512-10 ReLU MLP with a
//! cross-entropy loss at batch 64, through `Tensor` versus the same math written by hand with
//! tensor ops. Both variants run side by side in one process; compare their ratio.
//!
//! `cargo bench -p sinew-benches --bench autograd`

use criterion::{Criterion, criterion_main};

use sinew_tensor::{DType, Device, Generator, Result, Tensor};

const SIZES: [usize; 4] = [784, 512, 512, 10];
const BATCH: usize = 64;

struct Mlp {
    weights: Vec<Tensor>,
    biases: Vec<Tensor>,
}

fn setup() -> Result<(Mlp, Tensor, Tensor)> {
    let mut g = Generator::new(0);
    let cpu = Device::cpu();
    let mut weights = Vec::new();
    let mut biases = Vec::new();
    for w in SIZES.windows(2) {
        let bound = 1.0 / (w[0] as f64).sqrt();
        weights.push(g.uniform([w[0], w[1]], -bound, bound, DType::F32, &cpu)?);
        biases.push(g.uniform([w[1]], -bound, bound, DType::F32, &cpu)?);
    }
    let x = g.rand([BATCH, SIZES[0]], DType::F32, &cpu)?;
    let labels = g.randint([BATCH, 1], 0, 10, &cpu)?;
    Ok((Mlp { weights, biases }, x, labels))
}

/// Forward and backward through autograd; returns the first layer's weight gradient.
fn step_autograd(mlp: &Mlp, x: &Tensor, labels: &Tensor) -> Result<Tensor> {
    let ws: Vec<Tensor> = mlp
        .weights
        .iter()
        .map(|w| w.clone().requires_grad_())
        .collect();
    let bs: Vec<Tensor> = mlp
        .biases
        .iter()
        .map(|b| b.clone().requires_grad_())
        .collect();
    let mut h = x.clone();
    for i in 0..ws.len() {
        h = h.matmul(&ws[i])?.add(&bs[i])?;
        if i + 1 < ws.len() {
            h = h.relu()?;
        }
    }
    let loss = h.log_softmax(-1)?.gather(1, labels)?.neg()?.mean_all()?;
    loss.backward()?;
    Ok(ws[0].grad().expect("gradient"))
}

/// The same step with every derivative written out by hand.
fn step_by_hand(mlp: &Mlp, x: &Tensor, labels: &Tensor) -> Result<Tensor> {
    let mut inputs = vec![x.clone()];
    let mut pre = Vec::new();
    for i in 0..mlp.weights.len() {
        let z = inputs[i].matmul(&mlp.weights[i])?.add(&mlp.biases[i])?;
        pre.push(z.clone());
        if i + 1 < mlp.weights.len() {
            inputs.push(z.relu()?);
        }
    }
    let logits = pre.last().expect("layers");
    let log_probs = logits.log_softmax(-1)?;
    let _loss = log_probs.gather(1, labels)?.neg()?.mean_all()?;
    let one_hot = labels.squeeze(1)?.one_hot(10)?.to_dtype(DType::F32)?;
    let mut grad = log_probs.exp()?.sub(&one_hot)?.div_scalar(BATCH as f64)?;
    let mut first = None;
    for i in (0..mlp.weights.len()).rev() {
        let dw = inputs[i].t()?.matmul(&grad)?;
        let _db = grad.sum(&[0], false)?;
        if i == 0 {
            first = Some(dw);
            break;
        }
        let dh = grad.matmul(&mlp.weights[i].t()?)?;
        let mask = pre[i - 1].gt_scalar(0.0)?.to_dtype(DType::F32)?;
        grad = dh.mul(&mask)?;
    }
    Ok(first.expect("first layer"))
}

fn bench(c: &mut Criterion) {
    let (mlp, x, labels) = setup().expect("setup");
    // Both variants must agree before their times mean anything.
    let a = step_autograd(&mlp, &x, &labels)
        .unwrap()
        .to_vec::<f32>()
        .unwrap();
    let b = step_by_hand(&mlp, &x, &labels)
        .unwrap()
        .to_vec::<f32>()
        .unwrap();
    let worst = a
        .iter()
        .zip(&b)
        .map(|(p, q)| (p - q).abs())
        .fold(0f32, f32::max);
    assert!(
        worst < 1e-5,
        "autograd and hand-written gradients differ by {worst}"
    );
    let mut group = c.benchmark_group("mlp_784_512_512_10_batch64");
    group.bench_function("autograd", |bn| {
        bn.iter(|| step_autograd(&mlp, &x, &labels).unwrap())
    });
    group.bench_function("by_hand", |bn| {
        bn.iter(|| step_by_hand(&mlp, &x, &labels).unwrap())
    });
    group.finish();
}

/// Criterion's generated entry points.
mod harness {
    criterion::criterion_group!(benches, super::bench);
}
criterion_main!(harness::benches);
