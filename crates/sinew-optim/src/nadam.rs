//! NAdam: Adam with Nesterov momentum and the momentum-decay schedule of Dozat (PyTorch's
//! `torch.optim.NAdam`).

use serde::{Deserialize, Serialize};
use sinew_tensor::{Parameter, Result, Tensor, UnaryOp};

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

impl UpdateRule for NadamRule {
    type Config = NadamConfig;
    const NAME: &'static str = "NAdam";
    fn lr(c: &NadamConfig) -> f64 {
        c.lr
    }
    fn set_lr(c: &mut NadamConfig, lr: f64) {
        c.lr = lr;
    }
    fn buffers(_: &NadamConfig) -> Vec<(&'static str, f64)> {
        vec![("exp_avg", 0.0), ("exp_avg_sq", 0.0)]
    }
    fn update(c: &NadamConfig, param: &Tensor, grad: &Tensor, slot: Slot<'_>) -> Result<()> {
        let (b1, b2) = c.betas;
        let l2 = if c.decoupled_weight_decay {
            param.mul_scalar_(1.0 - c.lr * c.weight_decay)?;
            0.0
        } else {
            c.weight_decay
        };
        let g = effective_grad(grad, param, l2, c.maximize, &slot.scratch[0])?;
        let t = slot.step as f64;
        let mu = b1 * (1.0 - 0.5 * 0.96f64.powf(t * c.momentum_decay));
        let mu_next = b1 * (1.0 - 0.5 * 0.96f64.powf((t + 1.0) * c.momentum_decay));
        // PyTorch keeps mu_product in a float32 scalar tensor (its default scalar dtype), so
        // the product is rounded to f32 at each step; doing the same keeps the trajectories equal.
        let previous = slot.scalars.get("mu_product").copied().unwrap_or(1.0);
        let mu_product = ((previous as f32) * (mu as f32)) as f64;
        match slot.scalars.get_mut("mu_product") {
            Some(v) => *v = mu_product,
            None => {
                slot.scalars.insert("mu_product".to_string(), mu_product);
            }
        }
        let (m, v) = (slot.buffer("exp_avg")?, slot.buffer("exp_avg_sq")?);
        m.lerp_(g, 1.0 - b1)?;
        v.mul_addcmul_(b2, 1.0 - b2, g, g)?;
        let denom = &slot.scratch[1];
        denom.copy_(v)?;
        denom.mul_scalar_(1.0 / (1.0 - b2.powf(t)))?;
        denom.unary_(UnaryOp::Sqrt)?;
        denom.add_scalar_(c.eps)?;
        param.addcdiv_(-c.lr * (1.0 - mu) / (1.0 - mu_product), g, denom)?;
        param.addcdiv_(-c.lr * mu_next / (1.0 - mu_product * mu_next), m, denom)
    }
}
