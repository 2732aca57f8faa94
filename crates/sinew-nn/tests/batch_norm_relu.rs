//! `BatchNorm::forward_relu` (a ResNet block's `relu(bn(conv(x)))`, the ReLU in batch norm's
//! output pass) against `forward` followed by `relu`: in training and in eval, for f32, f64
//! and f16 inputs, the output, the gradients of the input, weight and bias, the running
//! statistics and the batch count are the same bits, and second-order gradients (create_graph)
//! agree.

use sinew_nn::{BatchNorm2d, Module, ModuleExt};
use sinew_tensor::{BackwardOptions, DType, Device, Generator, Result, Tensor};

/// One step of a fresh `BatchNorm2d(3)` with fixed non-trivial weights on `x`: the output, the
/// gradients of `x`, the weight and the bias for the gradient `probe`, then the buffers.
fn step(x: &Tensor, probe: &Tensor, training: bool, fused: bool) -> Result<Vec<Vec<f64>>> {
    let mut g = Generator::new(5);
    let cpu = Device::cpu();
    let bn = BatchNorm2d::new_2d(3)?;
    let weight = g.randn([3], DType::F32, &cpu)?;
    bn.weight.as_ref().unwrap().set_value(weight)?;
    let bias = g.randn([3], DType::F32, &cpu)?;
    bn.bias.as_ref().unwrap().set_value(bias)?;
    if training {
        bn.train();
    } else {
        bn.eval();
    }
    let x = x.detach().requires_grad_();
    let y = if fused {
        bn.forward_relu(&x)?
    } else {
        bn.forward(&x)?.relu()?
    };
    y.backward_with(Some(probe.clone()), BackwardOptions::default())?;
    let grad = |p: &Option<sinew_tensor::Parameter>| p.as_ref().unwrap().grad().unwrap();
    let mut out = vec![
        y.to_vec_f64()?,
        x.grad().unwrap().to_vec_f64()?,
        grad(&bn.weight).to_vec_f64()?,
        grad(&bn.bias).to_vec_f64()?,
    ];
    for (_, buffer) in bn.named_buffers() {
        out.push(buffer.value().to_vec_f64()?);
    }
    Ok(out)
}

#[test]
fn forward_relu_is_forward_then_relu_bit_for_bit() -> Result<()> {
    let cpu = Device::cpu();
    let mut g = Generator::new(31);
    for dtype in [DType::F32, DType::F64, DType::F16] {
        let x = g.randn([4, 3, 5, 5], DType::F32, &cpu)?.to_dtype(dtype)?;
        let probe = g.randn([4, 3, 5, 5], DType::F32, &cpu)?.to_dtype(dtype)?;
        for training in [true, false] {
            let want = step(&x, &probe, training, false)?;
            let got = step(&x, &probe, training, true)?;
            let what = format!("{dtype} training={training}");
            assert_eq!(got.len(), 7, "{what}");
            // About half the outputs are clamped, the rest are not.
            let (zeros, all) = (got[0].iter().filter(|&&v| v == 0.0).count(), got[0].len());
            assert!(
                zeros > all / 4 && zeros < 3 * all / 4,
                "{what}: {zeros} zeros of {all}"
            );
            for (k, (a, b)) in got.iter().zip(&want).enumerate() {
                let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                assert_eq!(bits(a), bits(b), "{what}: tensor {k}");
            }
        }
    }
    Ok(())
}

/// Second order: the gradient of `|d sum(y * probe) / dx|^2` with respect to `x`, through the
/// create_graph rule (the op-by-op batch norm on the masked gradient).
#[test]
fn second_order_gradients_agree() -> Result<()> {
    let cpu = Device::cpu();
    let mut g = Generator::new(32);
    let x0 = g.randn([4, 3, 3, 3], DType::F64, &cpu)?;
    let probe = g.randn([4, 3, 3, 3], DType::F64, &cpu)?;
    let run = |fused: bool| -> Result<Vec<f64>> {
        let bn = BatchNorm2d::new_2d(3)?;
        bn.train();
        let x = x0.detach().requires_grad_();
        let y = if fused {
            bn.forward_relu(&x)?
        } else {
            bn.forward(&x)?.relu()?
        };
        let options = BackwardOptions {
            create_graph: true,
            ..BackwardOptions::default()
        };
        y.mul(&probe)?.sum_all()?.backward_with(None, options)?;
        let gx = x.grad().expect("a gradient");
        x.zero_grad();
        gx.square()?.sum_all()?.backward()?;
        x.grad().expect("a gradient").to_vec_f64()
    };
    let (a, b) = (run(true)?, run(false)?);
    assert!(a.iter().any(|v| v.abs() > 1e-3), "non-trivial second order");
    for (x, y) in a.iter().zip(&b) {
        assert!((x - y).abs() <= 1e-9 * (1.0 + y.abs()), "{x} vs {y}");
    }
    Ok(())
}
