//! One SGD-with-momentum step over the 784-512-512-10 MLP's parameters (535,818 f32 values),
//! written with in-place ops (`buf.mul_scalar_(0.9); buf.add_(g); p.axpy_(-lr, &buf)`: no
//! allocation) next to the out-of-place version (`buf = buf * 0.9 + g; p = p - lr * buf`,
//! four new tensors per parameter).
//!
//! `cargo bench -p sinew-benches --bench inplace -- --warm-up-time 1 --measurement-time 3`

use std::hint::black_box;

use criterion::{Criterion, criterion_main};
use sinew_tensor::{DType, Device, Generator, Result, Tensor};

const LR: f64 = 0.01;

/// (parameter, gradient, momentum buffer) per parameter of the MLP.
fn mlp_state() -> Vec<(Tensor, Tensor, Tensor)> {
    let mut g = Generator::new(0);
    let shapes: [&[usize]; 6] = [&[512, 784], &[512], &[512, 512], &[512], &[10, 512], &[10]];
    shapes
        .iter()
        .map(|&s| {
            let mut rand = || {
                g.uniform(s, -1.0, 1.0, DType::F32, &Device::cpu())
                    .expect("random tensor")
            };
            let (p, grad) = (rand(), rand());
            let buf = Tensor::zeros(s, DType::F32, &Device::cpu()).expect("zeros");
            (p, grad, buf)
        })
        .collect()
}

fn step_inplace(state: &[(Tensor, Tensor, Tensor)]) -> Result<()> {
    for (p, grad, buf) in state {
        buf.mul_scalar_(0.9)?;
        buf.add_(grad)?;
        p.axpy_(-LR, buf)?;
    }
    Ok(())
}

fn step_out_of_place(state: &mut [(Tensor, Tensor, Tensor)]) -> Result<()> {
    for (p, grad, buf) in state.iter_mut() {
        *buf = buf.mul_scalar(0.9)?.add(grad)?;
        *p = p.sub(&buf.mul_scalar(LR)?)?;
    }
    Ok(())
}

fn sgd_momentum(c: &mut Criterion) {
    let mut group = c.benchmark_group("sgd_momentum_mlp");
    let state = mlp_state();
    group.bench_function("inplace", |b| {
        b.iter(|| step_inplace(black_box(&state)).expect("step"))
    });
    let mut state = mlp_state();
    group.bench_function("out_of_place", |b| {
        b.iter(|| step_out_of_place(black_box(&mut state)).expect("step"))
    });
    group.finish();
}

/// The benchmark group, in a private module so the macro's undocumented function stays internal.
mod group {
    use super::sgd_momentum;
    criterion::criterion_group!(benches, sgd_momentum);
}

criterion_main!(group::benches);
