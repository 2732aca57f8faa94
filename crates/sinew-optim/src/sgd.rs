//! SGD with momentum, dampening, Nesterov momentum, weight decay and `maximize`
//! (PyTorch's `torch.optim.SGD`).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use sinew_tensor::{Error, FusedStep, Parameter, Result, SgdStep, Tensor};

use crate::checks::non_negative;

use crate::optimizer::{Optim, Slot, UpdateRule, assign, effective_grad};

/// SGD's options, with PyTorch's defaults.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SgdConfig {
    /// Learning rate (default 1e-3).
    pub lr: f64,
    /// Momentum factor (default 0).
    pub momentum: f64,
    /// Dampening of the momentum (default 0).
    pub dampening: f64,
    /// L2 penalty added to the gradient (default 0).
    pub weight_decay: f64,
    /// Nesterov momentum (default false).
    pub nesterov: bool,
    /// Maximise the objective instead (default false).
    pub maximize: bool,
}

impl Default for SgdConfig {
    fn default() -> Self {
        SgdConfig {
            lr: 1e-3,
            momentum: 0.0,
            dampening: 0.0,
            weight_decay: 0.0,
            nesterov: false,
            maximize: false,
        }
    }
}

impl SgdConfig {
    /// Plain SGD at `lr`.
    pub fn new(lr: f64) -> Self {
        SgdConfig {
            lr,
            ..Default::default()
        }
    }
    /// With momentum.
    pub fn momentum(mut self, m: f64) -> Self {
        self.momentum = m;
        self
    }
    /// With weight decay.
    pub fn weight_decay(mut self, wd: f64) -> Self {
        self.weight_decay = wd;
        self
    }
    /// With Nesterov momentum.
    pub fn nesterov(mut self, on: bool) -> Self {
        self.nesterov = on;
        self
    }
}

/// SGD's update rule: `b = mu b + (1 - dampening) g; p -= lr (g + mu b if nesterov else b)`.
pub struct SgdRule;

/// Stochastic gradient descent.
pub type Sgd = Optim<SgdRule>;

/// SGD over named parameters (`model.named_parameters()`).
pub fn sgd(params: Vec<(String, Parameter)>, config: SgdConfig) -> Sgd {
    Optim::new(params, config)
}

impl UpdateRule for SgdRule {
    type Config = SgdConfig;
    const NAME: &'static str = "SGD";

    fn lr(c: &SgdConfig) -> f64 {
        c.lr
    }
    fn set_lr(c: &mut SgdConfig, lr: f64) {
        c.lr = lr;
    }
    fn check(c: &SgdConfig) -> Result<()> {
        non_negative("SGD", "learning rate", c.lr)?;
        non_negative("SGD", "momentum", c.momentum)?;
        non_negative("SGD", "weight_decay", c.weight_decay)?;
        if c.nesterov && (c.momentum <= 0.0 || c.dampening != 0.0) {
            return Err(Error::invalid(
                "optimizer",
                "SGD: Nesterov momentum requires a momentum and zero dampening",
            ));
        }
        Ok(())
    }
    fn momentum_mut(c: &mut SgdConfig) -> Option<&mut f64> {
        Some(&mut c.momentum)
    }
    fn buffers(c: &SgdConfig) -> Vec<(&'static str, f64)> {
        if c.momentum != 0.0 {
            vec![("momentum_buffer", 0.0)]
        } else {
            vec![]
        }
    }

    fn fused(
        c: &SgdConfig,
        step: u64,
        _: &BTreeMap<String, f64>,
    ) -> Option<(FusedStep, &'static [&'static str])> {
        let fused = FusedStep::Sgd(SgdStep {
            lr: c.lr,
            weight_decay: c.weight_decay,
            momentum: c.momentum,
            dampening: c.dampening,
            nesterov: c.nesterov,
            maximize: c.maximize,
            first: step == 1,
        });
        let buffers: &'static [&'static str] = if c.momentum != 0.0 {
            &["momentum_buffer"]
        } else {
            &[]
        };
        Some((fused, buffers))
    }

    fn update(c: &SgdConfig, param: &Tensor, grad: &Tensor, slot: Slot<'_>) -> Result<()> {
        let g = effective_grad(grad, param, c.weight_decay, c.maximize, &slot.scratch[0])?;
        if c.momentum == 0.0 {
            return param.axpy_(-c.lr, g);
        }
        let buf = slot.buffer("momentum_buffer")?;
        if slot.step == 1 {
            assign(buf, g)?;
        } else {
            buf.mul_axpy_(c.momentum, 1.0 - c.dampening, g)?;
        }
        if c.nesterov {
            let d = &slot.scratch[1];
            assign(d, g)?;
            d.axpy_(c.momentum, buf)?;
            param.axpy_(-c.lr, d)
        } else {
            param.axpy_(-c.lr, buf)
        }
    }
}
