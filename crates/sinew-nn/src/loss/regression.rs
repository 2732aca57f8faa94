//! Regression losses: MSE, L1, smooth L1 (`beta`) and Huber (`delta`).

use sinew_tensor::{Error, Result, Tensor};

use super::{Reduction, in_f32, reduce, same_shape};

/// Mean squared error `(x - y)^2`.
pub fn mse_loss(input: &Tensor, target: &Tensor, reduction: Reduction) -> Result<Tensor> {
    same_shape("mse_loss", input, target)?;
    let [input, target] = in_f32([input, target])?;
    reduce(input.sub(&target)?.square()?, reduction)
}

/// Mean absolute error `|x - y|`.
pub fn l1_loss(input: &Tensor, target: &Tensor, reduction: Reduction) -> Result<Tensor> {
    same_shape("l1_loss", input, target)?;
    let [input, target] = in_f32([input, target])?;
    reduce(input.sub(&target)?.abs()?, reduction)
}

/// `0.5 d^2 / beta` for `|d| < beta`, else `|d| - 0.5 beta` (`beta = 0` is L1). Written as
/// `0.5 m^2 / beta + (|d| - m)` with `m = min(|d|, beta)`, which is both branches at once.
pub fn smooth_l1_loss(
    input: &Tensor,
    target: &Tensor,
    beta: f64,
    reduction: Reduction,
) -> Result<Tensor> {
    same_shape("smooth_l1_loss", input, target)?;
    if beta.is_nan() || beta < 0.0 {
        return Err(Error::invalid(
            "smooth_l1_loss",
            format!("beta must be >= 0, got {beta}"),
        ));
    }
    let [input, target] = in_f32([input, target])?;
    let d = input.sub(&target)?.abs()?;
    if beta == 0.0 {
        return reduce(d, reduction);
    }
    let m = d.minimum_scalar(beta)?;
    let loss = m.square()?.mul_scalar(0.5 / beta)?.add(&d.sub(&m)?)?;
    reduce(loss, reduction)
}

/// `0.5 d^2` for `|d| <= delta`, else `delta (|d| - 0.5 delta)`: `delta` times smooth L1 with
/// `beta = delta`.
pub fn huber_loss(
    input: &Tensor,
    target: &Tensor,
    delta: f64,
    reduction: Reduction,
) -> Result<Tensor> {
    if delta.is_nan() || delta <= 0.0 {
        return Err(Error::invalid(
            "huber_loss",
            format!("delta must be > 0, got {delta}"),
        ));
    }
    let loss = smooth_l1_loss(input, target, delta, Reduction::None)?.mul_scalar(delta)?;
    reduce(loss, reduction)
}
