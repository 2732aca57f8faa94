//! `Trainer::fit` / `evaluate` / `predict`, metrics and the built-in callbacks.

use crate::common;

use sinew_nn::{ModuleExt, functional as F};
use sinew_optim::{AdamConfig, SgdConfig, adam, sgd};
use sinew_tensor::{DType, Device, Result, Tensor};
use sinew_train::callbacks::{Callback, Context, CsvLogger, EarlyStopping, ModelCheckpoint};
use sinew_train::metrics::{Metric, RegressionError, TopKAccuracy, accuracy, confusion_matrix};
use sinew_train::{Logs, Trainer, Verbosity};

#[test]
fn fit_learns_the_blobs_and_logs_every_value() -> Result<()> {
    let model = common::model()?;
    let (train, val) = (
        common::loader(common::blobs(240, 1), 16, true),
        common::loader(common::blobs(60, 2), 30, false),
    );
    let opt = adam(model.named_parameters(), AdamConfig::new(0.01));
    let mut trainer = Trainer::new(&model, opt, F::cross_entropy)
        .metric(accuracy())
        .metric(TopKAccuracy::new(2))
        .verbosity(Verbosity::Silent);
    let history = trainer.fit(&train, Some(&val), 8)?;
    assert_eq!(history.epochs.len(), 8);
    let keys: Vec<&String> = history.epochs[0].keys().collect();
    assert_eq!(
        keys,
        [
            "accuracy",
            "loss",
            "lr",
            "top2_accuracy",
            "val_accuracy",
            "val_loss",
            "val_top2_accuracy"
        ]
    );
    let loss = history.get("loss");
    assert!(loss[7] < 0.5 * loss[0], "loss {loss:?}");
    assert!(
        history.last("val_accuracy").unwrap() > 0.9,
        "{:?}",
        history.get("val_accuracy")
    );
    let eval = trainer.evaluate(&val)?;
    assert!((eval["accuracy"] - history.last("val_accuracy").unwrap()).abs() < 1e-12);
    let out = trainer.predict(&val)?;
    assert_eq!(out.dims(), &[60, 3]);
    Ok(())
}

#[test]
fn metrics_count_what_they_should() -> Result<()> {
    let scores = Tensor::from_vec(
        vec![
            0.1f32, 0.7, 0.2, 0.5, 0.3, 0.2, 0.2, 0.3, 0.5, 0.3, 0.5, 0.4,
        ],
        [4, 3],
    )?;
    let labels = Tensor::from_vec(vec![1i64, 1, 2, 0], [4])?;
    let mut top1 = accuracy();
    top1.update(&scores, &labels)?;
    assert_eq!(top1.value()?, 0.5);
    let mut top2 = TopKAccuracy::new(2);
    top2.update(&scores, &labels)?;
    assert_eq!(top2.value()?, 0.75);
    assert_eq!(
        confusion_matrix(&scores, &labels, 3)?,
        vec![vec![0, 1, 0], vec![1, 1, 0], vec![0, 0, 1]]
    );
    let (pred, truth) = (
        Tensor::from_vec(vec![1.0f32, 2.0, 4.0], [3])?,
        Tensor::from_vec(vec![1.0f32, 3.0, 2.0], [3])?,
    );
    let (mut mae, mut mse) = (RegressionError::mae(), RegressionError::mse());
    mae.update(&pred, &truth)?;
    mse.update(&pred, &truth)?;
    assert_eq!((mae.value()?, mse.value()?), (1.0, 5.0 / 3.0));
    assert!(
        top1.update(&scores, &Tensor::from_vec(vec![5i64, 0, 0, 0], [4])?)
            .is_err()
    );
    Ok(())
}

