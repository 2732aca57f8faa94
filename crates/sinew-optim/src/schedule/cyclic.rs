//! Schedules of a fixed length or period, and ones given as functions: PyTorch's `OneCycleLR`
//! (with its momentum cycling), `CosineAnnealingWarmRestarts`, `PolynomialLR`, `ConstantLR`,
//! `LambdaLR` and `MultiplicativeLR`, in PyTorch's forms (closed where PyTorch's is closed,
//! recursive where it is recursive), so the rates are PyTorch's to the last bit.

use std::f64::consts::PI;

use sinew_tensor::Result;

use super::rules::{ScheduleRule, invalid, unit_factor};

/// How [`OneCycleLr`] and [`super::SwaLr`] move between their rates.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Anneal {
    /// Half a cosine (PyTorch's default `'cos'`).
    #[default]
    Cos,
    /// A straight line (`'linear'`).
    Linear,
}

impl Anneal {
    /// The rate `pct` of the way from `start` to `end`.
    fn at(self, start: f64, end: f64, pct: f64) -> f64 {
        match self {
            Anneal::Cos => end + (start - end) / 2.0 * ((PI * pct).cos() + 1.0),
            Anneal::Linear => (end - start) * pct + start,
        }
    }
}

/// The 1cycle policy: from `max_lr / div_factor` up to `max_lr` over the first `pct_start` of
/// `total_steps`, then down to `max_lr / div_factor / final_div_factor` (or, `three_phase`,
/// back to the start and then down); with `cycle_momentum` (the default) the momentum (or
/// Adam's beta1) moves the other way, between `max_momentum` and `base_momentum`. Step it once
/// per batch. The optimizer's own rate is replaced. Stepping past `total_steps` is an error,
/// as in PyTorch; the `total_steps`-th step (after the last batch) leaves the final values,
/// where PyTorch extrapolates the curves.
#[derive(Clone, Debug)]
pub struct OneCycleLr {
    /// The peak rate.
    pub max_lr: f64,
    /// Steps in the cycle.
    pub total_steps: u64,
    /// Share of the steps spent rising (default 0.3).
    pub pct_start: f64,
    /// The curve (default cosine).
    pub anneal: Anneal,
    /// `max_lr / div_factor` is the starting rate (default 25).
    pub div_factor: f64,
    /// The final rate is the starting rate divided by this (default 1e4).
    pub final_div_factor: f64,
    /// Rise, fall back to the start, then anneal to the final rate (default false).
    pub three_phase: bool,
    /// Cycle the momentum inversely to the rate (default true; the optimizer must have a
    /// nonzero momentum or a beta1).
    pub cycle_momentum: bool,
    /// The momentum at the peak rate (default 0.85).
    pub base_momentum: f64,
    /// The momentum at the lowest rates (default 0.95).
    pub max_momentum: f64,
}

impl OneCycleLr {
    /// PyTorch's defaults for `max_lr` and `total_steps`.
    pub fn new(max_lr: f64, total_steps: u64) -> Self {
        OneCycleLr {
            max_lr,
            total_steps,
            pct_start: 0.3,
            anneal: Anneal::Cos,
            div_factor: 25.0,
            final_div_factor: 1e4,
            three_phase: false,
            cycle_momentum: true,
            base_momentum: 0.85,
            max_momentum: 0.95,
        }
    }

    /// Each phase's last step, the rates it goes between and the momentums.
    fn phases(&self) -> Vec<(f64, [f64; 2], [f64; 2])> {
        let initial = self.max_lr / self.div_factor;
        let min = initial / self.final_div_factor;
        let rise_end = self.pct_start * self.total_steps as f64 - 1.0;
        let last = self.total_steps as f64 - 1.0;
        let (low, high) = (self.base_momentum, self.max_momentum);
        if self.three_phase {
            let fall_end = 2.0 * self.pct_start * self.total_steps as f64 - 2.0;
            vec![
                (rise_end, [initial, self.max_lr], [high, low]),
                (fall_end, [self.max_lr, initial], [low, high]),
                (last, [initial, min], [high, high]),
            ]
        } else {
            vec![
                (rise_end, [initial, self.max_lr], [high, low]),
                (last, [self.max_lr, min], [low, high]),
            ]
        }
    }

    /// The rate and the momentum at step `step` (PyTorch's `get_lr`).
    fn at(&self, step: u64) -> (f64, f64) {
        let phases = self.phases();
        let step = step as f64;
        let mut start_step = 0.0;
        for (i, &(end_step, [lr0, lr1], [m0, m1])) in phases.iter().enumerate() {
            if step <= end_step || i == phases.len() - 1 {
                // Past the last phase's end (the step after the last batch) the values stay at
                // the end of the cycle; PyTorch extrapolates the curves there (a negative rate
                // when linear), values no batch uses.
                let pct = ((step - start_step) / (end_step - start_step)).min(1.0);
                return (self.anneal.at(lr0, lr1, pct), self.anneal.at(m0, m1, pct));
            }
            start_step = end_step;
        }
        unreachable!("the last phase always answers")
    }
}

