//! Resuming from a checkpoint gives bit-identical weights to an uninterrupted run (dropout
//! masks, data order and optimizer moments included). One test in this binary: it relies on the
//! default generator, which no other test may draw from meanwhile.

mod common;

use sinew_nn::{ModuleExt, functional as F};
use sinew_optim::{AdamConfig, adam};
use sinew_tensor::{Result, manual_seed};
use sinew_train::{Trainer, Verbosity};

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
    type D = sinew_data::VecDataset<sinew_data::Sample>;

    // Uninterrupted: 5 epochs.
    manual_seed(11);
    let a = common::model()?;
    let mut ta = Trainer::new(
        &a,
        adam(a.named_parameters(), AdamConfig::new(0.01)),
        F::cross_entropy,
    )
    .verbosity(Verbosity::Silent);
    ta.fit::<_, D>(&train, None, 5)?;

    // Interrupted after 2 epochs, checkpointed...
    manual_seed(11);
    let b = common::model()?;
    let mut tb = Trainer::new(
        &b,
        adam(b.named_parameters(), AdamConfig::new(0.01)),
        F::cross_entropy,
    )
    .verbosity(Verbosity::Silent)
    .checkpoint_every_epoch(&dir);
    tb.fit::<_, D>(&train, None, 2)?;
    drop(tb);

    // ...and resumed in a fresh model and optimizer (different init, generator moved on).
    manual_seed(999);
    let c = common::model()?;
    let mut tc = Trainer::new(
        &c,
        adam(c.named_parameters(), AdamConfig::new(0.5)),
        F::cross_entropy,
    )
    .verbosity(Verbosity::Silent);
    assert_eq!(tc.resume(&dir)?, 2);
    tc.fit::<_, D>(&train, None, 5)?;
    assert_eq!(weights(&a)?, weights(&c)?);
    assert_ne!(
        weights(&b)?,
        weights(&c)?,
        "the resumed run moved on from the checkpoint"
    );
    std::fs::remove_dir_all(dir).ok();
    Ok(())
}
