//! Per-coordinate adaptive methods: Adagrad (`lr_decay`, `initial_accumulator_value`), RMSprop
//! (`alpha`, `momentum`, `centered`) and Adadelta (`rho`), with PyTorch's formulas.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use sinew_tensor::{
    AdadeltaStep, AdagradStep, FusedStep, Parameter, Result, RmspropStep, Tensor, UnaryOp,
};

use crate::checks::{non_negative, unit};
use crate::optimizer::{Optim, Slot, UpdateRule, effective_grad};

macro_rules! lr_accessors {
    ($cfg:ty) => {
        fn lr(c: &$cfg) -> f64 {
            c.lr
        }
        fn set_lr(c: &mut $cfg, lr: f64) {
            c.lr = lr;
        }
    };
}

/// Adagrad's options, with PyTorch's defaults.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AdagradConfig {
    /// Learning rate (default 1e-2).
    pub lr: f64,
    /// The lr decays as `lr / (1 + (t - 1) lr_decay)` (default 0).
    pub lr_decay: f64,
    /// L2 penalty (default 0).
    pub weight_decay: f64,
    /// Starting value of the sum of squares (default 0).
    pub initial_accumulator_value: f64,
    /// Added to the denominator (default 1e-10).
    pub eps: f64,
    /// Maximise instead (default false).
    pub maximize: bool,
}

impl Default for AdagradConfig {
    fn default() -> Self {
        AdagradConfig {
            lr: 1e-2,
            lr_decay: 0.0,
            weight_decay: 0.0,
            initial_accumulator_value: 0.0,
            eps: 1e-10,
            maximize: false,
        }
    }
}

/// Adagrad: `s += g^2; p -= clr g / (sqrt(s) + eps)`.
pub struct AdagradRule;
/// Adagrad (Duchi et al.).
pub type Adagrad = Optim<AdagradRule>;

/// Adagrad over named parameters.
pub fn adagrad(params: Vec<(String, Parameter)>, config: AdagradConfig) -> Adagrad {
    Optim::new(params, config)
}

/// Adagrad's learning rate at step `step`: `lr / (1 + (step - 1) lr_decay)`.
fn adagrad_lr(c: &AdagradConfig, step: u64) -> f64 {
    c.lr / (1.0 + step.saturating_sub(1) as f64 * c.lr_decay)
}

impl UpdateRule for AdagradRule {
    type Config = AdagradConfig;
    const NAME: &'static str = "Adagrad";
    lr_accessors!(AdagradConfig);
    fn check(c: &AdagradConfig) -> Result<()> {
        non_negative("Adagrad", "learning rate", c.lr)?;
        non_negative("Adagrad", "lr_decay", c.lr_decay)?;
        non_negative("Adagrad", "weight_decay", c.weight_decay)?;
        non_negative(
            "Adagrad",
            "initial_accumulator_value",
            c.initial_accumulator_value,
        )?;
        non_negative("Adagrad", "eps", c.eps)
    }
    fn buffers(c: &AdagradConfig) -> Vec<(&'static str, f64)> {
        vec![("sum", c.initial_accumulator_value)]
    }
    fn fused(
        c: &AdagradConfig,
        step: u64,
        _: &BTreeMap<String, f64>,
    ) -> Option<(FusedStep, &'static [&'static str])> {
        let fused = FusedStep::Adagrad(AdagradStep {
            lr: adagrad_lr(c, step),
            weight_decay: c.weight_decay,
            eps: c.eps,
            maximize: c.maximize,
        });
        Some((fused, &["sum"]))
    }
    fn update(c: &AdagradConfig, param: &Tensor, grad: &Tensor, slot: Slot<'_>) -> Result<()> {
        let g = effective_grad(grad, param, c.weight_decay, c.maximize, &slot.scratch[0])?;
        let clr = adagrad_lr(c, slot.step);
        let sum = slot.buffer("sum")?;
        sum.addcmul_(1.0, g, g)?;
        // p -= clr * g / (sqrt(sum) + eps), one pass, no denominator buffer.
        param.addcdiv_sqrt_(-clr, g, sum, 1.0, c.eps)
    }
    fn scratch(_: &AdagradConfig) -> usize {
        1
    }
}

