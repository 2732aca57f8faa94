//! `BatchLrScheduler` steps its schedule after every training batch: a one-cycle schedule of
//! `epochs * batches` steps ends `fit` at the rate (and momentum) the schedule gives on its own
//! after as many steps, each epoch's logged rate is the schedule's after that epoch's batches, and a fit past
//! the cycle's end is the schedule's error.

mod common;

use sinew_nn::{ModuleExt, functional as F};
use sinew_optim::schedule::OneCycleLr;
use sinew_optim::{LrSchedule, Optimizer, SgdConfig, sgd};
use sinew_tensor::{DType, Device, Parameter, Result, Tensor, manual_seed};
use sinew_train::callbacks::BatchLrScheduler;
use sinew_train::{Trainer, Verbosity};

/// The rate after each of `steps` steps of `rule` on its own.
fn alone(rule: OneCycleLr, steps: usize) -> Result<Vec<f64>> {
    let p = Parameter::new(Tensor::zeros([1], DType::F32, &Device::cpu())?);
    let mut opt = sgd(vec![("p".into(), p)], SgdConfig::new(0.1).momentum(0.9));
    let mut schedule = LrSchedule::new(&mut opt, rule)?;
    let mut lrs = Vec::new();
    for _ in 0..steps {
        schedule.step(&mut opt)?;
        lrs.push(opt.lrs()[0]);
    }
    Ok(lrs)
}

#[test]
fn a_one_cycle_schedule_steps_once_per_batch() -> Result<()> {
    manual_seed(3);
    // 90 samples in batches of 16: 6 batches an epoch, 3 epochs.
    let train = common::loader(common::blobs(90, 7), 16, true);
    let (batches, epochs) = (6, 3);
    let rule = OneCycleLr::new(0.5, (batches * epochs) as u64);
    let model = common::model()?;
    let mut opt = sgd(model.named_parameters(), SgdConfig::new(0.1).momentum(0.9));
    let schedule = LrSchedule::new(&mut opt, rule.clone())?;
    let mut trainer = Trainer::new(&model, opt, F::cross_entropy)
        .verbosity(Verbosity::Silent)
        .callback(BatchLrScheduler { schedule });
    let history = trainer.fit(&train, None, epochs)?;
    let want = alone(rule, batches * epochs)?;
    let logged = history.get("lr");
    let at_epoch_ends: Vec<f64> = (1..=epochs).map(|e| want[e * batches - 1]).collect();
    assert_eq!(logged, at_epoch_ends);
    // The cycle ends at max_lr / 25 / 1e4, with the momentum back at its maximum.
    assert!((logged[2] - 0.5 / 25.0 / 1e4).abs() < 1e-12, "{logged:?}");
    let momentum = trainer.optimizer().momentums();
    assert_eq!(momentum, Some(vec![0.95]));
    // A fourth epoch would step past total_steps: PyTorch's ValueError, here the fit's error.
    // (`fit`'s epochs count from the start, as Keras's: 4 runs one more.)
    let err = trainer
        .fit(&train, None, epochs + 1)
        .unwrap_err()
        .to_string();
    assert!(err.contains("tried to step 19 times"), "{err}");
    Ok(())
}
