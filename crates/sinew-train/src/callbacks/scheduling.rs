//! Learning-rate schedules as callbacks: step a schedule each epoch, or reduce on a plateau of
//! a logged value.

use sinew_optim::{LrSchedule, ReduceLrOnPlateau};
use sinew_tensor::Result;

use super::{Callback, Context, decode, monitored};
use crate::Logs;

/// Steps an [`LrSchedule`] after every epoch (per-batch schedules: [`BatchLrScheduler`]).
pub struct LrScheduler {
    /// The schedule.
    pub schedule: LrSchedule,
}

impl Callback for LrScheduler {
    fn on_epoch_end(&mut self, _: usize, _: &Logs, ctx: &mut Context<'_>) -> Result<()> {
        self.schedule.step(ctx.optimizer)
    }
    fn state(&self) -> Option<serde_json::Value> {
        serde_json::to_value(self.schedule.state_dict()).ok()
    }
    fn load_state(&mut self, state: serde_json::Value) -> Result<()> {
        self.schedule.load_state_dict(decode("LrScheduler", state)?);
        Ok(())
    }
}

/// Steps an [`LrSchedule`] after every training batch: for schedules counted in steps, such as
/// [`OneCycleLr`](sinew_optim::schedule::OneCycleLr) with `total_steps = epochs * batches` or
/// a warm-up of so many steps (PyTorch: `scheduler.step()` after each `optimizer.step()`).
pub struct BatchLrScheduler {
    /// The schedule.
    pub schedule: LrSchedule,
}

impl Callback for BatchLrScheduler {
    fn on_batch_end(&mut self, _: usize, _: f64, ctx: &mut Context<'_>) -> Result<()> {
        self.schedule.step(ctx.optimizer)
    }
    fn state(&self) -> Option<serde_json::Value> {
        serde_json::to_value(self.schedule.state_dict()).ok()
    }
    fn load_state(&mut self, state: serde_json::Value) -> Result<()> {
        self.schedule
            .load_state_dict(decode("BatchLrScheduler", state)?);
        Ok(())
    }
}

/// Feeds a logged value (default `val_loss`) to [`ReduceLrOnPlateau`] after every epoch.
pub struct PlateauScheduler {
    /// The plateau rule.
    pub plateau: ReduceLrOnPlateau,
    /// The logged value it watches.
    pub monitor: String,
}

impl Callback for PlateauScheduler {
    fn on_epoch_end(&mut self, _: usize, logs: &Logs, ctx: &mut Context<'_>) -> Result<()> {
        let v = monitored(logs, &self.monitor)?;
        self.plateau.step(ctx.optimizer, v)
    }
    fn state(&self) -> Option<serde_json::Value> {
        serde_json::to_value(&self.plateau).ok()
    }
    fn load_state(&mut self, state: serde_json::Value) -> Result<()> {
        self.plateau = decode("PlateauScheduler", state)?;
        Ok(())
    }
}
