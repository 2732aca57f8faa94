//! `sinew train` and `sinew eval`.

use sinew::data::{DataLoader, LoaderConfig, Split, train_val_split};
use sinew::nn::functional as F;
use sinew::optim::schedule::{CosineAnnealingLr, ExponentialLr, InverseTimeDecay, StepLr};
use sinew::optim::*;
use sinew::prelude::*;
use sinew::train::callbacks::{EarlyStopping, LrScheduler, PlateauScheduler};
use sinew::train::metrics::{RegressionError, accuracy};
use sinew::train::{Trainer, Verbosity};
use std::sync::Arc;

use crate::args::{EvalArgs, OptimizerName, ScheduleName, TrainArgs};
use crate::datasets::{self, DataInfo, DynDataset};
use crate::models;

type Loader = DataLoader<DynDataset>;

fn loader(
    data: DynDataset,
    batch: usize,
    shuffle: bool,
    seed: u64,
    workers: usize,
) -> Result<Loader> {
    let config = LoaderConfig {
        batch_size: batch,
        shuffle,
        seed,
        num_workers: workers,
        ..Default::default()
    };
    Ok(DataLoader::new(Arc::new(data), config)?)
}

/// The loss for classification (cross entropy on logits) or regression (MSE of one output).
fn loss_for(info: DataInfo) -> impl Fn(&Tensor, &Tensor) -> Result<Tensor> + Send + 'static {
    move |out: &Tensor, target: &Tensor| {
        if info.classes.is_some() {
            F::cross_entropy(out, target)
        } else {
            F::mse_loss(&out.flatten_all()?, target, F::Reduction::Mean)
        }
    }
}

fn optimizer(args: &TrainArgs, params: Vec<(String, Parameter)>) -> Box<dyn Optimizer> {
    let sgd_like = matches!(
        args.optimizer,
        OptimizerName::Sgd | OptimizerName::Momentum | OptimizerName::Nesterov
    );
    let lr = args.lr.unwrap_or(if sgd_like { 0.05 } else { 0.01 });
    let wd = args.weight_decay;
    let sgd_cfg = SgdConfig::new(lr).weight_decay(wd);
    match args.optimizer {
        OptimizerName::Sgd => Box::new(sgd(params, sgd_cfg)),
        OptimizerName::Momentum => Box::new(sgd(params, sgd_cfg.momentum(0.9))),
        OptimizerName::Nesterov => Box::new(sgd(params, sgd_cfg.momentum(0.9).nesterov(true))),
        OptimizerName::Adagrad => Box::new(adagrad(
            params,
            AdagradConfig {
                lr,
                weight_decay: wd,
                ..Default::default()
            },
        )),
        OptimizerName::Rmsprop => Box::new(rmsprop(
            params,
            RmspropConfig {
                lr,
                weight_decay: wd,
                ..Default::default()
            },
        )),
        OptimizerName::Adam => Box::new(adam(params, AdamConfig::new(lr).weight_decay(wd))),
        OptimizerName::Amsgrad => Box::new(adam(
            params,
            AdamConfig::new(lr).weight_decay(wd).amsgrad(true),
        )),
        OptimizerName::Nadam => Box::new(nadam(
            params,
            NadamConfig {
                lr,
                weight_decay: wd,
                ..Default::default()
            },
        )),
        OptimizerName::Adamw => Box::new(adamw(params, AdamConfig::adamw(lr).weight_decay(wd))),
    }
}

fn check_device(device: &str) -> Result<Device> {
    match device {
        "cpu" => Ok(Device::cpu()),
        d if d == "cuda" || d.starts_with("cuda:") => {
            let n: usize = d
                .strip_prefix("cuda:")
                .unwrap_or("0")
                .parse()
                .map_err(|_| {
                    Error::invalid("--device", format!("{d:?}: expected cpu, cuda or cuda:N"))
                })?;
            cuda_device(n)
        }
        other => Err(Error::invalid(
            "--device",
            format!("{other:?}: expected cpu, cuda or cuda:N"),
        )),
    }
}

#[cfg(feature = "cuda")]
fn cuda_device(n: usize) -> Result<Device> {
    sinew::cuda::register();
    Device::cuda(n)
}

#[cfg(not(feature = "cuda"))]
fn cuda_device(_: usize) -> Result<Device> {
    Err(Error::invalid(
        "--device",
        "this sinew was built without CUDA; build it with `cargo build --release -p sinew-cli --features cuda`",
    ))
}