/// Accuracy ranks classes as PyTorch's argmax does: equal scores by index, NaN highest. Before,
/// a tie counted for the target, so constant or NaN outputs scored 100%.
#[test]
fn accuracy_breaks_ties_as_argmax_and_ranks_nan_highest() -> Result<()> {
    let labels = Tensor::from_vec(vec![0i64, 1, 2, 2], [4])?;
    let value = |metric: &mut dyn Metric, scores: &Tensor| -> Result<f64> {
        metric.reset();
        metric.update(scores, &labels)?;
        metric.value()
    };
    // All outputs equal (a collapsed model): argmax is class 0 everywhere.
    let constant = Tensor::full([4, 3], 0.25, DType::F32, &Device::cpu())?;
    assert_eq!(value(&mut accuracy(), &constant)?, 0.25);
    assert_eq!(value(&mut TopKAccuracy::new(2), &constant)?, 0.5);
    assert_eq!(value(&mut TopKAccuracy::new(3), &constant)?, 1.0);
    // All NaN (a diverged model): as constant; one NaN in a row wins that row.
    let nan = f32::NAN;
    let scores = Tensor::from_vec(
        vec![
            nan, nan, nan, // argmax 0: hit
            0.9, nan, 0.1, // argmax 1: hit
            nan, 0.5, 0.9, // argmax 0: miss, rank 2 for class 2
            0.2, 0.2, 0.2, // argmax 0: miss, rank 2
        ],
        [4, 3],
    )?;
    let argmax = scores.argmax(1, false)?.to_vec::<i64>()?;
    assert_eq!(argmax, [0, 1, 0, 0]);
    assert_eq!(value(&mut accuracy(), &scores)?, 0.5);
    assert_eq!(value(&mut TopKAccuracy::new(2), &scores)?, 0.75);
    assert_eq!(
        confusion_matrix(&scores, &labels, 3)?,
        vec![vec![1, 0, 0], vec![0, 1, 0], vec![2, 0, 0]]
    );
    // Against argmax on scores with many ties.
    let mut g = sinew_tensor::Generator::new(5);
    let many = g.uniform([64, 5], 0.0, 3.0, DType::F32, &Device::cpu())?;
    let many = many.to_dtype(DType::I64)?.to_dtype(DType::F32)?;
    let targets = g.uniform([64], 0.0, 5.0, DType::F32, &Device::cpu())?;
    let targets = targets.to_dtype(DType::I64)?;
    let hits = many
        .argmax(1, false)?
        .eq(&targets)?
        .sum_all()?
        .to_vec::<i64>()?[0];
    let mut top1 = accuracy();
    top1.update(&many, &targets)?;
    assert_eq!(top1.value()?, hits as f64 / 64.0);
    Ok(())
}

/// An epoch over no examples is an error naming the data, where it logged a loss of 0 (and NaN
/// metrics) for every epoch: `--val-split 1.0`, `--limit 0`, or drop_last with a short dataset.
#[test]
fn fitting_or_evaluating_no_examples_is_an_error() -> Result<()> {
    let model = common::model()?;
    let opt = sgd(model.named_parameters(), SgdConfig::new(0.1));
    let mut trainer = Trainer::new(&model, opt, F::cross_entropy)
        .metric(accuracy())
        .verbosity(Verbosity::Silent);
    let empty = common::loader(common::blobs(0, 1), 16, true);
    let err = trainer.fit(&empty, None, 2).unwrap_err().to_string();
    assert!(
        err.contains("fit: the training data gave no examples (0 in the dataset, batch_size 16)"),
        "{err}"
    );
    let err = trainer.evaluate(&empty).unwrap_err().to_string();
    assert!(
        err.contains("evaluate: the evaluation data gave no examples"),
        "{err}"
    );
    // Validation data that is empty fails the fit too.
    let train = common::loader(common::blobs(30, 1), 16, true);
    assert!(trainer.fit(&train, Some(&empty), 1).is_err());
    // Five examples, batches of 16 with drop_last: no batch at all.
    let short = sinew_data::DataLoader::new(
        std::sync::Arc::new(common::blobs(5, 1)),
        sinew_data::LoaderConfig {
            batch_size: 16,
            drop_last: true,
            num_workers: 0,
            ..Default::default()
        },
    )?;
    let err = trainer.fit(&short, None, 1).unwrap_err().to_string();
    assert!(
        err.contains("(5 in the dataset, batch_size 16, drop_last)"),
        "{err}"
    );
    // One example is enough.
    let one = common::loader(common::blobs(1, 1), 16, true);
    let history = trainer.fit(&one, Some(&one), 1)?;
    assert!(history.last("loss").unwrap() > 0.0);
    assert!(history.last("val_loss").unwrap() > 0.0);
    Ok(())
}

