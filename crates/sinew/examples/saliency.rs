//! What does a trained LeNet-5 look at, and what does it want to see? Trains LeNet-5 on MNIST
//! for one epoch (or loads `--weights FILE.safetensors`; `--save FILE.safetensors` keeps the
//! trained weights), then, in evaluation mode with the weights frozen:
//!
//! - saliency maps: |d(predicted logit) / d(input)| for 8 test digits;
//! - activation maximisation for each class: gradient ascent on an image, from black with a
//!   little noise, to raise the class logit minus an L2 penalty on the image (blurred and
//!   clamped to [0, 1] every 20 steps);
//! - the same for each of the 16 channels of the second convolution (its mean activation).
//!
//! `cargo run --release -p sinew --example saliency [-- --quick] [--weights W] [--save W]
//! [--steps N]`
//!
//! Writes `saliency.png`, `class_max.png` and `filter_max.png` in `target/examples-out` (or
//! `--out DIR`). Reads `../shared/data/mnist` (or `--data DIR`, or `$SINEW_DATA`).

mod common;

use sinew::prelude::*;
use sinew::train::plot::image_grid;

fn main() -> Result<()> {
    manual_seed(0);
    let quick = common::quick();
    let steps = common::arg("--steps", if quick { 30 } else { 300 })?; // of gradient ascent
    // 1. A trained LeNet-5: loaded, or trained for one epoch (4000 examples with --quick).
    let (model, test) = common::trained_lenet(
        if quick { 4000 } else { usize::MAX },
        if quick { 500 } else { 10_000 },
    )?;
    model.eval();
    model.freeze()?; // from here on, gradients flow to the input images only

    // 2. Saliency: the gradient of each image's predicted-class logit with respect to its
    // pixels. The images of a batch are independent, so one backward through the sum serves all.
    let images = test.batch(0, 0)?.inputs.narrow(0, 0, 8)?.requires_grad_();
    let logits = model.forward(&images)?;
    let predicted = logits.argmax(1, true)?;
    logits.gather(1, &predicted)?.sum_all()?.backward()?;
    let grad = images
        .grad()
        .ok_or(Error::invalid("saliency", "no input gradient"))?;
    println!("predicted digits {:?}", predicted.to_vec::<i64>()?);
    let path = common::out_path("saliency.png")?;
    let rows = Tensor::cat(&[images.detach(), grad.abs()?], 0)?; // digits above saliency
    image_grid(&rows, 8, 4, &path)?;
    println!("wrote {} (top: digits, bottom: saliency)", path.display());

    // 3. Activation maximisation for each class: image i raises logit i.
    let eye = Tensor::eye(10, DType::F32, &Device::cpu())?;
    let class_logit = |x: &Tensor| model.forward(x)?.mul(&eye)?.sum(&[1], false);
    let (before, dreams) = ascend(&class_logit, 10, steps, 0.05)?;
    let after = class_logit(&dreams)?.to_vec::<f32>()?;
    let probs = model
        .forward(&dreams)?
        .softmax(1)?
        .mul(&eye)?
        .sum(&[1], false)?;
    for (digit, p) in probs.to_vec::<f32>()?.iter().enumerate() {
        let (b, a) = (before[digit], after[digit]);
        println!("digit {digit}: logit {b:6.2} -> {a:6.2}, softmax probability {p:.4}");
    }
    let path = common::out_path("class_max.png")?;
    image_grid(&dreams, 10, 4, &path)?;
    println!("wrote {} (one image per digit 0..9)", path.display());

    // 4. The same for the 16 channels of the second convolution (layers 0..=3 of the
    // Sequential: conv, ReLU, pool, conv; before its ReLU): image c raises channel c's mean.
    let eye = Tensor::eye(16, DType::F32, &Device::cpu())?;
    let channel_mean = |x: &Tensor| -> Result<Tensor> {
        let mut y = x.clone();
        for i in 0..=3 {
            let layer = model
                .get(i)
                .ok_or(Error::invalid("lenet5", "too few layers"))?;
            y = layer.forward(&y)?;
        }
        y.mean(&[2, 3], false)?.mul(&eye)?.sum(&[1], false)
    };
    let (before, dreams) = ascend(&channel_mean, 16, steps, 0.0003)?;
    let after = channel_mean(&dreams)?.to_vec::<f32>()?;
    let mean = |v: &[f32]| v.iter().sum::<f32>() / v.len() as f32;
    let raised = before.iter().zip(&after).filter(|(b, a)| a > b).count();
    println!(
        "conv2 channels: mean activation {:.3} -> {:.3} on average, raised in {raised} of 16",
        mean(&before),
        mean(&after)
    );
    let path = common::out_path("filter_max.png")?;
    image_grid(&dreams, 8, 4, &path)?;
    println!(
        "wrote {} (one image per conv2 channel 0..15)",
        path.display()
    );
    Ok(())
}

/// Gradient ascent (Adam, lr 0.05) on `n` images starting from black plus a little noise,
/// image i maximising entry i of `score(x)` (`[n]`) minus `l2 * |image|^2`; every 20 steps
/// the images are blurred (3x3 Gaussian) and clamped to [0, 1], which keeps them smooth and
/// in MNIST's range. Returns the scores at the start and the final images.
fn ascend(
    score: &dyn Fn(&Tensor) -> Result<Tensor>,
    n: usize,
    steps: usize,
    l2: f64,
) -> Result<(Vec<f32>, Tensor)> {
    let noise = Tensor::randn([n, 1, 28, 28], DType::F32, &Device::cpu())?;
    let x = Parameter::new(noise.mul_scalar(0.01)?);
    let before = with_no_grad(|| score(&x.value()))?.to_vec::<f32>()?;
    let mut opt = adam(vec![("x".into(), x.clone())], AdamConfig::new(0.05));
    let blur = Tensor::from_vec(vec![1f32, 2., 1., 2., 4., 2., 1., 2., 1.], [1, 1, 3, 3])?;
    let blur = blur.div_scalar(16.0)?;
    let same = Conv2dConfig {
        padding: (1, 1),
        ..Default::default()
    };
    for step in 1..=steps {
        let image = x.value();
        let penalty = image.square()?.sum(&[1, 2, 3], false)?.mul_scalar(l2)?;
        let objective = score(&image)?.sub(&penalty)?.sum_all()?;
        opt.zero_grad();
        objective.neg()?.backward()?; // the optimizer minimises, so descend on -objective
        opt.step()?;
        if step % 20 == 0 {
            let smooth = with_no_grad(|| x.value().conv2d(&blur, None, same)?.clamp(0.0, 1.0))?;
            x.set_value(smooth)?;
        }
    }
    Ok((before, x.value().detach()))
}