/// RMSprop's options, with PyTorch's defaults.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RmspropConfig {
    /// Learning rate (default 1e-2).
    pub lr: f64,
    /// Smoothing of the squared gradient (default 0.99).
    pub alpha: f64,
    /// Added to the denominator (default 1e-8).
    pub eps: f64,
    /// L2 penalty (default 0).
    pub weight_decay: f64,
    /// Momentum (default 0).
    pub momentum: f64,
    /// Normalise by the variance estimate instead of the second moment (default false).
    pub centered: bool,
    /// Maximise instead (default false).
    pub maximize: bool,
}

impl Default for RmspropConfig {
    fn default() -> Self {
        RmspropConfig {
            lr: 1e-2,
            alpha: 0.99,
            eps: 1e-8,
            weight_decay: 0.0,
            momentum: 0.0,
            centered: false,
            maximize: false,
        }
    }
}

/// RMSprop: `v = a v + (1 - a) g^2`, divide by `sqrt(v - gbar^2)` when centred.
pub struct RmspropRule;
/// RMSprop (Hinton).
pub type Rmsprop = Optim<RmspropRule>;

/// RMSprop over named parameters.
pub fn rmsprop(params: Vec<(String, Parameter)>, config: RmspropConfig) -> Rmsprop {
    Optim::new(params, config)
}

impl UpdateRule for RmspropRule {
    type Config = RmspropConfig;
    const NAME: &'static str = "RMSprop";
    lr_accessors!(RmspropConfig);
    fn check(c: &RmspropConfig) -> Result<()> {
        non_negative("RMSprop", "learning rate", c.lr)?;
        non_negative("RMSprop", "eps", c.eps)?;
        non_negative("RMSprop", "momentum", c.momentum)?;
        non_negative("RMSprop", "weight_decay", c.weight_decay)?;
        non_negative("RMSprop", "alpha", c.alpha)
    }
    fn momentum_mut(c: &mut RmspropConfig) -> Option<&mut f64> {
        Some(&mut c.momentum)
    }
    fn buffers(c: &RmspropConfig) -> Vec<(&'static str, f64)> {
        let mut b = vec![("square_avg", 0.0)];
        if c.momentum > 0.0 {
            b.push(("momentum_buffer", 0.0));
        }
        if c.centered {
            b.push(("grad_avg", 0.0));
        }
        b
    }
    fn fused(
        c: &RmspropConfig,
        _: u64,
        _: &BTreeMap<String, f64>,
    ) -> Option<(FusedStep, &'static [&'static str])> {
        let fused = FusedStep::Rmsprop(RmspropStep {
            lr: c.lr,
            alpha: c.alpha,
            eps: c.eps,
            weight_decay: c.weight_decay,
            momentum: c.momentum,
            centered: c.centered,
            maximize: c.maximize,
        });
        let names: &'static [&'static str] = match (c.momentum > 0.0, c.centered) {
            (false, false) => &["square_avg"],
            (true, false) => &["square_avg", "momentum_buffer"],
            (false, true) => &["square_avg", "grad_avg"],
            (true, true) => &["square_avg", "momentum_buffer", "grad_avg"],
        };
        Some((fused, names))
    }
    fn update(c: &RmspropConfig, param: &Tensor, grad: &Tensor, slot: Slot<'_>) -> Result<()> {
        let g = effective_grad(grad, param, c.weight_decay, c.maximize, &slot.scratch[0])?;
        let v = slot.buffer("square_avg")?;
        v.mul_addcmul_(c.alpha, 1.0 - c.alpha, g, g)?;
        if !c.centered && c.momentum == 0.0 {
            // p -= lr * g / (sqrt(v) + eps), one pass, no denominator buffer.
            return param.addcdiv_sqrt_(-c.lr, g, v, 1.0, c.eps);
        }
        let avg = &slot.scratch[1];
        avg.copy_(v)?;
        if c.centered {
            let ga = slot.buffer("grad_avg")?;
            ga.lerp_(g, 1.0 - c.alpha)?;
            avg.addcmul_(-1.0, ga, ga)?;
        }
        avg.unary_(UnaryOp::Sqrt)?;
        avg.add_scalar_(c.eps)?;
        if c.momentum > 0.0 {
            let buf = slot.buffer("momentum_buffer")?;
            buf.mul_scalar_(c.momentum)?;
            buf.addcdiv_(1.0, g, avg)?;
            param.axpy_(-c.lr, buf)
        } else {
            param.addcdiv_(-c.lr, g, avg)
        }
    }
}

