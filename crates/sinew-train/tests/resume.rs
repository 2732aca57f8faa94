//! Resuming from a checkpoint gives bit-identical weights to an uninterrupted run (dropout
//! masks, data order, optimizer moments, the learning-rate schedule and an EMA of the weights
//! included). One test in this binary: it relies on the
//! default generator, which no other test may draw from meanwhile.

mod common;

use sinew_nn::{ModuleExt, Sequential, functional as F};
use sinew_optim::schedule::StepLr;
use sinew_optim::{AdamConfig, AveragedModel, LrSchedule, adam};
use sinew_tensor::{Result, manual_seed};
use sinew_train::callbacks::{AverageWeights, EarlyStopping, LrScheduler};
use sinew_train::{Trainer, Verbosity};

/// Adam at `lr`, a StepLR callback, early stopping and an EMA of the weights, as a training
/// script would set them up.
fn trainer<'a>(
    model: &'a Sequential,
    ema: &'a AveragedModel<Sequential>,
    lr: f64,
) -> Result<Trainer<'a>> {
    let mut opt = adam(model.named_parameters(), AdamConfig::new(lr));
    let schedule = LrSchedule::new(
        &mut opt,
        StepLr {
            step_size: 2,
            gamma: 0.5,
        },
    )?;
    Ok(Trainer::new(model, opt, F::cross_entropy)
        .verbosity(Verbosity::Silent)
        .callback(LrScheduler { schedule })
        .callback(EarlyStopping::new("loss", 10))
        .callback(AverageWeights::every_batch(ema)))
}

/// `model` with an EMA of its weights (a second model of its architecture).
fn with_ema() -> Result<(Sequential, AveragedModel<Sequential>)> {
    let model = common::model()?;
    let ema = AveragedModel::ema(common::model()?, &model, 0.9)?;
    Ok((model, ema))
}

fn weights(model: &Sequential) -> Result<Vec<Vec<f32>>> {
    model
        .parameters()
        .iter()
        .map(|p| p.value().to_vec::<f32>())
        .collect()
}

#[test]
fn resuming_gives_bit_identical_weights() -> Result<()> {
    let dir = std::env::temp_dir().join(format!("sinew-train-resume-{}", std::process::id()));
    let train = common::loader(common::blobs(90, 7), 16, true);

    // Uninterrupted: 5 epochs.
    manual_seed(11);
    let (a, ema_a) = with_ema()?;
    let mut ta = trainer(&a, &ema_a, 0.01)?;
    let history_a = ta.fit(&train, None, 5)?;

    // Interrupted after 2 epochs, checkpointed...
    manual_seed(11);
    let (b, ema_b) = with_ema()?;
    let mut tb = trainer(&b, &ema_b, 0.01)?.checkpoint_every_epoch(&dir);
    tb.fit(&train, None, 2)?;
    drop(tb);

    // ...and resumed in a fresh model and optimizer (different init, generator moved on).
    manual_seed(999);
    let (c, ema_c) = with_ema()?;
    let mut tc = trainer(&c, &ema_c, 0.5)?;
    assert_eq!(tc.resume(&dir)?, 2);
    let history_c = tc.fit(&train, None, 5)?;
    assert_eq!(weights(&a)?, weights(&c)?);
    // The EMA went on from the checkpoint's average and count.
    assert_eq!(weights(ema_a.module())?, weights(ema_c.module())?);
    assert_eq!(ema_c.n_averaged()?, ema_a.n_averaged()?);
    assert_ne!(weights(ema_a.module())?, weights(&a)?);
    // The schedule resumed too: the learning rates of epochs 3..5 and the final one agree.
    assert_eq!(history_a.get("lr")[2..], history_c.get("lr")[..]);
    assert_eq!(ta.optimizer().lrs(), tc.optimizer().lrs());
    assert_ne!(
        weights(&b)?,
        weights(&c)?,
        "the resumed run moved on from the checkpoint"
    );
    std::fs::remove_dir_all(dir).ok();
    Ok(())
}
