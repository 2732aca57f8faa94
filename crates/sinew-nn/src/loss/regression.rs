//! Regression losses: MSE, L1, smooth L1 (`beta`) and Huber (`delta`), as functions and as
//! PyTorch's loss modules (`MseLoss`, `L1Loss`, `SmoothL1Loss`, `HuberLoss`).

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

/// PyTorch's `nn.MSELoss`: [`mse_loss`] with its reduction.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MseLoss {
    /// Reduction (default mean).
    pub reduction: Reduction,
}

impl MseLoss {
    /// The loss of `input` against `target` (same shape).
    pub fn forward(&self, input: &Tensor, target: &Tensor) -> Result<Tensor> {
        mse_loss(input, target, self.reduction)
    }
}

/// PyTorch's `nn.L1Loss`: [`l1_loss`] with its reduction.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct L1Loss {
    /// Reduction (default mean).
    pub reduction: Reduction,
}

impl L1Loss {
    /// The loss of `input` against `target` (same shape).
    pub fn forward(&self, input: &Tensor, target: &Tensor) -> Result<Tensor> {
        l1_loss(input, target, self.reduction)
    }
}

/// PyTorch's `nn.SmoothL1Loss`: [`smooth_l1_loss`] with its `beta` and reduction.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SmoothL1Loss {
    /// Where the quadratic part ends (default 1; 0 is L1).
    pub beta: f64,
    /// Reduction (default mean).
    pub reduction: Reduction,
}

impl Default for SmoothL1Loss {
    fn default() -> Self {
        SmoothL1Loss {
            beta: 1.0,
            reduction: Reduction::Mean,
        }
    }
}

impl SmoothL1Loss {
    /// The loss of `input` against `target` (same shape).
    pub fn forward(&self, input: &Tensor, target: &Tensor) -> Result<Tensor> {
        smooth_l1_loss(input, target, self.beta, self.reduction)
    }
}

/// PyTorch's `nn.HuberLoss`: [`huber_loss`] with its `delta` and reduction.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HuberLoss {
    /// Where the quadratic part ends (default 1; must be positive).
    pub delta: f64,
    /// Reduction (default mean).
    pub reduction: Reduction,
}

impl Default for HuberLoss {
    fn default() -> Self {
        HuberLoss {
            delta: 1.0,
            reduction: Reduction::Mean,
        }
    }
}

impl HuberLoss {
    /// The loss of `input` against `target` (same shape).
    pub fn forward(&self, input: &Tensor, target: &Tensor) -> Result<Tensor> {
        huber_loss(input, target, self.delta, self.reduction)
    }
}

#[cfg(test)]
mod tests {
    use sinew_tensor::{DType, Device, Generator};

    use super::*;

    /// The modules' defaults are PyTorch's (`beta = delta = 1`, mean), where smooth L1 and
    /// Huber agree; and the quadratic part ends at 1: a difference of 3 costs 2.5 in both.
    #[test]
    fn default_modules_are_pytorchs() -> Result<()> {
        let cpu = Device::cpu();
        let x = Generator::new(3).randn([4, 5], DType::F32, &cpu)?;
        let t = Tensor::zeros([4, 5], DType::F32, &cpu)?;
        let smooth = SmoothL1Loss::default().forward(&x, &t)?.item()?;
        let huber = HuberLoss::default().forward(&x, &t)?.item()?;
        assert_eq!(smooth, huber);
        let three = Tensor::full([1], 3.0, DType::F32, &cpu)?;
        let zero = Tensor::zeros([1], DType::F32, &cpu)?;
        assert_eq!(SmoothL1Loss::default().forward(&three, &zero)?.item()?, 2.5);
        assert_eq!(HuberLoss::default().forward(&three, &zero)?.item()?, 2.5);
        assert_eq!(MseLoss::default().forward(&three, &zero)?.item()?, 9.0);
        assert_eq!(L1Loss::default().forward(&three, &zero)?.item()?, 3.0);
        Ok(())
    }
}
