//! PyTorch's `CyclicLR` (Smith's cyclical learning rates): the rate goes back and forth between
//! `base_lr` and `max_lr`, the momentum (or Adam's beta1) the other way, with the cycle's height
//! kept, halved every cycle, decayed exponentially, or scaled by a function of the user's.
//! Step it once per batch.

use std::fmt;
use std::sync::Arc;

use sinew_tensor::Result;

use super::rules::{ScheduleRule, invalid};

/// A custom scale of the cycles' height (PyTorch's `scale_fn`): given the cycle number (from
/// 1) or the step count, as [`ScaleMode`] says, it returns the factor of the height.
pub type ScaleFn = Arc<dyn Fn(f64) -> f64 + Send + Sync>;

/// What a custom [`ScaleFn`] is given (PyTorch's `scale_mode`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum ScaleMode {
    /// The cycle number, 1 for the first cycle (PyTorch's default `"cycle"`).
    #[default]
    Cycle,
    /// The steps taken so far (`"iterations"`).
    Iterations,
}

/// How each [`CyclicLr`] cycle's height scales.
#[derive(Clone, Default)]
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
    /// A function of the user's (PyTorch's `scale_fn`, which overrides `mode`), e.g.
    /// `CyclicMode::custom(|cycle| 0.7f64.powf(cycle - 1.0), ScaleMode::Cycle)`.
    Custom {
        /// The height's factor.
        scale_fn: ScaleFn,
        /// What `scale_fn` is given.
        scale_mode: ScaleMode,
    },
}

impl CyclicMode {
    /// A custom scale: `scale_fn` of the cycle number or of the step count.
    pub fn custom(scale_fn: impl Fn(f64) -> f64 + Send + Sync + 'static, mode: ScaleMode) -> Self {
        CyclicMode::Custom {
            scale_fn: Arc::new(scale_fn),
            scale_mode: mode,
        }
    }

    /// The height's factor in cycle `cycle` (from 1) at step `step`.
    fn scale(&self, cycle: f64, step: f64) -> f64 {
        match self {
            CyclicMode::Triangular => 1.0,
            CyclicMode::Triangular2 => 1.0 / 2f64.powf(cycle - 1.0),
            CyclicMode::ExpRange { gamma } => gamma.powf(step),
            CyclicMode::Custom {
                scale_fn,
                scale_mode: ScaleMode::Cycle,
            } => scale_fn(cycle),
            CyclicMode::Custom {
                scale_fn,
                scale_mode: ScaleMode::Iterations,
            } => scale_fn(step),
        }
    }
}

impl fmt::Debug for CyclicMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CyclicMode::Triangular => f.write_str("Triangular"),
            CyclicMode::Triangular2 => f.write_str("Triangular2"),
            CyclicMode::ExpRange { gamma } => {
                f.debug_struct("ExpRange").field("gamma", gamma).finish()
            }
            CyclicMode::Custom { scale_mode, .. } => f
                .debug_struct("Custom")
                .field("scale_mode", scale_mode)
                .finish_non_exhaustive(),
        }
    }
}

/// The cyclical rate: each cycle rises from `base_lr` to `max_lr` over `step_size_up` steps and
/// falls back over `step_size_down` (default: as many), the height scaled by `mode` (a custom
/// scale function included); with
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
        let scale = self.mode.scale(cycle, e);
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
