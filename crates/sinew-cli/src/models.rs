//! Models by name, sized for a dataset.

use sinew::nn::zoo::{
    Perceptron, alexnet, lenet5, logistic_regression, mlp, resnet18, resnet20, vgg11, vgg16,
};
use sinew::prelude::*;

use crate::args::ModelName;
use crate::datasets::DataInfo;

/// The smallest image side torchvision's AlexNet accepts (three stride-2 poolings after a
/// stride-4 convolution).
const ALEXNET_MIN_SIDE: usize = 63;

/// The input `name` is fed: the dataset's, except that AlexNet gets images smaller than 63x63
/// resized to 64x64.
pub fn input_for(name: ModelName, info: DataInfo) -> DataInfo {
    let [c, h, w] = info.input;
    if name == ModelName::Alexnet && info.image && h.min(w) < ALEXNET_MIN_SIDE {
        return DataInfo {
            input: [c, 64, 64],
            ..info
        };
    }
    info
}

/// A perceptron for `info`, which must be two classes of feature rows.
pub fn perceptron(info: &DataInfo) -> Result<Perceptron> {
    if info.image || info.classes != Some(2) {
        return Err(Error::invalid(
            "model",
            "the perceptron separates two classes of feature rows (e.g. --dataset xor, moons, or a 2-class csv)",
        ));
    }
    Perceptron::new(info.input[0])
}

/// Builds `name` for inputs and outputs of `info` (one output for regression).
pub fn build(name: ModelName, info: &DataInfo) -> Result<Box<dyn Module>> {
    let inputs: usize = info.input.iter().product();
    let outputs = info.classes.unwrap_or(1);
    let needs = |want: [usize; 3], what: &str| -> Result<()> {
        if info.image && info.input == want {
            Ok(())
        } else {
            Err(Error::invalid(
                "model",
                format!(
                    "{name:?} needs {what} images ({want:?}); this dataset gives {:?}",
                    info.input
                ),
            ))
        }
    };
    let colour = |what: &str| -> Result<()> {
        if info.image && info.input[0] == 3 {
            Ok(())
        } else {
            Err(Error::invalid(
                "model",
                format!("{name:?} needs colour images ({what})"),
            ))
        }
    };
    Ok(match name {
        ModelName::Perceptron => Box::new(perceptron(info)?),
        ModelName::Logreg => Box::new(logistic_regression(inputs, outputs)?),
        ModelName::Mlp => {
            let hidden = if info.image { 512 } else { 64 };
            Box::new(mlp(&[inputs, hidden, hidden, outputs])?)
        }
        ModelName::Lenet5 => {
            needs([1, 28, 28], "28x28 grey")?;
            Box::new(lenet5(outputs)?)
        }
        ModelName::Resnet20 => {
            needs([3, 32, 32], "32x32 colour")?;
            Box::new(resnet20(outputs)?)
        }
        ModelName::Resnet18 => {
            colour("e.g. CIFAR-10")?;
            Box::new(resnet18(outputs)?)
        }
        ModelName::Alexnet => {
            colour("e.g. CIFAR-10")?;
            Box::new(alexnet(outputs)?)
        }
        ModelName::Vgg11 => {
            colour("e.g. CIFAR-10")?;
            Box::new(vgg11(true, outputs)?)
        }
        ModelName::Vgg16 => {
            colour("e.g. CIFAR-10")?;
            Box::new(vgg16(true, outputs)?)
        }
    })
}

/// `sinew summary`: the layer table for one example.
pub fn summary(name: ModelName, info: &DataInfo) -> Result<()> {
    let info = &input_for(name, *info);
    let model = build(name, info)?;
    let mut shape = vec![1];
    if info.image {
        shape.extend(info.input);
    } else {
        shape.push(info.input[0]);
    }
    println!("{}", sinew::nn::summary(model.as_ref(), shape)?);
    Ok(())
}
