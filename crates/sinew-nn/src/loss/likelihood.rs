//! Negative log likelihoods of count and real-valued targets: Poisson and Gaussian.

use sinew_tensor::{Error, Result, Tensor, with_no_grad};

use super::{Reduction, in_f32, reduce, same_shape};

/// Poisson negative log likelihood: `exp(x) - y x` on log rates (`log_input`, the default),
/// else `x - y log(x + eps)`; `full` adds Stirling's `y log y - y + log(2 pi y) / 2` where
/// `y > 1`. PyTorch: `F.poisson_nll_loss` (default eps 1e-8).
pub fn poisson_nll_loss(
    input: &Tensor,
    target: &Tensor,
    log_input: bool,
    full: bool,
    eps: f64,
    reduction: Reduction,
) -> Result<Tensor> {
    same_shape("poisson_nll_loss", input, target)?;
    let [input, target] = in_f32([input, target])?;
    let mut loss = if log_input {
        input.exp()?.sub(&target.mul(&input)?)?
    } else {
        input.sub(&target.mul(&input.add_scalar(eps)?.log()?)?)?
    };
    if full {
        let stirling = target.mul(&target.log()?)?.sub(&target)?.add(
            &target
                .mul_scalar(2.0 * std::f64::consts::PI)?
                .log()?
                .mul_scalar(0.5)?,
        )?;
        // Selected: for y <= 1 the term is 0 (at y = 0 it is 0 * -inf).
        let zero = Tensor::zeros((), stirling.dtype(), stirling.device())?;
        loss = loss.add(&target.gt_scalar(1.0)?.where_cond(&stirling, &zero)?)?;
    }
    reduce(loss, reduction)
}

/// Gaussian negative log likelihood with predicted mean `input` and variance `var`:
/// `(log(max(var, eps)) + (input - target)^2 / max(var, eps)) / 2`, plus `log(2 pi) / 2` when
/// `full`. `var` has the input's shape, or one variance per sample (its last dim 1 or absent).
/// As PyTorch, the clamp to eps passes the gradient unchanged, and a negative variance is an
/// error (checked on the CPU; elsewhere reading it would wait for the device).
/// PyTorch: `F.gaussian_nll_loss` (default eps 1e-6).
pub fn gaussian_nll_loss(
    input: &Tensor,
    target: &Tensor,
    var: &Tensor,
    full: bool,
    eps: f64,
    reduction: Reduction,
) -> Result<Tensor> {
    const OP: &str = "gaussian_nll_loss";
    same_shape(OP, input, target)?;
    let dims = input.dims();
    let var = if var.dims() == dims {
        var.clone()
    } else if dims.split_last().map(|(_, lead)| lead) == Some(var.dims()) {
        var.unsqueeze(-1)?
    } else if var.dims().split_last() == dims.split_last().map(|(_, lead)| (&1, lead)) {
        var.clone()
    } else {
        return Err(Error::invalid(
            OP,
            format!(
                "var of shape {} is neither the input's {} nor one per sample",
                var.shape(),
                input.shape()
            ),
        ));
    };
    let [input, target, var] = in_f32([input, target, &var])?;
    if var.device().is_cpu() && with_no_grad(|| var.lt_scalar(0.0)?.sum_all()?.item())? > 0.0 {
        return Err(Error::invalid(OP, "var has negative entries"));
    }
    // The clamp's values with the gradient of the identity (PyTorch clamps a copy in place
    // under no_grad).
    let clamped = var.add(&with_no_grad(|| var.maximum_scalar(eps)?.sub(&var))?)?;
    let mut loss = clamped
        .log()?
        .add(&input.sub(&target)?.square()?.div(&clamped)?)?
        .mul_scalar(0.5)?;
    if full {
        loss = loss.add_scalar(0.5 * (2.0 * std::f64::consts::PI).ln())?;
    }
    reduce(loss, reduction)
}
