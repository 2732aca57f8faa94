//! Autograd on the GPU: a 784-64-10 ReLU MLP and a tiny CNN (conv, ReLU, max pool, linear), each
//! with a cross-entropy loss, forward and backward through `sinew_autograd::Tensor` on the CPU and
//! on the GPU; the loss and every parameter gradient must agree (f32, relative error <= 1e-4).

#![cfg(feature = "cuda")]

mod common;

use common::{FullF32Conv, check, gpu, randn};

use sinew_tensor::{Conv2dConfig, DType, Device, Generator, Pool2dConfig, Result, Tensor};

/// Mean cross-entropy of `[batch, classes]` logits against `[batch, 1]` i64 labels.
fn cross_entropy(logits: &Tensor, labels: &Tensor) -> Result<Tensor> {
    logits.log_softmax(-1)?.gather(1, labels)?.neg()?.mean_all()
}

/// `x @ w + b`.
fn linear(x: &Tensor, w: &Tensor, b: &Tensor) -> Result<Tensor> {
    x.matmul(w)?.add(b)
}

/// The loss and the gradient of every parameter, all on the host.
fn loss_and_grads(
    device: &Device,
    params: &[Tensor],
    x: &Tensor,
    labels: &Tensor,
    model: impl Fn(&Tensor, &[Tensor]) -> Result<Tensor>,
) -> Vec<Tensor> {
    let leaves: Vec<Tensor> = params
        .iter()
        .map(|p| (p.to_device(device).unwrap()).requires_grad_())
        .collect();
    let x = x.to_device(device).unwrap();
    let labels = labels.to_device(device).unwrap();
    let loss = cross_entropy(&model(&x, &leaves).unwrap(), &labels).unwrap();
    loss.backward().unwrap();
    assert_eq!(loss.device(), device);
    let mut out = vec![loss.to_device(&Device::cpu()).unwrap()];
    for p in &leaves {
        let g = p.grad().expect("every parameter gets a gradient");
        assert_eq!(g.device(), device);
        out.push(g.to_device(&Device::cpu()).unwrap());
    }
    out
}

/// `||gpu - cpu|| / ||cpu||`.
fn relative(cpu: &Tensor, gpu: &Tensor) -> f64 {
    let (a, b) = (cpu.to_vec_f64().unwrap(), gpu.to_vec_f64().unwrap());
    let diff: f64 = a.iter().zip(&b).map(|(x, y)| (x - y) * (x - y)).sum();
    let norm: f64 = a.iter().map(|x| x * x).sum();
    (diff / norm.max(f64::MIN_POSITIVE)).sqrt()
}

/// Compares the CPU and GPU results, named, and prints each error.
fn compare(model: &str, names: &[&str], cpu: &[Tensor], on_gpu: &[Tensor]) {
    assert_eq!(cpu.len(), on_gpu.len());
    for ((name, c), g) in names.iter().zip(cpu).zip(on_gpu) {
        let what = format!("{model} {name}");
        let elementwise = check(&what, c, g, 1e-4);
        let rel = relative(c, g);
        assert!(rel <= 1e-4, "{what}: relative error {rel:e}");
        let nonzero = c.to_vec_f64().unwrap().iter().any(|v| *v != 0.0);
        assert!(nonzero, "{what} is all zero");
        println!("{what}: max error {elementwise:e}, relative (norm) {rel:e}");
    }
}

fn labels(seed: u64, batch: usize, classes: usize) -> Tensor {
    Generator::new(seed)
        .randint([batch, 1], 0, classes as i64, &Device::cpu())
        .unwrap()
}

#[test]
#[ignore = "needs a CUDA GPU"]
fn mlp_784_64_10_gradients_match_the_cpu() {
    let dev = gpu();
    let batch = 37;
    let x = randn(1, &[batch, 784], DType::F32);
    let y = labels(2, batch, 10);
    let params = [
        randn(3, &[784, 64], DType::F32).mul_scalar(0.05).unwrap(),
        randn(4, &[64], DType::F32).mul_scalar(0.1).unwrap(),
        randn(5, &[64, 10], DType::F32).mul_scalar(0.2).unwrap(),
        randn(6, &[10], DType::F32).mul_scalar(0.1).unwrap(),
    ];
    let model = |x: &Tensor, p: &[Tensor]| linear(&linear(x, &p[0], &p[1])?.relu()?, &p[2], &p[3]);
    let cpu = loss_and_grads(&Device::cpu(), &params, &x, &y, model);
    let on_gpu = loss_and_grads(&dev, &params, &x, &y, model);
    compare("mlp", &["loss", "dW1", "db1", "dW2", "db2"], &cpu, &on_gpu);
    assert!(cpu[0].to_scalar::<f32>().unwrap() > 0.5, "a real loss");
}

#[test]
#[ignore = "needs a CUDA GPU"]
fn cnn_gradients_match_the_cpu() {
    let dev = gpu();
    let _f32 = FullF32Conv::new(&dev);
    let batch = 9;
    let x = randn(11, &[batch, 1, 14, 14], DType::F32);
    let y = labels(12, batch, 10);
    let params = [
        randn(13, &[4, 1, 3, 3], DType::F32)
            .mul_scalar(0.5)
            .unwrap(),
        randn(14, &[4], DType::F32).mul_scalar(0.1).unwrap(),
        randn(15, &[4 * 7 * 7, 10], DType::F32)
            .mul_scalar(0.1)
            .unwrap(),
        randn(16, &[10], DType::F32).mul_scalar(0.1).unwrap(),
    ];
    let model = |x: &Tensor, p: &[Tensor]| {
        let cfg = Conv2dConfig {
            padding: (1, 1),
            ..Conv2dConfig::default()
        };
        let h = x.conv2d(&p[0], Some(&p[1]), cfg)?.relu()?;
        let (pooled, _) = h.max_pool2d(Pool2dConfig::new(2))?;
        linear(&pooled.reshape([batch, 4 * 7 * 7])?, &p[2], &p[3])
    };
    let cpu = loss_and_grads(&Device::cpu(), &params, &x, &y, model);
    let on_gpu = loss_and_grads(&dev, &params, &x, &y, model);
    compare(
        "cnn",
        &["loss", "dConvW", "dConvB", "dW", "db"],
        &cpu,
        &on_gpu,
    );
}
