//! Defines a small CNN as a plain struct, trains it on MNIST for one epoch with SGD and
//! momentum in a hand-written loop, then measures its test accuracy.
//!
//! `cargo run --release -p sinew --example mnist_cnn [-- --quick] [--steps N]`
//!
//! Full mode (one epoch, 938 steps of 64 images, about 15 s on 2 CPU cores) reaches 96.7%
//! test accuracy. `--quick` takes 20 steps and tests on 512 images. Reads
//! `../shared/data/mnist` (or `--data DIR`, `$SINEW_DATA`); writes no files.

mod common;

use std::sync::Arc;

use sinew::data::Subset;
use sinew::prelude::*;

struct Net {
    features: Sequential,
    classifier: Sequential,
}

impl Module for Net {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        self.classifier.forward(&self.features.forward(x)?)
    }
    fn visit<'a>(&'a self, v: &mut Visit<'a, '_>) {
        v.child("features", &self.features);
        v.child("classifier", &self.classifier);
    }
}

fn main() -> Result<()> {
    let quick = common::quick();
    let steps = common::arg("--steps", if quick { 20 } else { usize::MAX })?;
    manual_seed(0);
    let dir = common::dataset_dir("mnist", "train-images-idx3-ubyte")?;
    let config = LoaderConfig {
        batch_size: 64,
        shuffle: true,
        ..Default::default()
    };
    let loader = DataLoader::new(Arc::new(Mnist::load(&dir, Split::Train)?), config)?;
    let model = Net {
        features: Sequential::new()
            .append(Conv2d::new(1, 8, 3)?)
            .append(BatchNorm2d::new(8)?)
            .append(ReLU)
            .append(MaxPool2d::new(2)),
        classifier: Sequential::new()
            .append(Flatten::new())
            .append(Dropout::new(0.25))
            .append(Linear::new(8 * 13 * 13, 10)?),
    };
    println!("{}", model.summary([1, 1, 28, 28])?);

    let mut opt = sgd(model.named_parameters(), SgdConfig::new(0.05).momentum(0.9));
    model.train();
    for (step, batch) in loader.epoch(0).take(steps).enumerate() {
        let batch = batch?;
        let loss = F::cross_entropy(&model.forward(&batch.inputs)?, &batch.targets)?;
        opt.zero_grad();
        loss.backward()?;
        opt.step()?;
        if step % 100 == 0 {
            println!("step {step:4}  loss {:.4}", loss.item()?);
        }
    }

    // Test: evaluation mode (dropout off, batch norm's running statistics), no gradients.
    let test = Mnist::load(&dir, Split::Test)?;
    let n = if quick { 512 } else { test.len() };
    let test = DataLoader::new(
        Arc::new(Subset::new(test, (0..n).collect())?),
        LoaderConfig::default(),
    )?;
    model.eval();
    let _guard = no_grad();
    let mut correct = 0;
    for batch in test.epoch(0) {
        let batch = batch?;
        let predicted = model
            .forward(&batch.inputs)?
            .argmax(1, false)?
            .to_vec::<i64>()?;
        let targets = batch.targets.to_vec::<i64>()?;
        correct += predicted
            .iter()
            .zip(&targets)
            .filter(|(p, t)| p == t)
            .count();
    }
    println!("test accuracy: {:.2}%", 100.0 * correct as f64 / n as f64);
    Ok(())
}
