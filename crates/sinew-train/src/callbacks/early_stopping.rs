//! Early stopping (Keras' `EarlyStopping`), with restoring of the best weights.

use sinew_nn::{ModuleExt, StateDict};
use sinew_tensor::Result;

use super::{Callback, Context, decode, monitored};
use crate::Logs;

/// Whether lower or higher monitored values are better.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MonitorMode {
    /// Lower is better (losses, errors).
    Min,
    /// Higher is better (accuracies).
    Max,
}

impl MonitorMode {
    /// Keras' `auto`: `Max` for names containing `acc`, else `Min`.
    pub fn auto(monitor: &str) -> Self {
        if monitor.contains("acc") {
            MonitorMode::Max
        } else {
            MonitorMode::Min
        }
    }
}

/// Stops training when `monitor` has not improved by more than `min_delta` for `patience`
/// epochs. With a `baseline`, the monitored value must beat it first. With
/// `restore_best_weights`, the weights of the best epoch are put back when training ends,
/// whatever ended it.
pub struct EarlyStopping {
    /// The logged value watched (default `val_loss`).
    pub monitor: String,
    /// Smallest change that counts as an improvement (default 0).
    pub min_delta: f64,
    /// Epochs without improvement tolerated (default 0).
    pub patience: usize,
    /// Min or max.
    pub mode: MonitorMode,
    /// The value to beat before the first improvement.
    pub baseline: Option<f64>,
    /// Restore the best epoch's weights at the end (default false).
    pub restore_best_weights: bool,
    best: f64,
    wait: usize,
    best_weights: Option<StateDict>,
    best_epoch: Option<usize>,
    stopped_epoch: Option<usize>,
}

impl EarlyStopping {
    /// Watches `monitor` with `patience`, Keras' other defaults (mode from the name).
    pub fn new(monitor: &str, patience: usize) -> Self {
        let mode = MonitorMode::auto(monitor);
        EarlyStopping {
            monitor: monitor.to_string(),
            min_delta: 0.0,
            patience,
            mode,
            baseline: None,
            restore_best_weights: false,
            best: match mode {
                MonitorMode::Min => f64::INFINITY,
                MonitorMode::Max => f64::NEG_INFINITY,
            },
            wait: 0,
            best_weights: None,
            best_epoch: None,
            stopped_epoch: None,
        }
    }

    /// Sets min or max explicitly.
    pub fn mode(mut self, mode: MonitorMode) -> Self {
        self.mode = mode;
        self.best = match mode {
            MonitorMode::Min => f64::INFINITY,
            MonitorMode::Max => f64::NEG_INFINITY,
        };
        self
    }

    /// Restores the best weights at the end.
    pub fn restore_best_weights(mut self, on: bool) -> Self {
        self.restore_best_weights = on;
        self
    }

    /// With a minimum improvement.
    pub fn min_delta(mut self, d: f64) -> Self {
        self.min_delta = d;
        self
    }

    /// With a baseline to beat.
    pub fn baseline(mut self, b: f64) -> Self {
        self.baseline = Some(b);
        self
    }

    /// The epoch (0-based) that set the best value.
    pub fn best_epoch(&self) -> Option<usize> {
        self.best_epoch
    }

    /// The epoch after which it stopped training, if it did.
    pub fn stopped_epoch(&self) -> Option<usize> {
        self.stopped_epoch
    }

    fn improves(&self, current: f64, reference: f64) -> bool {
        let d = self.min_delta.abs();
        match self.mode {
            // An improvement must beat the reference by more than `min_delta`.
            MonitorMode::Min => current + d < reference,
            MonitorMode::Max => current - d > reference,
        }
    }
}

impl Callback for EarlyStopping {
    fn on_epoch_end(&mut self, epoch: usize, logs: &Logs, ctx: &mut Context<'_>) -> Result<()> {
        // Keras 3's rule: an improvement over the best resets the wait only if it also beats
        // the baseline; stop once `wait >= patience` (never after the first epoch).
        let current = monitored(logs, &self.monitor)?;
        self.wait += 1;
        if self.improves(current, self.best) {
            self.best = current;
            self.best_epoch = Some(epoch);
            if self.restore_best_weights {
                // A copy: the live parameters keep changing.
                let mut copy = StateDict::new();
                for (name, t) in ctx.model.state_dict().iter() {
                    copy.insert(name, t.force_contiguous()?);
                }
                self.best_weights = Some(copy);
            }
            if self.baseline.is_none_or(|b| self.improves(current, b)) {
                self.wait = 0;
            }
            return Ok(());
        }
        if self.wait >= self.patience && epoch > 0 {
            self.stopped_epoch = Some(epoch);
            ctx.stop_training = true;
        }
        Ok(())
    }

    fn state(&self) -> Option<serde_json::Value> {
        // The best weights themselves are not kept: after a resume, only epochs from then on
        // can be restored.
        serde_json::to_value((self.best, self.wait, self.best_epoch)).ok()
    }

    fn load_state(&mut self, state: serde_json::Value) -> Result<()> {
        (self.best, self.wait, self.best_epoch) = decode("EarlyStopping", state)?;
        Ok(())
    }

    fn on_train_end(&mut self, ctx: &mut Context<'_>) -> Result<()> {
        if let Some(best) = &self.best_weights {
            ctx.model.load_state_dict(best, true)?;
        }
        Ok(())
    }
}
