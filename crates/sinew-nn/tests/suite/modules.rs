//! The module tree: PyTorch's names, train/eval, freeze, moving, replacing a child, summary.

use sinew_nn::zoo::{lenet5, mlp};
use sinew_nn::*;
use sinew_tensor::{DType, Result, Tensor};

struct Block {
    conv: Conv2d,
    bn: BatchNorm2d,
    drop: Dropout,
}

impl Module for Block {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        self.drop
            .forward(&self.bn.forward(&self.conv.forward(x)?)?.relu()?)
    }
    fn visit<'a>(&'a self, v: &mut Visit<'a, '_>) {
        v.child("conv", &self.conv);
        v.child("bn", &self.bn);
        v.child("drop", &self.drop);
    }
}

fn block() -> Result<Block> {
    Ok(Block {
        conv: Conv2d::new(2, 3, 3)?,
        bn: BatchNorm2d::new(3)?,
        drop: Dropout::new(0.5),
    })
}

#[test]
fn state_dict_keys_follow_the_tree_and_sequential_indices() -> Result<()> {
    let net = Sequential::new()
        .append(block()?)
        .append(ReLU)
        .append(Linear::new(3, 2)?);
    let keys: Vec<String> = net.state_dict().keys().map(String::from).collect();
    assert_eq!(
        keys,
        [
            "0.conv.weight",
            "0.conv.bias",
            "0.bn.weight",
            "0.bn.bias",
            "0.bn.running_mean",
            "0.bn.running_var",
            "0.bn.num_batches_tracked",
            "2.weight",
            "2.bias",
        ]
    );
    let sd = net.state_dict();
    assert_eq!(
        sd.get("0.bn.num_batches_tracked").unwrap().dtype(),
        DType::I64
    );
    assert_eq!(net.named_parameters().len(), 6);
    assert_eq!(net.named_buffers().len(), 3);
    let modules: Vec<String> = net.named_modules().into_iter().map(|(n, _)| n).collect();
    assert_eq!(modules, ["", "0", "0.conv", "0.bn", "0.drop", "1", "2"]);
    Ok(())
}

#[test]
fn eval_and_train_reach_every_module_and_batch_norm_updates_only_in_training() -> Result<()> {
    let net = Sequential::new().append(block()?);
    let x = Tensor::randn([4, 2, 5, 5], DType::F32, &sinew_tensor::Device::cpu())?;
    let b = &net;
    let running = || b.named_buffers()[0].1.value().to_vec::<f32>();
    let before = running()?;
    net.eval();
    assert!(!net.is_training());
    let y1 = net.forward(&x)?;
    let y2 = net.forward(&x)?;
    assert_eq!(
        y1.to_vec::<f32>()?,
        y2.to_vec::<f32>()?,
        "eval is deterministic (no dropout)"
    );
    assert_eq!(running()?, before, "eval does not touch running statistics");
    net.train();
    net.forward(&x)?;
    assert_ne!(running()?, before, "training updates running statistics");
    Ok(())
}

#[test]
fn freeze_stops_gradients_and_keeps_batch_norm_statistics_in_training_mode() -> Result<()> {
    let b = block()?;
    b.freeze()?;
    b.train();
    assert_eq!(b.num_trainable_parameters(), 0);
    let before =
        b.bn.running_mean
            .as_ref()
            .unwrap()
            .value()
            .to_vec::<f32>()?;
    let x = Tensor::randn([4, 2, 5, 5], DType::F32, &sinew_tensor::Device::cpu())?;
    let y = b.forward(&x)?;
    assert!(!y.requires_grad());
    assert_eq!(
        b.bn.running_mean
            .as_ref()
            .unwrap()
            .value()
            .to_vec::<f32>()?,
        before
    );
    b.unfreeze()?;
    assert_eq!(b.num_trainable_parameters(), b.num_parameters());
    Ok(())
}

