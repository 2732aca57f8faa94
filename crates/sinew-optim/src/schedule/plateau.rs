//! `ReduceLROnPlateau`: divide the learning rate when a watched metric stops improving.

use serde::{Deserialize, Serialize};
use sinew_tensor::Result;

use crate::Optimizer;

/// Whether smaller or larger metric values are better.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum PlateauMode {
    /// Loss-like.
    Min,
    /// Accuracy-like.
    Max,
}

/// How `threshold` measures a significant improvement.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ThresholdMode {
    /// Relative to the best value (`best * (1 -+ threshold)`).
    Rel,
    /// Absolute (`best -+ threshold`).
    Abs,
}

/// PyTorch's `ReduceLROnPlateau`: after more than `patience` steps without a significant
/// improvement, every group's lr becomes `max(lr * factor, min_lr)` and `cooldown` steps pass
/// before bad steps count again.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ReduceLrOnPlateau {
    /// Min or max.
    pub mode: PlateauMode,
    /// Multiplier (default 0.1).
    pub factor: f64,
    /// Bad steps tolerated (default 10).
    pub patience: u64,
    /// Significance (default 1e-4).
    pub threshold: f64,
    /// Relative or absolute (default relative).
    pub threshold_mode: ThresholdMode,
    /// Steps to wait after a reduction (default 0).
    pub cooldown: u64,
    /// Floor (default 0).
    pub min_lr: f64,
    /// Changes smaller than this are skipped (default 1e-8).
    pub eps: f64,
    best: f64,
    num_bad: u64,
    cooldown_counter: u64,
}

impl ReduceLrOnPlateau {
    /// PyTorch's defaults for `mode`.
    pub fn new(mode: PlateauMode) -> Self {
        ReduceLrOnPlateau {
            mode,
            factor: 0.1,
            patience: 10,
            threshold: 1e-4,
            threshold_mode: ThresholdMode::Rel,
            cooldown: 0,
            min_lr: 0.0,
            eps: 1e-8,
            best: match mode {
                PlateauMode::Min => f64::INFINITY,
                PlateauMode::Max => f64::NEG_INFINITY,
            },
            num_bad: 0,
            cooldown_counter: 0,
        }
    }

    fn is_better(&self, a: f64) -> bool {
        let (t, best) = (self.threshold, self.best);
        match (self.mode, self.threshold_mode) {
            (PlateauMode::Min, ThresholdMode::Rel) => a < best * (1.0 - t),
            (PlateauMode::Min, ThresholdMode::Abs) => a < best - t,
            (PlateauMode::Max, ThresholdMode::Rel) => a > best * (1.0 + t),
            (PlateauMode::Max, ThresholdMode::Abs) => a > best + t,
        }
    }

    /// Records one value of the metric and reduces the learning rates if it has plateaued.
    pub fn step(&mut self, opt: &mut dyn Optimizer, metric: f64) -> Result<()> {
        if self.factor.is_nan() || self.factor >= 1.0 {
            return Err(sinew_tensor::Error::invalid(
                "ReduceLrOnPlateau",
                format!("factor {} must be below 1", self.factor),
            ));
        }
        if self.is_better(metric) {
            self.best = metric;
            self.num_bad = 0;
        } else {
            self.num_bad += 1;
        }
        if self.cooldown_counter > 0 {
            self.cooldown_counter -= 1;
            self.num_bad = 0;
        }
        if self.num_bad > self.patience {
            for (g, lr) in opt.lrs().into_iter().enumerate() {
                let new_lr = (lr * self.factor).max(self.min_lr);
                if lr - new_lr > self.eps {
                    opt.set_lr(g, new_lr)?;
                }
            }
            self.cooldown_counter = self.cooldown;
            self.num_bad = 0;
        }
        Ok(())
    }

    /// The best metric so far.
    pub fn best(&self) -> f64 {
        self.best
    }
}
