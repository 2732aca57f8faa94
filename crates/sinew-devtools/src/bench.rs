//! `bench` (`cargo xtask bench`): issue 14's one table. Every workload of
//! [`crate::gpu_workloads`] on the CPU and, when built with `--features cuda` and a GPU is
//! present, on CUDA device 0, and with `--vs-torch PYTHON` the same workloads in PyTorch eager
//! (`scripts/torch_gpu_bench.py`, on the GPU when there is one), with the ratio Sinew/PyTorch.
//!
//! Options: `--only PATTERN` (workloads whose name contains it), `--no-cpu` (skip the CPU
//! column), `--cpu-all` (also time the whole-model steps on the CPU: seconds each), `--quick`
//! (batch 2, tiny GEMMs, one run: checks that everything runs), `--vs-torch PYTHON`,
//! `--torch-script PATH`. A debug build re-runs itself in release first (timings of
//! unoptimised code mean nothing). GPU: `cargo xtask bench --cuda`.
//! `bench --cpu ...` runs the PyTorch CPU reference's workloads instead ([`crate::cpu_bench`]).

use std::collections::HashMap;
use std::process::Command;

use sinew_tensor::{Device, Result};

use crate::gpu_workloads::{self, NAMES, cheap_on_cpu};
use crate::vs_torch::{Line, parse_line};

/// Where the PyTorch counterpart lives, relative to the workspace root.
const TORCH_SCRIPT: &str = "crates/sinew-devtools/scripts/torch_gpu_bench.py";

#[derive(Debug, Default)]
struct Options {
    only: Option<String>,
    no_cpu: bool,
    cpu_all: bool,
    quick: bool,
    vs_torch: Option<String>,
    torch_script: Option<String>,
}

fn parse(args: &[String]) -> std::result::Result<Options, String> {
    let mut opts = Options::default();
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let mut value = || {
            it.next()
                .cloned()
                .ok_or_else(|| format!("bench: {arg} needs a value"))
        };
        match arg.as_str() {
            "--only" => opts.only = Some(value()?),
            "--no-cpu" => opts.no_cpu = true,
            "--cpu-all" => opts.cpu_all = true,
            "--quick" => opts.quick = true,
            "--vs-torch" => opts.vs_torch = Some(value()?),
            "--torch-script" => opts.torch_script = Some(value()?),
            _ => {
                return Err(format!(
                    "bench: unknown option {arg:?}; usage: bench [--only PATTERN] [--no-cpu] \
                     [--cpu-all] [--quick] [--vs-torch PYTHON [--torch-script PATH]] | bench --cpu ..."
                ));
            }
        }
    }
    Ok(opts)
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

/// Re-runs this command in a release build (a debug build's timings mean nothing).
fn rerun_in_release(args: &[String]) -> std::result::Result<(), String> {
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
    if status.success() {
        Ok(())
    } else {
        Err("bench: the release run failed".into())
    }
}

/// Runs the PyTorch script on `device` (`cuda` or `cpu`) and returns its lines by name.
fn torch_lines(
    python: &str,
    script: &str,
    device: &str,
    opts: &Options,
) -> std::result::Result<(String, HashMap<String, Line>), String> {
    let mut cmd = Command::new(python);
    cmd.args([script, "--device", device]);
    if opts.quick {
        cmd.arg("--quick");
    }
    if let Some(only) = &opts.only {
        cmd.args(["--only", only]);
    }
    let stdout = crate::vs_torch::python_output(cmd, python, script)?;
    let version = stdout
        .lines()
        .find(|l| l.starts_with("torch "))
        .unwrap_or("torch (version not printed)")
        .to_string();
    let lines = stdout
        .lines()
        .filter_map(parse_line)
        .map(|l| (l.name.clone(), l))
        .collect();
    Ok((version, lines))
}

/// The rate column, short: `12.3 TFLOP/s` stays, `5402 samples/s` becomes `5402/s`.
fn rate(line: &Line) -> String {
    line.extra.replace(" samples", "")
}

