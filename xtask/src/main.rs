//! `cargo xtask <command>`: project automation.
//!
//! Commands: `kernels [--check] [-v]` (CUDA C to PTX), `cuda-stub` (stub driver library for
//! building the `cuda` feature without a GPU), `cuda-emu` (a driver library that runs the kernels
//! on the CPU, for the GPU tests on a machine without a GPU), and `gradcheck [--cases N] [--op NAME]`,
//! `bench [--cuda] [--only PATTERN] [--no-cpu] [--cpu-all] [--quick] [--vs-torch PYTHON]` (CPU vs
//! GPU vs PyTorch eager) and `bench --cpu [--only PATTERN] [--threads N]
//! [--vs-torch PYTHON [--rounds N]]` (the workloads of `../shared/bench/torch_cpu_reference.py`
//! in its output format, optionally interleaved with it), which run the `sinew-devtools` binary
//! (this package has no dependencies, so the kernel commands never compile the framework).

mod cuda_emu;
mod cuda_stub;
mod devtools;
mod kernels;
mod nvcc;
#[cfg(test)]
mod test_suites;

use std::process::ExitCode;

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let command = args.next().unwrap_or_default();
    let rest: Vec<String> = args.collect();
    let result = match command.as_str() {
        "kernels" => kernels::run(&rest),
        "cuda-stub" => cuda_stub::run(&rest),
        "cuda-emu" => cuda_emu::run(&rest),
        "gradcheck" | "bench" => devtools::run(&command, &rest),
        _ => Err(format!(
            "unknown command {command:?}; usage: cargo xtask <kernels [--check] [-v] | cuda-stub | cuda-emu | gradcheck [--cases N] [--op NAME] | bench [--cuda] [--only P] [--no-cpu] [--quick] [--vs-torch PYTHON] | bench --cpu [--only P] [--vs-torch PYTHON [--rounds N]]>"
        )),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(msg) => {
            eprintln!("xtask: {msg}");
            ExitCode::FAILURE
        }
    }
}