#[test]
fn to_dtype_converts_float_state_only() -> Result<()> {
    let b = block()?;
    b.to_dtype(DType::F16)?;
    let sd = b.state_dict();
    assert_eq!(sd.get("conv.weight").unwrap().dtype(), DType::F16);
    assert_eq!(sd.get("bn.running_var").unwrap().dtype(), DType::F16);
    assert_eq!(
        sd.get("bn.num_batches_tracked").unwrap().dtype(),
        DType::I64
    );
    Ok(())
}

#[test]
fn replacing_the_head_changes_the_output_and_the_keys() -> Result<()> {
    let mut net = mlp(&[4, 8, 3])?;
    net.replace(3, Box::new(Linear::new(8, 5)?))?;
    let y = net.forward(&Tensor::ones(
        [2, 4],
        DType::F32,
        &sinew_tensor::Device::cpu(),
    )?)?;
    assert_eq!(y.dims(), &[2, 5]);
    assert_eq!(net.state_dict().get("3.weight").unwrap().dims(), &[5, 8]);
    assert!(net.replace(9, Box::new(ReLU)).is_err());
    Ok(())
}

#[test]
fn shared_parameters_are_counted_once_but_saved_under_both_names() -> Result<()> {
    let a = Linear::new(3, 3)?;
    let b = Linear {
        weight: a.weight.clone(),
        bias: None,
    };
    let net = Sequential::new().append(a).append(b);
    assert_eq!(net.parameters().len(), 2);
    assert_eq!(net.num_parameters(), 12);
    assert_eq!(net.state_dict().len(), 3);
    Ok(())
}

#[test]
fn summary_lists_layers_with_output_shapes_and_parameter_counts() -> Result<()> {
    let net = lenet5(10)?;
    let s = net.summary([1, 1, 28, 28])?;
    let rows: Vec<(String, Vec<usize>, usize)> = s
        .rows
        .iter()
        .map(|r| (r.name.clone(), r.output_shape.dims().to_vec(), r.parameters))
        .collect();
    assert_eq!(rows[0], ("0".to_string(), vec![1, 6, 28, 28], 156));
    assert_eq!(rows[2], ("2".to_string(), vec![1, 6, 14, 14], 0));
    assert_eq!(rows[3], ("3".to_string(), vec![1, 16, 10, 10], 2416));
    assert_eq!(rows.len(), 12);
    // Every row is named by its own path, the parameterless (zero-sized) layers included.
    let names: Vec<&str> = rows.iter().map(|r| r.0.as_str()).collect();
    assert_eq!(
        names,
        ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9", "10", "11"]
    );
    assert_eq!(s.total_parameters, 61_706);
    assert_eq!(s.output_shape.dims(), &[1, 10]);
    let text = s.to_string();
    assert!(
        text.contains("0 (Conv2d)") && text.contains("Total params: 61706"),
        "{text}"
    );
    Ok(())
}

#[test]
fn load_state_dict_reports_missing_unexpected_and_mismatched_keys() -> Result<()> {
    let net = mlp(&[4, 8, 3])?;
    let mut sd = net.state_dict();
    sd.remove("1.bias");
    sd.insert(
        "extra",
        Tensor::zeros([1], DType::F32, &sinew_tensor::Device::cpu())?,
    );
    sd.insert(
        "3.weight",
        Tensor::zeros([2, 8], DType::F32, &sinew_tensor::Device::cpu())?,
    );
    let err = net.load_state_dict(&sd, true).unwrap_err().to_string();
    assert!(
        err.contains("1.bias") && err.contains("extra") && err.contains("3.weight"),
        "{err}"
    );
    let report = net.load_state_dict(&sd, false)?;
    assert_eq!(report.missing, ["1.bias"]);
    assert_eq!(report.unexpected, ["extra"]);
    assert_eq!(report.mismatched.len(), 1);
    assert_eq!(report.mismatched[0].0, "3.weight");
    Ok(())
}

#[test]
fn a_data_parallel_prefix_is_stripped() -> Result<()> {
    let net = mlp(&[2, 2])?;
    let sd = net.state_dict().add_prefix("module.");
    assert!(net.load_state_dict(&sd, true).is_err());
    assert!(
        net.load_state_dict(&sd.strip_prefix("module."), true)?
            .is_clean()
    );
    Ok(())
}
