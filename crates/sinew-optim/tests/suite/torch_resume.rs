//! Resuming a PyTorch training run: a `torch.save` checkpoint of a 4-3-2 MLP and its Adam
//! state after one step (`sinew-nn/tests/reference/torch_save_checkpoint.pt`), loaded into a
//! Sinew model and Adam, takes the second step PyTorch took (`after.*` in
//! `torch_save_expected.safetensors`); ASGD and Adafactor states in PyTorch's layout resume too.

use std::path::{Path, PathBuf};

use sinew_nn::{
    Linear, Module, ModuleExt, ReLU, Sequential, StateDict, load_pytorch, load_safetensors,
};
use sinew_optim::{
    AdafactorConfig, AdamConfig, AsgdConfig, Optimizer, OptimizerState, SgdConfig, adafactor, adam,
    asgd, sgd,
};
use sinew_tensor::{DType, Device, Result, Tensor};

fn reference(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../sinew-nn/tests/reference")
        .join(name)
}

fn mlp() -> Result<Sequential> {
    Ok(Sequential::new()
        .append(Linear::new(4, 3)?)
        .append(ReLU)
        .append(Linear::new(3, 2)?))
}

/// One step of `opt` on the mean square of `model`'s outputs for fixed inputs.
fn mean_square_step(model: &Sequential, opt: &mut dyn Optimizer) -> Result<()> {
    let x = Tensor::from_vec((0..8).map(|i| i as f32 / 8.0).collect(), [2, 4])?;
    opt.zero_grad();
    model.forward(&x)?.square()?.mean_all()?.backward()?;
    opt.step()
}

/// Asserts the two models' parameters are equal, bit for bit.
fn assert_same_weights(a: &Sequential, b: &Sequential) -> Result<()> {
    for ((name, p), (_, q)) in a.named_parameters().iter().zip(b.named_parameters()) {
        assert_eq!(
            p.value().to_vec::<f32>()?,
            q.value().to_vec::<f32>()?,
            "{name}"
        );
    }
    Ok(())
}

#[test]
fn a_pytorch_adam_run_resumes_with_its_moments() -> Result<()> {
    let checkpoint = load_pytorch(reference("torch_save_checkpoint.pt"))?;
    let want = load_safetensors(reference("torch_save_expected.safetensors"))?;
    let model = mlp()?;
    model.load_state_dict(&checkpoint.select("model."), true)?;
    let mut opt = adam(model.named_parameters(), AdamConfig::new(0.01));
    let state = OptimizerState::from_pytorch(&opt, &checkpoint.select("optimizer."))?;
    assert!(
        state
            .params
            .values()
            .all(|p| p.step == 1 && p.buffers.len() == 2)
    );
    let report = opt.load_state_dict(&state)?;
    assert!(
        report.unknown.is_empty() && report.fresh.is_empty(),
        "{report:?}"
    );
    let x = want.get("io.x").unwrap();
    opt.zero_grad();
    model.forward(x)?.square()?.sum_all()?.backward()?;
    opt.step()?;
    for (name, got) in model.state_dict().iter() {
        let pytorch = want
            .get(&format!("after.{name}"))
            .unwrap()
            .to_vec::<f32>()?;
        let got = got.to_vec::<f32>()?;
        for (a, b) in got.iter().zip(&pytorch) {
            assert!(
                (a - b).abs() <= 1e-6 * (1.0 + b.abs()),
                "{name}: {got:?} vs {pytorch:?}"
            );
        }
    }
    Ok(())
}

#[test]
fn pytorch_states_that_do_not_fit_are_errors() -> Result<()> {
    let checkpoint = load_pytorch(reference("torch_save_checkpoint.pt"))?;
    let torch = checkpoint.select("optimizer.");
    let model = mlp()?;
    let opt = adam(model.named_parameters(), AdamConfig::new(0.01));
    // Fewer parameters than PyTorch numbered.
    let small = Sequential::new().append(Linear::new(4, 3)?);
    let few = adam(small.named_parameters(), AdamConfig::new(0.01));
    let err = OptimizerState::from_pytorch(&few, &torch)
        .unwrap_err()
        .to_string();
    assert!(err.contains("parameter 2; the optimizer has 2"), "{err}");
    let bad: StateDict = [(
        "steps.0".to_string(),
        torch.get("state.0.step").unwrap().clone(),
    )]
    .into_iter()
    .collect();
    let err = OptimizerState::from_pytorch(&opt, &bad)
        .unwrap_err()
        .to_string();
    assert!(err.contains("not state.<index>.<name>"), "{err}");
    // PyTorch's step counts and NAdam's mu_product become the state's counts and scalars.
    let counted: StateDict = [
        (
            "state.3.step".to_string(),
            Tensor::full((), 5.0, DType::F32, &Device::cpu())?,
        ),
        (
            "state.3.mu_product".to_string(),
            Tensor::full((), 0.5, DType::F32, &Device::cpu())?,
        ),
    ]
    .into_iter()
    .collect();
    let state = OptimizerState::from_pytorch(&opt, &counted)?;
    let last = &state.params["2.bias"];
    assert_eq!((last.step, last.scalars["mu_product"]), (5, 0.5));
    let half: StateDict = [(
        "state.0.step".to_string(),
        Tensor::full((), 1.5, DType::F32, &Device::cpu())?,
    )]
    .into_iter()
    .collect();
    let err = OptimizerState::from_pytorch(&opt, &half)
        .unwrap_err()
        .to_string();
    assert!(err.contains("1.5, not a count"), "{err}");
    // SGD keeps no step: its momentum buffers count as one step.
    let momentum: StateDict = [(
        "state.1.momentum_buffer".to_string(),
        model.state_dict().get("0.bias").unwrap().clone(),
    )]
    .into_iter()
    .collect();
    let mut sgd_opt = sgd(model.named_parameters(), SgdConfig::new(0.1).momentum(0.9));
    let state = OptimizerState::from_pytorch(&sgd_opt, &momentum)?;
    assert_eq!(state.params["0.bias"].step, 1);
    sgd_opt.load_state_dict(&state)?;
    Ok(())
}

