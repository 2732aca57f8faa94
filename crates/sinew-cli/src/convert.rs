//! `sinew convert`: weights from one format to the other (PyTorch's `torch.save` files, old or
//! new, and safetensors), optionally one part of a checkpoint.

use sinew::Result;

use crate::args::ConvertArgs;

/// Reads `args.input`, keeps the `--select` part, writes `args.output` in the format its
/// extension names, and prints what it wrote.
pub fn convert(args: &ConvertArgs) -> Result<()> {
    let mut sd = sinew::nn::load_weights(&args.input)?;
    if let Some(prefix) = &args.select {
        sd = sd.select(prefix);
        if sd.is_empty() {
            return Err(sinew::Error::invalid(
                "convert",
                format!("{} has no tensors under {prefix:?}", args.input.display()),
            ));
        }
    }
    sinew::nn::save_weights(&sd, &args.output)?;
    println!(
        "converted {} tensors: {} -> {}",
        sd.len(),
        args.input.display(),
        args.output.display()
    );
    Ok(())
}
