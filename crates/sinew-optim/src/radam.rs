//! RAdam: Adam with the variance rectification of Liu et al. (PyTorch's `torch.optim.RAdam`):
//! momentum SGD with bias correction while the second moment's estimate is too young
//! (`rho_t <= 5`, the first few steps), Adam scaled by the rectification term after.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use sinew_tensor::{FusedStep, Parameter, RadamStep, Result, Tensor};

use crate::optimizer::{Optim, Slot, UpdateRule, effective_grad};

/// RAdam's options, with PyTorch's defaults.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RadamConfig {
    /// Learning rate (default 1e-3).
    pub lr: f64,
    /// Moment decays (default (0.9, 0.999)).
    pub betas: (f64, f64),
    /// Added to `sqrt(v)` (default 1e-8).
    pub eps: f64,
    /// L2 penalty, or decoupled with `decoupled_weight_decay` (default 0).
    pub weight_decay: f64,
    /// Apply weight decay as AdamW does (default false).
    pub decoupled_weight_decay: bool,
    /// Maximise instead (default false).
    pub maximize: bool,
}

impl Default for RadamConfig {
    fn default() -> Self {
        RadamConfig {
            lr: 1e-3,
            betas: (0.9, 0.999),
            eps: 1e-8,
            weight_decay: 0.0,
            decoupled_weight_decay: false,
            maximize: false,
        }
    }
}

/// RAdam's update.
pub struct RadamRule;
/// RAdam (Liu et al., "On the Variance of the Adaptive Learning Rate and Beyond").
pub type Radam = Optim<RadamRule>;

/// RAdam over named parameters.
pub fn radam(params: Vec<(String, Parameter)>, config: RadamConfig) -> Radam {
    Optim::new(params, config)
}

/// The step's [`RadamStep`], which holds the rectification's formulas.
fn radam_step(c: &RadamConfig, step: u64) -> RadamStep {
    RadamStep {
        lr: c.lr,
        betas: c.betas,
        eps: c.eps,
        weight_decay: c.weight_decay,
        decoupled: c.decoupled_weight_decay,
        maximize: c.maximize,
        step,
    }
}

impl UpdateRule for RadamRule {
    type Config = RadamConfig;
    const NAME: &'static str = "RAdam";
    fn lr(c: &RadamConfig) -> f64 {
        c.lr
    }
    fn set_lr(c: &mut RadamConfig, lr: f64) {
        c.lr = lr;
    }
    fn check(c: &RadamConfig) -> Result<()> {
        crate::checks::adam_like("RAdam", c.lr, c.betas, c.eps, c.weight_decay)
    }
    fn momentum_mut(c: &mut RadamConfig) -> Option<&mut f64> {
        Some(&mut c.betas.0)
    }
    fn buffers(_: &RadamConfig) -> Vec<(&'static str, f64)> {
        vec![("exp_avg", 0.0), ("exp_avg_sq", 0.0)]
    }
    // The weight-decayed gradient only: the step needs no denominator buffer.
    fn scratch(_: &RadamConfig) -> usize {
        1
    }
    fn fused(
        c: &RadamConfig,
        step: u64,
        _: &BTreeMap<String, f64>,
    ) -> Option<(FusedStep, &'static [&'static str])> {
        let fused = FusedStep::Radam(radam_step(c, step));
        Some((fused, &["exp_avg", "exp_avg_sq"]))
    }
    fn update(c: &RadamConfig, param: &Tensor, grad: &Tensor, slot: Slot<'_>) -> Result<()> {
        let (b1, b2) = c.betas;
        let l2 = if c.decoupled_weight_decay {
            if c.weight_decay != 0.0 {
                param.mul_scalar_(1.0 - c.lr * c.weight_decay)?;
            }
            0.0
        } else {
            c.weight_decay
        };
        let g = effective_grad(grad, param, l2, c.maximize, &slot.scratch[0])?;
        let (m, v) = (slot.buffer("exp_avg")?, slot.buffer("exp_avg_sq")?);
        m.lerp_(g, 1.0 - b1)?;
        v.mul_addcmul_(b2, 1.0 - b2, g, g)?;
        match radam_step(c, slot.step).update() {
            (coefficient, true) => param.addcdiv_sqrt_(-coefficient, m, v, 1.0, c.eps),
            (coefficient, false) => param.axpy_(-coefficient, m),
        }
    }
}
