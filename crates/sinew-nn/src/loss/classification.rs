//! Binary cross entropy (on probabilities and, stably, on logits with `pos_weight`) and the
//! KL divergence.

use sinew_tensor::{Error, Result, Tensor};

use super::{Reduction, in_f32, reduce, same_shape, weight_in_f32};

/// `-w (t log p + (1 - t) log(1 - p))` with each log clamped at -100, as PyTorch does so that
/// `p = 0` or `1` gives a finite loss.
#[derive(Debug, Clone, Default)]
pub struct BceLoss {
    /// Per-element weight, broadcast against the input.
    pub weight: Option<Tensor>,
    /// Reduction (default mean).
    pub reduction: Reduction,
}

impl BceLoss {
    /// The loss of probabilities `input` against `target`, both in `[0, 1]` (checked at once
    /// on the CPU, at the next wait for the device on a GPU, as PyTorch does).
    pub fn forward(&self, input: &Tensor, target: &Tensor) -> Result<Tensor> {
        same_shape("binary_cross_entropy", input, target)?;
        let [input, target] = in_f32([input, target])?;
        check_probabilities("input", &input)?;
        check_probabilities("target", &target)?;
        let log_p = input.log()?.maximum_scalar(-100.0)?;
        let log_q = input.rsub_scalar(1.0)?.log()?.maximum_scalar(-100.0)?;
        let mut loss = target
            .mul(&log_p)?
            .add(&target.rsub_scalar(1.0)?.mul(&log_q)?)?
            .neg()?;
        if let Some(w) = weight_in_f32(self.weight.as_ref())? {
            loss = loss.mul(&w)?;
        }
        reduce(loss, self.reduction)
    }
}

/// PyTorch's check: every element of `t` in `[0, 1]` (NaN is not), else "all elements of
/// input should be between 0 and 1". On the CPU it is made at once, as PyTorch's CPU kernel
/// does; on a GPU it is queued and a failure comes back from the next wait for the device
/// (`loss.item()`), as PyTorch's device-side assert does ([`Tensor::check_in_range`]), so the
/// check costs no synchronisation.
fn check_probabilities(what: &str, t: &Tensor) -> Result<()> {
    let message = format!("all elements of {what} should be between 0 and 1");
    t.check_in_range("binary_cross_entropy", (0.0, 1.0), &message)
}

/// `binary_cross_entropy(p, t)` with the defaults.
pub fn binary_cross_entropy(input: &Tensor, target: &Tensor) -> Result<Tensor> {
    BceLoss::default().forward(input, target)
}

/// Binary cross entropy on logits, computed stably (PyTorch's `BCEWithLogitsLoss`):
/// `(1 - t) x + (1 + (pw - 1) t) softplus(-x)`, times `weight`.
#[derive(Debug, Clone, Default)]
pub struct BceWithLogitsLoss {
    /// Per-element weight, broadcast against the input.
    pub weight: Option<Tensor>,
    /// Weight of positive examples per class (broadcast along the last dim).
    pub pos_weight: Option<Tensor>,
    /// Reduction (default mean).
    pub reduction: Reduction,
}

impl BceWithLogitsLoss {
    /// The loss of logits `input` against `target` in `[0, 1]`.
    pub fn forward(&self, input: &Tensor, target: &Tensor) -> Result<Tensor> {
        same_shape("binary_cross_entropy_with_logits", input, target)?;
        let [input, target] = in_f32([input, target])?;
        // softplus(-x) = relu(-x) + log1p(exp(-|x|)), finite for any x.
        let softplus_neg = input
            .neg()?
            .relu()?
            .add(&input.abs()?.neg()?.exp()?.log1p()?)?;
        let log_weight = match weight_in_f32(self.pos_weight.as_ref())? {
            Some(pw) => target.mul(&pw.sub_scalar(1.0)?)?.add_scalar(1.0)?,
            None => target.ones_like()?,
        };
        let mut loss = target
            .rsub_scalar(1.0)?
            .mul(&input)?
            .add(&log_weight.mul(&softplus_neg)?)?;
        if let Some(w) = weight_in_f32(self.weight.as_ref())? {
            loss = loss.mul(&w)?;
        }
        reduce(loss, self.reduction)
    }
}

/// `binary_cross_entropy_with_logits(x, t)` with the defaults.
pub fn binary_cross_entropy_with_logits(input: &Tensor, target: &Tensor) -> Result<Tensor> {
    BceWithLogitsLoss::default().forward(input, target)
}

/// KL divergence `target * (log target - input)` for log-probabilities `input` (PyTorch's
/// `KLDivLoss`; `0 log 0 = 0`). Use `Reduction::BatchMean` for the mathematical KL divergence.
#[derive(Debug, Clone, Copy, Default)]
pub struct KlDivLoss {
    /// Reduction (default mean over elements, as PyTorch; `BatchMean` is the true KL).
    pub reduction: Reduction,
    /// The target is given as log-probabilities.
    pub log_target: bool,
}

impl KlDivLoss {
    /// The divergence of `input` (log-probabilities) from `target`.
    pub fn forward(&self, input: &Tensor, target: &Tensor) -> Result<Tensor> {
        same_shape("kl_div", input, target)?;
        if !input.dtype().is_float() {
            return Err(Error::UnsupportedDType {
                op: "kl_div",
                dtype: input.dtype(),
            });
        }
        let [input, target] = in_f32([input, target])?;
        let loss = if self.log_target {
            target.exp()?.mul(&target.sub(&input)?)?
        } else {
            // xlogy: 0 where the target is 0.
            let positive = target.gt_scalar(0.0)?;
            let safe = positive.where_cond(&target, &target.ones_like()?)?;
            target.mul(&safe.log()?.sub(&input)?)?
        };
        reduce(loss, self.reduction)
    }
}

/// `kl_div(input, target, reduction, log_target)`.
pub fn kl_div(
    input: &Tensor,
    target: &Tensor,
    reduction: Reduction,
    log_target: bool,
) -> Result<Tensor> {
    KlDivLoss {
        reduction,
        log_target,
    }
    .forward(input, target)
}
