//! The first-layer convolution filters of a trained LeNet-5 as a picture, and what they make
//! of one test digit. Trains LeNet-5 on MNIST for one epoch (or loads `--weights
//! FILE.safetensors`, e.g. one written by `saliency --save`; `--save FILE.safetensors` keeps
//! the trained weights) and prints its test accuracy.
//!
//! `cargo run --release -p sinew --example filters [-- --quick] [--weights W] [--save W]`
//!
//! Writes `filters.png` (the six 5x5 filters of the first convolution, each normalised to
//! [0, 1]: bright = positive weight, dark = negative) and `feature_maps.png` (a test digit,
//! then the six maps the first convolution and its ReLU make of it) in `target/examples-out`
//! (or `--out DIR`). Reads `../shared/data/mnist` (or `--data DIR`, or `$SINEW_DATA`).

mod common;

use sinew::prelude::*;
use sinew::train::plot::image_grid;

fn main() -> Result<()> {
    manual_seed(0);
    let quick = common::quick();
    // 1. A trained LeNet-5: loaded, or trained for one epoch (2000 examples with --quick).
    let (model, test) = common::trained_lenet(
        if quick { 2000 } else { usize::MAX },
        if quick { 500 } else { 10_000 },
    )?;
    model.eval();

    // 2. The filters: the first convolution's weight `[6, 1, 5, 5]` (key `0.weight`, as in
    // PyTorch's `nn.Sequential`), each filter shifted and scaled to [0, 1] on its own.
    let state = model.state_dict();
    let weight = state
        .get("0.weight")
        .ok_or(Error::invalid("lenet5", "no 0.weight"))?;
    println!("conv1 weight {}", weight.shape());
    let lo = weight.min(&[1, 2, 3], true)?;
    let hi = weight.max(&[1, 2, 3], true)?;
    let filters = weight.sub(&lo)?.div(&hi.sub(&lo)?.add_scalar(1e-12)?)?;
    let (lows, highs) = (lo.to_vec::<f32>()?, hi.to_vec::<f32>()?);
    for (i, (l, h)) in lows.iter().zip(&highs).enumerate() {
        println!("filter {i}: weights in [{l:+.3}, {h:+.3}]");
    }
    let path = common::out_path("filters.png")?;
    image_grid(&filters, 6, 24, &path)?; // 5x5 pixels, each drawn as a 24x24 block
    println!(
        "wrote {} (conv1's 6 filters, 5x5, upscaled 24x)",
        path.display()
    );

    // 3. Feature maps: one test digit through the first convolution (layer 0 of the
    // Sequential) and a ReLU: `[1, 1, 28, 28]` -> `[1, 6, 28, 28]`.
    let batch = test.batch(0, 0)?;
    let digit = batch.inputs.narrow(0, 0, 1)?;
    let label = batch.targets.narrow(0, 0, 1)?.to_vec::<i64>()?;
    let conv1 = model.get(0).ok_or(Error::invalid("lenet5", "no layer 0"))?;
    let maps = with_no_grad(|| conv1.forward(&digit)?.relu())?;
    let means = maps.mean(&[2, 3], false)?.to_vec::<f32>()?;
    println!("digit {label:?}: mean activation of each map {means:.3?}");
    let maps = maps.reshape([6, 1, 28, 28])?; // channels as a batch of grey images
    let path = common::out_path("feature_maps.png")?;
    image_grid(&Tensor::cat(&[digit, maps], 0)?, 7, 4, &path)?;
    println!("wrote {} (a digit, then conv1's 6 maps)", path.display());
    Ok(())
}
