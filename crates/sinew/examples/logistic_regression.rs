//! Logistic regression (one `Linear(2, 2)` layer + cross-entropy, i.e. two-class softmax
//! regression) on generated 2-D points, and what L2 regularisation does to it:
//!
//! (a) on linearly separable data the loss can always be lowered by scaling the weights up, so
//!     without L2 the parameter norm keeps growing; with `loss + λ/2 ‖θ‖²` it levels off.
//!     Both runs' norms per epoch go to one PNG.
//! (b) on a noisier, non-separable version of the data, λ is chosen from a grid by 5-fold
//!     stratified cross-validation (`cross_validate`, `Trainer`, SGD with `weight_decay(λ)`,
//!     which adds the same λθ to the gradient as the explicit penalty of (a)).
//!
//! `cargo run --release -p sinew --example logistic_regression [-- --quick]`
//! (options: `--epochs N` for (a), `--cv-points N --cv-epochs N` for (b), `--out DIR`)
//!
//! Writes `logistic_regression_norm.png` (under `target/examples-out`, or `--out DIR`).

mod common;

use std::sync::Arc;

use sinew::data::{Input, Target, VecDataset, stratified_k_fold};
use sinew::prelude::*;
use sinew::train::Verbosity;
use sinew::train::cross_validate;
use sinew::train::plot::{Canvas, Series, draw_chart};

/// `n` points uniform in [-1, 1]², labelled by the sign of `score = x₁ - 0.6 x₀ - 0.1 + noise·ε`
/// (ε ~ N(0, 1)), keeping only points with `|x₁ - 0.6 x₀ - 0.1| >= margin`. A margin and no
/// noise give linearly separable classes; noise makes them overlap.
fn make_data(n: usize, margin: f32, noise: f64, seed: u64) -> Result<(Vec<[f32; 2]>, Vec<i64>)> {
    let mut g = Generator::new(seed);
    let cpu = Device::cpu();
    let xy = g
        .uniform([4 * n, 2], -1.0, 1.0, DType::F32, &cpu)?
        .to_vec::<f32>()?;
    let eps = g.randn([4 * n], DType::F32, &cpu)?.to_vec::<f32>()?;
    let (mut points, mut labels) = (Vec::new(), Vec::new());
    for (p, e) in xy.chunks(2).zip(eps) {
        let score = p[1] - 0.6 * p[0] - 0.1;
        if score.abs() >= margin && points.len() < n {
            points.push([p[0], p[1]]);
            labels.push(i64::from(score + noise as f32 * e > 0.0));
        }
    }
    Ok((points, labels))
}

/// ‖θ‖ over every parameter (weight and bias).
fn param_norm(model: &dyn Module) -> Result<f64> {
    let sq = with_no_grad(|| F::l2_penalty(model))?;
    Ok(sq.map(|t| t.item()).transpose()?.unwrap_or(0.0).sqrt())
}

