//! Why initialisation matters: a batch of N(0, 1) inputs goes through 10 `Linear(256, 256)`
//! layers, each followed by tanh or ReLU, with three weight initialisations:
//!
//! - default: PyTorch's `nn.Linear` init, U(±1/√fan_in) for weight and bias;
//! - Xavier (Glorot) uniform with gain 1 (Glorot's original): U(±√(6 / (fan_in + fan_out))),
//!   zero bias;
//! - Kaiming (He) normal for ReLU: N(0, 2 / fan_in), zero bias.
//!
//! Prints, per layer, the mean and std of the activations and the std of the weight gradient
//! after backpropagating `sum(out * r)` (r ~ N(0, 1), the same for every network, so every
//! output receives a gradient of unit size), the change from the first to the last layer, and
//! a sentence built from those changes.
//!
//! `cargo run --release -p sinew --example init_comparison [-- --quick] [--batch N]`
//!
//! Writes `init_comparison.png` (under `target/examples-out`, or `--out DIR`): activation std
//! (top) and log10 of the weight-gradient std (bottom) per layer, one panel per nonlinearity.

mod common;

use sinew::nn::init::{self, FanMode};
use sinew::prelude::*;
use sinew::train::plot::{Canvas, Series, draw_chart};

const DEPTH: usize = 10;
const WIDTH: usize = 256;
const INITS: [&str; 3] = ["default", "xavier", "kaiming"];

/// Per layer: (activation mean, activation std, weight-gradient std).
type Stats = Vec<(f64, f64, f64)>;

fn build(init_name: &str) -> Result<Vec<Linear>> {
    let mut layers = Vec::new();
    for _ in 0..DEPTH {
        let layer = Linear::new(WIDTH, WIDTH)?; // PyTorch's default init
        let (w, b) = (layer.weight.value(), layer.bias.as_ref().map(|b| b.value()));
        match init_name {
            "xavier" => init::xavier_uniform_(&w, 1.0)?,
            "kaiming" => init::kaiming_normal_(&w, 0.0, FanMode::FanIn, "relu")?,
            _ => {}
        }
        if let (Some(b), true) = (b, init_name != "default") {
            init::zeros_(&b)?;
        }
        layers.push(layer);
    }
    Ok(layers)
}

fn run(init_name: &str, act: &str, x: &Tensor, r: &Tensor) -> Result<Stats> {
    manual_seed(1); // the same weights for the same init, whatever the nonlinearity
    let layers = build(init_name)?;
    let mut h = x.clone();
    let mut acts = Vec::new();
    for layer in &layers {
        let z = layer.forward(&h)?;
        h = if act == "tanh" { z.tanh()? } else { z.relu()? };
        acts.push((h.mean_all()?.item()?, h.std(&[], 0, false)?.item()?));
    }
    h.mul(r)?.sum_all()?.backward()?;
    let mut stats = Vec::new();
    for ((mean, std), layer) in acts.into_iter().zip(&layers) {
        let grad = layer
            .weight
            .grad()
            .ok_or_else(|| Error::invalid("init", "no gradient"))?;
        stats.push((mean, std, grad.std(&[], 0, false)?.item()?));
    }
    Ok(stats)
}

/// How a std changed from `from` to `to`: the ratio and a word for it.
fn trend(from: f64, to: f64) -> (f64, &'static str) {
    let ratio = to / from;
    let word = match ratio {
        r if r < 0.15 => "vanishes",
        r if r < 0.5 => "decays",
        r if r <= 2.0 => "stable",
        _ => "grows",
    };
    (ratio, word)
}

fn main() -> Result<()> {
    let batch: usize = common::arg("--batch", if common::quick() { 64 } else { 1024 })?;
    let mut g = Generator::new(0);
    let x = g.randn([batch, WIDTH], DType::F32, &Device::cpu())?;
    let r = g.randn([batch, WIDTH], DType::F32, &Device::cpu())?;

    let path = common::out_path("init_comparison.png")?;
    let mut canvas = Canvas::new(1000, 700)?;
    let mut verdicts = Vec::new();
    for (col, act) in ["tanh", "relu"].into_iter().enumerate() {
        let results: Vec<Stats> = INITS
            .iter()
            .map(|name| run(name, act, &x, &r))
            .collect::<Result<_>>()?;
        println!("\n{act} network, {DEPTH} x Linear({WIDTH}, {WIDTH}), batch {batch}");
        println!(
            "{:>5} | {:^26} | {:^26} | {:^26} |",
            "layer", INITS[0], INITS[1], INITS[2]
        );
        println!("{:>5} |{}", "", " act mean  act std grad std |".repeat(3));
        for l in 0..DEPTH {
            let row: String = results
                .iter()
                .map(|s| format!("{:>+9.4}{:>9.2e}{:>9.2e} |", s[l].0, s[l].1, s[l].2))
                .collect();
            println!("{:>5} |{row}", l + 1);
        }
        for (name, stats) in INITS.iter().zip(&results) {
            let (first, last) = (stats[0], stats[DEPTH - 1]);
            let (act_ratio, act_word) = trend(first.1, last.1);
            let (grad_ratio, grad_word) = trend(last.2, first.2);
            println!(
                "{act} + {name}: act std L1 {:.3} -> L{DEPTH} {:.3} (x{act_ratio:.2} {act_word}) | \
                 weight-grad std L{DEPTH} {:.2e} -> L1 {:.2e} (x{grad_ratio:.2} {grad_word})",
                first.1, last.1, last.2, first.2
            );
            verdicts.push((format!("{act} + {name}"), act_word));
        }
        let series = |f: fn(&(f64, f64, f64)) -> f64| -> Vec<Series> {
            INITS
                .iter()
                .zip(&results)
                .map(|(name, stats)| Series {
                    label: name.to_string(),
                    points: stats
                        .iter()
                        .enumerate()
                        .map(|(l, s)| ((l + 1) as f64, f(s)))
                        .collect(),
                })
                .collect()
        };
        let x0 = col as i32 * 500;
        let title = format!("{act}: activation std per layer");
        draw_chart(
            &mut canvas,
            (x0, 0, 500, 350),
            &title,
            "layer",
            &series(|s| s.1),
        );
        let title = format!("{act}: log10 weight-gradient std per layer");
        draw_chart(
            &mut canvas,
            (x0, 350, 500, 350),
            &title,
            "layer",
            &series(|s| s.2.log10()),
        );
    }
    let with = |word: &str| -> String {
        let names: Vec<&str> = verdicts
            .iter()
            .filter(|v| v.1 == word)
            .map(|v| v.0.as_str())
            .collect();
        if names.is_empty() {
            "none".into()
        } else {
            names.join(", ")
        }
    };
    println!(
        "\nWhat the numbers show: through {DEPTH} layers the activation std stays stable with {}; \
         it decays with {}; it vanishes with {}; it grows with {}.",
        with("stable"),
        with("decays"),
        with("vanishes"),
        with("grows")
    );
    canvas.save_png(&path)?;
    println!("wrote {}", path.display());
    Ok(())
}
