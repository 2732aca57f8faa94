//! Gradient clipping, as `torch.nn.utils.clip_grad_norm_` and `clip_grad_value_`.

use sinew_tensor::{DType, Device, Error, Parameter, Result, Tensor, no_grad};

/// Scales every gradient by `min(max_norm / (total + 1e-6), 1)`, where `total` is the
/// `norm_type`-norm of all gradients together (`f64::INFINITY` for the max norm), computed in
/// f64 (PyTorch's `_foreach_norm`, one multi-tensor kernel a few dozen gradients on a GPU).
/// Returns `total` as a 0-d f64 tensor on the first gradient's device, as PyTorch returns it:
/// nothing here waits for a GPU (read it with `item()`), unless `error_if_nonfinite`, which
/// reads it to make a non-finite total an error, as PyTorch's does. Parameters without a
/// gradient are skipped (none: a total of 0 on the CPU). A NaN total makes the gradients NaN,
/// as in PyTorch. A negative or NaN `max_norm` is an error (PyTorch would scale by it).
pub fn clip_grad_norm_(
    params: &[Parameter],
    max_norm: f64,
    norm_type: f64,
    error_if_nonfinite: bool,
) -> Result<Tensor> {
    if max_norm.is_nan() || max_norm < 0.0 {
        return Err(Error::invalid(
            "clip_grad_norm_",
            format!("max_norm must be zero or more, got {max_norm}"),
        ));
    }
    let grads: Vec<_> = params.iter().filter_map(Parameter::grad).collect();
    let Some(first) = grads.first() else {
        return Tensor::zeros((), DType::F64, &Device::cpu());
    };
    // Each device's `Σ |g|^p` (max |g| for p = ∞) stays there as a 0-d f64 tensor (one
    // multi-tensor kernel a few dozen gradients on a GPU), and they are combined on the first
    // gradient's device.
    let mut devices: Vec<(&Device, Vec<&Tensor>)> = Vec::new();
    for g in &grads {
        match devices.iter_mut().find(|(d, _)| *d == g.device()) {
            Some((_, group)) => group.push(g),
            None => devices.push((g.device(), vec![g])),
        }
    }
    let mut total: Option<Tensor> = None;
    for (_, group) in &devices {
        let part = Tensor::pow_sum_many(group, norm_type)?.to_device(first.device())?;
        total = Some(match total {
            None => part,
            Some(acc) if norm_type == f64::INFINITY => acc.maximum(&part)?,
            Some(acc) => acc.add(&part)?,
        });
    }
    let mut total = total.expect("at least one gradient");
    if norm_type != f64::INFINITY {
        total = total.powf(1.0 / norm_type)?;
    }
    if error_if_nonfinite {
        let value = total.item()?;
        if !value.is_finite() {
            return Err(Error::invalid(
                "clip_grad_norm_",
                format!("the total norm of order {norm_type} of the gradients is {value}"),
            ));
        }
    }
    let _guard = no_grad();
    let coef = total
        .add_scalar(1e-6)?
        .rdiv_scalar(max_norm)?
        .minimum_scalar(1.0)?;
    // One multi-tensor kernel a few dozen gradients on a GPU; the factor is taken to each
    // gradient's device and dtype once.
    let refs: Vec<&Tensor> = grads.iter().collect();
    Tensor::mul_many_(&refs, &coef)?;
    Ok(total)
}

/// Clamps every gradient to `[-clip_value, clip_value]`.
pub fn clip_grad_value_(params: &[Parameter], clip_value: f64) -> Result<()> {
    let _guard = no_grad();
    for g in params.iter().filter_map(Parameter::grad) {
        g.clamp_(-clip_value, clip_value)?;
    }
    Ok(())
}
