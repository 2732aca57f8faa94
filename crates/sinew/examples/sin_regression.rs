//! Fits `y = sin(x)` on [-π, π] with a 1-32-32-1 tanh MLP written with tensors and autograd,
//! trained full-batch with SGD + momentum. Needs no download.
//!
//! `cargo run --release -p sinew --example sin_regression [-- --steps N --seed S] [--quick]`
//! (`--quick`: 300 steps, without the convergence check)

use std::f64::consts::PI;

use sinew::prelude::*;

/// A dense layer's parameters, initialised like PyTorch's `nn.Linear`: U(-1/√fan_in, 1/√fan_in).
struct Linear {
    weight: Tensor,
    bias: Tensor,
}

impl Linear {
    fn new(rng: &mut Generator, fan_in: usize, fan_out: usize) -> Result<Linear> {
        let bound = 1.0 / (fan_in as f64).sqrt();
        let cpu = Device::cpu();
        Ok(Linear {
            weight: (rng.uniform([fan_in, fan_out], -bound, bound, DType::F32, &cpu)?)
                .requires_grad_(),
            bias: (rng.uniform([fan_out], -bound, bound, DType::F32, &cpu)?).requires_grad_(),
        })
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        x.matmul(&self.weight)?.add(&self.bias)
    }
}

fn arg(name: &str, default: u64) -> u64 {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() -> Result<()> {
    let quick = std::env::args().any(|a| a == "--quick");
    let steps = if quick { 300 } else { arg("--steps", 3000) };
    let mut rng = Generator::new(arg("--seed", 0));
    let cpu = Device::cpu();
    let x = Tensor::linspace(-PI, PI, 256, DType::F32, &cpu)?.reshape([256, 1])?;
    let y = x.sin()?;
    let x = x;

    let layers = [
        Linear::new(&mut rng, 1, 32)?,
        Linear::new(&mut rng, 32, 32)?,
        Linear::new(&mut rng, 32, 1)?,
    ];
    let params: Vec<&Tensor> = layers.iter().flat_map(|l| [&l.weight, &l.bias]).collect();
    let velocity: Vec<Tensor> = params
        .iter()
        .map(|p| p.zeros_like())
        .collect::<Result<_>>()?;
    let (lr, momentum) = (0.05, 0.9);

    let start = std::time::Instant::now();
    let mut loss_value = f64::NAN;
    for step in 0..=steps {
        let h = layers[0].forward(&x)?.tanh()?;
        let h = layers[1].forward(&h)?.tanh()?;
        let prediction = layers[2].forward(&h)?;
        let loss = prediction.sub(&y)?.square()?.mean_all()?;
        loss_value = loss.item()?;
        if step % 500 == 0 {
            println!("step {step:>5}  mse {loss_value:.6}");
        }
        if step == steps {
            break;
        }
        loss.backward()?;
        // SGD with momentum (PyTorch's formulation: v = μv + g; p -= lr·v), in place and
        // outside the graph, as `with torch.no_grad():` in PyTorch.
        let _guard = no_grad();
        for (p, v) in params.iter().zip(&velocity) {
            let g = p.grad().expect("every parameter is used");
            v.mul_scalar_(momentum)?;
            v.add_(&g)?;
            p.axpy_(-lr, v)?;
            p.zero_grad();
        }
    }
    println!(
        "final mse {loss_value:.6} after {steps} steps in {:.2?}",
        start.elapsed()
    );
    if loss_value > 0.01 && !quick {
        eprintln!("the fit did not converge (mse {loss_value:.4} > 0.01)");
        std::process::exit(1);
    }
    Ok(())
}