fn logs(v: f64) -> Logs {
    [("val_loss".to_string(), v)].into_iter().collect()
}

/// Feeds a scripted `val_loss` sequence; returns the epoch it stopped after and the best epoch.
fn scripted(stopper: &mut EarlyStopping, values: &[f64]) -> Result<Option<usize>> {
    let model = common::model()?;
    let mut opt = sgd(model.named_parameters(), SgdConfig::new(0.1));
    for (epoch, &v) in values.iter().enumerate() {
        let mut ctx = Context {
            model: &model,
            optimizer: &mut opt,
            stop_training: false,
        };
        stopper.on_epoch_end(epoch, &logs(v), &mut ctx)?;
        if ctx.stop_training {
            return Ok(Some(epoch));
        }
    }
    Ok(None)
}

/// `save_best_only` skips NaN epochs: a NaN first epoch became the best before, and no later
/// epoch was saved.
#[test]
fn best_only_checkpoints_skip_nan_epochs() -> Result<()> {
    let dir = std::env::temp_dir().join(format!("sinew-best-nan-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let template = format!("{}/m-{{epoch}}.safetensors", dir.display());
    let model = common::model()?;
    let mut opt = sgd(model.named_parameters(), SgdConfig::new(0.1));
    let mut saver = ModelCheckpoint::new(&template).save_best_only("val_loss");
    for (epoch, v) in [f64::NAN, 0.5, 0.7, f64::NAN, 0.4].into_iter().enumerate() {
        let mut ctx = Context {
            model: &model,
            optimizer: &mut opt,
            stop_training: false,
        };
        saver.on_epoch_end(epoch, &logs(v), &mut ctx)?;
    }
    let names: Vec<String> = saver
        .files()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["m-2.safetensors", "m-5.safetensors"]);
    std::fs::remove_dir_all(&dir).unwrap();
    Ok(())
}

#[test]
fn early_stopping_follows_keras_on_scripted_sequences() -> Result<()> {
    // Patience 2: no improvement at epochs 3 and 4 -> stop after epoch 4.
    let mut s = EarlyStopping::new("val_loss", 2);
    assert_eq!(
        scripted(&mut s, &[1.0, 0.8, 0.7, 0.75, 0.71, 0.6])?,
        Some(4)
    );
    assert_eq!(s.best_epoch(), Some(2));
    // min_delta 0.05: 0.8 -> 0.78 is not an improvement.
    let mut s = EarlyStopping::new("val_loss", 1).min_delta(0.05);
    assert_eq!(scripted(&mut s, &[1.0, 0.8, 0.78, 0.77])?, Some(2));
    // A baseline that is never beaten: the first epoch's improvement does not reset the wait,
    // so it stops one epoch earlier than without the baseline.
    let mut s = EarlyStopping::new("val_loss", 2).baseline(0.5);
    assert_eq!(scripted(&mut s, &[1.0, 1.1, 1.2, 1.3])?, Some(1));
    let mut s = EarlyStopping::new("val_loss", 2);
    assert_eq!(scripted(&mut s, &[1.0, 1.1, 1.2, 1.3])?, Some(2));
    // Improving every epoch never stops.
    let mut s = EarlyStopping::new("val_loss", 0);
    assert_eq!(scripted(&mut s, &[1.0, 0.9, 0.8, 0.7])?, None);
    // Accuracy is maximised.
    let mut s = EarlyStopping::new("val_accuracy", 1);
    let model = common::model()?;
    let mut opt = sgd(model.named_parameters(), SgdConfig::new(0.1));
    let mut stopped = None;
    for (epoch, v) in [0.5, 0.6, 0.55, 0.58].into_iter().enumerate() {
        let mut ctx = Context {
            model: &model,
            optimizer: &mut opt,
            stop_training: false,
        };
        s.on_epoch_end(
            epoch,
            &[("val_accuracy".to_string(), v)].into_iter().collect(),
            &mut ctx,
        )?;
        if ctx.stop_training && stopped.is_none() {
            stopped = Some(epoch);
        }
    }
    assert_eq!(stopped, Some(2));
    Ok(())
}

#[test]
fn restore_best_weights_puts_back_the_best_epoch_even_without_stopping() -> Result<()> {
    let model = common::model()?;
    let mut opt = sgd(model.named_parameters(), SgdConfig::new(0.1));
    let mut s = EarlyStopping::new("val_loss", 10).restore_best_weights(true);
    let mut best = None;
    for (epoch, v) in [1.0, 0.5, 0.9].into_iter().enumerate() {
        // Change the weights each "epoch".
        sinew_tensor::with_no_grad(|| model.parameters()[0].value().add_scalar_(1.0))?;
        if epoch == 1 {
            best = Some(model.parameters()[0].value().to_vec::<f32>()?);
        }
        let mut ctx = Context {
            model: &model,
            optimizer: &mut opt,
            stop_training: false,
        };
        s.on_epoch_end(epoch, &logs(v), &mut ctx)?;
    }
    let mut ctx = Context {
        model: &model,
        optimizer: &mut opt,
        stop_training: true,
    };
    s.on_train_end(&mut ctx)?;
    assert_eq!(
        model.parameters()[0].value().to_vec::<f32>()?,
        best.unwrap()
    );
    Ok(())
}

#[test]
fn checkpoints_keep_the_last_files_and_csv_logs_every_epoch() -> Result<()> {
    let dir = std::env::temp_dir().join(format!("sinew-train-ckpt-{}", std::process::id()));
    let model = common::model()?;
    let train = common::loader(common::blobs(60, 4), 20, true);
    let opt = sgd(model.named_parameters(), SgdConfig::new(0.05).momentum(0.9));
    let template = format!("{}/model-{{epoch}}-{{loss}}.safetensors", dir.display());
    let csv = dir.join("log.csv");
    std::fs::create_dir_all(&dir).unwrap();
    let mut trainer = Trainer::new(&model, opt, F::cross_entropy)
        .verbosity(Verbosity::Silent)
        .callback(ModelCheckpoint::new(&template).keep_last(2))
        .callback(CsvLogger::new(&csv));
    let history = trainer.fit(&train, None, 4)?;
    let mut files: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".safetensors"))
        .collect();
    files.sort();
    assert_eq!(files.len(), 2, "{files:?}");
    assert!(
        files[0].starts_with("model-3-") && files[1].starts_with("model-4-"),
        "{files:?}"
    );
    assert!(files[1].contains(&format!("{:.4}", history.last("loss").unwrap())));
    let text = std::fs::read_to_string(&csv).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "epoch,loss,lr");
    assert_eq!(lines.len(), 5);
    assert!(lines[4].starts_with("3,"));
    std::fs::remove_dir_all(dir).ok();
    Ok(())
}

