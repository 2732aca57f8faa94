//! Rprop (resilient backpropagation) with PyTorch's formulas: each weight's step size grows
//! while its gradient keeps its sign and shrinks when the sign flips; only the sign of the
//! gradient moves the weight.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use sinew_tensor::{CmpOp, Error, FusedStep, Parameter, Result, RpropStep, Tensor};

use crate::checks::non_negative;
use crate::optimizer::{Optim, Slot, UpdateRule, effective_grad};

/// Rprop's options, with PyTorch's defaults.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RpropConfig {
    /// The step size every weight starts with (default 1e-2; later changes of the learning
    /// rate do not reach the step sizes, as in PyTorch).
    pub lr: f64,
    /// `(etaminus, etaplus)`: the step-size factors after a sign flip and after a kept sign
    /// (default `(0.5, 1.2)`; `0 < etaminus < 1 < etaplus`).
    pub etas: (f64, f64),
    /// `(min, max)`: the step sizes stay in this range (default `(1e-6, 50)`).
    pub step_sizes: (f64, f64),
    /// Maximise instead (default false).
    pub maximize: bool,
}

impl Default for RpropConfig {
    fn default() -> Self {
        RpropConfig {
            lr: 1e-2,
            etas: (0.5, 1.2),
            step_sizes: (1e-6, 50.0),
            maximize: false,
        }
    }
}

impl RpropConfig {
    /// PyTorch's defaults with initial step size `lr`.
    pub fn new(lr: f64) -> Self {
        RpropConfig {
            lr,
            ..Default::default()
        }
    }
}

/// Rprop's rule: `step_size *= etaplus, etaminus or 1` as `g * prev` is positive, negative or
/// zero (then clamped), `p -= sign(g) * step_size` with `g` zeroed where the sign flipped, and
/// `prev = g` (PyTorch's `_single_tensor_rprop`).
pub struct RpropRule;
/// Rprop (Riedmiller and Braun).
pub type Rprop = Optim<RpropRule>;

/// Rprop over named parameters.
pub fn rprop(params: Vec<(String, Parameter)>, config: RpropConfig) -> Rprop {
    Optim::new(params, config)
}

impl UpdateRule for RpropRule {
    type Config = RpropConfig;
    const NAME: &'static str = "Rprop";
    fn lr(c: &RpropConfig) -> f64 {
        c.lr
    }
    fn set_lr(c: &mut RpropConfig, lr: f64) {
        c.lr = lr;
    }
    fn check(c: &RpropConfig) -> Result<()> {
        non_negative("Rprop", "learning rate", c.lr)?;
        let (minus, plus) = c.etas;
        if !(0.0 < minus && minus < 1.0 && 1.0 < plus) {
            return Err(Error::invalid(
                "optimizer",
                format!(
                    "Rprop: invalid etas ({minus}, {plus}) (they must be 0 < etaminus < 1 < etaplus)"
                ),
            ));
        }
        let (low, high) = c.step_sizes;
        if low.partial_cmp(&high).is_none_or(|order| order.is_gt()) {
            return Err(Error::invalid(
                "optimizer",
                format!("Rprop: invalid step_sizes ({low}, {high}) (min must not exceed max)"),
            ));
        }
        Ok(())
    }
    fn buffers(c: &RpropConfig) -> Vec<(&'static str, f64)> {
        vec![("prev", 0.0), ("step_size", c.lr)]
    }
    fn scratch(_: &RpropConfig) -> usize {
        1
    }
    fn fused(
        c: &RpropConfig,
        _: u64,
        _: &BTreeMap<String, f64>,
    ) -> Option<(FusedStep, &'static [&'static str])> {
        let fused = FusedStep::Rprop(RpropStep {
            etas: c.etas,
            step_sizes: c.step_sizes,
            maximize: c.maximize,
        });
        Some((fused, &["prev", "step_size"]))
    }
    fn update(c: &RpropConfig, param: &Tensor, grad: &Tensor, slot: Slot<'_>) -> Result<()> {
        let g = effective_grad(grad, param, 0.0, c.maximize, &slot.scratch[0])?;
        let (prev, step_size) = (slot.buffer("prev")?, slot.buffer("step_size")?);
        let sign = g.mul(prev)?.sign()?;
        let kept = sign.compare_scalar(CmpOp::Gt, 0.0)?;
        let flipped = sign.compare_scalar(CmpOp::Lt, 0.0)?;
        let level = sign.compare_scalar(CmpOp::Eq, 0.0)?;
        let (minus, plus) = c.etas;
        let factor = sign
            .masked_fill(&kept, plus)?
            .masked_fill(&flipped, minus)?
            .masked_fill(&level, 1.0)?;
        step_size.mul_(&factor)?;
        step_size.clamp_(c.step_sizes.0, c.step_sizes.1)?;
        // No move (and no flip next time) where the sign flipped.
        let g = g.masked_fill(&flipped, 0.0)?;
        param.addcmul_(-1.0, &g.sign()?, step_size)?;
        prev.copy_(&g)
    }
}
