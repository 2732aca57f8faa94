//! `sinew-devtools <command>`: developer commands that need the framework itself.
//!
//! Commands: `gradcheck [--cases N] [--op NAME]` (finite-difference checks of every
//! differentiable op), `bench` (CPU vs GPU timings; `bench --cpu [--only PATTERN]
//! [--vs-torch PYTHON [--rounds N]]`: the PyTorch CPU reference's workloads), and `trace` (GPU
//! builds: one training step's phases timed with CUDA events). Usually run
//! through `cargo xtask gradcheck ...` / `cargo xtask bench ...`, which spawn this binary so
//! that the `xtask` package itself (kernels, cuda-stub) never compiles the framework.

mod bench;
mod cpu_bench;
mod cpu_workloads;
mod gpu_trace;
mod gpu_workloads;
mod gradcheck;
mod op1_workloads;
mod vs_torch;

use std::process::ExitCode;

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let command = args.next().unwrap_or_default();
    let rest: Vec<String> = args.collect();
    let result = match command.as_str() {
        "gradcheck" => gradcheck::run(&rest),
        "bench" => bench::run(&rest),
        "trace" => gpu_trace::run(&rest),
        _ => Err(format!(
            "unknown command {command:?}; usage: sinew-devtools <gradcheck [--cases N] [--op NAME] | bench [--cpu] ... | trace [--model M] [--batch N] [--mixed]>"
        )),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(msg) => {
            eprintln!("sinew-devtools: {msg}");
            ExitCode::FAILURE
        }
    }
}