fn main() -> Result<()> {
    let quick = common::quick();
    let epochs: usize = common::arg("--epochs", if quick { 30 } else { 2000 })?;
    let cv_epochs = common::arg("--cv-epochs", if quick { 3 } else { 60 })?;

    // (a) Full-batch gradient descent on separable data, with and without an explicit L2 term.
    let (points, labels) = make_data(200, 0.1, 0.0, 1)?;
    let n = labels.len();
    let x = Tensor::from_vec(points.concat(), [n, 2])?;
    let y = Tensor::from_vec(labels, [n])?;
    let mut curves = Vec::new();
    for (label, lambda) in [("no L2", 0.0), ("lambda 0.01", 0.01)] {
        manual_seed(0); // the same initial weights for both runs
        let model = Linear::new(2, 2)?;
        let mut opt = sgd(model.named_parameters(), SgdConfig::new(0.5));
        let mut norms = Vec::with_capacity(epochs);
        let mut ce = f64::NAN;
        for epoch in 1..=epochs {
            opt.zero_grad();
            let data_loss = F::cross_entropy(&model.forward(&x)?, &y)?;
            let mut loss = data_loss.clone();
            if let Some(sq) = F::l2_penalty(&model)? {
                loss = loss.add(&sq.mul_scalar(0.5 * lambda)?)?;
            }
            loss.backward()?;
            opt.step()?;
            ce = data_loss.item()?;
            norms.push((epoch as f64, param_norm(&model)?));
        }
        let half = (epochs / 2).max(1);
        let at = |e: usize| norms.get(e - 1).map_or(f64::NAN, |p| p.1);
        println!(
            "(a) {label:<11} ‖θ‖ after {half} epochs: {:.3}, after {epochs}: {:.3} \
             (cross-entropy {ce:.4})",
            at(half),
            at(epochs)
        );
        curves.push(Series {
            label: label.into(),
            points: norms,
        });
    }
    let path = common::out_path("logistic_regression_norm.png")?;
    let mut canvas = Canvas::new(640, 400)?;
    let title = "parameter norm, separable data (full-batch GD, lr 0.5)";
    draw_chart(&mut canvas, (0, 0, 640, 400), title, "epoch", &curves);
    canvas.save_png(&path)?;
    println!("wrote {}", path.display());

    // (b) Choosing λ by 5-fold cross-validation on noisy, non-separable data.
    let cv_points = common::arg("--cv-points", if quick { 100 } else { 300 })?;
    let (points, labels) = make_data(cv_points, 0.0, 0.3, 2)?;
    let samples: Vec<Sample> = points
        .iter()
        .zip(&labels)
        .map(|(p, &c)| Sample {
            input: Input::Features(p.to_vec()),
            target: Target::Class(c),
        })
        .collect();
    let dataset = Arc::new(VecDataset::new(samples));
    let folds = stratified_k_fold(&labels, 5, 0)?;
    let config = LoaderConfig {
        batch_size: 32,
        shuffle: true,
        num_workers: 0,
        ..Default::default()
    };
    println!(
        "\n(b) 5-fold cross-validation, {} noisy points, {cv_epochs} epochs of SGD (lr 0.1, batch 32)",
        labels.len()
    );
    println!(
        "{:>8}  {:>20}  {:>20}",
        "lambda", "val log-loss", "val accuracy"
    );
    let mut rows = Vec::new();
    for lambda in [0.0, 1e-4, 1e-3, 1e-2, 1e-1, 1.0] {
        let report = cross_validate(dataset.clone(), &folds, config.clone(), |_, train, val| {
            manual_seed(0);
            let model = Linear::new(2, 2)?;
            let opt = sgd(
                model.named_parameters(),
                SgdConfig::new(0.1).weight_decay(lambda),
            );
            let mut trainer = Trainer::new(&model, opt, F::cross_entropy)
                .metric(accuracy())
                .verbosity(Verbosity::Silent);
            trainer.fit(train, None, cv_epochs)?;
            trainer.evaluate(val)
        })?;
        let stat = |k: &str| {
            (
                report.mean.get(k).copied().unwrap_or(f64::NAN),
                report.std.get(k).copied().unwrap_or(f64::NAN),
            )
        };
        let ((loss, loss_sd), (acc, acc_sd)) = (stat("loss"), stat("accuracy"));
        println!("{lambda:>8}  {loss:>11.4} ± {loss_sd:<6.4}  {acc:>11.3} ± {acc_sd:.3}");
        rows.push((lambda, loss, loss_sd));
    }
    let best = rows
        .iter()
        .copied()
        .min_by(|a, b| a.1.total_cmp(&b.1))
        .ok_or_else(|| Error::invalid("cross-validation", "no results"))?;
    println!(
        "chosen lambda (lowest mean validation log-loss): {} (log-loss {:.4})",
        best.0, best.1
    );
    // The one-standard-deviation rule: the strongest λ whose loss is within one std of the best.
    let close: Vec<f64> = rows
        .iter()
        .filter(|r| r.1 <= best.1 + best.2)
        .map(|r| r.0)
        .collect();
    let strongest = close.iter().copied().fold(best.0, f64::max);
    println!(
        "lambdas within one std of the best: {close:?}; the most regularised of them: {strongest}"
    );
    Ok(())
}
