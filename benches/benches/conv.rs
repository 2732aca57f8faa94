//! Convolution and pooling kernels at the shapes of the CPU workloads (issue 13): max pooling
//! forward and forward+backward, im2col (`unfold2d`) and its adjoint, and one conv2d
//! forward+backward step, for LeNet-5's two layers (direct kernels) and the CIFAR CNN's second.
//!
//! `cargo bench -p sinew-benches --bench conv`

use std::hint::black_box;

use criterion::{Criterion, criterion_main};

use sinew_tensor::{Conv2dConfig, DType, Device, Generator, Pool2dConfig, Tensor};

fn random(dims: &[usize], seed: u64) -> Tensor {
    Generator::new(seed)
        .uniform(dims, -1.0, 1.0, DType::F32, &Device::cpu())
        .expect("random tensor")
}

/// (name, input [n, c, h, w], output channels, kernel, padding) of the workloads' conv layers.
const LAYERS: [(&str, [usize; 4], usize, usize, usize); 3] = [
    ("lenet5_conv1", [64, 1, 28, 28], 6, 5, 2),
    ("lenet5_conv2", [64, 6, 14, 14], 16, 5, 0),
    ("cifar_conv2", [64, 32, 32, 32], 64, 3, 1),
];

fn max_pool(c: &mut Criterion) {
    let mut group = c.benchmark_group("max_pool2d_f32");
    group.sample_size(20);
    for (name, dims) in [
        ("lenet5_pool1", [64, 6, 28, 28]),
        ("cifar_pool1", [64, 64, 32, 32]),
    ] {
        let x = random(&dims, 1);
        group.bench_function(format!("{name}_forward"), |b| {
            b.iter(|| black_box(x.max_pool2d(Pool2dConfig::new(2)).expect("pool")))
        });
        group.bench_function(format!("{name}_forward_backward"), |b| {
            b.iter(|| {
                let x = x.clone().requires_grad_();
                let (v, _) = x.max_pool2d(Pool2dConfig::new(2)).expect("pool");
                v.sum_all().expect("sum").backward().expect("backward");
                black_box(x.grad())
            })
        });
    }
    group.finish();
}

fn im2col(c: &mut Criterion) {
    let mut group = c.benchmark_group("unfold2d_f32");
    group.sample_size(20);
    for (name, dims, _, k, pad) in LAYERS {
        let x = random(&dims, 2);
        let spec = x
            .unfold_spec("bench", (k, k), (1, 1), (pad, pad), (1, 1), 0.0)
            .expect("spec");
        group.bench_function(format!("{name}_unfold"), |b| {
            b.iter(|| black_box(x.unfold2d(&spec).expect("unfold")))
        });
        let cols = x.unfold2d(&spec).expect("unfold");
        group.bench_function(format!("{name}_fold"), |b| {
            b.iter(|| black_box(cols.fold2d(&spec).expect("fold")))
        });
    }
    group.finish();
}

fn conv_step(c: &mut Criterion) {
    let mut group = c.benchmark_group("conv2d_step_f32");
    group.sample_size(10);
    for (name, dims, out, k, pad) in LAYERS {
        let x = random(&dims, 3).requires_grad_();
        let w = random(&[out, dims[1], k, k], 4).requires_grad_();
        let bias = random(&[out], 5).requires_grad_();
        let cfg = Conv2dConfig {
            padding: (pad, pad),
            ..Conv2dConfig::default()
        };
        group.bench_function(format!("{name}_forward_backward"), |b| {
            b.iter(|| {
                let y = x.conv2d(&w, Some(&bias), cfg).expect("conv");
                y.sum_all().expect("sum").backward().expect("backward");
                black_box(w.grad())
            })
        });
    }
    group.finish();
}

/// The benchmark group, in a private module so the macro's undocumented function stays internal.
mod group {
    use super::{conv_step, im2col, max_pool};
    criterion::criterion_group!(benches, max_pool, im2col, conv_step);
}

criterion_main!(group::benches);
