//! A small CNN (two conv-BN-ReLU-pool blocks, dropout, two linear layers) on Fashion-MNIST,
//! trained with Adam, random horizontal flips and a cosine schedule; prints the test accuracy
//! of each class from the confusion matrix.
//!
//! `cargo run --release -p sinew --example fashion_mnist_cnn [-- --quick] [--epochs N]`
//!
//! Full mode (6 epochs, about 90 s each on 2 CPU cores) reaches 91.9% test accuracy.
//! `--quick` trains 2 epochs on 512 images. Reads `../shared/data/fashion-mnist` (or
//! `--data DIR`, `$SINEW_DATA`); writes no files.

mod common;

use std::sync::Arc;

use sinew::data::Subset;
use sinew::data::mnist::FASHION_MNIST_CLASSES as CLASSES;
use sinew::nn::Conv2dOptions;
use sinew::optim::schedule::CosineAnnealingLr;
use sinew::prelude::*;
use sinew::train::callbacks::LrScheduler;
use sinew::train::metrics::confusion_matrix;

/// The first `n` examples of `split` (all when `None`); training images are flipped at random.
fn loader(split: Split, n: Option<usize>) -> Result<DataLoader<Subset<Mnist>>> {
    let dir = common::dataset_dir("fashion-mnist", "train-images-idx3-ubyte")?;
    let data = Mnist::load(dir, split)?;
    let n = n.unwrap_or(data.len()).min(data.len());
    let train = split == Split::Train;
    let config = LoaderConfig {
        batch_size: 64,
        shuffle: train,
        ..Default::default()
    };
    let mut transform = Compose::new().then(ToTensor);
    if train {
        transform = transform.then(RandomHorizontalFlip::default());
    }
    let transform = transform.then(Normalize::new(&[0.2860], &[0.3530])?);
    Ok(
        DataLoader::new(Arc::new(Subset::new(data, (0..n).collect())?), config)?
            .with_transform(transform),
    )
}

/// 3x3 convolution keeping the size, batch norm, ReLU, 2x2 max pooling (halves the size).
fn block(cin: usize, cout: usize) -> Result<Sequential> {
    let conv = Conv2d::with_options(cin, cout, (3, 3), Conv2dOptions::default().padding(1))?;
    Ok(Sequential::new()
        .append(conv)
        .append(BatchNorm2d::new(cout)?)
        .append(ReLU)
        .append(MaxPool2d::new(2)))
}

fn main() -> Result<()> {
    let quick = common::quick();
    let epochs = common::arg("--epochs", if quick { 2 } else { 6 })?;
    let limit = quick.then_some(512);
    manual_seed(0);
    let (train, test) = (loader(Split::Train, limit)?, loader(Split::Test, limit)?);

    // [N, 1, 28, 28] -> [N, 16, 14, 14] -> [N, 32, 7, 7] -> 128 -> 10.
    let model = Sequential::new()
        .append(block(1, 16)?)
        .append(block(16, 32)?)
        .append(Flatten::new())
        .append(Dropout::new(0.3))
        .append(Linear::new(32 * 7 * 7, 128)?)
        .append(ReLU)
        .append(Linear::new(128, 10)?);
    println!("{}", model.summary([1, 1, 28, 28])?);

    let mut opt = adam(model.named_parameters(), AdamConfig::new(2e-3));
    let rule = CosineAnnealingLr {
        t_max: epochs as u64,
        eta_min: 0.0,
    };
    let schedule = LrSchedule::new(&mut opt, rule)?;
    let mut trainer = Trainer::new(&model, opt, F::cross_entropy)
        .metric(accuracy())
        .callback(LrScheduler { schedule });
    trainer.fit(&train, Some(&test), epochs)?;

    // Per-class accuracy: the diagonal of the confusion matrix over each row's total.
    let outputs = trainer.predict(&test)?;
    let subset = test.dataset();
    let labels = subset
        .indices()
        .iter()
        .map(|&i| i64::from(subset.inner().labels()[i]));
    let targets = Tensor::from_vec(labels.collect::<Vec<_>>(), [subset.len()])?;
    let cm = confusion_matrix(&outputs, &targets, CLASSES.len())?;
    for (c, row) in cm.iter().enumerate() {
        let total: u64 = row.iter().sum();
        let acc = 100.0 * row[c] as f64 / total.max(1) as f64;
        println!("{:>12}  {acc:6.2}%  ({} images)", CLASSES[c], total);
    }
    let correct: u64 = (0..CLASSES.len()).map(|c| cm[c][c]).sum();
    println!(
        "test accuracy: {:.2}%",
        100.0 * correct as f64 / subset.len() as f64
    );
    Ok(())
}
