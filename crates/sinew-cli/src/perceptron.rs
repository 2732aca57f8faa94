//! `sinew train --model perceptron`: Rosenblatt's rule, one example at a time, not gradients.

use sinew::data::{Input, Target};
use sinew::prelude::*;

use crate::args::TrainArgs;
use crate::datasets::{DataInfo, DynDataset};
use crate::models;

/// The whole dataset as `x [n, features]` and 0/1 labels `y [n]`.
fn tensors(data: &DynDataset) -> Result<(Tensor, Tensor)> {
    let (mut xs, mut ys) = (Vec::new(), Vec::new());
    let mut width = None;
    for i in 0..data.len() {
        let sample = data.get(i)?;
        let (Input::Features(f), Target::Class(c @ (0 | 1))) = (sample.input, sample.target) else {
            return Err(Error::invalid(
                "perceptron",
                format!("example {i} is not a feature row with class 0 or 1"),
            ));
        };
        if *width.get_or_insert(f.len()) != f.len() {
            return Err(Error::invalid(
                "perceptron",
                format!("example {i} has {} features, not {:?}", f.len(), width),
            ));
        }
        xs.extend(f);
        ys.push(c as f32);
    }
    let n = ys.len();
    Ok((
        Tensor::from_vec(xs, [n, width.unwrap_or(0)])?,
        Tensor::from_vec(ys, [n])?,
    ))
}

/// Fraction of `data` that `model` (0/1 outputs `[n, 1]`) labels correctly.
fn accuracy(model: &dyn Module, data: &DynDataset) -> Result<f64> {
    let (x, y) = tensors(data)?;
    let predicted = with_no_grad(|| model.forward(&x))?
        .flatten_all()?
        .to_vec::<f32>()?;
    let labels = y.to_vec::<f32>()?;
    let right = predicted
        .iter()
        .zip(&labels)
        .filter(|(p, l)| p == l)
        .count();
    Ok(right as f64 / (labels.len().max(1) as f64))
}

/// Prints the test accuracy of a perceptron (`sinew eval`).
pub fn report(model: &dyn Module, test: &DynDataset) -> Result<()> {
    println!("test accuracy: {:.2}%", 100.0 * accuracy(model, test)?);
    Ok(())
}

/// Runs the perceptron rule for `--epochs` passes (learning rate `--lr`, default 1), stopping
/// early after a pass without mistakes; the examples are visited in a fresh order each epoch.
pub fn train(args: &TrainArgs, info: &DataInfo, train: DynDataset, test: DynDataset) -> Result<()> {
    let model = models::perceptron(info)?;
    let (x, y) = tensors(&train)?;
    let lr = args.lr.unwrap_or(1.0);
    let mut g = Generator::new(args.seed);
    for epoch in 1..=args.epochs {
        let order = g.randperm(y.elem_count(), &Device::cpu())?;
        let (xe, ye) = (x.index_select(0, &order)?, y.index_select(0, &order)?);
        let mistakes = model.train_epoch(&xe, &ye, lr)?;
        println!("epoch {epoch}: {mistakes} mistakes");
        if mistakes == 0 {
            println!("converged: a pass without mistakes");
            break;
        }
    }
    if let Some(path) = &args.save {
        sinew::nn::save_weights(&model.state_dict(), path)?;
        println!("weights: {}", path.display());
    }
    report(&model, &test)
}
