//! Tensor kernel throughput on the CPU: f32 matmul at 256/512/1024 next to direct
//! `matrixmultiply::sgemm` calls on the same buffers, elementwise add of 1M elements (plain and
//! broadcast), and sum reductions (all, over rows, over columns).
//!
//! Matmul throughput is reported as FLOP/s (criterion's "elem/s" counts 2·n³ flops); add and sum
//! as bytes moved per second (criterion's "B/s"). Direct baselines bracket sinew's matmul:
//! `sgemm_into_reused` writes into one preallocated output (the bare matrixmultiply kernel, which
//! with its `threading` feature uses up to four threads inside one call), `packed_into_reused`
//! the same through sinew's own packed kernel (`sinew_tensor::cpu::gemm`, which f32 matmul
//! uses on CPUs with AVX2 + FMA, threaded over rayon for large products), and
//! `sgemm_alloc_output` allocates a zeroed output per call, which is what any tensor op must do,
//! so it is the fair comparison for `sinew`.
//!
//! `cargo bench -p sinew-benches --bench tensor -- --warm-up-time 1 --measurement-time 3`

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_main};
use sinew_tensor::{DType, Device, Generator, Tensor};

fn random(dims: &[usize], seed: u64) -> Tensor {
    Generator::new(seed)
        .uniform(dims, -1.0, 1.0, DType::F32, &Device::cpu())
        .expect("random tensor")
}

/// `c = a @ b` for square row-major `n x n` matrices through matrixmultiply.
fn sgemm(n: usize, a: &[f32], b: &[f32], c: &mut [f32]) {
    assert!(a.len() == n * n && b.len() == n * n && c.len() == n * n);
    let s = n as isize;
    // SAFETY: the three slices hold n*n elements each, read and written with row-major strides.
    unsafe {
        matrixmultiply::sgemm(
            n,
            n,
            n,
            1.0,
            a.as_ptr(),
            s,
            1,
            b.as_ptr(),
            s,
            1,
            0.0,
            c.as_mut_ptr(),
            s,
            1,
        );
    }
}

/// `c = a @ b` for square row-major `n x n` matrices through sinew's packed kernel
/// (`sinew_tensor::cpu::gemm`, threaded over rayon for large products).
fn packed_sgemm(n: usize, a: &[f32], b: &[f32], c: &mut [f32]) {
    use sinew_tensor::cpu::gemm::{MatMut, MatRef, sgemm};
    assert!(a.len() == n * n && b.len() == n * n && c.len() == n * n);
    let s = n as isize;
    let (a, b) = (
        MatRef {
            ptr: a.as_ptr(),
            row_stride: s,
            col_stride: 1,
        },
        MatRef {
            ptr: b.as_ptr(),
            row_stride: s,
            col_stride: 1,
        },
    );
    let c = MatMut {
        ptr: c.as_mut_ptr(),
        row_stride: s,
        col_stride: 1,
    };
    // SAFETY: the three slices hold n*n elements each, read and written with row-major strides,
    // and `c` (borrowed mutably) overlaps neither input.
    unsafe { sgemm(n, n, n, a, b, c, false, true) }.expect("packed sgemm");
}

fn matmul(c: &mut Criterion) {
    let mut group = c.benchmark_group("matmul_f32");
    group.sample_size(20);
    for n in [256usize, 512, 1024] {
        let (a, b) = (random(&[n, n], 1), random(&[n, n], 2));
        let (av, bv) = (
            a.to_vec::<f32>().expect("f32"),
            b.to_vec::<f32>().expect("f32"),
        );
        // Same result as the direct call, so both sides do the same work.
        let mut check = vec![0.0f32; n * n];
        sgemm(n, &av, &bv, &mut check);
        let ours = a.matmul(&b).expect("matmul").to_vec::<f32>().expect("f32");
        let worst = ours
            .iter()
            .zip(&check)
            .map(|(x, y)| (x - y).abs())
            .fold(0.0f32, f32::max);
        assert!(worst < 1e-3, "sinew and sgemm disagree by {worst}");

        group.throughput(Throughput::Elements(2 * (n as u64).pow(3)));
        group.bench_with_input(BenchmarkId::new("sinew", n), &n, |bench, _| {
            bench.iter(|| black_box(a.matmul(&b).expect("matmul")))
        });
        group.bench_with_input(
            BenchmarkId::new("sgemm_alloc_output", n),
            &n,
            |bench, &n| {
                bench.iter(|| {
                    let mut out = vec![0.0f32; n * n];
                    sgemm(n, &av, &bv, &mut out);
                    black_box(out)
                })
            },
        );
        let mut out = vec![0.0f32; n * n];
        group.bench_with_input(BenchmarkId::new("sgemm_into_reused", n), &n, |bench, &n| {
            bench.iter(|| {
                sgemm(n, &av, &bv, &mut out);
                black_box(&out);
            })
        });
        // The packed kernel behind sinew's f32 matmul, called directly into the same output.
        group.bench_with_input(
            BenchmarkId::new("packed_into_reused", n),
            &n,
            |bench, &n| {
                bench.iter(|| {
                    packed_sgemm(n, &av, &bv, &mut out);
                    black_box(&out);
                })
            },
        );
        // The transposed right operand is read in place (no copy), as linear layers do.
        let bt = b.t().expect("t");
        group.bench_with_input(
            BenchmarkId::new("sinew_rhs_transposed", n),
            &n,
            |bench, _| bench.iter(|| black_box(a.matmul(&bt).expect("matmul"))),
        );
    }
    group.finish();
}

