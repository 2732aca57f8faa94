//! Gradient clipping, as `torch.nn.utils.clip_grad_norm_` and `clip_grad_value_`.

use sinew_tensor::{DType, Error, Parameter, Result, no_grad};

/// Scales every gradient by `max_norm / (total + 1e-6)` when that is below 1, where `total` is
/// the `norm_type`-norm of all gradients together (`f64::INFINITY` for the max norm). Returns
/// `total`. Parameters without a gradient are skipped. A non-finite total is an error when
/// `error_if_nonfinite`, as in PyTorch.
pub fn clip_grad_norm_(
    params: &[Parameter],
    max_norm: f64,
    norm_type: f64,
    error_if_nonfinite: bool,
) -> Result<f64> {
    let grads: Vec<_> = params.iter().filter_map(Parameter::grad).collect();
    if grads.is_empty() {
        return Ok(0.0);
    }
    // Per-tensor norms stay on their device as 0-d f64 tensors and are combined there; the
    // host reads one number per device (one synchronisation per call on a GPU, not one per
    // parameter).
    let mut per_device: Vec<sinew_tensor::Tensor> = Vec::new();
    for g in &grads {
        let g64 = g.to_dtype(DType::F64)?;
        let part = if norm_type == f64::INFINITY {
            g64.abs()?.max(&[], false)?
        } else {
            g64.norm(norm_type, &[], false)?.powf(norm_type)?
        };
        match per_device.iter_mut().find(|t| t.device() == part.device()) {
            Some(acc) if norm_type == f64::INFINITY => *acc = acc.maximum(&part)?,
            Some(acc) => *acc = acc.add(&part)?,
            None => per_device.push(part),
        }
    }
    let mut parts = Vec::with_capacity(per_device.len());
    for t in per_device {
        parts.push(t.to_scalar::<f64>()?);
    }
    let total = if norm_type == f64::INFINITY {
        parts.iter().copied().fold(0.0, f64::max)
    } else {
        parts.iter().sum::<f64>().powf(1.0 / norm_type)
    };
    if error_if_nonfinite && !total.is_finite() {
        return Err(Error::invalid(
            "clip_grad_norm_",
            format!("the total norm of order {norm_type} of the gradients is {total}"),
        ));
    }
    let coef = (max_norm / (total + 1e-6)).min(1.0);
    if coef < 1.0 {
        let _guard = no_grad();
        for g in &grads {
            g.mul_scalar_(coef)?;
        }
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
