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
        let stepped = scaler.step(&mut opt)?;
        scaler.update();
        assert_eq!(stepped, step["stepped"].as_bool().unwrap(), "step {i}");
        assert_eq!(
            scaler.scale_value(),
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
    let state = scaler.state_dict();
    let want: GradScalerState = serde_json::from_value(r["state"].clone()).unwrap();
    assert_eq!(state, want);
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
    assert!(scaler.step(&mut opt)?);
    assert_eq!(w.value().to_vec::<f32>()?, vec![0.9, 0.9]);
    scaler.update();

    let h = Parameter::new(Tensor::ones([2], DType::F16, &Device::cpu())?);
    let opt16 = sgd(vec![("h".into(), h.clone())], SgdConfig::new(0.1));
    scaler.scale(&h.value().sum_all()?)?.backward()?;
    let err = scaler.unscale_(&opt16).unwrap_err().to_string();
    assert!(err.contains("f16"), "{err}");
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
    assert!(scaler.step(&mut opt)?);
    scaler.update();
    assert_eq!(scaler.scale_value(), 1.0);
    assert_eq!(w.value().to_vec::<f32>()?, vec![0.0]);
    Ok(())
}

#[test]
fn state_round_trips_and_rejects_a_bad_scale() -> Result<()> {
    let mut scaler = GradScaler::new();
    let mut state = scaler.state_dict();
    state.scale = 8.0;
    state.growth_tracker = 2;
    scaler.load_state_dict(&state)?;
    assert_eq!(scaler.state_dict(), state);
    state.scale = f64::NAN;
    assert!(scaler.load_state_dict(&state).is_err());
    Ok(())
}
