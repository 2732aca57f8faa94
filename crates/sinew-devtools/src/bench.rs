//! `bench` (`cargo xtask bench`): the same workloads timed on the CPU and, when built with
//! `--features cuda` and a GPU is present, on CUDA device 0, side by side in one run.
//!
//! A debug build re-runs itself in release first (timings of unoptimised code mean nothing).
//! GPU: `cargo xtask bench --cuda` (= `cargo run --release -p sinew-devtools --features cuda -- bench`).
//! `bench --cpu ...` runs the PyTorch CPU reference's workloads instead ([`crate::cpu_bench`]).

use std::time::Instant;

use sinew_tensor::{DType, Device, Generator, Result, Tensor};

/// One timed workload: its name, work per run (for throughput) and the closure to time.
struct Workload {
    name: &'static str,
    unit: &'static str,
    work: f64,
    run: Box<dyn Fn() -> Result<()>>,
}

fn workloads(device: &Device) -> Result<Vec<Workload>> {
    let mut g = Generator::new(0);
    let mut out = Vec::new();
    for n in [512usize, 1024, 2048] {
        let a = g
            .randn([n, n], DType::F32, &Device::cpu())?
            .to_device(device)?;
        let b = g
            .randn([n, n], DType::F32, &Device::cpu())?
            .to_device(device)?;
        let name = match n {
            512 => "matmul f32 512",
            1024 => "matmul f32 1024",
            _ => "matmul f32 2048",
        };
        out.push(Workload {
            name,
            unit: "GFLOP/s",
            work: 2.0 * (n * n * n) as f64 / 1e9,
            run: Box::new(move || a.matmul(&b).map(drop)),
        });
    }
    let n = 1 << 22;
    let x = g
        .randn([n], DType::F32, &Device::cpu())?
        .to_device(device)?;
    let y = g
        .randn([n], DType::F32, &Device::cpu())?
        .to_device(device)?;
    let (x2, x3) = (x.clone(), x.clone());
    out.push(Workload {
        name: "add f32 4M",
        unit: "GB/s",
        work: 12.0 * n as f64 / 1e9,
        run: Box::new(move || x.add(&y).map(drop)),
    });
    out.push(Workload {
        name: "sum f32 4M",
        unit: "GB/s",
        work: 4.0 * n as f64 / 1e9,
        run: Box::new(move || x2.sum_all().map(drop)),
    });
    let logits = x3.reshape([4096, 1024])?;
    out.push(Workload {
        name: "softmax 4096x1024",
        unit: "GB/s",
        work: 8.0 * n as f64 / 1e9,
        run: Box::new(move || logits.softmax(-1).map(drop)),
    });
    out.push(mlp_step(&mut g, device)?);
    Ok(out)
}

/// Forward+backward of a 784-512-512-10 ReLU MLP at batch 64 with an MSE loss.
fn mlp_step(g: &mut Generator, device: &Device) -> Result<Workload> {
    let sizes = [784usize, 512, 512, 10];
    let mut params = Vec::new();
    for w in sizes.windows(2) {
        let bound = 1.0 / (w[0] as f64).sqrt();
        params.push((
            g.uniform([w[0], w[1]], -bound, bound, DType::F32, &Device::cpu())?
                .to_device(device)?,
            g.uniform([w[1]], -bound, bound, DType::F32, &Device::cpu())?
                .to_device(device)?,
        ));
    }
    let x = g
        .rand([64, 784], DType::F32, &Device::cpu())?
        .to_device(device)?;
    let target = g
        .rand([64, 10], DType::F32, &Device::cpu())?
        .to_device(device)?;
    let flops =
        3.0 * 2.0 * 64.0 * sizes.windows(2).map(|w| (w[0] * w[1]) as f64).sum::<f64>() / 1e9;
    let run = move || -> Result<()> {
        let vars: Vec<(Tensor, Tensor)> = params
            .iter()
            .map(|(w, b)| (w.clone().requires_grad_(), b.clone().requires_grad_()))
            .collect();
        let mut h = x.clone();
        for (i, (w, b)) in vars.iter().enumerate() {
            h = h.matmul(w)?.add(b)?;
            if i + 1 < vars.len() {
                h = h.relu()?;
            }
        }
        h.sub(&target.clone())?.square()?.mean_all()?.backward()
    };
    Ok(Workload {
        name: "mlp 784-512-512-10 b64 step",
        unit: "GFLOP/s",
        work: flops,
        run: Box::new(run),
    })
}

