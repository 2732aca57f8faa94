//! `gradcheck` and `bench`: forwarded to the `sinew-devtools` binary with `cargo run`, so that
//! this package never depends on (or compiles) the framework.

use std::process::Command;

/// Runs `cargo run -p sinew-devtools -- <command> <args>`: the dev profile for `gradcheck`
/// (like the tests), release for `bench`. `bench --cuda` builds the GPU column
/// (`--features cuda`; needs the CUDA driver or `cargo xtask cuda-stub`). Other arguments are
/// forwarded: `bench [--only PATTERN] [--no-cpu] [--cpu-all] [--quick] [--vs-torch PYTHON]`
/// prints issue 14's table (GEMM, convolutions and training steps, CPU vs GPU vs PyTorch
/// eager); `bench --cpu [--only PATTERN] [--threads N] [--vs-torch PYTHON [--rounds N]
/// [--torch-script PATH]]` runs the PyTorch CPU reference's workloads, one child process per
/// workload (for its peak RSS), on 2 threads by default, and with `--vs-torch` alternates with
/// the reference script and prints the median ratio Sinew/PyTorch per workload.
pub fn run(command: &str, args: &[String]) -> Result<(), String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.args(["run", "--quiet"]);
    let mut forwarded = Vec::new();
    for arg in args {
        if command == "bench" && arg == "--cuda" {
            cmd.args(["--features", "cuda"]);
        } else {
            forwarded.push(arg.as_str());
        }
    }
    if command == "bench" {
        cmd.arg("--release");
    }
    cmd.args(["-p", "sinew-devtools", "--", command])
        .args(forwarded);
    let status = cmd
        .status()
        .map_err(|e| format!("{command}: could not run cargo: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("{command}: sinew-devtools failed ({status})"))
    }
}
