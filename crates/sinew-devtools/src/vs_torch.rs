//! `bench --cpu --vs-torch PYTHON [--rounds N]`: Sinew and the PyTorch reference
//! (`../shared/bench/torch_cpu_reference.py`, run unchanged with PYTHON) alternately, A B A B …,
//! then per workload the median over rounds of each run's median for both, and the ratio
//! Sinew/PyTorch of those times (for sgemm too: the time ratio is the inverse of the GFLOP/s
//! ratio).
//!
//! The script runs inside a two-line wrapper (`runpy`) that prints its peak RSS afterwards
//! (`resource.getrusage`), so PyTorch's memory is reported next to Sinew's per-workload peaks.
//!
//! The script inherits this process's environment. On a loaded machine (more runnable threads
//! than cores) PyTorch's OpenMP threads spin at barriers and lose whole scheduler slices: a
//! 256x256 `torch.mm` measured 14 ms instead of 0.4 ms next to one busy process.
//! `OMP_WAIT_POLICY=PASSIVE` in the environment avoids that; the value is printed with the table.

use std::process::{Command, Stdio};
use std::time::Instant;

use crate::cpu_bench::{self, CpuOptions, mib, threads_line};
use crate::cpu_workloads::{Stats, median};

/// Prefix of the line carrying a run's peak RSS in KiB (printed by the Sinew worker and by the
/// wrapper around the PyTorch script).
pub const PEAK_RSS_MARKER: &str = "peak-rss-kib ";

/// Runs the reference script given as `sys.argv[1]` unchanged, then prints its peak RSS in KiB.
const TORCH_WRAPPER: &str = "import resource, runpy, sys\n\
script = sys.argv[1]; sys.argv = [script]; runpy.run_path(script, run_name='__main__')\n\
print('peak-rss-kib', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, flush=True)";

/// One parsed output line of the reference format.
#[derive(Clone, Debug, PartialEq)]
pub struct Line {
    /// Workload name (`sgemm 1024`, `mlp step b64`, ...).
    pub name: String,
    /// Median, min, max in ms.
    pub stats: Stats,
    /// The throughput column, e.g. `77.9 GFLOP/s`, `5402 samples/s`, `412.3 us`.
    pub extra: String,
}

/// Parses `NAME median X ms  (min A, max B)  EXTRA`; `None` for any other line.
pub fn parse_line(line: &str) -> Option<Line> {
    let (name, rest) = line.split_once(" median ")?;
    let (med, rest) = rest.split_once(" ms  (min ")?;
    let (lo, rest) = rest.split_once(", max ")?;
    let (hi, extra) = rest.split_once(')')?;
    Some(Line {
        name: name.trim().to_string(),
        stats: Stats {
            median: med.trim().parse().ok()?,
            min: lo.trim().parse().ok()?,
            max: hi.trim().parse().ok()?,
        },
        extra: extra.trim().to_string(),
    })
}

/// The KiB value of the first [`PEAK_RSS_MARKER`] line of `output`.
pub fn parse_peak_rss(output: &str) -> Option<u64> {
    output
        .lines()
        .find_map(|l| l.strip_prefix(PEAK_RSS_MARKER))
        .and_then(|v| v.trim().parse().ok())
}

/// One PyTorch run: its lines, peak RSS and version line.
struct TorchRun {
    lines: Vec<Line>,
    peak_rss_kib: Option<u64>,
    version: Option<String>,
}

