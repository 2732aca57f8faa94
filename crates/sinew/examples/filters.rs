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

use std::path::PathBuf;
use std::sync::Arc;

use sinew::nn::zoo::lenet5;
use sinew::nn::{load_safetensors, save_safetensors};
use sinew::prelude::*;
use sinew::train::plot::image_grid;

fn main() -> Result<()> {
    manual_seed(0);
    let quick = common::quick();
    let dir = common::dataset_dir("mnist", "train-images-idx3-ubyte")?;
    let test = Mnist::load(&dir, Split::Test)?;
    let test = Arc::new(test.subset((0..if quick { 500 } else { 10_000 }).collect())?);
    let config = LoaderConfig {
        batch_size: 250,
        ..Default::default()
    };
    let test = DataLoader::new(test, config)?;

    // 1. A trained LeNet-5: loaded, or trained for one epoch (2,000 examples with --quick).
    let model = lenet5(10)?;
    let opt = sgd(model.named_parameters(), SgdConfig::new(0.05).momentum(0.9));
    let mut trainer = Trainer::new(&model, opt, F::cross_entropy).metric(accuracy());
    if common::flag("--weights") {
        let path: PathBuf = common::arg("--weights", PathBuf::new())?;
        let report = model.load_state_dict(&load_safetensors(&path)?, true)?;
        println!("loaded {} ({report})", path.display());
    } else {
        let train = Mnist::load(&dir, Split::Train)?;
        let n = if quick { 2000 } else { train.len() };
        let train = Arc::new(train.subset((0..n).collect())?);
        let config = LoaderConfig {
            batch_size: 64,
            shuffle: true,
            ..Default::default()
        };
        let train = DataLoader::new(train, config)?;
        trainer.fit(&train, None::<&DataLoader<Mnist>>, 1)?;
    }
    let logs = trainer.evaluate(&test)?;
    let accuracy = logs.get("accuracy").copied().unwrap_or(f64::NAN);
    println!(
        "test accuracy {accuracy:.4} ({} test images)",
        test.dataset().len()
    );
    if common::flag("--save") {
        let path: PathBuf = common::arg("--save", PathBuf::new())?;
        save_safetensors(&model.state_dict(), &path)?;
        println!("wrote {}", path.display());
    }
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
