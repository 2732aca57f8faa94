//! Command-line handling shared by the examples: `--quick` (CI's short mode), `--data DIR`,
//! `--out DIR`, and `--NAME VALUE` options.
#![allow(dead_code)] // each example uses a different part

use std::path::PathBuf;
use std::sync::Arc;

use sinew::data::Subset;
use sinew::nn::zoo::lenet5;
use sinew::nn::{load_safetensors, save_safetensors};
use sinew::prelude::*;

/// True when `--NAME` was passed (e.g. `flag("--quick")`).
pub fn flag(name: &str) -> bool {
    std::env::args().any(|a| a == name)
}

/// The value after `--NAME`, parsed; `default` when absent. A value that does not parse is an
/// error naming the option.
pub fn arg<T: std::str::FromStr>(name: &'static str, default: T) -> Result<T> {
    let args: Vec<String> = std::env::args().collect();
    match args.iter().position(|a| a == name) {
        None => Ok(default),
        Some(i) => args
            .get(i + 1)
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| Error::invalid(name, "missing or unparsable value")),
    }
}

/// CI's short mode: `--quick` (few steps, small data; checks that the example runs, not its
/// accuracy).
pub fn quick() -> bool {
    flag("--quick")
}

/// The dataset root: `--data DIR`, else `$SINEW_DATA`, else `../shared/data`.
pub fn data_root() -> PathBuf {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == "--data")
        .and_then(|i| args.get(i + 1))
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("SINEW_DATA").map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from("../shared/data"))
}

/// The directory of a dataset under the root, or a clear error saying where to put it.
pub fn dataset_dir(name: &str, must_contain: &str) -> Result<PathBuf> {
    let dir = data_root().join(name);
    let present =
        dir.join(must_contain).exists() || dir.join(format!("{must_contain}.gz")).exists();
    if present {
        Ok(dir)
    } else {
        Err(Error::invalid(
            "dataset",
            format!(
                "{name} not found: put {must_contain} and the rest of the dataset in {} \
                 (or pass --data DIR, or set SINEW_DATA)",
                dir.display()
            ),
        ))
    }
}

/// Where pictures go: `--out DIR` (default `target/examples-out`), created if needed, joined
/// with `file`.
pub fn out_path(file: &str) -> Result<PathBuf> {
    let dir: PathBuf = arg("--out", PathBuf::from("target/examples-out"))?;
    std::fs::create_dir_all(&dir)
        .map_err(|e| Error::invalid("--out", format!("{}: {e}", dir.display())))?;
    Ok(dir.join(file))
}

/// The LeNet-5 that `saliency` and `filters` look inside: loaded from `--weights FILE`, or
/// trained for one epoch (SGD, momentum 0.9, batch 64) on the first `train_examples` MNIST
/// training images; saved to `--save FILE` when asked. Prints its accuracy on the first
/// `test_examples` test images and returns it with their loader (batches of 250).
pub fn trained_lenet(
    train_examples: usize,
    test_examples: usize,
) -> Result<(Sequential, DataLoader<Subset<Mnist>>)> {
    let dir = dataset_dir("mnist", "train-images-idx3-ubyte")?;
    let first = |split, n: usize| -> Result<Arc<Subset<Mnist>>> {
        let data = Mnist::load(&dir, split)?;
        let n = n.min(data.len());
        Ok(Arc::new(data.subset((0..n).collect())?))
    };
    let config = |batch_size, shuffle| LoaderConfig {
        batch_size,
        shuffle,
        ..Default::default()
    };
    let test = DataLoader::new(first(Split::Test, test_examples)?, config(250, false))?;
    let model = lenet5(10)?;
    let accuracy = {
        let opt = sgd(model.named_parameters(), SgdConfig::new(0.05).momentum(0.9));
        let mut trainer = Trainer::new(&model, opt, F::cross_entropy).metric(accuracy());
        if flag("--weights") {
            let path: PathBuf = arg("--weights", PathBuf::new())?;
            let report = model.load_state_dict(&load_safetensors(&path)?, true)?;
            println!("loaded {} ({report})", path.display());
        } else {
            let train = DataLoader::new(first(Split::Train, train_examples)?, config(64, true))?;
            trainer.fit(&train, None, 1)?;
        }
        let logs = trainer.evaluate(&test)?;
        logs.get("accuracy").copied().unwrap_or(f64::NAN)
    };
    println!(
        "test accuracy {accuracy:.4} ({} test images)",
        test.dataset().len()
    );
    if flag("--save") {
        let path: PathBuf = arg("--save", PathBuf::new())?;
        save_safetensors(&model.state_dict(), &path)?;
        println!("wrote {}", path.display());
    }
    Ok((model, test))
}
