//! LeNet-5 on MNIST with `Trainer`: SGD with momentum, accuracy, early stopping.
//! Reads `../shared/data/mnist` or `$SINEW_DATA/mnist`.
//!
//! `cargo run --release -p sinew --example lenet_mnist [-- --epochs N] [--plot history.png]`

use std::sync::Arc;

use sinew::nn::zoo::lenet5;
use sinew::prelude::*;

fn main() -> Result<()> {
    let data = std::env::var("SINEW_DATA").unwrap_or_else(|_| "../shared/data".into());
    let arg = |name: &str| std::env::args().skip_while(|a| a != name).nth(1);
    let epochs = arg("--epochs").and_then(|s| s.parse().ok());
    let load = |split, shuffle| -> Result<DataLoader<Mnist>> {
        let config = LoaderConfig {
            batch_size: 64,
            shuffle,
            ..Default::default()
        };
        Ok(DataLoader::new(
            Arc::new(Mnist::load(format!("{data}/mnist"), split)?),
            config,
        )?)
    };
    let (train, test) = (load(Split::Train, true)?, load(Split::Test, false)?);
    let model = lenet5(10)?;
    let opt = sgd(model.named_parameters(), SgdConfig::new(0.05).momentum(0.9));
    let mut trainer = Trainer::new(&model, opt, F::cross_entropy)
        .metric(accuracy())
        .callback(EarlyStopping::new("val_loss", 2).restore_best_weights(true));
    let history = trainer.fit(&train, Some(&test), epochs.unwrap_or(5))?;
    println!("test accuracy per epoch: {:?}", history.get("val_accuracy"));
    if let Some(path) = arg("--plot") {
        sinew::train::plot::plot_history(&history, &path)?;
        println!("wrote {path}");
    }
    Ok(())
}
