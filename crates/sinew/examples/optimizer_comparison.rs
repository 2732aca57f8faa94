//! Eight optimizers on one task: a 2-64-64-2 tanh MLP classifying generated two spirals
//! (400 points), trained full-batch from the same initial weights (`manual_seed` before each
//! model is built) with a learning rate suited to each. Every step goes through
//! `step_with(closure)`, PyTorch's `optimizer.step(closure)`, so L-BFGS (one iteration a step,
//! with a strong-Wolfe line search that evaluates the loss a few times) steps as the others do;
//! the number of loss evaluations is printed beside each. Prints the initial loss (identical for
//! all, which checks the shared start), the final training loss and accuracy, and plots the
//! loss curves.
//!
//! `cargo run --release -p sinew --example optimizer_comparison [-- --quick] [--steps N]`
//!
//! Writes `optimizer_comparison.png` (under `target/examples-out`, or `--out DIR`): log10 of
//! the training loss per step, in two panels (SGD variants, adaptive and quasi-Newton methods)
//! with Adam in both as the common reference; the plot palette has six colours, too few for
//! eight curves.

mod common;

use std::f64::consts::PI;

use sinew::optim::{
    AdagradConfig, LbfgsConfig, NadamConfig, RmspropConfig, adagrad, lbfgs, nadam, rmsprop,
};
use sinew::prelude::*;
use sinew::train::plot::{Canvas, Series, draw_chart};

/// Two interleaved spirals, `n` points each, with a little Gaussian noise; labels 0 and 1.
fn two_spirals(n: usize, seed: u64) -> Result<(Tensor, Tensor)> {
    let noise = Generator::new(seed)
        .normal([2 * n, 2], 0.0, 0.02, DType::F32, &Device::cpu())?
        .to_vec::<f32>()?;
    let (mut xs, mut ys) = (Vec::with_capacity(4 * n), Vec::with_capacity(2 * n));
    for class in 0..2 {
        for i in 0..n {
            let t = i as f64 / n as f64;
            let (r, angle) = (0.1 + 0.9 * t, 3.0 * PI * t + class as f64 * PI);
            let k = 2 * (class * n + i);
            xs.push((r * angle.cos()) as f32 + noise[k]);
            xs.push((r * angle.sin()) as f32 + noise[k + 1]);
            ys.push(class as i64);
        }
    }
    Ok((
        Tensor::from_vec(xs, [2 * n, 2])?,
        Tensor::from_vec(ys, [2 * n])?,
    ))
}

fn build_model() -> Result<Sequential> {
    manual_seed(0); // every optimizer starts from the same weights
    Ok(Sequential::new()
        .append(Linear::new(2, 64)?)
        .append(nn::Tanh)
        .append(Linear::new(64, 64)?)
        .append(nn::Tanh)
        .append(Linear::new(64, 2)?))
}

/// The optimizers, by name, each with its learning rate.
fn make_optimizer(name: &str, model: &Sequential) -> Result<Box<dyn Optimizer>> {
    let p = model.named_parameters();
    Ok(match name {
        "SGD" => Box::new(sgd(p, SgdConfig::new(0.5))),
        "SGD+momentum" => Box::new(sgd(p, SgdConfig::new(0.05).momentum(0.9))),
        "Nesterov" => Box::new(sgd(p, SgdConfig::new(0.05).momentum(0.9).nesterov(true))),
        "Adagrad" => Box::new(adagrad(
            p,
            AdagradConfig {
                lr: 0.05,
                ..Default::default()
            },
        )),
        "RMSprop" => Box::new(rmsprop(
            p,
            RmspropConfig {
                lr: 0.003,
                ..Default::default()
            },
        )),
        "Adam" => Box::new(adam(p, AdamConfig::new(0.01))),
        "NAdam" => Box::new(nadam(
            p,
            NadamConfig {
                lr: 0.01,
                ..Default::default()
            },
        )),
        "L-BFGS" => Box::new(lbfgs(
            p,
            // One iteration a step; PyTorch's evaluation budget for it (max_iter * 5 / 4 = 1)
            // would leave the line search no second evaluation, and the run stalls (PyTorch's
            // too): allow 25.
            LbfgsConfig::new(1.0)
                .max_iter(1)
                .max_eval(25)
                .history_size(20)
                .strong_wolfe(),
        )),
        other => return Err(Error::invalid("optimizer", format!("unknown {other}"))),
    })
}

