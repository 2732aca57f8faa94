//! GEMM throughput on GPU 0: TFLOP/s of square `matmul`s at 1024, 2048 and 4096 for f32 (SIMT
//! tiles), f16 and bf16 (tensor cores, f32 accumulation), timed with CUDA events around a loop,
//! after a line saying which kernel runs the f16/bf16 products (on an H100/H200, the wgmma one
//! once it has passed its first-use check, whose time that line includes).
//!
//! Run: `cargo run --release -p sinew-cuda --features cuda --example gemm_tflops`.
//! Compare with `python3 crates/sinew-cuda/scripts/torch_matmul.py` on the same GPU.

use std::process::ExitCode;
use std::time::Instant;

use sinew_tensor::{DType, Device, Generator, Result, Tensor};

fn measure(
    dev: &Device,
    backend: &sinew_cuda::CudaBackend,
    dtype: DType,
    n: usize,
) -> Result<(f64, f32)> {
    let mut rng = Generator::new(n as u64);
    let a = rng
        .randn([n, n], DType::F32, &Device::cpu())?
        .to_dtype(dtype)?
        .to_device(dev)?;
    let b = rng
        .randn([n, n], DType::F32, &Device::cpu())?
        .to_dtype(dtype)?
        .to_device(dev)?;
    for _ in 0..3 {
        a.matmul(&b)?;
    }
    dev.synchronize()?;
    let flops = 2.0 * (n as f64).powi(3);
    let probe = backend.timer()?;
    a.matmul(&b)?;
    let once_ms = probe.stop(backend)?.max(1e-3);
    let iters = ((300.0 / once_ms) as usize).clamp(3, 200);
    let timer = backend.timer()?;
    for _ in 0..iters {
        a.matmul(&b)?;
    }
    let ms = timer.stop(backend)? / iters as f32;
    Ok((flops / (ms as f64 * 1e-3) / 1e12, ms))
}

fn run() -> Result<bool> {
    sinew_cuda::register();
    let Some(dev) = sinew_cuda::open(0)? else {
        println!("SKIP: no CUDA device");
        return Ok(false);
    };
    let backend = sinew_cuda::cuda_backend(0)?;
    let (major, minor) = backend.compute_capability();
    println!(
        "GPU: {} (sm_{major}{minor}, {} SMs)",
        backend.name(),
        backend.multiprocessors()
    );
    let start = Instant::now();
    let x = Tensor::ones([256, 256], DType::F16, &dev)?;
    x.matmul(&x)?;
    dev.synchronize()?;
    println!(
        "first fill + matmul (PTX JIT of the cast and gemm modules): {:.1} ms",
        start.elapsed().as_secs_f64() * 1e3
    );
    // On an H100/H200 the first product large enough for the wgmma kernel runs its first-use
    // check (a context of its own, the module's JIT, 16 products) before it.
    let start = Instant::now();
    let y = Tensor::ones([2048, 2048], DType::F16, &dev)?;
    y.matmul(&y)?;
    dev.synchronize()?;
    let verdict = match backend.wgmma_gemm_checked() {
        Some(true) => "wgmma kernel (passed its first-use check)",
        Some(false) => "mma.sync kernel (the wgmma kernel failed its check: see stderr)",
        None => "mma.sync kernel (no wgmma kernel on this GPU)",
    };
    println!(
        "first 2048 f16 matmul: {:.1} ms; f16/bf16 GEMMs run the {verdict}",
        start.elapsed().as_secs_f64() * 1e3
    );
    for dtype in [DType::F32, DType::F16, DType::BF16] {
        for n in [1024, 2048, 4096] {
            let (tflops, ms) = measure(&dev, &backend, dtype, n)?;
            println!("sinew matmul {dtype:>4} {n:>5}: {tflops:7.2} TFLOP/s ({ms:.3} ms)");
        }
    }
    Ok(true)
}

fn main() -> ExitCode {
    match run() {
        Ok(_) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("gemm_tflops: {e}");
            ExitCode::FAILURE
        }
    }
}
