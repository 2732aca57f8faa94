//! `sinew train` and `sinew eval`.

use sinew::data::{
    DataLoader, DistributedSampler, LoaderConfig, Sampler, Split, Target, WeightedRandomSampler,
    train_val_split,
};
use sinew::dist::{DistributedDataParallel, ProcessGroup};
use sinew::nn::functional as F;
use sinew::optim::*;
use sinew::prelude::*;
use sinew::tensor::{default_generator_state, set_default_generator_state};
use sinew::train::callbacks::{
    AverageWeights, BatchLrScheduler, EarlyStopping, LrScheduler, PlateauScheduler,
};
use sinew::train::metrics::{RegressionError, accuracy};
use sinew::train::{Trainer, Validation, Verbosity};
use std::sync::Arc;

use crate::args::{EvalArgs, ModelName, Precision, ScheduleName, TrainArgs};
use crate::datasets::{self, DataInfo, DynDataset};
use crate::{augment, device, models, optimizers, perceptron};

type Loader = DataLoader<DynDataset>;

/// The order in which a loader visits its examples.
pub enum Order {
    /// As stored (evaluation).
    Stored,
    /// A new permutation each epoch.
    Shuffled,
    /// Drawn by a sampler (`--balanced`).
    Sampled(Arc<dyn Sampler>),
}

/// A loader whose workers hand batches over on `device`.
pub fn loader(
    data: DynDataset,
    batch: usize,
    order: Order,
    seed: u64,
    workers: usize,
    device: &Device,
    shard: Option<DistributedSampler>,
) -> Result<Loader> {
    let config = LoaderConfig {
        batch_size: batch,
        shuffle: matches!(order, Order::Shuffled),
        sampler: match order {
            Order::Sampled(sampler) => Some(sampler),
            Order::Stored | Order::Shuffled => None,
        },
        seed,
        num_workers: workers,
        device: (*device != Device::cpu()).then(|| device.clone()),
        shard,
        ..Default::default()
    };
    Ok(DataLoader::new(Arc::new(data), config)?)
}