/// Batch-1 inference's products: one row times a linear layer's transposed weight (the
/// 784-512-512-10 MLP's two large layers), split over the spinning helpers.
fn batch1_linear(c: &mut Criterion) {
    let mut group = c.benchmark_group("batch1_linear_f32");
    for (inputs, outputs) in [(784usize, 512usize), (512, 512)] {
        let (x, w) = (random(&[1, inputs], 3), random(&[outputs, inputs], 4));
        let wt = w.t().expect("t");
        group.throughput(Throughput::Elements(2 * (inputs * outputs) as u64));
        group.bench_function(format!("{inputs}x{outputs}"), |bench| {
            bench.iter(|| black_box(x.matmul(&wt).expect("matmul")))
        });
    }
    group.finish();
}

/// Softmax and log-softmax along the last dimension (the vectorised `exp` kernel).
fn softmax(c: &mut Criterion) {
    let mut group = c.benchmark_group("softmax_f32");
    let x = random(&[4096, 1024], 5);
    group.throughput(Throughput::Elements(4096 * 1024));
    group.bench_function("softmax_4096x1024", |bench| {
        bench.iter(|| black_box(x.softmax(-1).expect("softmax")))
    });
    group.bench_function("log_softmax_4096x1024", |bench| {
        bench.iter(|| black_box(x.log_softmax(-1).expect("log_softmax")))
    });
    group.finish();
}

/// Exp, sigmoid and tanh of 1M contiguous elements (exp and sigmoid through the vectorised
/// formulas of `cpu/exp_f32.rs`, tanh through the C library).
fn transcendental(c: &mut Criterion) {
    const N: usize = 1 << 20;
    let mut group = c.benchmark_group("transcendental_f32");
    let a = random(&[N], 3).mul_scalar(8.0).expect("scale");
    group.throughput(Throughput::Elements(N as u64));
    for (name, op) in [
        (
            "exp_1M",
            Tensor::exp as fn(&Tensor) -> sinew_tensor::Result<Tensor>,
        ),
        ("sigmoid_1M", Tensor::sigmoid),
        ("tanh_1M", Tensor::tanh),
    ] {
        group.bench_function(name, |bench| bench.iter(|| black_box(op(&a).expect(name))));
    }
    group.finish();
}

fn elementwise(c: &mut Criterion) {
    const N: usize = 1 << 20;
    let mut group = c.benchmark_group("elementwise_f32");
    let (a, b) = (random(&[N], 3), random(&[N], 4));
    // Two inputs read, one output written.
    group.throughput(Throughput::Bytes(3 * 4 * N as u64));
    group.bench_function("add_1M", |bench| {
        bench.iter(|| black_box(a.add(&b).expect("add")))
    });
    let m = a.reshape([1024, 1024]).expect("reshape");
    let row = random(&[1024], 5);
    group.bench_function("add_1M_broadcast_row", |bench| {
        bench.iter(|| black_box(m.add(&row).expect("add")))
    });
    let mt = m.t().expect("t");
    group.bench_function("add_1M_transposed", |bench| {
        bench.iter(|| black_box(mt.add(&m).expect("add")))
    });
    group.finish();
}

fn reduce(c: &mut Criterion) {
    const N: usize = 1 << 20;
    let mut group = c.benchmark_group("sum_f32");
    let a = random(&[N], 6);
    group.throughput(Throughput::Bytes(4 * N as u64));
    group.bench_function("sum_all_1M", |bench| {
        bench.iter(|| black_box(a.sum_all().expect("sum")))
    });
    let m = a.reshape([1024, 1024]).expect("reshape");
    group.bench_function("sum_rows_1024x1024", |bench| {
        bench.iter(|| black_box(m.sum(&[1], false).expect("sum")))
    });
    group.bench_function("sum_cols_1024x1024", |bench| {
        bench.iter(|| black_box(m.sum(&[0], false).expect("sum")))
    });
    group.finish();
}

/// The benchmark group, in a private module so the macro's undocumented function stays internal.
mod group {
    use super::{batch1_linear, elementwise, matmul, reduce, softmax, transcendental};
    criterion::criterion_group!(
        benches,
        matmul,
        batch1_linear,
        softmax,
        transcendental,
        elementwise,
        reduce
    );
}

criterion_main!(group::benches);
