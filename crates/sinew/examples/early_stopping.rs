//! Early stopping against overfitting: an over-parameterised 2-256-256-2 ReLU MLP (about 67k
//! parameters) on 200 noisy two-moons points (120 train / 40 validation / 40 test), trained by
//! `Trainer` with `EarlyStopping::new("val_loss", patience).restore_best_weights(true)`.
//! Prints the epoch training stopped at, the best validation loss (and that the restored
//! weights reproduce it) and the test accuracy of the restored model.
//!
//! `cargo run --release -p sinew --example early_stopping [-- --quick] [--epochs N] [--patience P]`
//!
//! Writes `early_stopping_history.png` (under `target/examples-out`, or `--out DIR`).

mod common;

use std::f64::consts::PI;
use std::sync::Arc;

use sinew::data::{Input, Target, VecDataset, random_split};
use sinew::prelude::*;
use sinew::train::Verbosity;
use sinew::train::plot::plot_history;

/// `n` two-moons points (scikit-learn's `make_moons`) with Gaussian noise of std `noise`.
fn two_moons(n: usize, noise: f64, seed: u64) -> Result<Vec<Sample>> {
    let mut g = Generator::new(seed);
    let cpu = Device::cpu();
    let t = g.uniform([n], 0.0, PI, DType::F64, &cpu)?.to_vec::<f64>()?;
    let e = g
        .normal([n, 2], 0.0, noise, DType::F64, &cpu)?
        .to_vec::<f64>()?;
    let samples = (0..n)
        .map(|i| {
            let class = (i % 2) as i64;
            let (x, y) = if class == 0 {
                (t[i].cos(), t[i].sin())
            } else {
                (1.0 - t[i].cos(), 0.5 - t[i].sin())
            };
            let features = vec![(x + e[2 * i]) as f32, (y + e[2 * i + 1]) as f32];
            Sample {
                input: Input::Features(features),
                target: Target::Class(class),
            }
        })
        .collect();
    Ok(samples)
}

fn main() -> Result<()> {
    let quick = common::quick();
    let max_epochs: usize = common::arg("--epochs", if quick { 5 } else { 1000 })?;
    let patience: usize = common::arg("--patience", 30)?;

    let data = Arc::new(VecDataset::new(two_moons(200, 0.3, 0)?));
    let parts = random_split(data, &[120, 40, 40], 1)?;
    let config = LoaderConfig {
        batch_size: 32,
        num_workers: 0,
        ..Default::default()
    };
    let loader = |i: usize, shuffle: bool| -> Result<_> {
        let part = parts
            .get(i)
            .cloned()
            .ok_or_else(|| Error::invalid("split", "missing part"))?;
        Ok(DataLoader::new(
            Arc::new(part),
            LoaderConfig {
                shuffle,
                ..config.clone()
            },
        )?)
    };
    let (train, val, test) = (loader(0, true)?, loader(1, false)?, loader(2, false)?);

    manual_seed(0);
    let model = Sequential::new()
        .append(Linear::new(2, 256)?)
        .append(ReLU)
        .append(Linear::new(256, 256)?)
        .append(ReLU)
        .append(Linear::new(256, 2)?);
    println!(
        "model: {} parameters for 120 training points",
        model.num_parameters()
    );
    let opt = adam(model.named_parameters(), AdamConfig::new(0.01));
    let mut trainer = Trainer::new(&model, opt, F::cross_entropy)
        .metric(accuracy())
        .callback(EarlyStopping::new("val_loss", patience).restore_best_weights(true))
        .verbosity(Verbosity::Silent);
    let history = trainer.fit(&train, Some(&val), max_epochs)?;

    // Every `step`-th epoch of the history, then the summary.
    let step = (history.epochs.len() / 10).max(1);
    for (e, logs) in history
        .epochs
        .iter()
        .enumerate()
        .filter(|(e, _)| e % step == 0)
    {
        let get = |k: &str| logs.get(k).copied().unwrap_or(f64::NAN);
        println!(
            "epoch {:>4}  loss {:.4}  accuracy {:.3}  val_loss {:.4}  val_accuracy {:.3}",
            e + 1,
            get("loss"),
            get("accuracy"),
            get("val_loss"),
            get("val_accuracy")
        );
    }
    let val_losses = history.get("val_loss");
    let (best_epoch, best_loss) = val_losses
        .iter()
        .copied()
        .enumerate()
        .min_by(|a, b| a.1.total_cmp(&b.1))
        .ok_or_else(|| Error::invalid("history", "no epoch ran"))?;
    let ran = history.epochs.len();
    if ran < max_epochs {
        println!(
            "stopped after epoch {ran} of {max_epochs} ({patience} epochs without improvement)"
        );
    } else {
        println!("ran all {max_epochs} epochs (no stop: patience {patience})");
    }
    println!("best val_loss {best_loss:.4} at epoch {}", best_epoch + 1);
    let last = |k: &str| history.last(k).unwrap_or(f64::NAN);
    println!(
        "last epoch:   loss {:.4}  val_loss {:.4}",
        last("loss"),
        last("val_loss")
    );
    let restored = trainer.evaluate(&val)?;
    let get = |logs: &sinew::train::Logs, k: &str| logs.get(k).copied().unwrap_or(f64::NAN);
    println!(
        "restored weights: val_loss {:.4} (the best epoch's)",
        get(&restored, "loss")
    );
    let tested = trainer.evaluate(&test)?;
    println!(
        "test: loss {:.4}  accuracy {:.3} (40 held-out points)",
        get(&tested, "loss"),
        get(&tested, "accuracy")
    );

    let path = common::out_path("early_stopping_history.png")?;
    plot_history(&history, &path)?;
    println!("wrote {}", path.display());
    Ok(())
}
