//! The workloads of `../shared/bench/torch_cpu_reference.py`, written with Sinew's public API
//! (sinew-nn layers and losses, sinew-optim optimizers), with the reference's warm-up and
//! repetition counts and its output line.

use std::time::Instant;

use sinew_nn::functional::cross_entropy;
use sinew_nn::zoo::{lenet5, mlp, resnet20};
use sinew_nn::{
    AdaptiveAvgPool2d, Conv2d, Conv2dOptions, Flatten, Linear, MaxPool2d, Module, ModuleExt, ReLU,
    Sequential,
};
use sinew_optim::{AdamConfig, Optimizer, SgdConfig, adam, sgd};
use sinew_tensor::{DType, Device, Generator, Result, Tensor, manual_seed, no_grad};

/// The workload names, in the reference's order (and spelling).
pub const NAMES: [&str; 10] = [
    "sgemm 256",
    "sgemm 512",
    "sgemm 1024",
    "sgemm 2048",
    "mlp step b64",
    "mlp step b256",
    "lenet5 step b64",
    "cifar-cnn step b64",
    "mlp infer b1",
    "resnet20 step b64",
];

/// Median, min and max of the timed runs, in milliseconds (the reference's `timeit` result).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Stats {
    /// Median (for an even count, the mean of the two middle values, as `statistics.median`).
    pub median: f64,
    /// Fastest run.
    pub min: f64,
    /// Slowest run.
    pub max: f64,
}

/// `statistics.median`: the middle value, or the mean of the two middle values.
pub fn median(values: &[f64]) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let n = v.len();
    match n {
        0 => f64::NAN,
        _ if n % 2 == 1 => v[n / 2],
        _ => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

/// The reference's `timeit(fn, warm, reps)`: `warm` untimed runs, then `reps` timed ones (ms).
pub fn timeit(mut f: impl FnMut() -> Result<()>, warm: usize, reps: usize) -> Result<Stats> {
    for _ in 0..warm {
        f()?;
    }
    let mut ts = Vec::with_capacity(reps);
    for _ in 0..reps {
        let t = Instant::now();
        f()?;
        ts.push(t.elapsed().as_secs_f64() * 1e3);
    }
    Ok(Stats {
        median: median(&ts),
        min: ts.iter().copied().fold(f64::INFINITY, f64::min),
        max: ts.iter().copied().fold(f64::NEG_INFINITY, f64::max),
    })
}

/// One output line, exactly the reference's
/// `f"{name:28s} median {med:9.3f} ms  (min {lo:.3f}, max {hi:.3f})  {extra}"`.
pub fn format_line(name: &str, s: Stats, extra: &str) -> String {
    format!(
        "{name:<28} median {:9.3} ms  (min {:.3}, max {:.3})  {extra}",
        s.median, s.min, s.max
    )
}

/// Runs the workload called `name` (one of [`NAMES`] or of the fixed-cost workloads of
/// [`crate::op1_workloads`]) and returns its output line.
pub fn run(name: &str) -> Result<String> {
    if let Some(line) = crate::op1_workloads::run(name) {
        return line;
    }
    let cpu = Device::cpu();
    // Parameters are initialised from the default generator, data from per-workload ones.
    manual_seed(0);
    let mut g = Generator::new(0);
    if let Some(n) = name.strip_prefix("sgemm ") {
        let n: usize = n.parse().expect("sgemm size");
        let a = g.randn([n, n], DType::F32, &cpu)?;
        let b = g.randn([n, n], DType::F32, &cpu)?;
        let reps = if n >= 2048 { 10 } else { 30 };
        let s = timeit(|| a.matmul(&b).map(drop), 5, reps)?;
        let gflops = 2.0 * (n as f64).powi(3) / s.median / 1e6;
        return Ok(format_line(name, s, &format!("{gflops:.1} GFLOP/s")));
    }
    type Step = (Box<dyn Module>, usize, bool, usize, usize);
    let (model, bs, adam_opt, warm, reps): Step = match name {
        "mlp step b64" => (Box::new(mlp(&[784, 512, 512, 10])?), 64, false, 5, 50),
        "mlp step b256" => (Box::new(mlp(&[784, 512, 512, 10])?), 256, false, 5, 50),
        "lenet5 step b64" => (Box::new(lenet5(10)?), 64, false, 5, 50),
        "cifar-cnn step b64" => (Box::new(cifar_cnn()?), 64, true, 3, 20),
        // ResNet-20 for CIFAR-10 (batch norm after every convolution): no line in the PyTorch
        // reference script; its counterpart is `scripts/torch_resnet20_step.py`.
        "resnet20 step b64" => (Box::new(resnet20(10)?), 64, false, 3, 20),
        "mlp infer b1" => return mlp_infer(&mut g),
        _ => panic!("unknown workload {name:?}"),
    };
    let input: &[usize] = if name.starts_with("cifar") || name.starts_with("resnet") {
        &[bs, 3, 32, 32]
    } else {
        &[bs, 1, 28, 28]
    };
    let x = g.randn(input.to_vec(), DType::F32, &cpu)?;
    let y = g.randint([bs], 0, 10, &cpu)?;
    let params = model.named_parameters();
    let mut opt: Box<dyn Optimizer> = if adam_opt {
        Box::new(adam(params, AdamConfig::new(1e-3)))
    } else {
        Box::new(sgd(params, SgdConfig::new(0.01).momentum(0.9)))
    };
    let step = || -> Result<()> {
        opt.zero_grad();
        cross_entropy(&model.forward(&x)?, &y)?.backward()?;
        opt.step()
    };
    let s = timeit(step, warm, reps)?;
    let rate = bs as f64 / s.median * 1e3;
    Ok(format_line(name, s, &format!("{rate:.0} samples/s")))
}

/// The reference's small CIFAR CNN: three 3x3 convolutions (32, 64, 128 channels) with ReLU, two
/// 2x2 max pools, global average pooling and a 128 -> 10 linear layer.
fn cifar_cnn() -> Result<Sequential> {
    let conv = |i, o| Conv2d::with_options(i, o, (3, 3), Conv2dOptions::default().padding(1));
    Ok(Sequential::new()
        .append(conv(3, 32)?)
        .append(ReLU)
        .append(conv(32, 64)?)
        .append(ReLU)
        .append(MaxPool2d::new(2))
        .append(conv(64, 128)?)
        .append(ReLU)
        .append(MaxPool2d::new(2))
        .append(AdaptiveAvgPool2d::new((1, 1)))
        .append(Flatten::new())
        .append(Linear::new(128, 10)?))
}

/// The 784-512-512-10 MLP in eval mode at batch 1 without a graph; the throughput column is the
/// median in microseconds.
fn mlp_infer(g: &mut Generator) -> Result<String> {
    let model = mlp(&[784, 512, 512, 10])?;
    model.eval();
    let x: Tensor = g.randn([1, 1, 28, 28], DType::F32, &Device::cpu())?;
    let s = {
        let _guard = no_grad();
        timeit(|| model.forward(&x).map(drop), 50, 500)?
    };
    let us = s.median * 1e3;
    Ok(format_line("mlp infer b1", s, &format!("{us:.1} us")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_matches_python_statistics() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), 2.5);
    }

    #[test]
    fn line_has_the_reference_format() {
        let s = Stats {
            median: 1.23456,
            min: 1.0,
            max: 12.5,
        };
        assert_eq!(
            format_line("sgemm 256", s, "27.2 GFLOP/s"),
            "sgemm 256                    median     1.235 ms  (min 1.000, max 12.500)  27.2 GFLOP/s"
        );
    }
}
