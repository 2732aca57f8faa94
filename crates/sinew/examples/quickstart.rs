//! The README's snippet: one cross-entropy step of a linear classifier through autograd.
//!
//! `cargo run -p sinew --example quickstart`

use sinew::prelude::*;

fn main() -> Result<()> {
    let device = Device::cpu(); // or, with the `cuda` feature: sinew::cuda::register(); Device::cuda(0)?
    let w = Tensor::randn([784, 10], DType::F32, &Device::cpu())?
        .mul_scalar(0.01)?
        .to_device(&device)?
        .requires_grad_();
    let x = Tensor::rand([64, 784], DType::F32, &Device::cpu())?.to_device(&device)?;
    let labels = Tensor::from_vec(vec![3i64; 64], [64, 1])?.to_device(&device)?;
    let loss = x
        .matmul(&w)?
        .log_softmax(-1)?
        .gather(1, &labels)?
        .neg()?
        .mean_all()?;
    loss.backward()?;
    println!(
        "loss {:.4}, grad shape {:?}",
        loss.item()?,
        w.grad().unwrap().dims()
    );
    Ok(())
}
