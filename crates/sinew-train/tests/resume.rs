//! Resuming from a checkpoint gives bit-identical weights to an uninterrupted run (dropout
//! masks, data order, optimizer moments and the learning-rate schedule included). One test in this binary: it relies on the
//! default generator, which no other test may draw from meanwhile.

mod common;

use sinew_nn::{ModuleExt, functional as F};
use sinew_optim::schedule::StepLr;
use sinew_optim::{AdamConfig, LrSchedule, adam};
use sinew_tensor::{Result, manual_seed};
use sinew_train::callbacks::{EarlyStopping, LrScheduler};
use sinew_train::{Trainer, Verbosity};

/// Adam at `lr`, a StepLR callback and early stopping, as a training script would set them up.
fn trainer(model: &sinew_nn::Sequential, lr: f64) -> Result<Trainer<'_>> {
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
        .callback(EarlyStopping::new("loss", 10)))
}

fn weights(model: &sinew_nn::Sequential) -> Result<Vec<Vec<f32>>> {
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
    let a = common::model()?;
    let mut ta = trainer(&a, 0.01)?;
    let history_a = ta.fit(&train, None, 5)?;

    // Interrupted after 2 epochs, checkpointed...
    manual_seed(11);
    let b = common::model()?;
    let mut tb = trainer(&b, 0.01)?.checkpoint_every_epoch(&dir);
    tb.fit(&train, None, 2)?;
    drop(tb);

    // ...and resumed in a fresh model and optimizer (different init, generator moved on).
    manual_seed(999);
    let c = common::model()?;
    let mut tc = trainer(&c, 0.5)?;
    assert_eq!(tc.resume(&dir)?, 2);
    let history_c = tc.fit(&train, None, 5)?;
    assert_eq!(weights(&a)?, weights(&c)?);
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
