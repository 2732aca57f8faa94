//! GradScaler against PyTorch's `torch.amp.GradScaler` (`tests/reference/gen_grad_scaler.py`):
//! skipped steps on overflow, backoff, growth after `growth_interval` clean steps, the final
//! weights and the state dict.

use sinew_optim::{GradScaler, GradScalerConfig, GradScalerState, Optimizer, SgdConfig, sgd};
use sinew_tensor::{DType, Device, Parameter, Result, Tensor};

fn reference() -> serde_json::Value {
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/reference/grad_scaler.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn floats(v: &serde_json::Value) -> Vec<f64> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect()
}

fn param(values: Vec<f32>, shape: &[usize]) -> Result<Parameter> {
    Ok(Parameter::new(Tensor::from_vec(values, shape)?))
}

#[test]
fn scaler_skips_backs_off_and_grows_like_pytorch() -> Result<()> {
    let r = reference();
    let w = param(vec![0.1, -0.2, 0.3, 0.4, 0.5, -0.6], &[2, 3])?;
    let b = param(vec![0.05, -0.05], &[2])?;
    let x = Tensor::from_vec(
        vec![
            1.0f32, 2.0, 3.0, -1.0, 0.5, 2.0, 0.0, -1.5, 1.0, 2.0, 1.0, -1.0,
        ],
        [4, 3],
    )?;
    let mut opt = sgd(
        vec![("weight".into(), w.clone()), ("bias".into(), b.clone())],
        SgdConfig::new(0.1),
    );
    let mut scaler = GradScaler::with_config(GradScalerConfig {
        init_scale: 1024.0,
        growth_interval: 3,
        ..Default::default()
    });
    for (i, step) in r["steps"].as_array().unwrap().iter().enumerate() {
        let k = step["k"].as_f64().unwrap();
        opt.zero_grad();
        let y = x.matmul(&w.value().t()?)?.add(&b.value())?;
        let loss = y.mul_scalar(k)?.square()?.mean_all()?;
        scaler.scale(&loss)?.backward()?;
        scaler.step(&mut opt)?;
        let stepped = !scaler.found_inf()?;
        scaler.update();
        assert_eq!(stepped, step["stepped"].as_bool().unwrap(), "step {i}");
        assert_eq!(
            scaler.scale_value()?,
            step["scale"].as_f64().unwrap(),
            "step {i}"
        );
    }
    let close = |got: Vec<f32>, want: Vec<f64>| {
        assert_eq!(got.len(), want.len());
        for (g, w) in got.iter().zip(&want) {
            assert!((f64::from(*g) - w).abs() < 1e-5, "{got:?} vs {want:?}");
        }
    };
    close(w.value().to_vec::<f32>()?, floats(&r["weight"]));
    close(b.value().to_vec::<f32>()?, floats(&r["bias"]));
    let state = scaler.state_dict()?;
    let want: GradScalerState = serde_json::from_value(r["state"].clone()).unwrap();
    assert_eq!(state, want);
    Ok(())
}

/// `a + b` passes one gradient to both parameters; each is unscaled once (backward stores a
/// gradient of its own for each, so unscaling one in place does not divide the other again).
#[test]
fn a_gradient_backward_gave_two_parameters_is_unscaled_once() -> Result<()> {
    let a = param(vec![1.0, 2.0], &[2])?;
    let b = param(vec![3.0, 4.0], &[2])?;
    let opt = sgd(
        vec![("a".into(), a.clone()), ("b".into(), b.clone())],
        SgdConfig::new(0.1),
    );
    let mut scaler = GradScaler::new();
    let loss = a.value().add(&b.value())?.square()?.sum_all()?;
    scaler.scale(&loss)?.backward()?;
    scaler.unscale_(&opt)?;
    // d/da (a + b)² = 2 (a + b).
    assert_eq!(a.grad().unwrap().to_vec::<f32>()?, vec![8.0, 12.0]);
    assert_eq!(b.grad().unwrap().to_vec::<f32>()?, vec![8.0, 12.0]);
    Ok(())
}

