//! Rosenblatt's perceptron on linearly separable 2-D points: the perceptron rule until an epoch
//! makes no mistake, then the decision regions as a PNG (`target/examples-out/perceptron.png`,
//! or under `--out DIR`).
//!
//! `cargo run --release -p sinew --example perceptron [-- --out DIR]`

mod common;

use sinew::nn::zoo::Perceptron;
use sinew::prelude::*;
use sinew::train::plot::heatmap;

fn main() -> Result<()> {
    let out = common::out_path("perceptron.png")?;
    // 200 points in [-1, 1]^2, labelled by the line 0.8 x - y + 0.1 > 0, with a margin of 0.1.
    let mut g = Generator::new(7);
    let raw = g
        .uniform([400, 2], -1.0, 1.0, DType::F32, &Device::cpu())?
        .to_vec::<f32>()?;
    let (mut xs, mut ys) = (Vec::new(), Vec::new());
    for p in raw.chunks(2) {
        let s = 0.8 * p[0] - p[1] + 0.1;
        if s.abs() > 0.1 {
            xs.extend_from_slice(p);
            ys.push(f32::from(s > 0.0));
        }
    }
    let n = ys.len();
    let (x, y) = (Tensor::from_vec(xs, [n, 2])?, Tensor::from_vec(ys, [n])?);
    let model = Perceptron::new(2)?;
    for epoch in 1..=100 {
        let mistakes = model.train_epoch(&x, &y, 0.1)?;
        println!("epoch {epoch:3}: {mistakes} mistakes");
        if mistakes == 0 {
            break;
        }
    }
    let w = model.linear.weight.value().to_vec::<f32>()?;
    let b = model
        .linear
        .bias
        .as_ref()
        .map(|b| b.value().to_vec::<f32>())
        .transpose()?
        .unwrap_or(vec![0.0]);
    println!(
        "learned boundary: {:.3} x + {:.3} y + {:.3} = 0",
        w[0], w[1], b[0]
    );
    // The decision regions over a 100x100 grid (top row y = 1), the data points marked.
    let grid: Vec<f32> = (0..100)
        .flat_map(|r| (0..100).flat_map(move |c| [c as f32 / 49.5 - 1.0, 1.0 - r as f32 / 49.5]))
        .collect();
    let regions = model
        .forward(&Tensor::from_vec(grid, [10_000, 2])?)?
        .reshape([100, 100])?;
    let mut picture = regions.mul_scalar(0.5)?.add_scalar(0.25)?.to_vec::<f32>()?;
    for (p, label) in x.to_vec::<f32>()?.chunks(2).zip(y.to_vec::<f32>()?) {
        let (c, r) = (
            ((p[0] + 1.0) * 49.5) as usize,
            ((1.0 - p[1]) * 49.5) as usize,
        );
        picture[r.min(99) * 100 + c.min(99)] = if label > 0.5 { 1.0 } else { 0.0 };
    }
    heatmap(&Tensor::from_vec(picture, [100, 100])?, 4, &out)?;
    println!("wrote {}", out.display());
    Ok(())
}
