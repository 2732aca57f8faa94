//! The schedule rules: each gives the learning rate at epoch 0 and the next one from the
//! current one, as PyTorch's `get_lr` does.

use std::f64::consts::PI;

use sinew_tensor::{Error, Result};

/// An error for a schedule's invalid option.
pub(super) fn invalid(schedule: &str, message: String) -> Error {
    Error::invalid("LrSchedule", format!("{schedule}: {message}"))
}

/// Errors unless the factor `name` of `schedule` is in (0, 1]: the rules that divide by it
/// later (`LinearLr`'s start, `ConstantLr`'s) refuse 0.
pub(super) fn unit_factor(schedule: &str, name: &str, factor: f64) -> Result<()> {
    if factor > 0.0 && factor <= 1.0 {
        Ok(())
    } else {
        Err(invalid(
            schedule,
            format!("{name} {factor} must be in (0, 1]"),
        ))
    }
}

/// One schedule's formula.
pub trait ScheduleRule: Send {
    /// The learning rate at epoch 0 for a group whose base rate is `base`.
    fn initial(&self, base: f64) -> f64 {
        base
    }
    /// The learning rate at `epoch` (>= 1) given the current `lr`.
    fn next(&self, epoch: u64, lr: f64, base: f64) -> f64;
    /// Errors for options PyTorch refuses (or divides by zero on), checked when the schedule
    /// is made. Default: none to check.
    fn check(&self) -> Result<()> {
        Ok(())
    }
    /// The last epoch the rule defines (stepping past it is an error); `None`: no end.
    fn last_step(&self) -> Option<u64> {
        None
    }
    /// The momentum (or beta1) at `epoch` (0 when the schedule is made), for rules that cycle
    /// it; `None` leaves the optimizer's. Default: `None`.
    fn momentum(&self, epoch: u64) -> Option<f64> {
        let _ = epoch;
        None
    }
}

/// Multiplies by `gamma` every `step_size` epochs.
#[derive(Clone, Debug)]
pub struct StepLr {
    /// Period.
    pub step_size: u64,
    /// Factor.
    pub gamma: f64,
}

impl ScheduleRule for StepLr {
    fn check(&self) -> Result<()> {
        if self.step_size == 0 {
            return Err(invalid("StepLr", "step_size must be at least 1".into()));
        }
        Ok(())
    }
    fn next(&self, epoch: u64, lr: f64, _: f64) -> f64 {
        if epoch.is_multiple_of(self.step_size.max(1)) {
            lr * self.gamma
        } else {
            lr
        }
    }
}

/// Multiplies by `gamma` at each milestone.
#[derive(Clone, Debug)]
pub struct MultiStepLr {
    /// Epochs where the lr drops (a repeated milestone drops it once per repeat).
    pub milestones: Vec<u64>,
    /// Factor.
    pub gamma: f64,
}

impl ScheduleRule for MultiStepLr {
    fn next(&self, epoch: u64, lr: f64, _: f64) -> f64 {
        let hits = self.milestones.iter().filter(|&&m| m == epoch).count();
        lr * self.gamma.powi(hits as i32)
    }
}

/// Multiplies by `gamma` every epoch.
#[derive(Clone, Debug)]
pub struct ExponentialLr {
    /// Factor.
    pub gamma: f64,
}

impl ScheduleRule for ExponentialLr {
    fn next(&self, _: u64, lr: f64, _: f64) -> f64 {
        lr * self.gamma
    }
}

/// Cosine annealing from the base rate to `eta_min` over `t_max` epochs, then back up (period
/// `2 t_max`), with PyTorch's recursive update.
#[derive(Clone, Debug)]
pub struct CosineAnnealingLr {
    /// Half period in epochs.
    pub t_max: u64,
    /// Lowest rate.
    pub eta_min: f64,
}

impl ScheduleRule for CosineAnnealingLr {
    fn check(&self) -> Result<()> {
        if self.t_max == 0 {
            return Err(invalid(
                "CosineAnnealingLr",
                "t_max must be at least 1".into(),
            ));
        }
        Ok(())
    }
    fn next(&self, epoch: u64, lr: f64, base: f64) -> f64 {
        let (t, e) = (self.t_max.max(1) as f64, epoch as f64);
        let (n, period) = (epoch as i64, 2 * self.t_max.max(1) as i64);
        if (n - 1 - self.t_max as i64).rem_euclid(period) == 0 {
            lr + (base - self.eta_min) * (1.0 - (PI / t).cos()) / 2.0
        } else {
            (1.0 + (PI * e / t).cos()) / (1.0 + (PI * (e - 1.0) / t).cos()) * (lr - self.eta_min)
                + self.eta_min
        }
    }
}

/// Linear change of the factor from `start_factor` to `end_factor` over `total_iters` epochs
/// (a warm-up with `start_factor < 1`).
#[derive(Clone, Debug)]
pub struct LinearLr {
    /// Factor at epoch 0 (PyTorch default 1/3).
    pub start_factor: f64,
    /// Factor from `total_iters` on (default 1).
    pub end_factor: f64,
    /// Length of the ramp (default 5).
    pub total_iters: u64,
}

impl ScheduleRule for LinearLr {
    fn check(&self) -> Result<()> {
        // PyTorch's bounds: a start factor of 0 would make the recursive update 0 * inf.
        unit_factor("LinearLr", "start_factor", self.start_factor)?;
        if !(0.0..=1.0).contains(&self.end_factor) {
            return Err(invalid(
                "LinearLr",
                format!("end_factor {} must be in [0, 1]", self.end_factor),
            ));
        }
        Ok(())
    }
    fn initial(&self, base: f64) -> f64 {
        base * self.start_factor
    }
    fn next(&self, epoch: u64, lr: f64, _: f64) -> f64 {
        if epoch > self.total_iters {
            return lr;
        }
        let d = self.end_factor - self.start_factor;
        lr * (1.0 + d / (self.total_iters as f64 * self.start_factor + (epoch - 1) as f64 * d))
    }
}

/// Keras' `InverseTimeDecay`: `base / (1 + decay_rate * t / decay_steps)`, with `t / decay_steps`
/// floored when `staircase`.
#[derive(Clone, Debug)]
pub struct InverseTimeDecay {
    /// Rate.
    pub decay_rate: f64,
    /// Steps per unit of decay.
    pub decay_steps: u64,
    /// Decay in discrete steps.
    pub staircase: bool,
}

impl ScheduleRule for InverseTimeDecay {
    fn check(&self) -> Result<()> {
        if self.decay_steps == 0 {
            return Err(invalid(
                "InverseTimeDecay",
                "decay_steps must be at least 1".into(),
            ));
        }
        Ok(())
    }
    fn next(&self, epoch: u64, _: f64, base: f64) -> f64 {
        let mut p = epoch as f64 / self.decay_steps.max(1) as f64;
        if self.staircase {
            p = p.floor();
        }
        base / (1.0 + self.decay_rate * p)
    }
}