fn ms(line: Option<&Line>) -> String {
    line.map_or("-".into(), |l| format!("{:.3}", l.stats.median))
}

/// Times every selected workload on each available device and prints one row per workload.
pub fn run(args: &[String]) -> std::result::Result<(), String> {
    if cfg!(debug_assertions) {
        return rerun_in_release(args);
    }
    if args.iter().any(|a| a == "--cpu") {
        let rest: Vec<String> = args.iter().filter(|a| *a != "--cpu").cloned().collect();
        return crate::cpu_bench::run(&rest);
    }
    let opts = parse(args)?;
    let fail = |name: &str, e: sinew_tensor::Error| format!("bench: {name}: {e}");
    let gpu = gpu().map_err(|e| fail("opening the GPU", e))?;
    let names: Vec<&str> = NAMES
        .iter()
        .copied()
        .filter(|n| opts.only.as_ref().is_none_or(|p| n.contains(p.as_str())))
        .collect();
    let torch = match &opts.vs_torch {
        Some(python) => {
            let script = opts
                .torch_script
                .clone()
                .unwrap_or_else(|| TORCH_SCRIPT.into());
            let device = if gpu.is_some() { "cuda" } else { "cpu" };
            Some(torch_lines(python, &script, device, &opts)?)
        }
        None => None,
    };
    println!(
        "sinew {}  threads: {}  gpu: {}  {}",
        env!("CARGO_PKG_VERSION"),
        std::thread::available_parallelism().map_or(1, |n| n.get()),
        gpu.as_ref().map_or("none".to_string(), |d| d.to_string()),
        torch.as_ref().map_or("", |(v, _)| v.as_str()),
    );
    println!(
        "{:<26} {:>10} {:>10} {:>15} {:>10} {:>15} {:>11}",
        "workload", "cpu ms", "gpu ms", "rate", "torch ms", "torch rate", "sinew/torch"
    );
    for name in names {
        let cpu_line = if opts.no_cpu || !(opts.quick || opts.cpu_all || cheap_on_cpu(name)) {
            None
        } else {
            let line =
                gpu_workloads::run(name, &Device::cpu(), opts.quick).map_err(|e| fail(name, e))?;
            parse_line(&line)
        };
        let gpu_line = match &gpu {
            Some(d) => {
                parse_line(&gpu_workloads::run(name, d, opts.quick).map_err(|e| fail(name, e))?)
            }
            None => None,
        };
        let torch_line = torch.as_ref().and_then(|(_, t)| t.get(name));
        // Ours against PyTorch's on the same device: the GPU row when there is a GPU.
        let ours = gpu_line.as_ref().or(cpu_line.as_ref());
        let ratio = match (ours, torch_line) {
            (Some(a), Some(b)) => format!("{:.2}", a.stats.median / b.stats.median),
            _ => "-".into(),
        };
        println!(
            "{:<26} {:>10} {:>10} {:>15} {:>10} {:>15} {:>11}",
            name,
            ms(cpu_line.as_ref()),
            ms(gpu_line.as_ref()),
            ours.map_or("-".into(), rate),
            ms(torch_line),
            torch_line.map_or("-".into(), rate),
            ratio
        );
    }
    #[cfg(feature = "cuda")]
    if let Some(cuda) = gpu.as_ref().and_then(sinew_cuda::CudaBackend::of) {
        println!("gpu memory: {:?}", cuda.memory_stats());
        // Which f16 GEMM kernel the rows ran: the wgmma one only where it passed its check.
        let (major, minor) = cuda.compute_capability();
        let wgmma = match cuda.wgmma_gemm_checked() {
            Some(true) => "wgmma kernel (passed its first-use check)".to_string(),
            Some(false) => "mma.sync kernel (the wgmma kernel failed its check: see stderr)".into(),
            None if (major, minor) == (9, 0) => {
                "mma.sync kernel (none was large enough or TMA-loadable for the wgmma one)".into()
            }
            None => format!("mma.sync kernel (no wgmma on compute capability {major}.{minor})"),
        };
        println!("f16/bf16 GEMMs: {wgmma}");
    }
    Ok(())
}
