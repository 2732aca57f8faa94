//! LeNet-5 on MNIST with `Trainer`: normalised inputs, SGD with momentum and a cosine
//! learning-rate schedule, accuracy, early stopping.
//!
//! `cargo run --release -p sinew --example lenet_mnist [-- --quick] [--epochs N] [--plot FILE]`
//!
//! Full mode (10 epochs, about 30 s each on 2 CPU cores) reaches 99.3% test accuracy.
//! `--quick` trains 2 epochs on 512 images. Reads `../shared/data/mnist` (or `--data DIR`,
//! `$SINEW_DATA`); `--plot history.png` writes the loss/accuracy/lr curves to
//! `target/examples-out/history.png` (or under `--out DIR`).

mod common;

use std::sync::Arc;

use sinew::data::Subset;
use sinew::nn::zoo::lenet5;
use sinew::optim::schedule::CosineAnnealingLr;
use sinew::prelude::*;
use sinew::train::callbacks::LrScheduler;

/// The first `n` examples of `split` (all when `None`), normalised with MNIST's mean and std.
fn loader(split: Split, n: Option<usize>, shuffle: bool) -> Result<DataLoader<Subset<Mnist>>> {
    let data = Mnist::load(
        common::dataset_dir("mnist", "train-images-idx3-ubyte")?,
        split,
    )?;
    let n = n.unwrap_or(data.len()).min(data.len());
    let config = LoaderConfig {
        batch_size: 64,
        shuffle,
        ..Default::default()
    };
    let transform = Compose::new()
        .then(ToTensor)
        .then(Normalize::new(&[0.1307], &[0.3081])?);
    Ok(
        DataLoader::new(Arc::new(Subset::new(data, (0..n).collect())?), config)?
            .with_transform(transform),
    )
}

fn main() -> Result<()> {
    let quick = common::quick();
    let epochs = common::arg("--epochs", if quick { 2 } else { 10 })?;
    let limit = quick.then_some(512); // --quick: 8 batches, same code path
    manual_seed(0);
    let (train, test) = (
        loader(Split::Train, limit, true)?,
        loader(Split::Test, limit, false)?,
    );

    let model = lenet5(10)?;
    let mut opt = sgd(
        model.named_parameters(),
        SgdConfig::new(0.05).momentum(0.9).weight_decay(5e-4),
    );
    // The lr follows half a cosine from 0.05 down to 0 over the run.
    let rule = CosineAnnealingLr {
        t_max: epochs as u64,
        eta_min: 0.0,
    };
    let schedule = LrSchedule::new(&mut opt, rule)?;
    let mut trainer = Trainer::new(&model, opt, F::cross_entropy)
        .metric(accuracy())
        .callback(LrScheduler { schedule })
        .callback(EarlyStopping::new("val_loss", 3).restore_best_weights(true));
    let history = trainer.fit(&train, Some(&test), epochs)?;

    let per_epoch: Vec<String> = history
        .get("val_accuracy")
        .iter()
        .map(|a| format!("{:.2}", 100.0 * a))
        .collect();
    println!("test accuracy per epoch (%): {}", per_epoch.join(" "));
    if common::flag("--plot") {
        let path = common::out_path(&common::arg("--plot", String::new())?)?;
        sinew::train::plot::plot_history(&history, &path)?;
        println!("wrote {}", path.display());
    }
    // EarlyStopping put back the weights of the epoch with the lowest validation loss.
    let acc = trainer
        .evaluate(&test)?
        .get("accuracy")
        .copied()
        .unwrap_or(f64::NAN);
    println!("test accuracy: {:.2}%", 100.0 * acc);
    Ok(())
}