/// PyTorch's ASGD keeps the next step's `eta` and `mu` as f32 scalar tensors beside `ax`: a
/// state written that way (here from a Sinew run) resumes exactly where the run was.
#[test]
fn an_asgd_state_in_pytorchs_layout_resumes_the_run() -> Result<()> {
    let config = AsgdConfig {
        lr: 0.1,
        lambd: 0.01,
        alpha: 0.5,
        t0: 1.0,
        ..Default::default()
    };
    let model = mlp()?;
    let mut opt = asgd(model.named_parameters(), config.clone());
    for _ in 0..3 {
        mean_square_step(&model, &mut opt)?;
    }
    // torch.save's layout: state.<index>.{step, eta, mu, ax}.
    let saved = opt.state_dict()?;
    let mut torch_state = StateDict::new();
    for (index, (name, _)) in model.named_parameters().iter().enumerate() {
        let s = &saved.params[name];
        let scalar = |v: f64| Tensor::from_vec(vec![v as f32], ());
        torch_state.insert(format!("state.{index}.step"), scalar(s.step as f64)?);
        torch_state.insert(format!("state.{index}.eta"), scalar(s.scalars["eta_next"])?);
        torch_state.insert(format!("state.{index}.mu"), scalar(s.scalars["mu_next"])?);
        torch_state.insert(format!("state.{index}.ax"), s.buffers[0].1.clone());
    }
    let twin = mlp()?;
    twin.load_state_dict(&model.state_dict(), true)?;
    let mut resumed = asgd(twin.named_parameters(), config);
    resumed.load_state_dict(&OptimizerState::from_pytorch(&resumed, &torch_state)?)?;
    mean_square_step(&model, &mut opt)?;
    mean_square_step(&twin, &mut resumed)?;
    assert_same_weights(&model, &twin)?;
    let ax = |o: &dyn Optimizer| {
        o.state_dict()
            .map(|s| s.params["0.weight"].buffers[0].1.clone())
    };
    assert_eq!(ax(&opt)?.to_vec::<f32>()?, ax(&resumed)?.to_vec::<f32>()?);
    Ok(())
}

/// PyTorch's Adafactor keeps a matrix's second moment as `row_var` [rows, 1] and `col_var`
/// [1, cols], a vector's as `variance`: a state in that layout (here from a Sinew run) resumes
/// exactly; a buffer of the wrong shape, or one a parameter of that rank does not keep, is an
/// error naming it.
#[test]
fn an_adafactor_state_in_pytorchs_layout_resumes_the_run() -> Result<()> {
    let config = AdafactorConfig::new(0.05);
    let model = mlp()?;
    let mut opt = adafactor(model.named_parameters(), config.clone());
    for _ in 0..3 {
        mean_square_step(&model, &mut opt)?;
    }
    let saved = opt.state_dict()?;
    let mut torch_state = StateDict::new();
    for (index, (name, p)) in model.named_parameters().iter().enumerate() {
        let s = &saved.params[name];
        let names: Vec<&str> = s.buffers.iter().map(|(b, _)| b.as_str()).collect();
        let rank = p.value().dims().len();
        assert_eq!(
            names,
            if rank == 2 {
                vec!["row_var", "col_var"]
            } else {
                vec!["variance"]
            }
        );
        let step = Tensor::from_vec(vec![s.step as f32], ())?;
        torch_state.insert(format!("state.{index}.step"), step);
        for (b, t) in &s.buffers {
            torch_state.insert(format!("state.{index}.{b}"), t.clone());
        }
    }
    let (row, col) = (
        &saved.params["0.weight"].buffers[0].1,
        &saved.params["0.weight"].buffers[1].1,
    );
    assert_eq!((row.dims(), col.dims()), (&[3, 1][..], &[1, 4][..]));

    let twin = mlp()?;
    twin.load_state_dict(&model.state_dict(), true)?;
    let mut resumed = adafactor(twin.named_parameters(), config.clone());
    resumed.load_state_dict(&OptimizerState::from_pytorch(&resumed, &torch_state)?)?;
    mean_square_step(&model, &mut opt)?;
    mean_square_step(&twin, &mut resumed)?;
    assert_same_weights(&model, &twin)?;

    let mut fresh = adafactor(twin.named_parameters(), config);
    let mut wrong = torch_state.clone();
    wrong.insert(
        "state.0.row_var".to_string(),
        Tensor::zeros([3, 4], DType::F32, &Device::cpu())?,
    );
    let err = fresh
        .load_state_dict(&OptimizerState::from_pytorch(&fresh, &wrong)?)
        .unwrap_err();
    assert!(err.to_string().contains("row_var of 0.weight"), "{err}");
    let mut extra = torch_state;
    extra.insert(
        "state.0.variance".to_string(),
        Tensor::zeros([3, 4], DType::F32, &Device::cpu())?,
    );
    let err = fresh
        .load_state_dict(&OptimizerState::from_pytorch(&fresh, &extra)?)
        .unwrap_err();
    assert!(
        err.to_string().contains("no state variance for 0.weight"),
        "{err}"
    );
    Ok(())
}