#[test]
fn a_callback_can_stop_training_and_change_the_learning_rate() -> Result<()> {
    struct HalveAndStop;
    impl Callback for HalveAndStop {
        fn on_epoch_end(&mut self, epoch: usize, _: &Logs, ctx: &mut Context<'_>) -> Result<()> {
            let lr = ctx.optimizer.lrs()[0];
            ctx.optimizer.set_lr(0, lr / 2.0)?;
            ctx.stop_training = epoch == 2;
            Ok(())
        }
    }
    let model = common::model()?;
    let train = common::loader(common::blobs(30, 5), 10, false);
    let opt = sgd(model.named_parameters(), SgdConfig::new(0.4));
    let mut trainer = Trainer::new(&model, opt, F::cross_entropy)
        .verbosity(Verbosity::Silent)
        .callback(HalveAndStop);
    let history = trainer.fit(&train, None, 10)?;
    assert_eq!(history.get("lr"), vec![0.4, 0.2, 0.1]);
    assert_eq!(trainer.optimizer().lrs(), vec![0.05]);
    Ok(())
}

#[test]
fn a_lent_early_stopping_can_be_read_after_fit() -> Result<()> {
    // The stopper is lent (`&mut`), so its epochs are readable after `fit`.
    let model = common::model()?;
    let train = common::loader(common::blobs(60, 3), 20, true);
    let val = common::loader(common::blobs(30, 4), 30, false);
    let mut stopper = EarlyStopping::new("val_loss", 1).min_delta(10.0);
    {
        let opt = sgd(model.named_parameters(), SgdConfig::new(0.1));
        let mut trainer = Trainer::new(&model, opt, F::cross_entropy)
            .verbosity(Verbosity::Silent)
            .callback(&mut stopper);
        let history = trainer.fit(&train, Some(&val), 20)?;
        // min_delta 10 makes no epoch after the first an improvement: stop after epoch 2.
        assert_eq!(history.epochs.len(), 2);
    }
    assert_eq!(stopper.best_epoch(), Some(0));
    assert_eq!(stopper.stopped_epoch(), Some(1));
    Ok(())
}

