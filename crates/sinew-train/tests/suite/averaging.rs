//! The AverageWeights callback: EMA after every batch, SWA from an epoch on with PyTorch's
//! switch of schedules, and its state in a checkpoint.

use crate::common;

use sinew_nn::{Module, ModuleExt, functional as F};
use sinew_optim::schedule::{LrSchedule, StepLr, SwaLr};
use sinew_optim::{AveragedModel, SgdConfig, sgd};
use sinew_tensor::{Result, Tensor};
use sinew_train::callbacks::{AverageWeights, Callback, Context};
use sinew_train::{Logs, Trainer, Verbosity};

fn flat(model: &dyn Module) -> Vec<f32> {
    let params = model.parameters();
    let values = params.iter().map(|p| p.value().flatten_all());
    let all: Vec<Tensor> = values.collect::<Result<_>>().unwrap();
    Tensor::cat(&all, 0).unwrap().to_vec::<f32>().unwrap()
}

/// Keeps the model's weights at the end of every epoch.
struct Snapshots(Vec<Vec<f32>>);

impl Callback for Snapshots {
    fn on_epoch_end(&mut self, _: usize, _: &Logs, ctx: &mut Context<'_>) -> Result<()> {
        self.0.push(flat(ctx.model));
        Ok(())
    }
}

#[test]
fn an_ema_with_no_decay_follows_the_model_batch_by_batch() -> Result<()> {
    let model = common::model()?;
    let ema = AveragedModel::ema(common::model()?, &model, 0.0)?;
    let train = common::loader(common::blobs(48, 1), 16, true);
    let opt = sgd(model.named_parameters(), SgdConfig::new(0.1));
    Trainer::new(&model, opt, F::cross_entropy)
        .callback(AverageWeights::every_batch(&ema))
        .verbosity(Verbosity::Silent)
        .fit(&train, None, 2)?;
    assert_eq!(ema.n_averaged()?, 6);
    assert_eq!(flat(ema.module()), flat(&model));
    Ok(())
}

#[test]
fn swa_averages_the_epochs_from_its_start_and_switches_schedules() -> Result<()> {
    let model = common::model()?;
    let swa = AveragedModel::new(common::model()?, &model)?;
    let train = common::loader(common::blobs(48, 1), 16, true);
    let mut opt = sgd(model.named_parameters(), SgdConfig::new(0.1));
    let step = StepLr {
        step_size: 1,
        gamma: 0.5,
    };
    let before = LrSchedule::new(&mut opt, step)?;
    let anneal = SwaLr {
        anneal_epochs: 1,
        ..SwaLr::new(0.02)
    };
    let during = LrSchedule::new(&mut opt, anneal)?;
    let mut snapshots = Snapshots(Vec::new());
    let mut averaging = AverageWeights::every_epoch_from(&swa, 2)
        .schedule_before(before)
        .schedule_during(during);
    let history = Trainer::new(&model, opt, F::cross_entropy)
        .callback(&mut snapshots)
        .callback(&mut averaging)
        .verbosity(Verbosity::Silent)
        .fit(&train, None, 4)?;
    // Halved twice, then annealed to swa_lr in one epoch and held.
    assert_eq!(history.get("lr"), [0.1, 0.05, 0.025, 0.02]);
    // The mean of the weights after epochs 2 and 3.
    assert_eq!(swa.n_averaged()?, 2);
    let (w2, w3) = (&snapshots.0[2], &snapshots.0[3]);
    for ((avg, a), b) in flat(swa.module()).iter().zip(w2).zip(w3) {
        assert!(
            (avg - (a + (b - a) / 2.0)).abs() <= 1e-6 * (1.0 + a.abs()),
            "{avg} {a} {b}"
        );
    }
    assert_ne!(w2, w3);

    // The schedules' progress goes into a checkpoint and comes back.
    let state = averaging.state().unwrap();
    assert_eq!(state["before"]["epoch"], 2);
    assert_eq!(state["during"]["epoch"], 2);
    let mut fresh = sgd(model.named_parameters(), SgdConfig::new(0.1));
    let again = LrSchedule::new(&mut fresh, SwaLr::new(0.02))?;
    let mut restored = AverageWeights::every_epoch_from(&swa, 2).schedule_during(again);
    restored.load_state(state)?;
    assert_eq!(restored.state().unwrap()["during"]["epoch"], 2);
    Ok(())
}