/// Class-balanced sampling of `data` (`--balanced`): each example weighs the inverse of its
/// class's count, so every class comes equally often; its labels are read once.
fn balanced_order(data: &DynDataset) -> Result<Order> {
    let labels = (0..data.len())
        .map(|i| match data.get(i)?.target {
            Target::Class(class) => Ok(class),
            Target::Value(_) => Err(Error::invalid(
                "--balanced",
                "balances classes: this dataset's targets are values (regression)",
            )),
        })
        .collect::<Result<Vec<i64>>>()?;
    let sampler = WeightedRandomSampler::balanced(&labels, labels.len())?;
    Ok(Order::Sampled(Arc::new(sampler)))
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

/// The process group when training data-parallel: asked for with `--distributed`, or implied
/// by a launcher's environment (`mpirun`).
fn process_group(args: &TrainArgs) -> Result<Option<ProcessGroup>> {
    if args.distributed || sinew::dist::launch_info()?.is_some() {
        Ok(Some(sinew::dist::init_process_group()?))
    } else {
        Ok(None)
    }
}

/// Runs `sinew train`; prints the final `test accuracy: NN.NN%` (or `test loss:`).
pub fn train(args: &TrainArgs) -> Result<()> {
    let device = device::parse(&args.device)?;
    manual_seed(args.seed);
    let name = args.model.dataset;
    let info = models::input_for(args.model.model, datasets::info(name, &args.data)?);
    let load = |split| datasets::load(name, &args.data, split, args.seed, info.input);
    let mut full = load(Split::Train)?;
    if let Some(limit) = args.limit {
        let keep: Vec<usize> = (0..limit.min(full.len())).collect();
        full = Arc::new(sinew::data::Subset::new(full, keep)?);
    }
    let test = load(Split::Test)?;
    if args.model.model == ModelName::Perceptron {
        if args.balanced {
            return Err(Error::invalid(
                "--balanced",
                "the perceptron's rule visits every example once an epoch: not with --balanced",
            ));
        }
        return perceptron::train(args, &info, full, test);
    }
    let group = process_group(args)?;
    let main = group.as_ref().is_none_or(ProcessGroup::is_main);
    // Each rank trains on its shard (padded to equal length) and evaluates on its part of the
    // validation and test sets (each example once over all ranks).
    let shard = group
        .as_ref()
        .map(|g| DistributedSampler::new(g.rank(), g.world_size()))
        .transpose()?;
    let eval_shard = shard.map(DistributedSampler::without_padding);
    let (train_part, val_part) = train_val_split(full, args.val_split, args.seed)?;
    // No validation split (`--val-split 0`): no validation pass, and no val_* figures.
    let validate = val_part.len() > 0;
    if !validate && (args.schedule == Some(ScheduleName::Plateau) || args.early_stopping.is_some())
    {
        return Err(Error::invalid(
            "--val-split",
            "--schedule plateau and --early-stopping watch the validation loss: give a validation split above 0",
        ));
    }
    let (seed, workers) = (args.seed, args.workers);
    let train_part: DynDataset = Arc::new(train_part);
    let order = if args.balanced {
        balanced_order(&train_part)?
    } else {
        Order::Shuffled
    };
    let mut train_loader = loader(
        train_part,
        args.batch_size,
        order,
        seed,
        workers,
        &device,
        shard,
    )?;
    if let Some(list) = &args.augment {
        train_loader = train_loader.with_transform(augment::parse(list, &info)?);
    }
    let val_loader = loader(
        Arc::new(val_part),
        256,
        Order::Stored,
        seed,
        workers,
        &device,
        eval_shard,
    )?;
    let test_loader = loader(test, 256, Order::Stored, seed, workers, &device, eval_shard)?;

    let mut model = models::build(args.model.model, &info)?;
    if device != Device::cpu() {
        model.to_device(&device)?;
    }
    if let Some(g) = &group {
        model = Box::new(DistributedDataParallel::new(model, g)?);
    }
    let ema = ema_of(args, model.as_ref(), &info, &device)?;
    let mut opt = optimizers::optimizer(args, model.named_parameters())?;
    let schedule = optimizers::schedule(args, &mut opt, train_loader.num_batches())?;
    let mut trainer = Trainer::new(model.as_ref(), opt, loss_for(info));
    if args.precision == Precision::Mixed {
        trainer = trainer.precision(sinew::train::Precision::mixed_for(&device));
    }
    if let Some(max_norm) = args.clip_grad_norm {
        trainer = trainer.clip_grad_norm(max_norm);
    }
    if let Some(g) = &group {
        trainer = trainer.distributed(g.clone());
    }
    trainer = if info.classes.is_some() {
        trainer.metric(accuracy())
    } else {
        trainer.metric(RegressionError::mae())
    };
    match schedule {
        Some((schedule, true)) => trainer = trainer.callback(BatchLrScheduler { schedule }),
        Some((schedule, false)) => trainer = trainer.callback(LrScheduler { schedule }),
        None => {}
    }
    if args.schedule == Some(ScheduleName::Plateau) {
        let mut plateau = ReduceLrOnPlateau::new(schedule::PlateauMode::Min);
        plateau.patience = 2;
        trainer = trainer.callback(PlateauScheduler {
            plateau,
            monitor: "val_loss".into(),
        });
    }
    if let Some(ema) = &ema {
        trainer = trainer.callback(AverageWeights::every_batch(ema));
    }
    if let Some(patience) = args.early_stopping {
        trainer =
            trainer.callback(EarlyStopping::new("val_loss", patience).restore_best_weights(true));
    }
    if let Some(dir) = &args.checkpoint_dir {
        trainer = trainer.checkpoint_every_epoch(dir);
        if args.resume {
            let epoch = trainer.resume(dir)?;
            if main {
                eprintln!("resuming at epoch {}", epoch + 1);
            }
        }
    } else if args.resume {
        return Err(Error::invalid("--resume", "needs --checkpoint-dir"));
    }
    let val: &dyn Validation = &val_loader;
    let history = trainer.fit(&train_loader, validate.then_some(val), args.epochs)?;
    // The average is evaluated as the model is: over all ranks together in a data-parallel run
    // (every rank's average is the same, as their weights are).
    let mut ema_evaluator = ema.as_ref().map(|ema| {
        let evaluator = evaluator(ema.module().as_ref(), info);
        match &group {
            Some(g) => evaluator.distributed(g.clone()),
            None => evaluator,
        }
    });
    if !main {
        // The test set is evaluated over all ranks together; rank 0 reports.
        trainer.evaluate(&test_loader)?;
        if let Some(evaluator) = &mut ema_evaluator {
            evaluator.evaluate(&test_loader)?;
        }
        return Ok(());
    }
    if let Some(g) = &group {
        println!(
            "data-parallel: {} processes ({}), batch {} per process",
            g.world_size(),
            g.backend(),
            args.batch_size
        );
    }
    if let Some(path) = &args.plot {
        sinew::train::plot::plot_history(&history, path)?;
        println!("training curves: {}", path.display());
    }
    if let Some(path) = &args.save {
        let weights = match &ema {
            Some(ema) => ema.module().state_dict(),
            None => model.state_dict(),
        };
        sinew::nn::save_weights(&weights, path)?;
        println!("weights: {}", path.display());
    }
    report(&mut trainer, &test_loader, info, "")?;
    match &mut ema_evaluator {
        Some(evaluator) => report(evaluator, &test_loader, info, "EMA "),
        None => Ok(()),
    }
}

/// The `--ema` average: a second model of the same architecture, made without drawing from the
/// default generator (so the trained model's run is the same with or without it).
fn ema_of(
    args: &TrainArgs,
    model: &dyn Module,
    info: &DataInfo,
    device: &Device,
) -> Result<Option<AveragedModel<Box<dyn Module>>>> {
    let Some(decay) = args.ema else {
        return Ok(None);
    };
    let (seed, calls) = default_generator_state();
    let copy = models::build(args.model.model, info);
    set_default_generator_state(seed, calls);
    let copy = copy?;
    if *device != Device::cpu() {
        copy.to_device(device)?;
    }
    Ok(Some(AveragedModel::ema(copy, model, decay)?.with_buffers()))
}

/// A trainer that only evaluates `model` (its optimizer never steps).
fn evaluator(model: &dyn Module, info: DataInfo) -> Trainer<'_> {
    let params = model.named_parameters();
    let trainer = Trainer::new(model, sgd(params, SgdConfig::new(0.0)), loss_for(info))
        .verbosity(Verbosity::Silent);
    if info.classes.is_some() {
        trainer.metric(accuracy())
    } else {
        trainer.metric(RegressionError::mae())
    }
}