/// Adadelta's options, with PyTorch's defaults.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AdadeltaConfig {
    /// Scale of the delta (default 1.0).
    pub lr: f64,
    /// Smoothing of both running averages (default 0.9).
    pub rho: f64,
    /// Added inside the square roots (default 1e-6).
    pub eps: f64,
    /// L2 penalty (default 0).
    pub weight_decay: f64,
    /// Maximise instead (default false).
    pub maximize: bool,
}

impl Default for AdadeltaConfig {
    fn default() -> Self {
        AdadeltaConfig {
            lr: 1.0,
            rho: 0.9,
            eps: 1e-6,
            weight_decay: 0.0,
            maximize: false,
        }
    }
}

/// Adadelta: `delta = sqrt(u + eps) / sqrt(v + eps) g`, `u = rho u + (1 - rho) delta^2`.
pub struct AdadeltaRule;
/// Adadelta (Zeiler).
pub type Adadelta = Optim<AdadeltaRule>;

/// Adadelta over named parameters.
pub fn adadelta(params: Vec<(String, Parameter)>, config: AdadeltaConfig) -> Adadelta {
    Optim::new(params, config)
}

impl UpdateRule for AdadeltaRule {
    type Config = AdadeltaConfig;
    const NAME: &'static str = "Adadelta";
    lr_accessors!(AdadeltaConfig);
    fn check(c: &AdadeltaConfig) -> Result<()> {
        non_negative("Adadelta", "learning rate", c.lr)?;
        unit("Adadelta", "rho", c.rho)?;
        non_negative("Adadelta", "eps", c.eps)?;
        non_negative("Adadelta", "weight_decay", c.weight_decay)
    }
    fn buffers(_: &AdadeltaConfig) -> Vec<(&'static str, f64)> {
        vec![("square_avg", 0.0), ("acc_delta", 0.0)]
    }
    fn scratch(_: &AdadeltaConfig) -> usize {
        3
    }
    fn fused(
        c: &AdadeltaConfig,
        _: u64,
        _: &BTreeMap<String, f64>,
    ) -> Option<(FusedStep, &'static [&'static str])> {
        let fused = FusedStep::Adadelta(AdadeltaStep {
            lr: c.lr,
            rho: c.rho,
            eps: c.eps,
            weight_decay: c.weight_decay,
            maximize: c.maximize,
        });
        Some((fused, &["square_avg", "acc_delta"]))
    }
    fn update(c: &AdadeltaConfig, param: &Tensor, grad: &Tensor, slot: Slot<'_>) -> Result<()> {
        let g = effective_grad(grad, param, c.weight_decay, c.maximize, &slot.scratch[0])?;
        let (v, u) = (slot.buffer("square_avg")?, slot.buffer("acc_delta")?);
        v.mul_addcmul_(c.rho, 1.0 - c.rho, g, g)?;
        let std = &slot.scratch[1];
        std.copy_(v)?;
        std.add_scalar_(c.eps)?;
        std.unary_(UnaryOp::Sqrt)?;
        let delta = &slot.scratch[2];
        delta.copy_(u)?;
        delta.add_scalar_(c.eps)?;
        delta.unary_(UnaryOp::Sqrt)?;
        delta.div_(std)?;
        delta.mul_(g)?;
        u.mul_addcmul_(c.rho, 1.0 - c.rho, delta, delta)?;
        param.axpy_(-c.lr, delta)
    }
}
