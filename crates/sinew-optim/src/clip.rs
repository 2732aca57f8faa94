//! Gradient clipping, as `torch.nn.utils.clip_grad_norm_` and `clip_grad_value_`.

use sinew_tensor::{DType, Device, Error, Parameter, Result, Tensor, no_grad};

/// Scales every gradient by `min(max_norm / (total + 1e-6), 1)`, where `total` is the
/// `norm_type`-norm of all gradients together (`f64::INFINITY` for the max norm), computed in
/// f64. Returns `total` as a 0-d f64 tensor on the first gradient's device, as PyTorch returns
/// it: nothing here waits for a GPU (read it with `item()`), unless `error_if_nonfinite`, which
/// reads it to make a non-finite total an error, as PyTorch's does. Parameters without a
/// gradient are skipped (none: a total of 0 on the CPU). A NaN total makes the gradients NaN,
/// as in PyTorch.
pub fn clip_grad_norm_(
    params: &[Parameter],
    max_norm: f64,
    norm_type: f64,
    error_if_nonfinite: bool,
) -> Result<Tensor> {
    let grads: Vec<_> = params.iter().filter_map(Parameter::grad).collect();
    let Some(first) = grads.first() else {
        return Tensor::zeros((), DType::F64, &Device::cpu());
    };
    // Per-tensor norms stay on their device as 0-d f64 tensors and are combined there, then on
    // the first gradient's device.
    let combine = |acc: &Tensor, part: &Tensor| {
        if norm_type == f64::INFINITY {
            acc.maximum(part)
        } else {
            acc.add(part)
        }
    };
    let mut per_device: Vec<Tensor> = Vec::new();
    for g in &grads {
        let g64 = g.to_dtype(DType::F64)?;
        let part = if norm_type == f64::INFINITY {
            g64.abs()?.max(&[], false)?
        } else {
            g64.norm(norm_type, &[], false)?.powf(norm_type)?
        };
        match per_device.iter_mut().find(|t| t.device() == part.device()) {
            Some(acc) => *acc = combine(acc, &part)?,
            None => per_device.push(part),
        }
    }
    let mut total = per_device[0].clone();
    for part in &per_device[1..] {
        total = combine(&total, &part.to_device(first.device())?)?;
    }
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
    // The factor in each gradient's dtype on its device, made once for each.
    let mut factors: Vec<Tensor> = Vec::new();
    for g in &grads {
        let found = factors
            .iter()
            .find(|f| f.device() == g.device() && f.dtype() == g.dtype());
        let factor = match found {
            Some(f) => f.clone(),
            None => {
                let f = coef.to_device(g.device())?.to_dtype(g.dtype())?;
                factors.push(f.clone());
                f
            }
        };
        g.mul_(&factor)?;
    }
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
