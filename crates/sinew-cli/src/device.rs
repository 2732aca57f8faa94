//! `--device cpu|cuda|cuda:N`: the CUDA backend registers itself when the binary is built with
//! the `cuda` feature; without it, asking for a GPU is a one-line error saying how to build it.

use sinew::prelude::*;

/// Parses `--device`.
pub fn parse(device: &str) -> Result<Device> {
    match device {
        "cpu" => Ok(Device::cpu()),
        d if d == "cuda" || d.starts_with("cuda:") => {
            let n: usize = d
                .strip_prefix("cuda:")
                .unwrap_or("0")
                .parse()
                .map_err(|_| {
                    Error::invalid("--device", format!("{d:?}: expected cpu, cuda or cuda:N"))
                })?;
            cuda_device(n)
        }
        other => Err(Error::invalid(
            "--device",
            format!("{other:?}: expected cpu, cuda or cuda:N"),
        )),
    }
}

#[cfg(feature = "cuda")]
fn cuda_device(n: usize) -> Result<Device> {
    sinew::cuda::register();
    Device::cuda(n)
}

#[cfg(not(feature = "cuda"))]
fn cuda_device(_: usize) -> Result<Device> {
    Err(Error::invalid(
        "--device",
        "this sinew was built without CUDA; build it with `cargo build --release -p sinew-cli --features cuda`",
    ))
}
