//! `bench --cpu` (`cargo xtask bench --cpu`): Sinew on the workloads of
//! `../shared/bench/torch_cpu_reference.py`, one line per workload in the reference's format, so
//! the two outputs compare line by line.
//!
//! Each workload runs in its own child process (this binary, `bench --cpu --worker NAME`), so its
//! peak RSS (`VmHWM` of `/proc/self/status`) is its own; the peaks are printed after the workload
//! lines. Threads: the child builds rayon's global pool with `--threads N` threads (default 2, as
//! the reference's `torch.set_num_threads(2)`) and gets `MATMUL_NUM_THREADS=N`, the limit of
//! matrixmultiply's own GEMM threads.
//!
//! Options: `--only PATTERN` (workloads whose name contains PATTERN, e.g. `sgemm`, `lenet5`),
//! `--threads N`, and `--vs-torch PYTHON [--rounds N] [--torch-script PATH]` (see
//! [`crate::vs_torch`]).

use std::process::{Command, Stdio};

use crate::cpu_workloads::{self, NAMES};
use crate::op1_workloads;
use crate::vs_torch;

/// What one workload's child process reported.
#[derive(Clone, Debug)]
pub struct WorkloadRun {
    /// Its output line, in the reference's format.
    pub line: String,
    /// Its peak resident set size in KiB, where `/proc/self/status` has one.
    pub peak_rss_kib: Option<u64>,
}

/// The options of `bench --cpu`.
#[derive(Clone, Debug)]
pub struct CpuOptions {
    /// The workloads to run (names from [`NAMES`]), in order.
    pub names: Vec<&'static str>,
    /// Threads for rayon's pool and matrixmultiply.
    pub threads: usize,
    /// Python interpreter with torch, for `--vs-torch`.
    pub vs_torch: Option<String>,
    /// Interleaved rounds for `--vs-torch` (each: one Sinew run, one PyTorch run).
    pub rounds: usize,
    /// The reference script.
    pub torch_script: String,
}

/// Every workload: the reference's, then the fixed per-op costs (no PyTorch counterpart).
fn all_names() -> Vec<&'static str> {
    NAMES.iter().chain(&op1_workloads::NAMES).copied().collect()
}

/// Entry point of `bench --cpu ARGS` (`--cpu` already removed from `args`).
pub fn run(args: &[String]) -> Result<(), String> {
    let mut opts = CpuOptions {
        names: all_names(),
        threads: 2,
        vs_torch: None,
        rounds: 3,
        torch_script: concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../../shared/bench/torch_cpu_reference.py"
        )
        .to_string(),
    };
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let mut value = || {
            it.next()
                .cloned()
                .ok_or_else(|| format!("bench --cpu: {arg} needs a value"))
        };
        match arg.as_str() {
            "--worker" => return worker(&value()?, opts.threads),
            "--only" => {
                let pattern = value()?;
                opts.names.retain(|n| n.contains(pattern.as_str()));
                if opts.names.is_empty() {
                    return Err(format!(
                        "bench --cpu: no workload matches {pattern:?} (workloads: {})",
                        all_names().join(", ")
                    ));
                }
            }
            "--threads" => opts.threads = number(arg, &value()?)?,
            "--rounds" => opts.rounds = number(arg, &value()?)?,
            "--vs-torch" => opts.vs_torch = Some(value()?),
            "--torch-script" => opts.torch_script = value()?,
            _ => {
                return Err(format!(
                    "bench --cpu: unknown option {arg:?}; usage: bench --cpu [--only PATTERN] \
                     [--threads N] [--vs-torch PYTHON [--rounds N] [--torch-script PATH]]"
                ));
            }
        }
    }
    if opts.vs_torch.is_some() {
        return vs_torch::run(&opts);
    }
    let mut runs = Vec::new();
    for name in &opts.names {
        let run = run_workload(name, opts.threads)?;
        println!("{}", run.line);
        runs.push((name, run.peak_rss_kib));
    }
    println!("peak RSS (VmHWM, each workload in its own process):");
    for (name, rss) in runs {
        println!("  {name:28} {}", mib(rss));
    }
    println!("{}", threads_line(opts.threads));
    Ok(())
}

/// How threads are set, for the last line of the output.
pub fn threads_line(threads: usize) -> String {
    format!(
        "sinew {}, threads {threads} (rayon global pool of {threads}, MATMUL_NUM_THREADS={threads}), \
         one process per workload",
        env!("CARGO_PKG_VERSION")
    )
}

/// A peak RSS in MiB, or `n/a`.
pub fn mib(kib: Option<u64>) -> String {
    kib.map_or("n/a".into(), |k| format!("{:.1} MiB", k as f64 / 1024.0))
}

fn number(flag: &str, v: &str) -> Result<usize, String> {
    v.parse()
        .ok()
        .filter(|&n| n > 0)
        .ok_or_else(|| format!("bench --cpu: {flag} expects a positive integer, got {v:?}"))
}

/// Runs workload `name` in a child process of this binary and collects its line and peak RSS.
pub fn run_workload(name: &str, threads: usize) -> Result<WorkloadRun, String> {
    let exe = std::env::current_exe().map_err(|e| format!("bench --cpu: {e}"))?;
    let t = threads.to_string();
    let out = Command::new(exe)
        .args(["bench", "--cpu", "--threads", &t, "--worker", name])
        .env("MATMUL_NUM_THREADS", &t)
        .env("RAYON_NUM_THREADS", &t)
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| format!("bench --cpu: could not start the worker for {name}: {e}"))?;
    if !out.status.success() {
        return Err(format!("bench --cpu: {name} failed ({})", out.status));
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout
        .lines()
        .find(|l| vs_torch::parse_line(l).is_some())
        .ok_or_else(|| format!("bench --cpu: no result line from {name}: {stdout:?}"))?;
    Ok(WorkloadRun {
        line: line.to_string(),
        peak_rss_kib: vs_torch::parse_peak_rss(&stdout),
    })
}

/// The child's side: runs one workload on a pool of `threads` and prints its line, then
/// `peak-rss-kib N`.
fn worker(name: &str, threads: usize) -> Result<(), String> {
    let name = all_names()
        .into_iter()
        .find(|n| *n == name)
        .ok_or_else(|| format!("bench --cpu: unknown workload {name:?}"))?;
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build_global()
        .map_err(|e| format!("bench --cpu: rayon pool: {e}"))?;
    let line = cpu_workloads::run(name).map_err(|e| format!("bench --cpu: {name}: {e}"))?;
    // Written, not `println!`: a reader that closes the pipe early (`| head -1`) is no panic.
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let rss = peak_rss_kib().map(|kib| format!("{}{kib}\n", vs_torch::PEAK_RSS_MARKER));
    let _ = write!(out, "{line}\n{}", rss.unwrap_or_default());
    Ok(())
}

/// This process's peak resident set size (`VmHWM`) in KiB; `None` off Linux.
fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}
