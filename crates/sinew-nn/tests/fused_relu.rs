//! Layers followed by ReLU in one step (`Module::forward_relu`) against `forward` followed by
//! `relu`, bit for bit: `BatchNorm` (ReLU in its output pass, and with a residual's sum before
//! it: `forward_add_relu`) in training and in eval, for f32,
//! f64 and f16 inputs, with the gradients of the input, weight and bias, the running statistics
//! and the batch count, and second-order gradients (create_graph); `Linear` (ReLU in the
//! product's epilogue); and `Sequential`, which folds each `ReLU` into the layer before it and
//! still lists it in `summary`.

use sinew_nn::{
    BatchNorm1d, BatchNorm2d, Conv2d, Conv2dOptions, Flatten, Linear, Module, ModuleExt, Padding,
    ReLU, Sequential, summary,
};
use sinew_tensor::{BackwardOptions, DType, Device, Generator, Result, Tensor, manual_seed};

/// One step of a fresh `BatchNorm2d(3)` with fixed non-trivial weights on `x`, followed by ReLU
/// (after adding `residual`, when given), fused into batch norm's node or as the ops: the
/// output, the gradients of `x`, the weight and the bias (and the residual) for the gradient
/// `probe`, then the buffers.
fn step(
    x: &Tensor,
    probe: &Tensor,
    training: bool,
    fused: bool,
    residual: Option<&Tensor>,
) -> Result<Vec<Vec<f64>>> {
    let mut g = Generator::new(5);
    let cpu = Device::cpu();
    let bn = BatchNorm2d::new(3)?;
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
    let r = residual.map(|r| r.detach().requires_grad_());
    let y = match (&r, fused) {
        (None, true) => bn.forward_relu(&x)?,
        (None, false) => bn.forward(&x)?.relu()?,
        (Some(r), true) => bn.forward_add_relu(&x, r)?,
        (Some(r), false) => bn.forward(&x)?.add_relu(r)?,
    };
    y.backward_with(Some(probe.clone()), BackwardOptions::default())?;
    let grad = |p: &Option<sinew_tensor::Parameter>| p.as_ref().unwrap().grad().unwrap();
    let mut out = vec![
        y.to_vec_f64()?,
        x.grad().unwrap().to_vec_f64()?,
        grad(&bn.weight).to_vec_f64()?,
        grad(&bn.bias).to_vec_f64()?,
    ];
    if let Some(r) = &r {
        out.push(r.grad().unwrap().to_vec_f64()?);
    }
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
            let want = step(&x, &probe, training, false, None)?;
            let got = step(&x, &probe, training, true, None)?;
            let what = format!("{dtype} training={training}");
            assert_eq!(got.len(), 7, "{what}");
            // About half the outputs are clamped, the rest are not.
            let (zeros, all) = (got[0].iter().filter(|&&v| v == 0.0).count(), got[0].len());
            assert!(
                zeros > all / 4 && zeros < 3 * all / 4,
                "{what}: {zeros} zeros of {all}"
            );
            assert_same_bits(&got, &want, &what);
        }
    }
    Ok(())
}

/// `BatchNorm::forward_add_relu` (a ResNet block's last batch norm, shortcut sum and ReLU in
/// one node) against `forward` then `add_relu`, bit for bit: output, the gradients of the input,
/// weight, bias and residual, and the buffers; training and eval, f32, f64 and f16; and a
/// residual that broadcasts (added by its own op).
#[test]
fn forward_add_relu_is_forward_then_add_relu_bit_for_bit() -> Result<()> {
    let cpu = Device::cpu();
    let mut g = Generator::new(33);
    for dtype in [DType::F32, DType::F64, DType::F16] {
        let x = g.randn([4, 3, 5, 5], DType::F32, &cpu)?.to_dtype(dtype)?;
        let probe = g.randn([4, 3, 5, 5], DType::F32, &cpu)?.to_dtype(dtype)?;
        let full = g.randn([4, 3, 5, 5], DType::F32, &cpu)?.to_dtype(dtype)?;
        let broadcast = g.randn([1, 3, 1, 5], DType::F32, &cpu)?.to_dtype(dtype)?;
        for (residual, name) in [(&full, "residual"), (&broadcast, "broadcast residual")] {
            for training in [true, false] {
                let want = step(&x, &probe, training, false, Some(residual))?;
                let got = step(&x, &probe, training, true, Some(residual))?;
                let what = format!("{dtype} {name} training={training}");
                assert_eq!(got.len(), 8, "{what}");
                let zeros = got[0].iter().filter(|&&v| v == 0.0).count();
                let all = got[0].len();
                assert!(
                    zeros > all / 5 && zeros < 4 * all / 5,
                    "{what}: {zeros} of {all}"
                );
                assert_same_bits(&got, &want, &what);
            }
        }
    }
    Ok(())
}