impl ScheduleRule for OneCycleLr {
    fn check(&self) -> Result<()> {
        let positive = |v: f64| v.is_finite() && v > 0.0;
        if self.total_steps == 0 {
            return Err(invalid(
                "OneCycleLr",
                "total_steps must be at least 1".into(),
            ));
        }
        if !(0.0..=1.0).contains(&self.pct_start) {
            return Err(invalid(
                "OneCycleLr",
                format!("pct_start {} must be in [0, 1]", self.pct_start),
            ));
        }
        if !positive(self.max_lr) || !positive(self.div_factor) || !positive(self.final_div_factor)
        {
            return Err(invalid(
                "OneCycleLr",
                format!(
                    "max_lr {}, div_factor {} and final_div_factor {} must be positive",
                    self.max_lr, self.div_factor, self.final_div_factor
                ),
            ));
        }
        Ok(())
    }
    fn initial(&self, _: f64) -> f64 {
        self.at(0).0
    }
    fn next(&self, epoch: u64, _: f64, _: f64) -> f64 {
        self.at(epoch).0
    }
    fn last_step(&self) -> Option<u64> {
        Some(self.total_steps)
    }
    fn momentum(&self, epoch: u64) -> Option<f64> {
        self.cycle_momentum.then(|| self.at(epoch).1)
    }
}

/// Cosine annealing from the base rate to `eta_min` over `t_0` epochs, restarting at the base
/// rate, each period `t_mult` times the one before (SGDR).
#[derive(Clone, Debug)]
pub struct CosineAnnealingWarmRestarts {
    /// The first period.
    pub t_0: u64,
    /// Growth of the period at each restart (default 1).
    pub t_mult: u64,
    /// Lowest rate (default 0).
    pub eta_min: f64,
}

impl ScheduleRule for CosineAnnealingWarmRestarts {
    fn check(&self) -> Result<()> {
        if self.t_0 == 0 || self.t_mult == 0 {
            return Err(invalid(
                "CosineAnnealingWarmRestarts",
                format!(
                    "t_0 {} and t_mult {} must be at least 1",
                    self.t_0, self.t_mult
                ),
            ));
        }
        Ok(())
    }
    fn next(&self, epoch: u64, _: f64, base: f64) -> f64 {
        // PyTorch's counters: T_cur advances by one a step and wraps at T_i, which then grows.
        let (mut t_cur, mut t_i) = (epoch, self.t_0.max(1));
        while t_cur >= t_i {
            t_cur -= t_i;
            t_i = t_i.saturating_mul(self.t_mult.max(1));
        }
        self.eta_min + (base - self.eta_min) * (1.0 + (PI * t_cur as f64 / t_i as f64).cos()) / 2.0
    }
}

/// Polynomial decay to 0 over `total_iters` epochs: `base (1 - t / total_iters)^power`, in
/// PyTorch's recursive form; the rate stays from then on.
#[derive(Clone, Debug)]
pub struct PolynomialLr {
    /// Epochs to reach 0 (default 5).
    pub total_iters: u64,
    /// Exponent (default 1).
    pub power: f64,
}

impl ScheduleRule for PolynomialLr {
    fn next(&self, epoch: u64, lr: f64, _: f64) -> f64 {
        if epoch > self.total_iters {
            return lr;
        }
        let (t, n) = (epoch as f64, self.total_iters as f64);
        lr * ((1.0 - t / n) / (1.0 - (t - 1.0) / n)).powf(self.power)
    }
}

/// The base rate times `factor` until epoch `total_iters`, then the base rate.
#[derive(Clone, Debug)]
pub struct ConstantLr {
    /// In (0, 1] (default 1/3).
    pub factor: f64,
    /// Epochs at the reduced rate (default 5).
    pub total_iters: u64,
}

impl ScheduleRule for ConstantLr {
    fn check(&self) -> Result<()> {
        // PyTorch also takes 0, whose end multiplies 0 by inf.
        unit_factor("ConstantLr", "factor", self.factor)
    }
    fn initial(&self, base: f64) -> f64 {
        base * self.factor
    }
    fn next(&self, epoch: u64, lr: f64, _: f64) -> f64 {
        if epoch == self.total_iters {
            lr * (1.0 / self.factor)
        } else {
            lr
        }
    }
}

/// The base rate times `lambda(epoch)` (epoch 0 included). PyTorch: `LambdaLR`.
pub struct LambdaLr {
    /// The factor of each epoch.
    pub lr_lambda: Box<dyn Fn(u64) -> f64 + Send>,
}

impl ScheduleRule for LambdaLr {
    fn initial(&self, base: f64) -> f64 {
        base * (self.lr_lambda)(0)
    }
    fn next(&self, epoch: u64, _: f64, base: f64) -> f64 {
        base * (self.lr_lambda)(epoch)
    }
}

/// The current rate times `lambda(epoch)` at each epoch from 1. PyTorch: `MultiplicativeLR`.
pub struct MultiplicativeLr {
    /// The factor applied at each epoch.
    pub lr_lambda: Box<dyn Fn(u64) -> f64 + Send>,
}

impl ScheduleRule for MultiplicativeLr {
    fn next(&self, epoch: u64, lr: f64, _: f64) -> f64 {
        lr * (self.lr_lambda)(epoch)
    }
}