const OPTIMIZERS: [&str; 8] = [
    "SGD",
    "SGD+momentum",
    "Nesterov",
    "Adagrad",
    "RMSprop",
    "Adam",
    "NAdam",
    "L-BFGS",
];

fn main() -> Result<()> {
    let steps: usize = common::arg("--steps", if common::quick() { 40 } else { 1500 })?;
    let every = (steps / 150).max(1); // points per curve: about 150
    let (x, y) = two_spirals(200, 1)?;
    let labels = y.to_vec::<i64>()?;

    println!(
        "two spirals, {} points, 2-64-64-2 tanh MLP, {steps} full-batch steps",
        labels.len()
    );
    println!(
        "{:<13} {:>8} {:>12} {:>12} {:>10} {:>7}",
        "optimizer", "lr", "initial loss", "final loss", "accuracy", "evals"
    );
    let mut curves = Vec::new();
    for name in OPTIMIZERS {
        let model = build_model()?;
        let mut opt = make_optimizer(name, &model)?;
        let lr = opt.lrs().first().copied().unwrap_or(f64::NAN);
        let mut points = Vec::new();
        let mut initial = f64::NAN;
        let mut evals = 0;
        let mut closure = || {
            evals += 1;
            let loss = F::cross_entropy(&model.forward(&x)?, &y)?;
            loss.backward()?;
            Ok(loss)
        };
        for step in 0..steps {
            // The loss before the step (L-BFGS's first evaluation of it).
            let value = opt.step_with(&mut closure)?.item()?;
            if step == 0 {
                initial = value;
            }
            if step % every == 0 {
                points.push((step as f64, value.max(1e-12).log10()));
            }
        }
        // Final loss and accuracy of the trained weights.
        let logits = with_no_grad(|| model.forward(&x))?;
        let final_loss = F::cross_entropy(&logits, &y)?.item()?;
        let predicted = logits.argmax(1, false)?.to_vec::<i64>()?;
        let correct = predicted
            .iter()
            .zip(&labels)
            .filter(|(p, t)| p == t)
            .count();
        let acc = correct as f64 / labels.len() as f64;
        println!("{name:<13} {lr:>8} {initial:>12.4} {final_loss:>12.3e} {acc:>10.3} {evals:>7}");
        curves.push(Series {
            label: name.into(),
            points,
        });
    }

    // Two panels of at most six curves (the palette's colours): the SGD family and the adaptive
    // methods, with Adam first (the same colour) in both.
    let pick = |names: &[&str]| -> Vec<Series> {
        let find = |n: &&str| curves.iter().find(|s| s.label == *n);
        let copy = |s: &Series| Series {
            label: s.label.clone(),
            points: s.points.clone(),
        };
        names.iter().filter_map(find).map(copy).collect()
    };
    let path = common::out_path("optimizer_comparison.png")?;
    let mut canvas = Canvas::new(1000, 420)?;
    let left = pick(&["Adam", "SGD", "SGD+momentum", "Nesterov"]);
    let right = pick(&["Adam", "Adagrad", "RMSprop", "NAdam", "L-BFGS"]);
    draw_chart(
        &mut canvas,
        (0, 0, 500, 420),
        "log10 training loss: SGD family",
        "step",
        &left,
    );
    draw_chart(
        &mut canvas,
        (500, 0, 500, 420),
        "log10 training loss: adaptive, L-BFGS",
        "step",
        &right,
    );
    canvas.save_png(&path)?;
    println!("wrote {}", path.display());
    Ok(())
}
