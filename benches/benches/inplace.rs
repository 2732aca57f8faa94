//! One SGD-with-momentum step over the 784-512-512-10 MLP's parameters (535,818 f32 values),
//! written with in-place ops (`buf.mul_scalar_(0.9); buf.add_(g); p.axpy_(-lr, &buf)`: no
//! allocation) next to the out-of-place version (`buf = buf * 0.9 + g; p = p - lr * buf`,
//! four new tensors per parameter), and the fused update (`buf.mul_axpy_(0.9, 1, g)`: one pass
//! over the buffer instead of two). Then one Adam step over the same parameters, op by op (the
//! sequence sinew-optim used before: lerp, mul, addcmul, a denominator built with copy, sqrt,
//! mul, add, then addcdiv) next to the fused one (lerp, `mul_addcmul_`, `addcdiv_sqrt_`).
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

fn step_fused(state: &[(Tensor, Tensor, Tensor)]) -> Result<()> {
    for (p, grad, buf) in state {
        buf.mul_axpy_(0.9, 1.0, grad)?;
        p.axpy_(-LR, buf)?;
    }
    Ok(())
}

/// Adam's moments and a denominator scratch per parameter, next to the MLP state.
fn adam_state() -> Vec<(Tensor, Tensor, Tensor, Tensor, Tensor)> {
    mlp_state()
        .into_iter()
        .map(|(p, g, m)| {
            let v = m.zeros_like().expect("zeros");
            let denom = m.zeros_like().expect("zeros");
            (p, g, m, v, denom)
        })
        .collect()
}

/// Adam's constants at step 10 with PyTorch's defaults.
fn adam_constants() -> (f64, f64, f64) {
    let (b1, b2, t) = (0.9f64, 0.999f64, 10);
    let step_size = 1e-3 / (1.0 - b1.powi(t));
    (step_size, 1.0 / (1.0 - b2.powi(t)).sqrt(), 1e-8)
}

fn adam_op_by_op(state: &[(Tensor, Tensor, Tensor, Tensor, Tensor)]) -> Result<()> {
    let (step_size, inv_bias2_sqrt, eps) = adam_constants();
    for (p, g, m, v, denom) in state {
        m.lerp_(g, 0.1)?;
        v.mul_scalar_(0.999)?;
        v.addcmul_(0.001, g, g)?;
        denom.copy_(v)?;
        denom.unary_(sinew_tensor::UnaryOp::Sqrt)?;
        denom.mul_scalar_(inv_bias2_sqrt)?;
        denom.add_scalar_(eps)?;
        p.addcdiv_(-step_size, m, denom)?;
    }
    Ok(())
}

fn adam_fused(state: &[(Tensor, Tensor, Tensor, Tensor, Tensor)]) -> Result<()> {
    let (step_size, inv_bias2_sqrt, eps) = adam_constants();
    for (p, g, m, v, _) in state {
        m.lerp_(g, 0.1)?;
        v.mul_addcmul_(0.999, 0.001, g, g)?;
        p.addcdiv_sqrt_(-step_size, m, v, inv_bias2_sqrt, eps)?;
    }
    Ok(())
}

fn adam(c: &mut Criterion) {
    let mut group = c.benchmark_group("adam_mlp");
    let state = adam_state();
    group.bench_function("op_by_op", |b| {
        b.iter(|| adam_op_by_op(black_box(&state)).expect("step"))
    });
    group.bench_function("fused", |b| {
        b.iter(|| adam_fused(black_box(&state)).expect("step"))
    });
    group.finish();
}

fn sgd_momentum(c: &mut Criterion) {
    let mut group = c.benchmark_group("sgd_momentum_mlp");
    let state = mlp_state();
    group.bench_function("inplace", |b| {
        b.iter(|| step_inplace(black_box(&state)).expect("step"))
    });
    group.bench_function("fused", |b| {
        b.iter(|| step_fused(black_box(&state)).expect("step"))
    });
    let mut state = mlp_state();
    group.bench_function("out_of_place", |b| {
        b.iter(|| step_out_of_place(black_box(&mut state)).expect("step"))
    });
    group.finish();
}

/// The benchmark group, in a private module so the macro's undocumented function stays internal.
mod group {
    use super::{adam, sgd_momentum};
    criterion::criterion_group!(benches, sgd_momentum, adam);
}

criterion_main!(group::benches);