/// `clip_grad_norm` clips each step's gradients to the given total 2-norm before the optimizer
/// steps: one step of the trainer equals a hand-written step with `clip_grad_norm_`, and moves
/// the weights by exactly lr * max_norm (the unclipped gradient being larger).
#[test]
fn clipping_limits_each_step_as_a_hand_written_loop_does() -> Result<()> {
    use sinew_nn::{Linear, Module};
    use sinew_optim::{Optimizer, clip_grad_norm_};
    let (lr, max_norm) = (0.5, 0.05);
    let (model, twin) = (Linear::new(4, 3)?, Linear::new(4, 3)?);
    twin.load_state_dict(&model.state_dict(), true)?;
    let data = common::loader(common::blobs(32, 1), 32, false);
    // The values, not the state dict: its tensors are the parameters themselves.
    let before: Vec<Vec<f32>> = model
        .state_dict()
        .iter()
        .map(|(_, t)| t.to_vec::<f32>())
        .collect::<Result<_>>()?;

    let opt = sgd(model.named_parameters(), SgdConfig::new(lr));
    Trainer::new(&model, opt, F::cross_entropy)
        .clip_grad_norm(max_norm)
        .verbosity(Verbosity::Silent)
        .fit(&data, Some(&data), 1)?;

    let batch = data.batch(0, 0)?;
    let mut opt = sgd(twin.named_parameters(), SgdConfig::new(lr));
    F::cross_entropy(&twin.forward(&batch.inputs)?, &batch.targets)?.backward()?;
    let total = clip_grad_norm_(&twin.parameters(), max_norm, 2.0, false)?.item()?;
    assert!(
        total > 10.0 * max_norm,
        "the gradient's norm {total} needs no clipping"
    );
    opt.step()?;

    let mut moved = 0.0;
    let (trained, by_hand) = (model.state_dict(), twin.state_dict());
    let pairs = trained.iter().zip(by_hand.iter());
    for (((name, got), (_, want)), start) in pairs.zip(&before) {
        assert_eq!(got.to_vec::<f32>()?, want.to_vec::<f32>()?, "{name}");
        for (a, b) in got.to_vec::<f32>()?.iter().zip(start) {
            moved += f64::from(a - b).powi(2);
        }
    }
    assert!(
        (moved.sqrt() - lr * max_norm).abs() < 1e-6,
        "{}",
        moved.sqrt()
    );
    Ok(())
}
