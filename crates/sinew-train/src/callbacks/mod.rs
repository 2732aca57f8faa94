//! Callbacks: code the trainer runs at the end of each batch and epoch, and at the end of
//! training (Keras' callbacks). Built in: [`EarlyStopping`], [`ModelCheckpoint`], [`CsvLogger`],
//! [`LrScheduler`], [`BatchLrScheduler`], [`PlateauScheduler`] and [`AverageWeights`]; anything
//! else implements [`Callback`].

mod averaging;
mod early_stopping;
mod logging;
mod model_checkpoint;
mod scheduling;

pub use averaging::AverageWeights;
pub use early_stopping::{EarlyStopping, MonitorMode};
pub use logging::CsvLogger;
pub use model_checkpoint::ModelCheckpoint;
pub use scheduling::{BatchLrScheduler, LrScheduler, PlateauScheduler};

use sinew_nn::{Module, StateDict};
use sinew_optim::Optimizer;
use sinew_tensor::Result;

use crate::Logs;

/// What a callback can reach: the model, the optimizer, and the stop flag.
pub struct Context<'a> {
    /// The model being trained.
    pub model: &'a dyn Module,
    /// Its optimizer (to read or change learning rates).
    pub optimizer: &'a mut dyn Optimizer,
    /// Set to end training after this epoch.
    pub stop_training: bool,
}

/// Hooks the trainer calls; all default to doing nothing.
pub trait Callback: Send {
    /// After each training batch, with its index in the epoch and its loss.
    fn on_batch_end(&mut self, batch: usize, loss: f64, ctx: &mut Context<'_>) -> Result<()> {
        let _ = (batch, loss, ctx);
        Ok(())
    }
    /// After each epoch (0-based) with its logs (training and validation values, `lr`).
    fn on_epoch_end(&mut self, epoch: usize, logs: &Logs, ctx: &mut Context<'_>) -> Result<()> {
        let _ = (epoch, logs, ctx);
        Ok(())
    }
    /// When training ends, whatever ended it.
    fn on_train_end(&mut self, ctx: &mut Context<'_>) -> Result<()> {
        let _ = ctx;
        Ok(())
    }
    /// Whether only rank 0 of a data-parallel run should call it (callbacks that write files).
    fn main_process_only(&self) -> bool {
        false
    }
    /// State to keep in a training checkpoint (a schedule's epoch, the best value so far), as
    /// JSON; `None` when there is none.
    fn state(&self) -> Option<serde_json::Value> {
        None
    }
    /// Restores what [`state`](Self::state) returned.
    fn load_state(&mut self, state: serde_json::Value) -> Result<()> {
        let _ = state;
        Ok(())
    }
    /// Tensors to keep in a training checkpoint beside the model (an averaged model's
    /// weights); `None` when there are none.
    fn tensors(&self) -> Option<StateDict> {
        None
    }
    /// Restores what [`tensors`](Self::tensors) returned.
    fn load_tensors(&mut self, tensors: &StateDict) -> Result<()> {
        let _ = tensors;
        Ok(())
    }
}

/// A callback lent to the trainer, so the caller can read it after `fit` (e.g.
/// `EarlyStopping::best_epoch`): `trainer.callback(&mut stopper)`.
impl<C: Callback + ?Sized> Callback for &mut C {
    fn on_batch_end(&mut self, batch: usize, loss: f64, ctx: &mut Context<'_>) -> Result<()> {
        (**self).on_batch_end(batch, loss, ctx)
    }
    fn on_epoch_end(&mut self, epoch: usize, logs: &Logs, ctx: &mut Context<'_>) -> Result<()> {
        (**self).on_epoch_end(epoch, logs, ctx)
    }
    fn on_train_end(&mut self, ctx: &mut Context<'_>) -> Result<()> {
        (**self).on_train_end(ctx)
    }
    fn main_process_only(&self) -> bool {
        (**self).main_process_only()
    }
    fn state(&self) -> Option<serde_json::Value> {
        (**self).state()
    }
    fn load_state(&mut self, state: serde_json::Value) -> Result<()> {
        (**self).load_state(state)
    }
    fn tensors(&self) -> Option<StateDict> {
        (**self).tensors()
    }
    fn load_tensors(&mut self, tensors: &StateDict) -> Result<()> {
        (**self).load_tensors(tensors)
    }
}

/// Decodes a callback state saved by [`Callback::state`].
pub(crate) fn decode<T: serde::de::DeserializeOwned>(
    what: &'static str,
    v: serde_json::Value,
) -> Result<T> {
    serde_json::from_value(v)
        .map_err(|e| sinew_tensor::Error::invalid("checkpoint", format!("{what} state: {e}")))
}

/// Reads `monitor` from the logs; a missing key is an error naming the available ones.
pub(crate) fn monitored(logs: &Logs, monitor: &str) -> Result<f64> {
    logs.get(monitor).copied().ok_or_else(|| {
        sinew_tensor::Error::invalid(
            "callback",
            format!(
                "monitor {monitor:?} is not in the logs (available: {})",
                logs.keys().cloned().collect::<Vec<_>>().join(", ")
            ),
        )
    })
}
