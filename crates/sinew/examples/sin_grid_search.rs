//! Grid search for regressing `y = sin(x)` on [-π, π]: width {8, 32} × hidden layers {1, 2}
//! × activation {tanh, relu} × optimizer {SGD + momentum, Adam}, 16 configurations trained
//! full-batch from the same seed on 200 points, scored on 50 held-out validation points.
//! Prints the configurations sorted by validation MSE and plots the true sine with the fits of
//! the best and the worst configuration.
//!
//! `cargo run --release -p sinew --example sin_grid_search [-- --quick] [--steps N]`
//!
//! Writes `sin_grid_search.png` (under `target/examples-out`, or `--out DIR`).

mod common;

use std::f64::consts::PI;

use sinew::prelude::*;
use sinew::train::plot::{Canvas, Series, draw_chart};

#[derive(Clone, Copy, Debug)]
struct Config {
    width: usize,
    depth: usize,
    tanh: bool,
    adam: bool,
}

impl Config {
    fn name(&self) -> String {
        let act = if self.tanh { "tanh" } else { "relu" };
        let opt = if self.adam { "Adam" } else { "SGD+mom" };
        format!("w{} d{} {act} {opt}", self.width, self.depth)
    }

    /// 1 -> width (-> width) -> 1, the activation after every hidden layer.
    fn model(&self) -> Result<Sequential> {
        let mut model = Sequential::new();
        let mut fan_in = 1;
        for _ in 0..self.depth {
            model.push(Box::new(Linear::new(fan_in, self.width)?));
            if self.tanh {
                model.push(Box::new(nn::Tanh));
            } else {
                model.push(Box::new(ReLU));
            }
            fan_in = self.width;
        }
        Ok(model.append(Linear::new(fan_in, 1)?))
    }

    fn optimizer(&self, model: &Sequential) -> Box<dyn Optimizer> {
        if self.adam {
            Box::new(adam(model.named_parameters(), AdamConfig::new(0.01)))
        } else {
            Box::new(sgd(
                model.named_parameters(),
                SgdConfig::new(0.05).momentum(0.9),
            ))
        }
    }
}

/// `n` points uniform on [-π, π] (sorted, for plotting) and sin at them, as `[n, 1]` tensors.
fn sine_points(g: &mut Generator, n: usize) -> Result<(Tensor, Tensor)> {
    let mut xs = g
        .uniform([n], -PI, PI, DType::F32, &Device::cpu())?
        .to_vec::<f32>()?;
    xs.sort_by(f32::total_cmp);
    let x = Tensor::from_vec(xs, [n, 1])?;
    let y = x.sin()?;
    Ok((x, y))
}

fn mse(model: &Sequential, x: &Tensor, y: &Tensor) -> Result<f64> {
    with_no_grad(|| F::mse_loss(&model.forward(x)?, y, F::Reduction::Mean)?.item())
}

fn main() -> Result<()> {
    let steps: usize = common::arg("--steps", if common::quick() { 30 } else { 2000 })?;
    let mut g = Generator::new(0);
    let (x_train, y_train) = sine_points(&mut g, 200)?;
    let (x_val, y_val) = sine_points(&mut g, 50)?;

    let mut results = Vec::new();
    for width in [8, 32] {
        for depth in [1, 2] {
            for tanh in [true, false] {
                for adam in [false, true] {
                    let config = Config {
                        width,
                        depth,
                        tanh,
                        adam,
                    };
                    manual_seed(42); // the same seed for every configuration
                    let model = config.model()?;
                    let mut opt = config.optimizer(&model);
                    for _ in 0..steps {
                        opt.zero_grad();
                        let pred = model.forward(&x_train)?;
                        F::mse_loss(&pred, &y_train, F::Reduction::Mean)?.backward()?;
                        opt.step()?;
                    }
                    let train = mse(&model, &x_train, &y_train)?;
                    let val = mse(&model, &x_val, &y_val)?;
                    results.push((config, train, val, model));
                }
            }
        }
    }
    // NaN (a diverged run) sorts last.
    results.sort_by(|a, b| a.2.total_cmp(&b.2));
    println!("{steps} full-batch steps per configuration, sorted by validation MSE:");
    println!(
        "{:>4}  {:<22} {:>12} {:>12}",
        "rank", "configuration", "train MSE", "val MSE"
    );
    for (i, (config, train, val, _)) in results.iter().enumerate() {
        println!(
            "{:>4}  {:<22} {train:>12.3e} {val:>12.3e}",
            i + 1,
            config.name()
        );
    }

    // The true curve and the best and worst fits on a dense grid.
    let grid = Tensor::linspace(-PI, PI, 200, DType::F32, &Device::cpu())?.reshape([200, 1])?;
    let xs = grid.to_vec_f64()?;
    let curve = |label: String, ys: Vec<f64>| Series {
        label,
        points: xs.iter().copied().zip(ys).collect(),
    };
    let mut series = vec![curve("sin(x)".into(), grid.sin()?.to_vec_f64()?)];
    let mut title = String::from("sin(x) and the fits of the");
    let ends = [results.first(), results.last()];
    for (tag, (config, _, _, model)) in ["best", "worst"].iter().zip(ends.into_iter().flatten()) {
        let ys = with_no_grad(|| model.forward(&grid))?.to_vec_f64()?;
        series.push(curve(tag.to_string(), ys));
        let sep = if *tag == "best" { "" } else { " and the" };
        title.push_str(&format!("{sep} {tag} ({})", config.name()));
        println!("{tag}: {}", config.name());
    }
    let path = common::out_path("sin_grid_search.png")?;
    let mut canvas = Canvas::new(720, 420)?;
    draw_chart(&mut canvas, (0, 0, 720, 420), &title, "x", &series);
    canvas.save_png(&path)?;
    println!("wrote {}", path.display());
    Ok(())
}
