//! A two-layer MLP, forward and hand-written backward with plain tensor ops, on the CPU and on
//! the GPU: loss and every gradient must agree.

#![cfg(feature = "cuda")]

mod common;

use common::{check, gpu, randn};
use sinew_tensor::{DType, Device, Result, Tensor};

/// Loss and gradients (dW1, db1, dW2, db2) of softmax cross-entropy over a ReLU MLP.
fn mlp_step(x: &Tensor, onehot: &Tensor, params: &[Tensor; 4]) -> Result<Vec<Tensor>> {
    let [w1, b1, w2, b2] = params;
    let batch = x.dims()[0] as f64;
    let h = x.matmul(w1)?.add(b1)?;
    let a = h.relu()?;
    let logits = a.matmul(w2)?.add(b2)?;
    let logp = logits.log_softmax(1)?;
    let loss = onehot
        .mul(&logp)?
        .sum(&[1], false)?
        .mean(&[], false)?
        .neg()?;
    let dlogits = logits.softmax(1)?.sub(onehot)?.div_scalar(batch)?;
    let dw2 = a.t()?.matmul(&dlogits)?;
    let db2 = dlogits.sum(&[0], false)?;
    let da = dlogits.matmul(&w2.t()?)?;
    let zeros = Tensor::zeros((), da.dtype(), da.device())?;
    let dh = h.gt_scalar(0.0)?.where_cond(&da, &zeros)?;
    let dw1 = x.t()?.matmul(&dh)?;
    let db1 = dh.sum(&[0], false)?;
    Ok(vec![loss, dw1, db1, dw2, db2])
}

#[test]
#[ignore = "needs a CUDA GPU"]
fn mlp_forward_and_backward_match_the_cpu() {
    let dev = gpu();
    let (batch, inputs, hidden, classes) = (37, 29, 50, 10);
    let x = randn(91, &[batch, inputs], DType::F32);
    let labels: Vec<usize> = (0..batch).map(|i| (i * 7 + 3) % classes).collect();
    let mut onehot = vec![0.0f32; batch * classes];
    for (i, &l) in labels.iter().enumerate() {
        onehot[i * classes + l] = 1.0;
    }
    let onehot = Tensor::from_vec(onehot, [batch, classes]).unwrap();
    let params = [
        randn(92, &[inputs, hidden], DType::F32)
            .mul_scalar(0.2)
            .unwrap(),
        randn(93, &[hidden], DType::F32).mul_scalar(0.1).unwrap(),
        randn(94, &[hidden, classes], DType::F32)
            .mul_scalar(0.2)
            .unwrap(),
        randn(95, &[classes], DType::F32).mul_scalar(0.1).unwrap(),
    ];
    let cpu = mlp_step(&x, &onehot, &params).unwrap();
    let to_gpu = |t: &Tensor| t.to_device(&dev).unwrap();
    let gpu_params = [
        to_gpu(&params[0]),
        to_gpu(&params[1]),
        to_gpu(&params[2]),
        to_gpu(&params[3]),
    ];
    let on_gpu = mlp_step(&to_gpu(&x), &to_gpu(&onehot), &gpu_params).unwrap();
    let names = ["loss", "dW1", "db1", "dW2", "db2"];
    for ((name, c), g) in names.iter().zip(&cpu).zip(&on_gpu) {
        assert_eq!(g.device(), &dev);
        let err = check(name, c, &g.to_device(&Device::cpu()).unwrap(), 1e-4);
        println!("mlp {name}: max error {err:e}");
    }
    assert!(
        cpu[0].to_scalar::<f32>().unwrap() > 0.5,
        "a real loss, not a degenerate one"
    );
}
