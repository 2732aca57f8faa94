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
    let mut per_tensor = Vec::with_capacity(grads.len());
    for g in &grads {
        let g64 = g.to_dtype(DType::F64)?;
        let n = if norm_type == f64::INFINITY {
            g64.abs()?.max(&[], false)?.to_scalar::<f64>()?
        } else {
            g64.norm(norm_type, &[], false)?.to_scalar::<f64>()?
        };
        per_tensor.push(n);
    }
    let total = if norm_type == f64::INFINITY {
        per_tensor.iter().copied().fold(0.0, f64::max)
    } else {
        per_tensor
            .iter()
            .map(|n| n.powf(norm_type))
            .sum::<f64>()
            .powf(1.0 / norm_type)
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
