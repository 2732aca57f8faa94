//! NAdam: Adam with Nesterov momentum and the momentum-decay schedule of Dozat (PyTorch's
//! `torch.optim.NAdam`).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use sinew_tensor::{FusedStep, NadamStep, Parameter, Result, Tensor, UnaryOp};

use crate::optimizer::{Optim, Slot, UpdateRule, effective_grad};

/// NAdam's options, with PyTorch's defaults.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NadamConfig {
    /// Learning rate (default 2e-3).
    pub lr: f64,
    /// Moment decays (default (0.9, 0.999)).
    pub betas: (f64, f64),
    /// Added to the denominator (default 1e-8).
    pub eps: f64,
    /// L2 penalty, or decoupled with `decoupled_weight_decay` (default 0).
    pub weight_decay: f64,
    /// `psi` of the momentum schedule `mu_t = beta1 (1 - 0.5 * 0.96^(t psi))` (default 4e-3).
    pub momentum_decay: f64,
    /// Apply weight decay as AdamW does (default false).
    pub decoupled_weight_decay: bool,
    /// Maximise instead (default false).
    pub maximize: bool,
}

impl Default for NadamConfig {
    fn default() -> Self {
        NadamConfig {
            lr: 2e-3,
            betas: (0.9, 0.999),
            eps: 1e-8,
            weight_decay: 0.0,
            momentum_decay: 4e-3,
            decoupled_weight_decay: false,
            maximize: false,
        }
    }
}

/// NAdam's update.
pub struct NadamRule;
/// NAdam (Dozat).
pub type Nadam = Optim<NadamRule>;

/// NAdam over named parameters.
pub fn nadam(params: Vec<(String, Parameter)>, config: NadamConfig) -> Nadam {
    Optim::new(params, config)
}

/// The momentum coefficient of step `t`: `mu_t = beta1 (1 - 0.5 * 0.96^(t psi))`.
fn momentum(c: &NadamConfig, t: u64) -> f64 {
    c.betas.0 * (1.0 - 0.5 * 0.96f64.powf(t as f64 * c.momentum_decay))
}

/// The step's [`NadamStep`] from the config and the advanced `mu_product`.
fn nadam_step(c: &NadamConfig, step: u64, scalars: &BTreeMap<String, f64>) -> NadamStep {
    NadamStep {
        lr: c.lr,
        betas: c.betas,
        eps: c.eps,
        weight_decay: c.weight_decay,
        decoupled: c.decoupled_weight_decay,
        maximize: c.maximize,
        step,
        mu: momentum(c, step),
        mu_next: momentum(c, step + 1),
        mu_product: scalars.get(MU_PRODUCT).copied().unwrap_or(1.0),
    }
}

const MU_PRODUCT: &str = "mu_product";

impl UpdateRule for NadamRule {
    type Config = NadamConfig;
    const NAME: &'static str = "NAdam";
    fn lr(c: &NadamConfig) -> f64 {
        c.lr
    }
    fn set_lr(c: &mut NadamConfig, lr: f64) {
        c.lr = lr;
    }
    fn check(c: &NadamConfig) -> Result<()> {
        crate::checks::adam_like("NAdam", c.lr, c.betas, c.eps, c.weight_decay)?;
        crate::checks::non_negative("NAdam", "momentum_decay", c.momentum_decay)
    }
    fn momentum_mut(c: &mut NadamConfig) -> Option<&mut f64> {
        Some(&mut c.betas.0)
    }
    fn buffers(_: &NadamConfig) -> Vec<(&'static str, f64)> {
        vec![("exp_avg", 0.0), ("exp_avg_sq", 0.0)]
    }
    fn advance(c: &NadamConfig, step: u64, scalars: &mut BTreeMap<String, f64>) {
        // PyTorch keeps mu_product in a float32 scalar tensor (its default scalar dtype), so
        // the product is rounded to f32 at each step; doing the same keeps the trajectories equal.
        let previous = scalars.get(MU_PRODUCT).copied().unwrap_or(1.0);
        let mu_product = ((previous as f32) * (momentum(c, step) as f32)) as f64;
        match scalars.get_mut(MU_PRODUCT) {
            Some(v) => *v = mu_product,
            None => {
                scalars.insert(MU_PRODUCT.to_string(), mu_product);
            }
        }
    }
    fn fused(
        c: &NadamConfig,
        step: u64,
        scalars: &BTreeMap<String, f64>,
    ) -> Option<(FusedStep, &'static [&'static str])> {
        let fused = FusedStep::Nadam(nadam_step(c, step, scalars));
        Some((fused, &["exp_avg", "exp_avg_sq"]))
    }
    fn update(c: &NadamConfig, param: &Tensor, grad: &Tensor, slot: Slot<'_>) -> Result<()> {
        let s = nadam_step(c, slot.step, slot.scalars);
        let (b1, b2) = c.betas;
        let l2 = if c.decoupled_weight_decay {
            param.mul_scalar_(1.0 - c.lr * c.weight_decay)?;
            0.0
        } else {
            c.weight_decay
        };
        let g = effective_grad(grad, param, l2, c.maximize, &slot.scratch[0])?;
        let (m, v) = (slot.buffer("exp_avg")?, slot.buffer("exp_avg_sq")?);
        m.lerp_(g, 1.0 - b1)?;
        v.mul_addcmul_(b2, 1.0 - b2, g, g)?;
        let denom = &slot.scratch[1];
        denom.copy_(v)?;
        denom.mul_scalar_(1.0 / (1.0 - b2.powf(slot.step as f64)))?;
        denom.unary_(UnaryOp::Sqrt)?;
        denom.add_scalar_(c.eps)?;
        param.addcdiv_(-c.lr * (1.0 - s.mu) / (1.0 - s.mu_product), g, denom)?;
        let next = s.mu_product * s.mu_next;
        param.addcdiv_(-c.lr * s.mu_next / (1.0 - next), m, denom)
    }
}
