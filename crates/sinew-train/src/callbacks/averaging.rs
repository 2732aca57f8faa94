//! Weight averaging during `fit`: [`AverageWeights`] folds the model's weights into an
//! [`AveragedModel`] after every batch (an exponential moving average) or once an epoch from a
//! start epoch on (stochastic weight averaging, with PyTorch's switch of schedules).

use serde::{Deserialize, Serialize};
use sinew_nn::{Module, ModuleExt, StateDict};
use sinew_optim::{AveragedModel, LrSchedule, schedule::ScheduleState};
use sinew_tensor::Result;

use super::{Callback, Context, decode};
use crate::Logs;

/// When [`AverageWeights`] averages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Cadence {
    /// After every training batch.
    EveryBatch,
    /// After every epoch from this one (0-based) on.
    EveryEpochFrom(usize),
}

/// Averages the trained model's weights into an [`AveragedModel`] as training goes (PyTorch's
/// `swa_model.update_parameters(model)` in the loop; Keras' `use_ema`). Lend it the averaged
/// model and evaluate that afterwards (after `sinew_train::update_bn` when it has batch norm).
/// Training checkpoints keep the average and the schedules' progress.
///
/// ```
/// use std::sync::Arc;
/// use sinew_data::{DataLoader, LoaderConfig, Sample, VecDataset};
/// use sinew_nn::{Linear, ModuleExt, functional as F};
/// use sinew_optim::{AveragedModel, SgdConfig, sgd};
/// use sinew_train::callbacks::AverageWeights;
/// use sinew_train::{Trainer, Verbosity};
///
/// let rows = (0..8).map(|i| Sample::features(vec![i as f32, 1.0], i % 2)).collect();
/// let config = LoaderConfig { batch_size: 4, ..Default::default() };
/// let train = DataLoader::new(Arc::new(VecDataset::new(rows)), config)?;
/// let model = Linear::new(2, 2)?;
/// let ema = AveragedModel::ema(Linear::new(2, 2)?, &model, 0.9)?;
/// let opt = sgd(model.named_parameters(), SgdConfig::new(0.1));
/// Trainer::new(&model, opt, F::cross_entropy)
///     .callback(AverageWeights::every_batch(&ema))
///     .verbosity(Verbosity::Silent)
///     .fit(&train, None, 3)?;
/// assert_eq!(ema.n_averaged()?, 6); // 3 epochs of 2 batches
/// # Ok::<(), sinew_tensor::Error>(())
/// ```
pub struct AverageWeights<'m, M> {
    averaged: &'m AveragedModel<M>,
    cadence: Cadence,
    before: Option<LrSchedule>,
    during: Option<LrSchedule>,
}

/// The schedules' progress, for a training checkpoint.
#[derive(Serialize, Deserialize)]
struct SchedulesState {
    before: Option<ScheduleState>,
    during: Option<ScheduleState>,
}

impl<'m, M: Module> AverageWeights<'m, M> {
    /// Averages after every training batch (for [`AveragedModel::ema`]).
    pub fn every_batch(averaged: &'m AveragedModel<M>) -> Self {
        AverageWeights {
            averaged,
            cadence: Cadence::EveryBatch,
            before: None,
            during: None,
        }
    }

    /// Averages after every epoch from `start_epoch` (0-based) on: SWA's
    /// `if epoch >= swa_start: swa_model.update_parameters(model)`.
    pub fn every_epoch_from(averaged: &'m AveragedModel<M>, start_epoch: usize) -> Self {
        AverageWeights {
            cadence: Cadence::EveryEpochFrom(start_epoch),
            ..AverageWeights::every_batch(averaged)
        }
    }

    /// Steps `schedule` after each epoch before the averaging starts (PyTorch's SWA recipe:
    /// the usual `scheduler.step()` until `swa_start`).
    pub fn schedule_before(mut self, schedule: LrSchedule) -> Self {
        self.before = Some(schedule);
        self
    }

    /// Steps `schedule` (usually a [`sinew_optim::schedule::SwaLr`]) after each averaged epoch
    /// (`swa_scheduler.step()`).
    pub fn schedule_during(mut self, schedule: LrSchedule) -> Self {
        self.during = Some(schedule);
        self
    }
}

impl<M: Module> Callback for AverageWeights<'_, M> {
    fn on_batch_end(&mut self, _: usize, _: f64, ctx: &mut Context<'_>) -> Result<()> {
        match self.cadence {
            Cadence::EveryBatch => self.averaged.update_parameters(ctx.model),
            Cadence::EveryEpochFrom(_) => Ok(()),
        }
    }

    fn on_epoch_end(&mut self, epoch: usize, _: &Logs, ctx: &mut Context<'_>) -> Result<()> {
        let averaging = match self.cadence {
            Cadence::EveryBatch => true,
            Cadence::EveryEpochFrom(start) => {
                if epoch >= start {
                    self.averaged.update_parameters(ctx.model)?;
                }
                epoch >= start
            }
        };
        let schedule = if averaging {
            &mut self.during
        } else {
            &mut self.before
        };
        match schedule {
            Some(schedule) => schedule.step(ctx.optimizer),
            None => Ok(()),
        }
    }

    fn state(&self) -> Option<serde_json::Value> {
        let state = SchedulesState {
            before: self.before.as_ref().map(LrSchedule::state_dict),
            during: self.during.as_ref().map(LrSchedule::state_dict),
        };
        serde_json::to_value(state).ok()
    }

    /// The average (`n_averaged` and the averaged model's state), so a resumed run goes on
    /// averaging where it was.
    fn tensors(&self) -> Option<StateDict> {
        Some(self.averaged.state_dict())
    }

    fn load_tensors(&mut self, tensors: &StateDict) -> Result<()> {
        self.averaged.load_state_dict(tensors, true).map(|_| ())
    }

    fn load_state(&mut self, state: serde_json::Value) -> Result<()> {
        let state: SchedulesState = decode("AverageWeights", state)?;
        for (schedule, saved) in [
            (&mut self.before, state.before),
            (&mut self.during, state.during),
        ] {
            if let (Some(schedule), Some(saved)) = (schedule, saved) {
                schedule.load_state_dict(saved);
            }
        }
        Ok(())
    }
}
