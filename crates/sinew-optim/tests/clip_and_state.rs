//! Gradient clipping against PyTorch (`tests/reference/gen_clip.py`), and optimizer state saved
//! by parameter name: a reload continues bit-identically, and mismatches are reported.

use sinew_nn::zoo::mlp;
use sinew_nn::{ModuleExt, load_safetensors};
use sinew_optim::*;
use sinew_tensor::{DType, Device, Parameter, Result, Tensor};

fn clip_reference() -> sinew_nn::StateDict {
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/reference/clip.safetensors");
    load_safetensors(path).unwrap()
}

fn params_with_grads(r: &sinew_nn::StateDict) -> Result<Vec<Parameter>> {
    (0..3)
        .map(|i| {
            let g = r.get(&format!("input.g{i}")).unwrap().force_contiguous()?;
            let p = Parameter::new(g.zeros_like()?);
            p.value().set_grad(Some(g))?;
            Ok(p)
        })
        .collect()
}

fn assert_close(a: &Tensor, b: &Tensor, what: &str) -> Result<()> {
    let (a, b) = (a.to_vec_f64()?, b.to_vec_f64()?);
    for (x, y) in a.iter().zip(&b) {
        assert!(
            (x - y).abs() <= 1e-12 * (1.0 + y.abs()),
            "{what}: {x} vs PyTorch {y}"
        );
    }
    Ok(())
}

/// Non-finite norms as PyTorch treats them: an error with `error_if_nonfinite` (the gradients
/// untouched), else an infinite total scales by 0 (the infinity becomes NaN) and a NaN total
/// makes every gradient NaN; no gradients give a total of 0.
#[test]
fn non_finite_norms_follow_pytorch() -> Result<()> {
    let with_grad = |v: Vec<f32>| -> Result<Parameter> {
        let p = Parameter::new(Tensor::zeros([v.len()], DType::F32, &Device::cpu())?);
        p.value().set_grad(Some(Tensor::from_vec(v, [2])?))?;
        Ok(p)
    };
    let grad = |p: &Parameter| p.grad().unwrap().to_vec::<f32>().unwrap();
    let p = [with_grad(vec![f32::INFINITY, 2.0])?];
    let err = clip_grad_norm_(&p, 1.0, 2.0, true).unwrap_err().to_string();
    assert!(err.contains("is inf"), "{err}");
    assert_eq!(grad(&p[0]), [f32::INFINITY, 2.0]);
    assert_eq!(clip_grad_norm_(&p, 1.0, 2.0, false)?.item()?, f64::INFINITY);
    let g = grad(&p[0]);
    assert!(g[0].is_nan() && g[1] == 0.0, "{g:?}");
    let p = [with_grad(vec![f32::NAN, 2.0])?];
    assert!(
        clip_grad_norm_(&p, 1.0, f64::INFINITY, false)?
            .item()?
            .is_nan()
    );
    assert!(grad(&p[0]).iter().all(|v| v.is_nan()));
    let none = clip_grad_norm_(&[], 1.0, 2.0, false)?;
    assert_eq!((none.item()?, none.device().is_cpu()), (0.0, true));
    // A negative or NaN bound is refused, the gradients untouched (PyTorch would flip or NaN
    // them).
    let p = [with_grad(vec![3.0, 4.0])?];
    for bad in [-1.0, f64::NAN] {
        let err = clip_grad_norm_(&p, bad, 2.0, false)
            .unwrap_err()
            .to_string();
        assert!(err.contains("max_norm must be zero or more"), "{err}");
    }
    assert_eq!(grad(&p[0]), [3.0, 4.0]);
    Ok(())
}

#[test]
fn clipping_matches_pytorch() -> Result<()> {
    let r = clip_reference();
    for (case, max_norm, norm_type) in [
        ("norm2", 1.0, 2.0),
        ("norminf", 0.5, f64::INFINITY),
        ("noclip", 1e6, 2.0),
    ] {
        let params = params_with_grads(&r)?;
        let total = clip_grad_norm_(&params, max_norm, norm_type, false)?;
        assert_eq!((total.dtype(), total.dims()), (DType::F64, &[][..]));
        let total = total.item()?;
        if let Some(want) = r.get(&format!("{case}.total")) {
            assert!(
                (total - want.to_scalar::<f64>()?).abs() < 1e-12,
                "{case}: total {total}"
            );
        }
        for (i, p) in params.iter().enumerate() {
            assert_close(
                &p.grad().unwrap(),
                r.get(&format!("{case}.g{i}")).unwrap(),
                case,
            )?;
        }
    }
    let params = params_with_grads(&r)?;
    clip_grad_value_(&params, 0.3)?;
    for (i, p) in params.iter().enumerate() {
        assert_close(
            &p.grad().unwrap(),
            r.get(&format!("value.g{i}")).unwrap(),
            "value",
        )?;
    }
    Ok(())
}

