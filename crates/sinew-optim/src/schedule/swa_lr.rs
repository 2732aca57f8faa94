//! [`SwaLr`]: the learning rate of stochastic weight averaging (PyTorch's `SWALR`).

use std::f64::consts::PI;

use sinew_tensor::Result;

use super::Anneal;
use super::rules::{ScheduleRule, invalid};

/// Anneals each group's learning rate to `swa_lr` over `anneal_epochs` steps, then holds it
/// (PyTorch's `SWALR(opt, swa_lr, anneal_epochs=10, anneal_strategy="cos")`). Step it once per
/// epoch of the SWA phase, beside [`crate::AveragedModel::update_parameters`].
///
/// The update is PyTorch's recursive one: each step recovers the rate the annealing started
/// from out of the current rate, so it follows on from whatever schedule ran before, bit for
/// bit. With `anneal_epochs` 0 the rate is `swa_lr` from the start.
#[derive(Clone, Debug)]
pub struct SwaLr {
    /// The rate annealed to (one for every group).
    pub swa_lr: f64,
    /// Steps the annealing takes (default 10).
    pub anneal_epochs: u64,
    /// The curve: half a cosine (default) or a straight line.
    pub anneal: Anneal,
}

impl SwaLr {
    /// Annealing to `swa_lr` with PyTorch's defaults: 10 steps, cosine.
    pub fn new(swa_lr: f64) -> Self {
        SwaLr {
            swa_lr,
            anneal_epochs: 10,
            anneal: Anneal::Cos,
        }
    }

    /// How far along the curve the rate is at fraction `t` of the annealing (0 to 1).
    fn progress(&self, t: f64) -> f64 {
        match self.anneal {
            Anneal::Cos => (1.0 - (PI * t).cos()) / 2.0,
            Anneal::Linear => t,
        }
    }

    /// The fraction of the annealing done after `step` steps.
    fn fraction(&self, step: f64) -> f64 {
        (step / self.anneal_epochs.max(1) as f64).clamp(0.0, 1.0)
    }
}

impl ScheduleRule for SwaLr {
    fn check(&self) -> Result<()> {
        if !self.swa_lr.is_finite() || self.swa_lr < 0.0 {
            return Err(invalid(
                "SwaLr",
                format!(
                    "swa_lr must be finite and non-negative, got {}",
                    self.swa_lr
                ),
            ));
        }
        Ok(())
    }

    fn initial(&self, base: f64) -> f64 {
        if self.anneal_epochs == 0 {
            self.next(0, base, base)
        } else {
            base
        }
    }

    fn next(&self, epoch: u64, lr: f64, _base: f64) -> f64 {
        // PyTorch's `get_lr`, with `step` its `_step_count - 1`.
        let step = if self.anneal_epochs == 0 {
            epoch.max(1)
        } else {
            epoch
        } as f64;
        let swa = self.swa_lr;
        let before = self.progress(self.fraction(step - 1.0));
        let start = if before == 1.0 {
            swa
        } else {
            (lr - before * swa) / (1.0 - before)
        };
        let alpha = self.progress(self.fraction(step));
        swa * alpha + start * (1.0 - alpha)
    }
}