/// Prints `{what}test accuracy: NN.NN%` (or `{what}test loss:`).
fn report(trainer: &mut Trainer<'_>, test: &Loader, info: DataInfo, what: &str) -> Result<()> {
    let logs = trainer.evaluate(test)?;
    match info.classes {
        Some(_) => println!("{what}test accuracy: {:.2}%", 100.0 * logs["accuracy"]),
        None => println!("{what}test loss: {:.6}", logs["loss"]),
    }
    Ok(())
}

/// Runs `sinew eval`: loads weights strictly and evaluates on the test split.
pub fn eval(args: &EvalArgs) -> Result<()> {
    let name = args.model.dataset;
    let info = models::input_for(args.model.model, datasets::info(name, &args.data)?);
    let model = models::build(args.model.model, &info)?;
    model.load_state_dict(&sinew::nn::load_weights(&args.weights)?, true)?;
    let test = datasets::load(name, &args.data, Split::Test, 0, info.input)?;
    if args.model.model == ModelName::Perceptron {
        return perceptron::report(model.as_ref(), &test);
    }
    let test = loader(
        test,
        args.batch_size,
        Order::Stored,
        0,
        2,
        &Device::cpu(),
        None,
    )?;
    report(&mut evaluator(model.as_ref(), info), &test, info, "")
}
