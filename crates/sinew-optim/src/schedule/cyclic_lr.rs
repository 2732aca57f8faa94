//! PyTorch's `CyclicLR` (Smith's cyclical learning rates): the rate goes back and forth between
//! `base_lr` and `max_lr`, the momentum (or Adam's beta1) the other way, with the cycle's height
//! kept, halved every cycle, or decayed exponentially. Step it once per batch.

use sinew_tensor::Result;

use super::rules::{ScheduleRule, invalid};

/// How each [`CyclicLr`] cycle's height scales.
#[derive(Clone, Copy, Debug, PartialEq, Default)]
pub enum CyclicMode {
    /// The full height every cycle (PyTorch's default `"triangular"`).
    #[default]
    Triangular,
    /// Half the previous cycle's height (`"triangular2"`: `1 / 2^(cycle - 1)`).
    Triangular2,
    /// `gamma^step`, a decay by step rather than by cycle (`"exp_range"`).
    ExpRange {
        /// The decay per step.
        gamma: f64,
    },
}

/// The cyclical rate: each cycle rises from `base_lr` to `max_lr` over `step_size_up` steps and
/// falls back over `step_size_down` (default: as many), the height scaled by `mode`; with
/// `cycle_momentum` (the default) the momentum (or Adam's beta1) goes from `max_momentum` down
/// to `base_momentum` and back, inversely. PyTorch's closed form, so the rates are its own to
/// the last bit. The optimizer's own rate is replaced by `base_lr`.
#[derive(Clone, Debug)]
pub struct CyclicLr {
    /// The lowest rate, where each cycle starts.
    pub base_lr: f64,
    /// The peak rate (before `mode`'s scaling).
    pub max_lr: f64,
    /// Steps of the rising half (PyTorch's default 2000).
    pub step_size_up: u64,
    /// Steps of the falling half (default `None`: `step_size_up`).
    pub step_size_down: Option<u64>,
    /// The cycles' heights (default triangular).
    pub mode: CyclicMode,
    /// Cycle the momentum inversely (default true; the optimizer must have a nonzero momentum
    /// or a beta1).
    pub cycle_momentum: bool,
    /// The momentum at the peak rate (default 0.8).
    pub base_momentum: f64,
    /// The momentum at the base rate (default 0.9).
    pub max_momentum: f64,
}

impl CyclicLr {
    /// PyTorch's defaults for the rates and the rising half's length.
    pub fn new(base_lr: f64, max_lr: f64, step_size_up: u64) -> Self {
        CyclicLr {
            base_lr,
            max_lr,
            step_size_up,
            step_size_down: None,
            mode: CyclicMode::Triangular,
            cycle_momentum: true,
            base_momentum: 0.8,
            max_momentum: 0.9,
        }
    }

    /// The rate and the momentum at `step` (PyTorch's `get_lr`, in its order of operations).
    fn at(&self, step: u64) -> (f64, f64) {
        let up = self.step_size_up as f64;
        let total = up + self.step_size_down.map_or(up, |d| d as f64);
        let ratio = up / total;
        let e = step as f64;
        let cycle = (1.0 + e / total).floor();
        let x = 1.0 + e / total - cycle;
        let factor = if x <= ratio {
            x / ratio
        } else {
            (x - 1.0) / (ratio - 1.0)
        };
        let scale = match self.mode {
            CyclicMode::Triangular => 1.0,
            CyclicMode::Triangular2 => 1.0 / 2f64.powf(cycle - 1.0),
            CyclicMode::ExpRange { gamma } => gamma.powf(e),
        };
        let lr = self.base_lr + (self.max_lr - self.base_lr) * factor * scale;
        let momentum =
            self.max_momentum - (self.max_momentum - self.base_momentum) * factor * scale;
        (lr, momentum)
    }
}

impl ScheduleRule for CyclicLr {
    fn check(&self) -> Result<()> {
        if self.step_size_up == 0 {
            // PyTorch divides by zero.
            return Err(invalid(
                "CyclicLr",
                "step_size_up must be at least 1".into(),
            ));
        }
        let rates_ok = self.base_lr >= 0.0 && self.max_lr >= 0.0 && self.max_lr.is_finite();
        if !rates_ok {
            return Err(invalid(
                "CyclicLr",
                format!(
                    "base_lr {} and max_lr {} must be finite and >= 0",
                    self.base_lr, self.max_lr
                ),
            ));
        }
        if let CyclicMode::ExpRange { gamma } = self.mode
            && !(gamma > 0.0 && gamma.is_finite())
        {
            return Err(invalid(
                "CyclicLr",
                format!("exp_range's gamma {gamma} must be positive"),
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
    fn momentum(&self, epoch: u64) -> Option<f64> {
        self.cycle_momentum.then(|| self.at(epoch).1)
    }
}