/// Median seconds per run (after a warm-up), synchronising the device inside the timed region.
fn time(device: &Device, w: &Workload) -> Result<f64> {
    (w.run)()?;
    device.synchronize()?;
    let mut samples = Vec::new();
    let start = Instant::now();
    while samples.len() < 5 || (start.elapsed().as_secs_f64() < 1.0 && samples.len() < 200) {
        let t = Instant::now();
        (w.run)()?;
        device.synchronize()?;
        samples.push(t.elapsed().as_secs_f64());
    }
    samples.sort_by(f64::total_cmp);
    Ok(samples[samples.len() / 2])
}

#[cfg(feature = "cuda")]
fn gpu() -> Result<Option<Device>> {
    sinew_cuda::register();
    sinew_cuda::open(0)
}

#[cfg(not(feature = "cuda"))]
fn gpu() -> Result<Option<Device>> {
    println!("cuda: not built (run `cargo xtask bench --cuda` for the GPU column)");
    Ok(None)
}

/// Times every workload on each available device and prints one row per workload.
pub fn run(args: &[String]) -> std::result::Result<(), String> {
    if cfg!(debug_assertions) {
        let features: &[&str] = if cfg!(feature = "cuda") {
            &["--features", "cuda"]
        } else {
            &[]
        };
        let status =
            std::process::Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
                .args(["run", "--quiet", "--release", "-p", "sinew-devtools"])
                .args(features)
                .args(["--", "bench"])
                .args(args)
                .status()
                .map_err(|e| format!("bench: could not re-run in release: {e}"))?;
        return if status.success() {
            Ok(())
        } else {
            Err("bench: the release run failed".into())
        };
    }
    if args.iter().any(|a| a == "--cpu") {
        let rest: Vec<String> = args.iter().filter(|a| *a != "--cpu").cloned().collect();
        return crate::cpu_bench::run(&rest);
    }
    let fail = |e: sinew_tensor::Error| format!("bench: {e}");
    let cpu = Device::cpu();
    let gpu = gpu().map_err(fail)?;
    println!(
        "threads: {}  gpu: {}",
        rayon_threads(),
        gpu.as_ref().map_or("none".to_string(), |d| d.to_string())
    );
    println!(
        "{:<30} {:>10} {:>12} {:>10} {:>12} {:>9}",
        "workload", "cpu ms", "cpu rate", "gpu ms", "gpu rate", "gpu/cpu"
    );
    let cpu_loads = workloads(&cpu).map_err(fail)?;
    let gpu_loads = match &gpu {
        Some(d) => Some(workloads(d).map_err(fail)?),
        None => None,
    };
    for (i, w) in cpu_loads.iter().enumerate() {
        let c = time(&cpu, w).map_err(fail)?;
        let mut row = format!(
            "{:<30} {:>10.3} {:>8.1} {:<3}",
            w.name,
            c * 1e3,
            w.work / c,
            short(w.unit)
        );
        if let (Some(d), Some(loads)) = (&gpu, &gpu_loads) {
            let gt = time(d, &loads[i]).map_err(fail)?;
            row += &format!(
                " {:>10.3} {:>8.1} {:<3} {:>8.1}x",
                gt * 1e3,
                w.work / gt,
                short(w.unit),
                c / gt
            );
        }
        println!("{row}");
    }
    Ok(())
}

fn short(unit: &str) -> &str {
    unit.trim_end_matches("/s")
}

fn rayon_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}
