//! Adam, AdamW (decoupled weight decay), both with AMSGrad, and Adamax (PyTorch's formulas).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use sinew_tensor::{AdamStep, AdamaxStep, FusedStep, Parameter, Result, Tensor};

use crate::optimizer::{Optim, Slot, UpdateRule, effective_grad};

/// Options of Adam, AdamW and Adamax, with PyTorch's Adam defaults.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AdamConfig {
    /// Learning rate (Adam/AdamW 1e-3, Adamax 2e-3).
    pub lr: f64,
    /// Decay of the first and second moment averages (default (0.9, 0.999)).
    pub betas: (f64, f64),
    /// Added to the denominator (default 1e-8).
    pub eps: f64,
    /// Weight decay: L2 in the gradient for Adam and Adamax (default 0), decoupled for AdamW
    /// (default 1e-2).
    pub weight_decay: f64,
    /// AMSGrad: divide by the running maximum of the second moment (default false).
    pub amsgrad: bool,
    /// Maximise the objective instead (default false).
    pub maximize: bool,
}

impl Default for AdamConfig {
    fn default() -> Self {
        AdamConfig {
            lr: 1e-3,
            betas: (0.9, 0.999),
            eps: 1e-8,
            weight_decay: 0.0,
            amsgrad: false,
            maximize: false,
        }
    }
}

impl AdamConfig {
    /// Adam at `lr`.
    pub fn new(lr: f64) -> Self {
        AdamConfig {
            lr,
            ..Default::default()
        }
    }
    /// AdamW's defaults at `lr` (weight decay 1e-2).
    pub fn adamw(lr: f64) -> Self {
        AdamConfig {
            lr,
            weight_decay: 1e-2,
            ..Default::default()
        }
    }
    /// With weight decay.
    pub fn weight_decay(mut self, wd: f64) -> Self {
        self.weight_decay = wd;
        self
    }
    /// With AMSGrad.
    pub fn amsgrad(mut self, on: bool) -> Self {
        self.amsgrad = on;
        self
    }
}

fn adam_buffers(c: &AdamConfig) -> Vec<(&'static str, f64)> {
    let mut b = vec![("exp_avg", 0.0), ("exp_avg_sq", 0.0)];
    if c.amsgrad {
        b.push(("max_exp_avg_sq", 0.0));
    }
    b
}

/// Adam's (AdamW's) step as one fused kernel.
fn adam_fused(c: &AdamConfig, decoupled: bool, step: u64) -> (FusedStep, &'static [&'static str]) {
    let fused = FusedStep::Adam(AdamStep {
        lr: c.lr,
        betas: c.betas,
        eps: c.eps,
        weight_decay: c.weight_decay,
        decoupled,
        amsgrad: c.amsgrad,
        maximize: c.maximize,
        step,
    });
    let names: &'static [&'static str] = if c.amsgrad {
        &["exp_avg", "exp_avg_sq", "max_exp_avg_sq"]
    } else {
        &["exp_avg", "exp_avg_sq"]
    };
    (fused, names)
}

fn adam_update(
    c: &AdamConfig,
    decoupled: bool,
    param: &Tensor,
    grad: &Tensor,
    slot: Slot<'_>,
) -> Result<()> {
    let (b1, b2) = c.betas;
    let g = if decoupled {
        if c.weight_decay != 0.0 {
            param.mul_scalar_(1.0 - c.lr * c.weight_decay)?;
        }
        effective_grad(grad, param, 0.0, c.maximize, &slot.scratch[0])?
    } else {
        effective_grad(grad, param, c.weight_decay, c.maximize, &slot.scratch[0])?
    };
    let (m, v) = (slot.buffer("exp_avg")?, slot.buffer("exp_avg_sq")?);
    m.lerp_(g, 1.0 - b1)?;
    v.mul_addcmul_(b2, 1.0 - b2, g, g)?;
    let t = slot.step as f64;
    let bias1 = 1.0 - b1.powf(t);
    let bias2_sqrt = (1.0 - b2.powf(t)).sqrt();
    let second = if c.amsgrad {
        let vmax = slot.buffer("max_exp_avg_sq")?;
        vmax.maximum_(v)?;
        vmax
    } else {
        v
    };
    // p -= lr / bias1 * m / (sqrt(v) / sqrt(bias2) + eps), one pass, no denominator buffer.
    param.addcdiv_sqrt_(-c.lr / bias1, m, second, 1.0 / bias2_sqrt, c.eps)
}

/// Adam's rule: L2 weight decay in the gradient.
pub struct AdamRule;
/// AdamW's rule: decoupled weight decay `p *= 1 - lr wd` before the Adam step.
pub struct AdamWRule;

