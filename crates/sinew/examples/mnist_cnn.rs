//! Defines a small CNN as a plain struct and trains it on MNIST for one epoch with SGD and
//! momentum. Reads `../shared/data/mnist` or `$SINEW_DATA/mnist`.
//!
//! `cargo run --release -p sinew --example mnist_cnn [-- --steps N]`

use std::sync::Arc;

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
    let data = std::env::var("SINEW_DATA").unwrap_or_else(|_| "../shared/data".into());
    let train = Arc::new(Mnist::load(format!("{data}/mnist"), Split::Train)?);
    let config = LoaderConfig {
        batch_size: 64,
        shuffle: true,
        ..Default::default()
    };
    let loader = DataLoader::new(train, config)?;
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
    let steps = std::env::args()
        .skip_while(|a| a != "--steps")
        .nth(1)
        .and_then(|s| s.parse().ok());
    let mut opt = sgd(model.named_parameters(), SgdConfig::new(0.05).momentum(0.9));
    model.train();
    for (step, batch) in loader
        .epoch(0)
        .take(steps.unwrap_or(usize::MAX))
        .enumerate()
    {
        let batch = batch?;
        let loss = F::cross_entropy(&model.forward(&batch.inputs)?, &batch.targets)?;
        opt.zero_grad();
        loss.backward()?;
        opt.step()?;
        if step % 100 == 0 {
            println!("step {step:4}  loss {:.4}", loss.item()?);
        }
    }
    Ok(())
}