/// `unscale_` then `step` find the same optimizer however it is reached (boxed or not) and
/// after a move: its gradients are divided by the scale once.
#[test]
fn an_optimizer_unscaled_through_a_box_or_moved_is_not_unscaled_again() -> Result<()> {
    let w = param(vec![1.0, 2.0], &[2])?;
    let mut boxed: Box<dyn Optimizer> =
        Box::new(sgd(vec![("w".into(), w.clone())], SgdConfig::new(0.5)));
    let mut scaler = GradScaler::new();
    scaler.scale(&w.value().square()?.sum_all()?)?.backward()?;
    scaler.unscale_(&boxed)?; // the box
    scaler.step(boxed.as_mut())?; // the optimizer inside it
    scaler.update();
    // w - 0.5 * 2w = 0.
    assert_eq!(w.value().to_vec::<f32>()?, vec![0.0, 0.0]);

    let v = param(vec![1.0, 2.0], &[2])?;
    let opt = sgd(vec![("v".into(), v.clone())], SgdConfig::new(0.25));
    scaler.scale(&v.value().square()?.sum_all()?)?.backward()?;
    scaler.unscale_(&opt)?;
    let mut moved = Box::new(opt); // to the heap: a new address
    scaler.step(&mut *moved)?;
    // v - 0.25 * 2v = v / 2.
    assert_eq!(v.value().to_vec::<f32>()?, vec![0.5, 1.0]);
    Ok(())
}

#[test]
fn unscale_twice_and_half_gradients_are_errors() -> Result<()> {
    let w = Parameter::new(Tensor::ones([2], DType::F32, &Device::cpu())?);
    let mut opt = sgd(vec![("w".into(), w.clone())], SgdConfig::new(0.1));
    let mut scaler = GradScaler::new();
    scaler.scale(&w.value().sum_all()?)?.backward()?;
    scaler.unscale_(&opt)?;
    assert_eq!(w.grad().unwrap().to_vec::<f32>()?, vec![1.0, 1.0]);
    let err = scaler.unscale_(&opt).unwrap_err().to_string();
    assert!(err.contains("already been called"), "{err}");
    // step() after unscale_() does not divide again.
    scaler.step(&mut opt)?;
    assert!(!scaler.found_inf()?);
    assert_eq!(w.value().to_vec::<f32>()?, vec![0.9, 0.9]);
    scaler.update();

    let h = Parameter::new(Tensor::ones([2], DType::F16, &Device::cpu())?);
    let opt16 = sgd(vec![("h".into(), h.clone())], SgdConfig::new(0.1));
    scaler.scale(&h.value().sum_all()?)?.backward()?;
    let err = scaler.unscale_(&opt16).unwrap_err().to_string();
    assert!(err.contains("f16"), "{err}");
    Ok(())
}

/// The gradients of `loss_of(w)` after `backward`, for a fresh `w` of `values` in `dtype`.
fn gradient_after(
    dtype: DType,
    values: &[f32],
    loss_of: impl Fn(&Tensor) -> Result<Tensor>,
    backward: impl Fn(&Tensor) -> Result<()>,
) -> Result<Vec<f32>> {
    let w = Parameter::new(Tensor::from_vec(values.to_vec(), [values.len()])?.to_dtype(dtype)?);
    backward(&loss_of(&w.value())?)?;
    w.grad().unwrap().to_dtype(DType::F32)?.to_vec::<f32>()
}

#[test]
fn backward_seeds_the_scale_with_the_scaled_losss_gradients_to_the_bit() -> Result<()> {
    let values = [0.3f32, -1.7, 2.5, 1e-3, -4.0, 0.75];
    let scaler = GradScaler::with_config(GradScalerConfig {
        init_scale: 3000.0, // not a power of two: the products round
        ..Default::default()
    });
    let loss_of = |w: &Tensor| w.mul_scalar(0.37)?.tanh()?.square()?.mean_all();
    for dtype in [DType::F32, DType::F64, DType::F16, DType::BF16] {
        let want = gradient_after(dtype, &values, loss_of, |l| scaler.scale(l)?.backward())?;
        let got = gradient_after(dtype, &values, loss_of, |l| scaler.backward(l))?;
        assert_eq!(got, want, "{dtype:?}");
        // And they are the scaled gradients: 3000 times the unscaled ones (f32: to rounding).
        if dtype == DType::F32 {
            let plain = gradient_after(dtype, &values, loss_of, |l| l.backward())?;
            for (g, p) in got.iter().zip(&plain) {
                assert!(
                    (g - 3000.0 * p).abs() <= 1e-6 * g.abs().max(1e-6),
                    "{g} {p}"
                );
            }
        }
    }
    // Disabled, it is the plain backward.
    let off = GradScaler::with_config(GradScalerConfig {
        enabled: false,
        ..Default::default()
    });
    assert_eq!(
        gradient_after(DType::F32, &values, loss_of, |l| off.backward(l))?,
        gradient_after(DType::F32, &values, loss_of, |l| l.backward())?
    );
    // A loss that is not one element is an error, as for `backward`.
    let w = Parameter::new(Tensor::from_vec(values.to_vec(), [6])?);
    let err = scaler
        .backward(&w.value().square()?)
        .unwrap_err()
        .to_string();
    assert!(err.contains("scalar output"), "{err}");
    assert!(w.grad().is_none());
    Ok(())
}