/// Runs `sinew train`; prints the final `test accuracy: NN.NN%` (or `test loss:`).
pub fn train(args: &TrainArgs) -> Result<()> {
    let device = check_device(&args.device)?;
    if device != Device::cpu() {
        return Err(Error::invalid(
            "--device",
            "GPU training from the CLI is not wired up yet; use --device cpu",
        ));
    }
    manual_seed(args.seed);
    let root = datasets::root(&args.data.data);
    let name = args.model.dataset;
    let info = datasets::info(name);
    let mut full = datasets::load(name, &root, Split::Train, args.seed)?;
    if let Some(limit) = args.limit {
        let keep: Vec<usize> = (0..limit.min(full.len())).collect();
        full = Arc::new(sinew::data::Subset::new(full, keep)?);
    }
    let test = datasets::load(name, &root, Split::Test, args.seed)?;
    let (train_part, val_part) = train_val_split(full, args.val_split, args.seed)?;
    let workers = args.workers;
    let train_loader = loader(
        Arc::new(train_part),
        args.batch_size,
        true,
        args.seed,
        workers,
    )?;
    let val_loader = loader(Arc::new(val_part), 256, false, args.seed, workers)?;
    let test_loader = loader(test, 256, false, args.seed, workers)?;

    let model = models::build(args.model.model, &info)?;
    let mut opt = optimizer(args, model.named_parameters());
    let schedule = match args.schedule {
        Some(ScheduleName::Step) => Some(LrSchedule::new(
            &mut opt,
            StepLr {
                step_size: (args.epochs / 3).max(1) as u64,
                gamma: 0.5,
            },
        )?),
        Some(ScheduleName::Exponential) => {
            Some(LrSchedule::new(&mut opt, ExponentialLr { gamma: 0.9 })?)
        }
        Some(ScheduleName::InverseTime) => Some(LrSchedule::new(
            &mut opt,
            InverseTimeDecay {
                decay_rate: 0.5,
                decay_steps: 1,
                staircase: false,
            },
        )?),
        Some(ScheduleName::Cosine) => Some(LrSchedule::new(
            &mut opt,
            CosineAnnealingLr {
                t_max: args.epochs.max(1) as u64,
                eta_min: 0.0,
            },
        )?),
        _ => None,
    };
    let mut trainer = Trainer::new(model.as_ref(), opt, loss_for(info));
    trainer = if info.classes.is_some() {
        trainer.metric(accuracy())
    } else {
        trainer.metric(RegressionError::mae())
    };
    if let Some(schedule) = schedule {
        trainer = trainer.callback(LrScheduler { schedule });
    }
    if args.schedule == Some(ScheduleName::Plateau) {
        let mut plateau = ReduceLrOnPlateau::new(schedule::PlateauMode::Min);
        plateau.patience = 2;
        trainer = trainer.callback(PlateauScheduler {
            plateau,
            monitor: "val_loss".into(),
        });
    }
    if let Some(patience) = args.early_stopping {
        trainer =
            trainer.callback(EarlyStopping::new("val_loss", patience).restore_best_weights(true));
    }
    if let Some(dir) = &args.checkpoint_dir {
        trainer = trainer.checkpoint_every_epoch(dir);
        if args.resume {
            let epoch = trainer.resume(dir)?;
            eprintln!("resuming at epoch {}", epoch + 1);
        }
    } else if args.resume {
        return Err(Error::invalid("--resume", "needs --checkpoint-dir"));
    }
    let history = trainer.fit(&train_loader, Some(&val_loader), args.epochs)?;
    if let Some(path) = &args.plot {
        sinew::train::plot::plot_history(&history, path)?;
        println!("training curves: {}", path.display());
    }
    if let Some(path) = &args.save {
        sinew::nn::save_safetensors(&model.state_dict(), path)?;
        println!("weights: {}", path.display());
    }
    report(&mut trainer, &test_loader, info)
}

fn report(trainer: &mut Trainer<'_>, test: &Loader, info: DataInfo) -> Result<()> {
    let logs = trainer.evaluate(test)?;
    match info.classes {
        Some(_) => println!("test accuracy: {:.2}%", 100.0 * logs["accuracy"]),
        None => println!("test loss: {:.6}", logs["loss"]),
    }
    Ok(())
}

/// Runs `sinew eval`: loads weights strictly and evaluates on the test split.
pub fn eval(args: &EvalArgs) -> Result<()> {
    let root = datasets::root(&args.data.data);
    let info = datasets::info(args.model.dataset);
    let model = models::build(args.model.model, &info)?;
    model.load_state_dict(&sinew::nn::load_safetensors(&args.weights)?, true)?;
    let test = loader(
        datasets::load(args.model.dataset, &root, Split::Test, 0)?,
        args.batch_size,
        false,
        0,
        2,
    )?;
    let params = model.named_parameters();
    let mut trainer = Trainer::new(
        model.as_ref(),
        sgd(params, SgdConfig::new(0.0)),
        loss_for(info),
    )
    .verbosity(Verbosity::Silent);
    trainer = if info.classes.is_some() {
        trainer.metric(accuracy())
    } else {
        trainer.metric(RegressionError::mae())
    };
    report(&mut trainer, &test, info)
}
