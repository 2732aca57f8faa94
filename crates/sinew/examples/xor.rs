//! XOR with a 2-8-1 tanh MLP: the problem a single-layer perceptron cannot solve.
//!
//! `cargo run --release -p sinew --example xor [-- --quick]`

mod common;

use sinew::prelude::*;

fn main() -> Result<()> {
    let steps = if common::quick() { 200 } else { 2000 };
    manual_seed(0);
    let x = Tensor::from_vec(vec![0f32, 0., 0., 1., 1., 0., 1., 1.], [4, 2])?;
    let y = Tensor::from_vec(vec![0f32, 1., 1., 0.], [4, 1])?;
    let model = Sequential::new()
        .append(Linear::new(2, 8)?)
        .append(nn::Tanh)
        .append(Linear::new(8, 1)?);
    let mut opt = adam(model.named_parameters(), AdamConfig::new(0.05));
    for step in 0..steps {
        opt.zero_grad();
        let loss = F::binary_cross_entropy_with_logits(&model.forward(&x)?, &y)?;
        loss.backward()?;
        opt.step()?;
        if step % (steps / 4) == 0 {
            println!("step {step:>4}  loss {:.4}", loss.item()?);
        }
    }
    let p = with_no_grad(|| model.forward(&x)?.sigmoid())?.to_vec::<f32>()?;
    for (i, pi) in p.iter().enumerate() {
        println!("xor({}, {}) = {pi:.3}", i / 2, i % 2);
    }
    let correct = p
        .iter()
        .zip([0f32, 1., 1., 0.])
        .filter(|(p, t)| (**p > 0.5) == (*t > 0.5))
        .count();
    println!("accuracy: {correct}/4");
    Ok(())
}