#[test]
fn a_disabled_scaler_passes_through() -> Result<()> {
    let w = Parameter::new(Tensor::ones([1], DType::F32, &Device::cpu())?);
    let mut opt = sgd(vec![("w".into(), w.clone())], SgdConfig::new(0.5));
    let mut scaler = GradScaler::with_config(GradScalerConfig {
        enabled: false,
        ..Default::default()
    });
    let loss = w.value().mul_scalar(2.0)?.sum_all()?;
    let scaled = scaler.scale(&loss)?;
    assert_eq!(scaled.item()?, 2.0);
    scaled.backward()?;
    scaler.step(&mut opt)?;
    assert!(!scaler.found_inf()?);
    scaler.update();
    assert_eq!(scaler.scale_value()?, 1.0);
    assert_eq!(w.value().to_vec::<f32>()?, vec![0.0]);
    Ok(())
}

#[test]
fn state_round_trips_and_rejects_a_bad_scale() -> Result<()> {
    let mut scaler = GradScaler::new();
    let mut state = scaler.state_dict()?;
    state.scale = 8.0;
    state.growth_tracker = 2;
    scaler.load_state_dict(&state)?;
    assert_eq!(scaler.state_dict()?, state);
    state.scale = f64::NAN;
    assert!(scaler.load_state_dict(&state).is_err());
    Ok(())
}

/// A step the scaler skips is forgotten by the optimizer, as PyTorch's never-called
/// `optimizer.step()`: no state after a skipped first step, and Adam's, NAdam's and RAdam's
/// step counts and NAdam's `mu_product` as if it had not happened, so the parameters equal those of a run
/// without it, bit for bit.
#[test]
fn a_skipped_step_is_forgotten_by_the_optimizer() -> Result<()> {
    use sinew_optim::{AdamConfig, NadamConfig, RadamConfig, adam, nadam, radam};
    type Make = fn(Vec<(String, Parameter)>) -> Box<dyn Optimizer>;
    let makers: [(&str, Make); 3] = [
        ("adam", |p| Box::new(adam(p, AdamConfig::new(0.1)))),
        ("nadam", |p| Box::new(nadam(p, NadamConfig::default()))),
        ("radam", |p| Box::new(radam(p, RadamConfig::new(0.1)))),
    ];
    let grads = [
        [f32::INFINITY, 1.0],
        [0.5, -2.0],
        [f32::NAN, 3.0],
        [-1.0, 0.25],
    ];
    for (name, make) in makers {
        let w = param(vec![0.3, -0.7], &[2])?;
        let mut opt = make(vec![("w".into(), w.clone())]);
        let mut scaler = GradScaler::with_config(GradScalerConfig {
            init_scale: 8.0,
            ..Default::default()
        });
        let plain_w = param(vec![0.3, -0.7], &[2])?;
        let mut plain = make(vec![("w".into(), plain_w.clone())]);
        for (i, g) in grads.iter().enumerate() {
            let scale = scaler.scale_value()? as f32;
            let scaled = Tensor::from_vec(g.map(|v| v * scale).to_vec(), [2])?;
            w.value().set_grad(Some(scaled))?;
            scaler.step(opt.as_mut())?;
            let skipped = scaler.found_inf()?;
            assert_eq!(skipped, g.iter().any(|v| !v.is_finite()), "{name} step {i}");
            scaler.update();
            if i == 0 {
                let state = opt.state_dict()?;
                assert!(
                    state.params.is_empty(),
                    "{name}: no state after a skipped first step"
                );
            }
            if !skipped {
                plain_w
                    .value()
                    .set_grad(Some(Tensor::from_vec(g.to_vec(), [2])?))?;
                plain.step()?;
            }
        }
        let (got, want) = (opt.state_dict()?, plain.state_dict()?);
        assert_eq!(got.params["w"].step, 2, "{name}");
        assert_eq!(got.params["w"].scalars, want.params["w"].scalars, "{name}");
        assert_eq!(
            w.value().to_vec::<f32>()?,
            plain_w.value().to_vec::<f32>()?,
            "{name}"
        );
        assert_eq!(scaler.scale_value()?, 2.0, "{name}: backed off twice");
    }
    Ok(())
}