/// Runs `cmd` (the interpreter `python` on `script`, stderr passed through) and returns its
/// standard output; an error names the interpreter or the script when it cannot run or fails.
pub fn python_output(mut cmd: Command, python: &str, script: &str) -> Result<String, String> {
    let out = cmd
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| format!("bench --vs-torch: could not run {python}: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "bench --vs-torch: {script} failed ({})",
            out.status
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn run_torch(python: &str, script: &str) -> Result<TorchRun, String> {
    let mut cmd = Command::new(python);
    cmd.args(["-c", TORCH_WRAPPER, script]);
    let stdout = python_output(cmd, python, script)?;
    Ok(TorchRun {
        lines: stdout.lines().filter_map(parse_line).collect(),
        peak_rss_kib: parse_peak_rss(&stdout),
        version: stdout
            .lines()
            .find(|l| l.starts_with("torch "))
            .map(String::from),
    })
}

/// The numeric part and unit of a throughput column (`"77.9 GFLOP/s"` -> `(77.9, "GFLOP/s")`).
fn split_rate(extra: &str) -> Option<(f64, &str)> {
    let (v, unit) = extra.split_once(' ')?;
    Some((v.parse().ok()?, unit))
}

/// The median of the throughput columns of `lines`, with its unit.
fn median_rate(lines: &[&Line]) -> String {
    let rates: Vec<(f64, &str)> = lines.iter().filter_map(|l| split_rate(&l.extra)).collect();
    match rates.first() {
        Some((_, unit)) => {
            let v = median(&rates.iter().map(|r| r.0).collect::<Vec<_>>());
            let digits = usize::from(*unit != "samples/s");
            format!("{v:.digits$} {unit}")
        }
        None => "-".into(),
    }
}

/// The first `Model name:` line of `lscpu`.
fn cpu_model() -> String {
    Command::new("lscpu")
        .output()
        .ok()
        .and_then(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .find(|l| l.trim_start().starts_with("Model name:"))
                .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        })
        .unwrap_or_else(|| "Model name: unknown (no lscpu)".into())
}

/// Runs `opts.rounds` rounds of (Sinew, PyTorch) and prints the comparison table.
pub fn run(opts: &CpuOptions) -> Result<(), String> {
    let python = opts.vs_torch.as_deref().unwrap_or("python3");
    let mut sinew: Vec<Vec<cpu_bench::WorkloadRun>> = Vec::new();
    let mut torch: Vec<TorchRun> = Vec::new();
    for round in 1..=opts.rounds {
        let t = Instant::now();
        let runs = opts
            .names
            .iter()
            .map(|n| cpu_bench::run_workload(n, opts.threads))
            .collect::<Result<Vec<_>, _>>()?;
        let sinew_s = t.elapsed().as_secs_f64();
        sinew.push(runs);
        let t = Instant::now();
        torch.push(run_torch(python, &opts.torch_script)?);
        eprintln!(
            "round {round}/{}: sinew {sinew_s:.1} s, pytorch {:.1} s",
            opts.rounds,
            t.elapsed().as_secs_f64()
        );
    }
    println!("{}", cpu_model());
    println!(
        "{:28} {:>10} {:>10} {:>11} {:>16} {:>16} {:>11}",
        "workload", "sinew ms", "torch ms", "sinew/torch", "sinew rate", "torch rate", "sinew RSS"
    );
    for (i, name) in opts.names.iter().enumerate() {
        let s_lines: Vec<Line> = sinew
            .iter()
            .filter_map(|r| parse_line(&r[i].line))
            .collect();
        let t_lines: Vec<&Line> = torch
            .iter()
            .filter_map(|r| r.lines.iter().find(|l| l.name == *name))
            .collect();
        let s_med = median(&s_lines.iter().map(|l| l.stats.median).collect::<Vec<_>>());
        let t_med = median(&t_lines.iter().map(|l| l.stats.median).collect::<Vec<_>>());
        let rss = sinew.iter().filter_map(|r| r[i].peak_rss_kib).max();
        // Workloads the reference lacks (the fixed per-op costs) get `-` for PyTorch.
        let (t_ms, ratio) = if t_lines.is_empty() {
            ("-".to_string(), "-".to_string())
        } else {
            (format!("{t_med:.3}"), format!("{:.2}x", s_med / t_med))
        };
        println!(
            "{name:28} {s_med:>10.3} {t_ms:>10} {ratio:>11} {:>16} {:>16} {:>11}",
            median_rate(&s_lines.iter().collect::<Vec<_>>()),
            median_rate(&t_lines),
            mib(rss)
        );
    }
    println!(
        "medians over {} interleaved rounds of each run's median; ratio = Sinew time / PyTorch \
         time (sgemm: = PyTorch GFLOP/s / Sinew GFLOP/s); sinew RSS: max over rounds, one \
         process per workload",
        opts.rounds
    );
    let torch_rss = torch.iter().filter_map(|r| r.peak_rss_kib).max();
    println!(
        "pytorch peak RSS (whole script, one process): {}; OMP_WAIT_POLICY={}",
        mib(torch_rss),
        std::env::var("OMP_WAIT_POLICY").unwrap_or_else(|_| "(unset)".into())
    );
    if let Some(v) = torch.iter().find_map(|r| r.version.clone()) {
        println!("{v}");
    }
    println!("{}", threads_line(opts.threads));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_reference_line() {
        let line = "sgemm 1024                   median    26.802 ms  (min 26.313, max 31.077)  80.1 GFLOP/s";
        let parsed = parse_line(line).unwrap();
        assert_eq!(parsed.name, "sgemm 1024");
        assert_eq!(
            parsed.stats,
            Stats {
                median: 26.802,
                min: 26.313,
                max: 31.077
            }
        );
        assert_eq!(parsed.extra, "80.1 GFLOP/s");
        assert_eq!(split_rate(&parsed.extra), Some((80.1, "GFLOP/s")));
        let infer = parse_line(
            "mlp infer b1                 median     0.206 ms  (min 0.190, max 1.870)  206.4 us",
        )
        .unwrap();
        assert_eq!(
            (infer.name.as_str(), infer.stats.max),
            ("mlp infer b1", 1.87)
        );
        assert_eq!(infer.extra, "206.4 us");
        assert!(parse_line("torch 2.5.1+cpu, threads 2, mkldnn True").is_none());
    }

    #[test]
    fn parses_the_peak_rss_marker() {
        assert_eq!(parse_peak_rss("x\npeak-rss-kib 23552\n"), Some(23552));
        assert_eq!(parse_peak_rss("no marker"), None);
    }
}
