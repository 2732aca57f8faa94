//! Averaged SGD with PyTorch's formulas: SGD with a decaying step `eta` and a weight decay
//! `lambd * eta`, plus a running average `ax` of the weights from step `t0` on.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use sinew_tensor::{AsgdStep, FusedStep, Parameter, Result, Tensor};

use crate::checks::non_negative;
use crate::optimizer::{Optim, Slot, UpdateRule, effective_grad};

/// ASGD's options, with PyTorch's defaults.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AsgdConfig {
    /// Learning rate (default 1e-2).
    pub lr: f64,
    /// Decay term (default 1e-4).
    pub lambd: f64,
    /// Power of the step's decay (default 0.75).
    pub alpha: f64,
    /// The step from which the average starts (default 1e6).
    pub t0: f64,
    /// L2 penalty (default 0).
    pub weight_decay: f64,
    /// Maximise instead (default false).
    pub maximize: bool,
}

impl Default for AsgdConfig {
    fn default() -> Self {
        AsgdConfig {
            lr: 1e-2,
            lambd: 1e-4,
            alpha: 0.75,
            t0: 1e6,
            weight_decay: 0.0,
            maximize: false,
        }
    }
}

/// The step size of this step.
const ETA: &str = "eta";
/// The averaging weight of this step.
const MU: &str = "mu";
/// The next step's `eta` and `mu`: PyTorch computes them at the end of a step, with that
/// step's learning rate.
const ETA_NEXT: &str = "eta_next";
const MU_NEXT: &str = "mu_next";

/// ASGD's rule: `p *= 1 - lambd eta`, `p -= eta g`, then `ax += mu (p - ax)` (`ax = p` while
/// `mu` is 1), with `eta = lr / (1 + lambd lr t)^alpha` and `mu = 1 / max(1, t - t0)` for the
/// step after `t` (PyTorch's `_single_tensor_asgd`; both kept in f32, as PyTorch's scalar
/// tensors are). The averaged weights are the `ax` buffers of the optimizer's state.
pub struct AsgdRule;
/// Averaged SGD (Polyak and Juditsky).
pub type Asgd = Optim<AsgdRule>;

/// ASGD over named parameters.
pub fn asgd(params: Vec<(String, Parameter)>, config: AsgdConfig) -> Asgd {
    Optim::new(params, config)
}

/// This step's `eta` and `mu` ([`UpdateRule::advance`] set them; 1 if it has not).
fn eta_and_mu(scalars: &BTreeMap<String, f64>) -> (f64, f64) {
    let scalar = |name: &str| scalars.get(name).copied().unwrap_or(1.0);
    (scalar(ETA), scalar(MU))
}

/// `x` rounded to f32, as PyTorch's f32 scalar tensors hold it.
fn f32_rounded(x: f64) -> f64 {
    x as f32 as f64
}

impl UpdateRule for AsgdRule {
    type Config = AsgdConfig;
    const NAME: &'static str = "ASGD";
    fn lr(c: &AsgdConfig) -> f64 {
        c.lr
    }
    fn set_lr(c: &mut AsgdConfig, lr: f64) {
        c.lr = lr;
    }
    fn check(c: &AsgdConfig) -> Result<()> {
        non_negative("ASGD", "learning rate", c.lr)?;
        non_negative("ASGD", "weight_decay", c.weight_decay)
    }
    fn buffers(_: &AsgdConfig) -> Vec<(&'static str, f64)> {
        vec![("ax", 0.0)]
    }
    fn scratch(_: &AsgdConfig) -> usize {
        2
    }
    fn advance(c: &AsgdConfig, step: u64, scalars: &mut BTreeMap<String, f64>) {
        let (eta, mu) = match (scalars.get(ETA_NEXT), scalars.get(MU_NEXT)) {
            (Some(eta), Some(mu)) if step > 1 => (*eta, *mu),
            _ => (f32_rounded(c.lr), 1.0),
        };
        let t = step as f64;
        let eta_next = f32_rounded(c.lr / (1.0 + c.lambd * c.lr * t).powf(c.alpha));
        let mu_next = f32_rounded(1.0 / (t - c.t0).max(1.0));
        for (name, value) in [
            (ETA, eta),
            (MU, mu),
            (ETA_NEXT, eta_next),
            (MU_NEXT, mu_next),
        ] {
            scalars.insert(name.to_string(), value);
        }
    }
    fn fused(
        c: &AsgdConfig,
        _: u64,
        scalars: &BTreeMap<String, f64>,
    ) -> Option<(FusedStep, &'static [&'static str])> {
        let (eta, mu) = eta_and_mu(scalars);
        let fused = FusedStep::Asgd(AsgdStep {
            eta,
            mu,
            lambd: c.lambd,
            weight_decay: c.weight_decay,
            maximize: c.maximize,
        });
        Some((fused, &["ax"]))
    }
    fn update(c: &AsgdConfig, param: &Tensor, grad: &Tensor, slot: Slot<'_>) -> Result<()> {
        let g = effective_grad(grad, param, c.weight_decay, c.maximize, &slot.scratch[0])?;
        let (eta, mu) = eta_and_mu(slot.scalars);
        param.mul_scalar_(1.0 - c.lambd * eta)?;
        param.axpy_(-eta, g)?;
        let ax = slot.buffer("ax")?;
        if mu == 1.0 {
            return ax.copy_(param);
        }
        let step = &slot.scratch[1];
        step.copy_(param)?;
        step.sub_(ax)?;
        step.mul_scalar_(mu)?;
        ax.add_(step)
    }
}