/// `a + b` passes one gradient to both parameters; clipping scales each once (backward stores
/// a gradient of its own for each), and the gradient of `sum` (a broadcast) can be clamped.
#[test]
fn clipping_scales_shared_and_broadcast_gradients_once() -> Result<()> {
    let leaf = |v: Vec<f32>| Parameter::new(Tensor::from_vec(v, [2]).unwrap());
    let (a, b) = (leaf(vec![1.0, 2.0]), leaf(vec![3.0, 4.0]));
    let loss = a.value().add(&b.value())?.square()?.sum_all()?;
    loss.backward()?;
    // Both gradients are 2 (a + b) = [8, 12]: the total 2-norm is sqrt(2 (64 + 144)).
    let total = clip_grad_norm_(&[a.clone(), b.clone()], 1.0, 2.0, false)?.item()?;
    assert!((total - 416f64.sqrt()).abs() < 1e-9, "{total}");
    let coef = 1.0 / (total + 1e-6);
    for p in [&a, &b] {
        let g = p.grad().unwrap().to_vec_f64()?;
        for (got, want) in g.iter().zip([8.0 * coef, 12.0 * coef]) {
            assert!((got - want).abs() < 1e-6, "{g:?}");
        }
    }
    let w = leaf(vec![1.0, 2.0]);
    w.value().sum_all()?.mul_scalar(3.0)?.backward()?;
    clip_grad_value_(std::slice::from_ref(&w), 0.5)?;
    assert_eq!(w.grad().unwrap().to_vec::<f32>()?, vec![0.5, 0.5]);
    Ok(())
}

fn train_steps(
    model: &sinew_nn::Sequential,
    opt: &mut dyn Optimizer,
    x: &Tensor,
    n: usize,
) -> Result<()> {
    for _ in 0..n {
        opt.zero_grad();
        model.forward_ref(x)?.square()?.mean_all()?.backward()?;
        opt.step()?;
    }
    Ok(())
}

trait ForwardRef {
    fn forward_ref(&self, x: &Tensor) -> Result<Tensor>;
}
impl ForwardRef for sinew_nn::Sequential {
    fn forward_ref(&self, x: &Tensor) -> Result<Tensor> {
        sinew_nn::Module::forward(self, x)
    }
}

#[test]
fn a_reloaded_optimizer_continues_bit_identically() -> Result<()> {
    let dir = std::env::temp_dir().join(format!("sinew-optim-state-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let x = Tensor::rand([8, 6], DType::F64, &Device::cpu())?;
    sinew_tensor::manual_seed(5);
    let a = mlp(&[6, 5, 2])?;
    a.to_dtype(DType::F64)?;
    let mut opt_a = nadam(
        a.named_parameters(),
        NadamConfig {
            lr: 0.01,
            ..Default::default()
        },
    );
    train_steps(&a, &mut opt_a, &x, 3)?;
    // Checkpoint: the model and the optimizer state, then a fresh model and optimizer reload.
    let weights = a.state_dict();
    opt_a.state_dict()?.save(dir.join("opt.safetensors"))?;
    let b = mlp(&[6, 5, 2])?;
    b.to_dtype(DType::F64)?;
    b.load_state_dict(&weights, true)?;
    let mut opt_b = nadam(b.named_parameters(), NadamConfig::default());
    let report = opt_b.load_state_dict(&OptimizerState::load(dir.join("opt.safetensors"))?)?;
    assert_eq!(report, StateReport::default());
    assert_eq!(opt_b.lrs(), vec![0.01], "group options come back too");
    train_steps(&a, &mut opt_a, &x, 4)?;
    train_steps(&b, &mut opt_b, &x, 4)?;
    for ((n, pa), (_, pb)) in a.named_parameters().iter().zip(b.named_parameters()) {
        assert_eq!(
            pa.value().to_vec::<f64>()?,
            pb.value().to_vec::<f64>()?,
            "{n}"
        );
    }
    std::fs::remove_dir_all(dir).ok();
    Ok(())
}

#[test]
fn loading_reports_unknown_names_and_rejects_wrong_shapes_or_optimizers() -> Result<()> {
    let x = Tensor::rand([4, 6], DType::F32, &Device::cpu())?;
    let a = mlp(&[6, 5, 2])?;
    let mut opt = adam(a.named_parameters(), AdamConfig::new(0.01));
    train_steps(&a, &mut opt, &x, 1)?;
    let state = opt.state_dict()?;
    // A model whose first layer is renamed: its state is unknown, the layer starts fresh.
    let renamed: Vec<(String, Parameter)> = a
        .named_parameters()
        .into_iter()
        .map(|(n, p)| (n.replace("1.", "first."), p))
        .collect();
    let mut other = adam(renamed, AdamConfig::new(0.01));
    let report = other.load_state_dict(&state)?;
    assert_eq!(report.unknown, ["1.bias", "1.weight"]);
    assert_eq!(report.fresh, ["first.weight", "first.bias"]);
    // Another optimizer's state, or the same names with other shapes, are errors.
    let mut s = sgd(a.named_parameters(), SgdConfig::new(0.1));
    assert!(
        s.load_state_dict(&state)
            .unwrap_err()
            .to_string()
            .contains("Adam")
    );
    let wider = mlp(&[6, 7, 2])?;
    let mut w = adam(wider.named_parameters(), AdamConfig::new(0.01));
    let err = w.load_state_dict(&state).unwrap_err().to_string();
    assert!(
        err.contains("of 1.bias") && err.contains("[5]") && err.contains("[7]"),
        "{err}"
    );
    Ok(())
}
