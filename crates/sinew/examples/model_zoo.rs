//! Prints every zoo model with its parameter count (1000 classes for the ImageNet models, 10 for
//! the others). Where torchvision has the model, the count is torchvision's (checked in
//! `crates/sinew-nn/tests/suite/zoo.rs`).
//!
//! `cargo run --release -p sinew --example model_zoo [-- --quick]`

use sinew::nn::zoo::*;
use sinew::prelude::*;

type Builder = fn() -> Result<Box<dyn Module>>;

fn main() -> Result<()> {
    let models: [(&str, Builder); 18] = [
        ("perceptron (784 inputs)", || {
            Ok(Box::new(Perceptron::new(784)?))
        }),
        ("logistic regression", || {
            Ok(Box::new(logistic_regression(784, 10)?))
        }),
        ("mlp 784-512-512-10", || {
            Ok(Box::new(mlp(&[784, 512, 512, 10])?))
        }),
        ("lenet5", || Ok(Box::new(lenet5(10)?))),
        ("alexnet", || Ok(Box::new(alexnet(1000)?))),
        ("vgg11", || Ok(Box::new(vgg11(false, 1000)?))),
        ("vgg11_bn", || Ok(Box::new(vgg11(true, 1000)?))),
        ("vgg13", || Ok(Box::new(vgg13(false, 1000)?))),
        ("vgg13_bn", || Ok(Box::new(vgg13(true, 1000)?))),
        ("vgg16", || Ok(Box::new(vgg16(false, 1000)?))),
        ("vgg16_bn", || Ok(Box::new(vgg16(true, 1000)?))),
        ("vgg19", || Ok(Box::new(vgg19(false, 1000)?))),
        ("vgg19_bn", || Ok(Box::new(vgg19(true, 1000)?))),
        ("resnet18", || Ok(Box::new(resnet18(1000)?))),
        ("resnet34", || Ok(Box::new(resnet34(1000)?))),
        ("resnet50", || Ok(Box::new(resnet50(1000)?))),
        ("resnet20 (CIFAR)", || Ok(Box::new(resnet20(10)?))),
        ("resnet56 (CIFAR)", || Ok(Box::new(resnet56(10)?))),
    ];
    // `--quick` (CI) skips the ImageNet-sized models: initialising their 0.1-1.3 billion
    // weights takes most of a minute on two cores.
    let quick = std::env::args().any(|a| a == "--quick");
    println!("{:<26} {:>12}", "model", "parameters");
    for (name, build) in models {
        let imagenet = ["alexnet", "vgg", "resnet18", "resnet34", "resnet50"];
        if quick && imagenet.iter().any(|m| name.starts_with(m)) {
            continue;
        }
        println!("{:<26} {:>12}", name, build()?.num_parameters());
    }
    Ok(())
}
