//! AveragedModel (SWA and EMA, with and without buffers) against PyTorch's `AveragedModel`
//! (`tests/reference/gen_swa.py`), its state dict's keys, and its errors.

use sinew_nn::{BatchNorm1d, Linear, ModuleExt, ReLU, Sequential, StateDict, load_safetensors};
use sinew_optim::AveragedModel;
use sinew_optim::schedule::{LrSchedule, SwaLr};
use sinew_optim::{Optimizer, SgdConfig, sgd};
use sinew_tensor::{DType, Result, Tensor};

fn reference() -> StateDict {
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/reference/swa.safetensors");
    load_safetensors(path).expect("reference file")
}

/// The reference network: Linear(3, 4) -> BatchNorm1d(4) -> ReLU -> Linear(4, 2).
fn net() -> Result<Sequential> {
    Ok(Sequential::new()
        .append(Linear::new(3, 4)?)
        .append(BatchNorm1d::new(4)?)
        .append(ReLU)
        .append(Linear::new(4, 2)?))
}

/// Asserts every tensor of `got` equals the reference's `prefix.<key>`, to the bit.
fn assert_state(got: &StateDict, reference: &StateDict, prefix: &str) -> Result<()> {
    let want = reference.select(&format!("{prefix}."));
    // (a safetensors file keeps its own order)
    let sorted = |sd: &StateDict| {
        let mut keys: Vec<String> = sd.keys().map(String::from).collect();
        keys.sort_unstable();
        keys
    };
    assert_eq!(sorted(got), sorted(&want), "{prefix}");
    for (key, value) in got.iter() {
        let expected = want.get(key).unwrap();
        assert_eq!(value.dtype(), expected.dtype(), "{prefix}.{key}");
        assert_eq!(value.dims(), expected.dims(), "{prefix}.{key}");
        let values = |t: &Tensor| t.to_dtype(DType::F64)?.to_vec::<f64>();
        assert_eq!(values(value)?, values(expected)?, "{prefix}.{key}");
    }
    Ok(())
}

#[test]
fn averages_match_pytorchs_after_every_step() -> Result<()> {
    let r = reference();
    let model = net()?;
    model.load_state_dict(&r.select("model.init."), true)?;
    let averagers = [
        ("swa", AveragedModel::new(net()?, &model)?),
        ("ema", AveragedModel::ema(net()?, &model, 0.75)?),
        (
            "swa_buffers",
            AveragedModel::new(net()?, &model)?.with_buffers(),
        ),
        (
            "ema_buffers",
            AveragedModel::ema(net()?, &model, 0.75)?.with_buffers(),
        ),
    ];
    for (_, averaged) in &averagers {
        assert_eq!(averaged.n_averaged()?, 0);
        // The copy starts with the source's weights, in a storage of its own.
        let w = averaged.module().named_parameters()[0].1.value();
        assert_eq!(
            w.to_vec::<f32>()?,
            model.parameters()[0].value().to_vec::<f32>()?
        );
    }
    for k in 0..4 {
        // The model's state after PyTorch's k-th SGD step.
        model.load_state_dict(&r.select(&format!("model.step{k}.")), true)?;
        for (name, averaged) in &averagers {
            averaged.update_parameters(&model)?;
            assert_state(&averaged.state_dict(), &r, &format!("{name}.step{k}"))?;
        }
    }
    // Averaging the same weights again changes nothing but the count.
    let (_, swa) = &averagers[0];
    let before = swa.module().state_dict();
    swa.update_parameters(swa.module())?;
    assert_eq!(swa.n_averaged()?, 5);
    for (key, value) in swa.module().state_dict().iter() {
        let old = before
            .get(key)
            .unwrap()
            .to_dtype(DType::F64)?
            .to_vec::<f64>()?;
        assert_eq!(value.to_dtype(DType::F64)?.to_vec::<f64>()?, old, "{key}");
    }
    Ok(())
}

#[test]
fn a_saved_average_loads_back_with_its_count() -> Result<()> {
    let r = reference();
    let source = net()?;
    let averaged = AveragedModel::new(net()?, &source)?;
    // PyTorch's own state dict of an AveragedModel (n_averaged 4), loaded strictly.
    averaged.load_state_dict(&r.select("swa.step3."), true)?;
    assert_eq!(averaged.n_averaged()?, 4);
    let keys: Vec<String> = averaged.state_dict().keys().map(String::from).collect();
    assert_eq!(
        keys[..3],
        ["n_averaged", "module.0.weight", "module.0.bias"]
    );
    Ok(())
}

#[test]
fn swa_training_loop_reads_like_pytorchs() -> Result<()> {
    // PyTorch's recipe: train, then average once per epoch under SWALR.
    let model = net()?;
    let swa_model = AveragedModel::new(net()?, &model)?;
    let mut opt = sgd(model.named_parameters(), SgdConfig::new(0.1));
    let mut swa_schedule = LrSchedule::new(
        &mut opt,
        SwaLr {
            anneal_epochs: 2,
            ..SwaLr::new(0.05)
        },
    )?;
    assert_eq!(opt.lrs(), [0.1]);
    for _ in 0..3 {
        swa_model.update_parameters(&model)?;
        swa_schedule.step(&mut opt)?;
    }
    assert_eq!(opt.lrs(), [0.05]);
    assert_eq!(swa_model.n_averaged()?, 3);
    Ok(())
}

#[test]
fn mismatched_or_shared_models_are_refused() -> Result<()> {
    let model = net()?;
    let averaged = AveragedModel::new(net()?, &model)?;
    let other = Sequential::new().append(Linear::new(3, 4)?);
    let err = averaged.update_parameters(&other).unwrap_err().to_string();
    assert!(err.contains("same architecture"), "{err}");
    let wider = Sequential::new()
        .append(Linear::new(3, 5)?)
        .append(BatchNorm1d::new(4)?)
        .append(ReLU)
        .append(Linear::new(4, 2)?);
    let err = averaged.update_parameters(&wider).unwrap_err().to_string();
    assert!(err.contains("`0.weight` has shape [5, 3]"), "{err}");
    assert_eq!(averaged.n_averaged()?, 0, "a refused update counts nothing");

    // A copy holding the source's own parameters would average nothing.
    let source = Linear::new(2, 2)?;
    let sharing = Linear {
        bias: source.bias.clone(),
        ..Linear::new(2, 2)?
    };
    let err = AveragedModel::new(sharing, &source)
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("shares `bias`"), "{err}");
    let err = AveragedModel::ema(net()?, &model, 1.5)
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("decay must be in [0, 1]"), "{err}");

    // A loaded count below 0 (a damaged state) is refused, the weights untouched.
    let mut state = averaged.state_dict();
    state.insert("n_averaged", Tensor::from_slice(&[-3i64], ())?);
    averaged.load_state_dict(&state, true)?;
    let values = |m: &Sequential| -> Result<Vec<Vec<f64>>> {
        m.state_dict().iter().map(|(_, t)| t.to_vec_f64()).collect()
    };
    let before = values(averaged.module())?;
    let err = averaged.update_parameters(&model).unwrap_err().to_string();
    assert!(err.contains("n_averaged is -3"), "{err}");
    assert_eq!(values(averaged.module())?, before);
    Ok(())
}