/// Each tensor of `got` has the bits of the same one of `want`.
fn assert_same_bits(got: &[Vec<f64>], want: &[Vec<f64>], what: &str) {
    for (k, (a, b)) in got.iter().zip(want).enumerate() {
        assert_eq!(bits(a), bits(b), "{what}: tensor {k}");
    }
}

/// Second order: the gradient of `|d sum(y * probe) / dx|^2` with respect to `x`, through the
/// create_graph rule (the op-by-op batch norm on the masked gradient).
#[test]
fn second_order_gradients_agree() -> Result<()> {
    let cpu = Device::cpu();
    let mut g = Generator::new(32);
    let x0 = g.randn([4, 3, 3, 3], DType::F64, &cpu)?;
    let probe = g.randn([4, 3, 3, 3], DType::F64, &cpu)?;
    let residual = g.randn([4, 3, 3, 3], DType::F64, &cpu)?;
    // With and without a residual (whose first-order gradient also flows into x's).
    let run = |fused: bool, add: bool| -> Result<Vec<f64>> {
        let bn = BatchNorm2d::new(3)?;
        bn.train();
        let x = x0.detach().requires_grad_();
        let r = x.mul_scalar(0.5)?.add(&residual)?;
        let y = match (fused, add) {
            (true, false) => bn.forward_relu(&x)?,
            (false, false) => bn.forward(&x)?.relu()?,
            (true, true) => bn.forward_add_relu(&x, &r)?,
            (false, true) => bn.forward(&x)?.add_relu(&r)?,
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
    for add in [false, true] {
        let (a, b) = (run(true, add)?, run(false, add)?);
        assert!(a.iter().any(|v| v.abs() > 1e-3), "non-trivial second order");
        for (x, y) in a.iter().zip(&b) {
            assert!(
                (x - y).abs() <= 1e-9 * (1.0 + y.abs()),
                "{x} vs {y} (add {add})"
            );
        }
    }
    Ok(())
}

/// The gradients of every parameter of `m`, in `named_parameters` order.
fn parameter_grads(m: &dyn Module) -> Result<Vec<Vec<f64>>> {
    m.named_parameters()
        .iter()
        .map(|(_, p)| p.grad().expect("a gradient").to_vec_f64())
        .collect()
}

fn bits(v: &[f64]) -> Vec<u64> {
    v.iter().map(|x| x.to_bits()).collect()
}

#[test]
fn linear_forward_relu_is_forward_then_relu_bit_for_bit() -> Result<()> {
    let cpu = Device::cpu();
    let mut g = Generator::new(41);
    for dtype in [DType::F32, DType::F64] {
        for (dims, bias) in [
            (vec![6, 5], true),
            (vec![2, 3, 5], true),
            (vec![5], true),
            (vec![6, 5], false),
        ] {
            let what = format!("{dtype} {dims:?} bias={bias}");
            let layer = Linear::with_config(sinew_nn::LinearConfig {
                bias,
                ..sinew_nn::LinearConfig::new(5, 7)
            })?;
            layer.to_dtype(dtype)?;
            let x0 = g.randn(dims.clone(), dtype, &cpu)?;
            let run = |fused: bool| -> Result<Vec<Vec<f64>>> {
                layer.zero_grad();
                let x = x0.detach().requires_grad_();
                let y = if fused {
                    layer.forward_relu(&x)?
                } else {
                    layer.forward(&x)?.relu()?
                };
                let probe = Tensor::arange(0.0, y.elem_count() as f64, 1.0, dtype, &cpu)?
                    .reshape(y.shape().clone())?
                    .cos()?;
                y.backward_with(Some(probe), BackwardOptions::default())?;
                let mut out = vec![y.to_vec_f64()?, x.grad().unwrap().to_vec_f64()?];
                out.extend(parameter_grads(&layer)?);
                Ok(out)
            };
            let (want, got) = (run(false)?, run(true)?);
            let zeros = got[0].iter().filter(|&&v| v == 0.0).count();
            assert!(zeros > 0 && zeros < got[0].len(), "{what}: {zeros} zeros");
            assert_eq!(got.len(), want.len(), "{what}");
            for (k, (a, b)) in got.iter().zip(&want).enumerate() {
                assert_eq!(bits(a), bits(b), "{what}: tensor {k}");
            }
        }
    }
    Ok(())
}

#[test]
fn conv2d_forward_relu_is_forward_then_relu_bit_for_bit() -> Result<()> {
    let cpu = Device::cpu();
    let x0 = Generator::new(42).randn([2, 3, 9, 8], DType::F32, &cpu)?;
    for padding in [Padding::Explicit(1, 0), Padding::Same] {
        let options = Conv2dOptions {
            padding,
            ..Conv2dOptions::default()
        };
        let layer = Conv2d::with_options(3, 5, (3, 2), options)?;
        let run = |fused: bool| -> Result<Vec<Vec<f64>>> {
            layer.zero_grad();
            let x = x0.detach().requires_grad_();
            let y = if fused {
                layer.forward_relu(&x)?
            } else {
                layer.forward(&x)?.relu()?
            };
            y.square()?.sum_all()?.backward()?;
            let mut out = vec![y.to_vec_f64()?, x.grad().unwrap().to_vec_f64()?];
            out.extend(parameter_grads(&layer)?);
            Ok(out)
        };
        let (want, got) = (run(false)?, run(true)?);
        let zeros = got[0].iter().filter(|&&v| v == 0.0).count();
        assert!(
            zeros > 0 && zeros < got[0].len(),
            "{padding:?}: {zeros} zeros"
        );
        for (k, (a, b)) in got.iter().zip(&want).enumerate() {
            assert_eq!(bits(a), bits(b), "{padding:?}: tensor {k}");
        }
    }
    Ok(())
}

/// An MLP with batch norm: every layer but the last followed by ReLU.
fn mlp() -> Result<Sequential> {
    Ok(Sequential::new()
        .append(Flatten::new())
        .append(Linear::new(12, 16)?)
        .append(ReLU)
        .append(Linear::new(16, 8)?)
        .append(BatchNorm1d::new(8)?)
        .append(ReLU)
        .append(ReLU)
        .append(Linear::new(8, 3)?))
}

#[test]
fn sequential_folds_relu_into_the_layer_before_it() -> Result<()> {
    let cpu = Device::cpu();
    let x = Generator::new(43).randn([10, 3, 4], DType::F32, &cpu)?;
    let mut results = Vec::new();
    for fused in [false, true] {
        // The same fresh model each way (running statistics start over).
        manual_seed(7);
        let model = mlp()?;
        let y = if fused {
            model.forward(&x)?
        } else {
            // The reference: each layer's own forward, in order.
            (0..model.len()).try_fold(x.clone(), |y, i| model.get(i).unwrap().forward(&y))?
        };
        y.square()?.sum_all()?.backward()?;
        let mut out = vec![y.to_vec_f64()?];
        out.extend(parameter_grads(&model)?);
        out.extend(
            model
                .named_buffers()
                .iter()
                .map(|(_, b)| b.value().to_vec_f64().unwrap()),
        );
        results.push(out);
    }
    let (want, got) = (&results[0], &results[1]);
    assert_eq!(
        got.len(),
        1 + 8 + 3,
        "output, 8 parameter gradients, 3 buffers"
    );
    for (k, (a, b)) in got.iter().zip(want).enumerate() {
        assert_eq!(bits(a), bits(b), "tensor {k}");
    }
    assert_eq!(got[11], vec![1.0], "num_batches_tracked");
    let model = mlp()?;
    // summary still has one row per layer, the ReLUs included, with their shapes.
    let rows = summary(&model, [2, 3, 4])?.rows;
    let kinds: Vec<&str> = rows.iter().map(|r| r.kind.as_str()).collect();
    assert_eq!(
        kinds,
        [
            "Flatten",
            "Linear",
            "ReLU",
            "Linear",
            "BatchNorm1d",
            "ReLU",
            "ReLU",
            "Linear"
        ]
    );
    assert_eq!(rows[2].output_shape.dims(), &[2, 16]);
    assert_eq!(rows[6].name, "6");
    Ok(())
}
