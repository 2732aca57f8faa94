//! update_bn against PyTorch's `torch.optim.swa_utils.update_bn` (the reference file of
//! sinew-optim's `tests/reference/gen_swa.py`): recomputed running statistics, restored
//! momentum and mode.

use std::sync::Arc;

use sinew_data::{DataLoader, LoaderConfig, Sample, VecDataset};
use sinew_nn::module_ext::walk;
use sinew_nn::{BatchNorm1d, Entry, Linear, Module, ModuleExt, ReLU, Sequential, StateDict};
use sinew_optim::AveragedModel;
use sinew_tensor::{DType, Result, Tensor};
use sinew_train::update_bn;

fn reference() -> StateDict {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../sinew-optim/tests/reference/swa.safetensors");
    sinew_nn::load_safetensors(path).expect("reference file")
}

fn net() -> Result<Sequential> {
    Ok(Sequential::new()
        .append(Linear::new(3, 4)?)
        .append(BatchNorm1d::new(4)?)
        .append(ReLU)
        .append(Linear::new(4, 2)?))
}

fn values(t: &Tensor) -> Vec<f64> {
    t.to_dtype(DType::F64).unwrap().to_vec::<f64>().unwrap()
}

/// Asserts `got` is within a few f32 roundings of `want`.
fn assert_close(got: &Tensor, want: &Tensor, what: &str) {
    let (g, w) = (values(got), values(want));
    assert_eq!(g.len(), w.len(), "{what}");
    for (a, b) in g.iter().zip(&w) {
        assert!(
            (a - b).abs() <= 1e-6 * (1.0 + b.abs()),
            "{what}: {g:?} vs PyTorch {w:?}"
        );
    }
}

#[test]
fn update_bn_recomputes_the_statistics_as_pytorch() -> Result<()> {
    let r = reference();
    let source = net()?;
    let swa = AveragedModel::new(net()?, &source)?;
    swa.load_state_dict(&r.select("swa.step3."), true)?;
    swa.eval();

    // The same 10 inputs in batches of 4, 4 and 2, as PyTorch's DataLoader(x, batch_size=4).
    let input = r.get("update_bn.input").unwrap();
    let rows = values(input)
        .chunks(3)
        .map(|row| Sample::features(row.iter().map(|&v| v as f32).collect(), 0))
        .collect();
    let config = LoaderConfig {
        batch_size: 4,
        num_workers: 0,
        ..Default::default()
    };
    let loader = DataLoader::new(Arc::new(VecDataset::new(rows)), config)?;
    // Frozen, as after transfer learning: update_bn recomputes the statistics all the same.
    swa.freeze()?;
    update_bn(&loader, &swa)?;
    let mut frozen = Vec::new();
    walk(&swa, |_, entry| {
        if let Entry::Mode(mode) = entry {
            frozen.push(mode.is_frozen());
        }
    });
    assert_eq!(frozen, [true], "the batch norm stays frozen");
    swa.unfreeze()?;

    let want = r.select("update_bn.");
    let got = swa.state_dict();
    for key in ["module.1.running_mean", "module.1.running_var"] {
        assert_close(got.get(key).unwrap(), want.get(key).unwrap(), key);
    }
    let count = got.get("module.1.num_batches_tracked").unwrap();
    assert_eq!(count.to_scalar::<i64>()?, 3);
    assert_eq!(
        values(want.get("module.1.num_batches_tracked").unwrap()),
        [3.0]
    );
    // The weights are untouched; the mode and momentum are the model's again.
    assert_eq!(
        values(got.get("module.0.weight").unwrap()),
        values(want.get("module.0.weight").unwrap())
    );
    assert!(!swa.is_training());
    let bn = swa.module().named_modules()[2].1.type_name();
    assert_eq!(bn, "BatchNorm1d");
    let output = swa.forward(input)?;
    assert_close(&output, r.get("update_bn.output").unwrap(), "output");

    // A training batch afterwards moves the statistics by the layer's momentum (0.1) again, as
    // in a twin that never went through update_bn.
    let twin = net()?;
    twin.load_state_dict(&swa.module().state_dict(), true)?;
    let recomputed = values(got.get("module.1.running_mean").unwrap());
    for model in [swa.module() as &dyn Module, &twin] {
        model.train();
        model.forward(input)?;
    }
    let mean = |m: &dyn Module| values(&m.state_dict().get("1.running_mean").unwrap().clone());
    assert_eq!(mean(swa.module()), mean(&twin));
    assert_ne!(mean(&twin), recomputed);
    Ok(())
}

#[test]
fn update_bn_leaves_a_model_without_batch_norm_alone() -> Result<()> {
    let model = Sequential::new().append(Linear::new(3, 2)?);
    let rows = vec![Sample::features(vec![1.0, 2.0, 3.0], 0)];
    let config = LoaderConfig {
        batch_size: 1,
        num_workers: 0,
        ..Default::default()
    };
    let loader = DataLoader::new(Arc::new(VecDataset::new(rows)), config)?;
    model.eval();
    let before = values(&model.parameters()[0].value());
    update_bn(&loader, &model)?;
    assert!(!model.is_training());
    assert_eq!(values(&model.parameters()[0].value()), before);
    Ok(())
}