/// Adam (Kingma and Ba).
pub type Adam = Optim<AdamRule>;
/// AdamW (Loshchilov and Hutter).
pub type AdamW = Optim<AdamWRule>;

/// Adam over named parameters.
pub fn adam(params: Vec<(String, Parameter)>, config: AdamConfig) -> Adam {
    Optim::new(params, config)
}

/// AdamW over named parameters (use [`AdamConfig::adamw`] for its defaults).
pub fn adamw(params: Vec<(String, Parameter)>, config: AdamConfig) -> AdamW {
    Optim::new(params, config)
}

macro_rules! adam_like {
    ($rule:ident, $name:literal, $decoupled:literal) => {
        impl UpdateRule for $rule {
            type Config = AdamConfig;
            const NAME: &'static str = $name;
            fn lr(c: &AdamConfig) -> f64 {
                c.lr
            }
            fn set_lr(c: &mut AdamConfig, lr: f64) {
                c.lr = lr;
            }
            fn check(c: &AdamConfig) -> Result<()> {
                crate::checks::adam_like($name, c.lr, c.betas, c.eps, c.weight_decay)
            }
            fn momentum_mut(c: &mut AdamConfig) -> Option<&mut f64> {
                Some(&mut c.betas.0)
            }
            fn buffers(c: &AdamConfig) -> Vec<(&'static str, f64)> {
                adam_buffers(c)
            }
            // The weight-decayed gradient only: the step needs no denominator buffer.
            fn scratch(_: &AdamConfig) -> usize {
                1
            }
            fn fused(
                c: &AdamConfig,
                step: u64,
                _: &BTreeMap<String, f64>,
            ) -> Option<(FusedStep, &'static [&'static str])> {
                Some(adam_fused(c, $decoupled, step))
            }
            fn update(c: &AdamConfig, p: &Tensor, g: &Tensor, slot: Slot<'_>) -> Result<()> {
                adam_update(c, $decoupled, p, g, slot)
            }
        }
    };
}

adam_like!(AdamRule, "Adam", false);
adam_like!(AdamWRule, "AdamW", true);

/// Adamax's rule: the infinity-norm variant, `u = max(beta2 u, |g| + eps)`,
/// `p -= lr / (1 - beta1^t) * m / u`.
pub struct AdamaxRule;

/// Adamax (Kingma and Ba, section 7).
pub type Adamax = Optim<AdamaxRule>;

/// Adamax over named parameters (PyTorch's default lr is 2e-3).
pub fn adamax(params: Vec<(String, Parameter)>, config: AdamConfig) -> Adamax {
    Optim::new(params, config)
}

impl UpdateRule for AdamaxRule {
    type Config = AdamConfig;
    const NAME: &'static str = "Adamax";
    fn lr(c: &AdamConfig) -> f64 {
        c.lr
    }
    fn set_lr(c: &mut AdamConfig, lr: f64) {
        c.lr = lr;
    }
    fn check(c: &AdamConfig) -> Result<()> {
        crate::checks::adam_like("Adamax", c.lr, c.betas, c.eps, c.weight_decay)
    }
    fn momentum_mut(c: &mut AdamConfig) -> Option<&mut f64> {
        Some(&mut c.betas.0)
    }
    fn buffers(_: &AdamConfig) -> Vec<(&'static str, f64)> {
        vec![("exp_avg", 0.0), ("exp_inf", 0.0)]
    }
    // The weight-decayed gradient only: `mul_max_abs_` needs no buffer for |g| + eps.
    fn scratch(_: &AdamConfig) -> usize {
        1
    }
    fn fused(
        c: &AdamConfig,
        step: u64,
        _: &BTreeMap<String, f64>,
    ) -> Option<(FusedStep, &'static [&'static str])> {
        let fused = FusedStep::Adamax(AdamaxStep {
            lr: c.lr,
            betas: c.betas,
            eps: c.eps,
            weight_decay: c.weight_decay,
            maximize: c.maximize,
            step,
        });
        Some((fused, &["exp_avg", "exp_inf"]))
    }
    fn update(c: &AdamConfig, param: &Tensor, grad: &Tensor, slot: Slot<'_>) -> Result<()> {
        let (b1, b2) = c.betas;
        let g = effective_grad(grad, param, c.weight_decay, c.maximize, &slot.scratch[0])?;
        let (m, u) = (slot.buffer("exp_avg")?, slot.buffer("exp_inf")?);
        m.lerp_(g, 1.0 - b1)?;
        u.mul_max_abs_(b2, c.eps, g)?;
        let clr = c.lr / (1.0 - b1.powf(slot.step as f64));
        param.addcdiv_(-clr, m, u)
    }
}
