//! [`Trainer`]: `fit`, `evaluate` and `predict` over data loaders, with metrics, callbacks and
//! progress output (Keras' `model.fit`, written the PyTorch way inside).

use std::path::PathBuf;

use sinew_data::{DataLoader, Dataset, Sample};
use sinew_nn::{Module, ModuleExt};
use sinew_optim::{GradScaler, GradScalerConfig, Optimizer};
use sinew_tensor::{DType, Error, Result, Tensor, no_grad};

use crate::callbacks::{Callback, Context};
use crate::device_sum::DeviceSum;
use crate::distributed::gather_predictions;
use crate::metrics::Metric;
use crate::precision::WeightCasts;
use crate::progress::{Progress, Verbosity};
use crate::{CheckpointExtras, History, Logs, TrainingCheckpoint};
use crate::{Distributed, Precision};

mod batch_step;

/// The validation data of [`Trainer::fit`]: any [`DataLoader`] of samples. `fit` takes it as
/// `Option<&dyn Validation>`, so that `fit(&train, None, epochs)` names no loader type.
pub trait Validation {
    /// `trainer.evaluate(self)`: the mean loss and metrics over this data.
    fn evaluate_on(&self, trainer: &mut Trainer<'_>) -> Result<Logs>;
}

impl<D: Dataset<Item = Sample> + 'static> Validation for DataLoader<D> {
    fn evaluate_on(&self, trainer: &mut Trainer<'_>) -> Result<Logs> {
        trainer.evaluate(self)
    }
}

/// A loss: model outputs and targets to a scalar tensor (`F::cross_entropy`, `F::mse_loss`...).
pub type LossFn<'a> = Box<dyn Fn(&Tensor, &Tensor) -> Result<Tensor> + Send + 'a>;

/// Trains a model with an optimizer and a loss.
///
/// ```
/// use std::sync::Arc;
/// use sinew_data::{DataLoader, LoaderConfig, Sample, VecDataset};
/// use sinew_nn::{Linear, ModuleExt, functional as F};
/// use sinew_optim::{SgdConfig, sgd};
/// use sinew_train::{Trainer, Verbosity, metrics::accuracy};
///
/// // Points on a line, labelled by their side of x = 0.
/// let points = (0..64)
///     .map(|i| {
///         let x = i as f32 / 32.0 - 1.0;
///         Sample::features(vec![x, 1.0], i64::from(x > 0.0))
///     })
///     .collect();
/// let config = LoaderConfig { batch_size: 16, shuffle: true, ..Default::default() };
/// let data = DataLoader::new(Arc::new(VecDataset::new(points)), config)?;
/// let model = Linear::new(2, 2)?;
/// let opt = sgd(model.named_parameters(), SgdConfig::new(0.5));
/// let mut trainer = Trainer::new(&model, opt, F::cross_entropy)
///     .metric(accuracy())
///     .verbosity(Verbosity::Silent);
/// let history = trainer.fit(&data, Some(&data), 20)?;
/// assert!(history.get("val_accuracy").last().copied().unwrap_or(0.0) > 0.9);
/// # Ok::<(), sinew_tensor::Error>(())
/// ```
pub struct Trainer<'a> {
    model: &'a dyn Module,
    optimizer: Box<dyn Optimizer + 'a>,
    loss: LossFn<'a>,
    metrics: Vec<Box<dyn Metric>>,
    callbacks: Vec<Box<dyn Callback + 'a>>,
    verbosity: Verbosity,
    checkpoint_dir: Option<PathBuf>,
    start_epoch: usize,
    distributed: Option<Box<dyn Distributed + 'a>>,
    precision: Precision,
    scaler_config: GradScalerConfig,
    scaler: GradScaler,
    weight_casts: WeightCasts,
    /// The largest 2-norm of all gradients together a step may take ([`Trainer::clip_grad_norm`]).
    clip_grad_norm: Option<f64>,
}

impl<'a> Trainer<'a> {
    /// `model` trained by `optimizer` on `loss`.
    pub fn new(
        model: &'a dyn Module,
        optimizer: impl Optimizer + 'a,
        loss: impl Fn(&Tensor, &Tensor) -> Result<Tensor> + Send + 'a,
    ) -> Self {
        Trainer {
            model,
            optimizer: Box::new(optimizer),
            loss: Box::new(loss),
            metrics: Vec::new(),
            callbacks: Vec::new(),
            verbosity: Verbosity::Auto,
            checkpoint_dir: None,
            start_epoch: 0,
            distributed: None,
            precision: Precision::F32,
            scaler_config: GradScalerConfig::default(),
            scaler: Precision::F32.scaler(GradScalerConfig::default()),
            weight_casts: WeightCasts::default(),
            clip_grad_norm: None,
        }
    }

    /// Trains in `precision`: [`Precision::Mixed`] runs the forward pass and the loss under
    /// autocast, keeps the parameters and optimizer in f32 and, for f16, scales the loss with a
    /// `GradScaler` (skipping steps whose gradients overflowed). Evaluation stays in f32.
    pub fn precision(mut self, precision: Precision) -> Self {
        self.precision = precision;
        self.scaler = precision.scaler(self.scaler_config);
        self
    }

    /// The loss scaler's settings (PyTorch: `GradScaler(init_scale, growth_factor, ...)`); it
    /// scales only in f16 mixed precision, whatever the order of the calls.
    pub fn grad_scaler_config(mut self, config: GradScalerConfig) -> Self {
        self.scaler_config = config;
        self.scaler = self.precision.scaler(config);
        self
    }

    /// Clips the gradients before every step so that their 2-norm, all together, is at most
    /// `max_norm` ([`sinew_optim::clip_grad_norm_`]; PyTorch Lightning's
    /// `gradient_clip_val`, Keras' `global_clipnorm`). In mixed precision the gradients are
    /// unscaled first, as PyTorch's recipe does, so the norm is that of the true gradients.
    pub fn clip_grad_norm(mut self, max_norm: f64) -> Self {
        self.clip_grad_norm = Some(max_norm);
        self
    }

    /// The loss scaler of mixed-precision training (disabled unless f16).
    pub fn grad_scaler(&self) -> &GradScaler {
        &self.scaler
    }

    /// Trains as one process of a data-parallel run (`sinew_dist::DistributedDataParallel` implements it): only
    /// rank 0 prints, checkpoints and runs file-writing callbacks; epoch losses and metrics are
    /// reduced over ranks. Give each rank its shard of the data with a `DistributedSampler`.
    pub fn distributed(mut self, run: impl Distributed + 'a) -> Self {
        self.distributed = Some(Box::new(run));
        self
    }

    /// Whether this process prints and writes files (rank 0, or the only process).
    fn is_main(&self) -> bool {
        self.distributed.as_ref().is_none_or(|d| d.rank() == 0)
    }

    /// The loss sum, sample count and metric values over all ranks, so that every rank logs
    /// the same numbers: metrics with totals sum them, others average their values.
    fn reduce_over_ranks(&mut self, loss_sum: f64, seen: usize) -> Result<(f64, usize, Vec<f64>)> {
        let Some(d) = &self.distributed else {
            let values = self.metrics.iter_mut().map(|m| m.value());
            return Ok((loss_sum, seen, values.collect::<Result<_>>()?));
        };
        let mut sums = vec![loss_sum, seen as f64];
        // Each metric's width in `sums` and whether it gave totals (else its value).
        let mut parts = Vec::with_capacity(self.metrics.len());
        for m in &mut self.metrics {
            let totals = m.totals()?;
            let summed = !totals.is_empty();
            let part = if summed { totals } else { vec![m.value()?] };
            parts.push((part.len(), summed));
            sums.extend(part);
        }
        d.all_reduce_sum(&mut sums)?;
        let ranks = d.world_size() as f64;
        let (mut at, mut values) = (2, Vec::with_capacity(self.metrics.len()));
        for (m, (w, summed)) in self.metrics.iter_mut().zip(parts) {
            let part = &sums[at..at + w];
            if summed {
                m.set_totals(part);
                values.push(m.value()?);
            } else {
                values.push(part[0] / ranks);
            }
            at += w;
        }
        Ok((sums[0], sums[1] as usize, values))
    }

    /// Adds a metric (logged for training and, as `val_<name>`, validation).
    pub fn metric(mut self, metric: impl Metric + 'static) -> Self {
        self.metrics.push(Box::new(metric));
        self
    }

    /// Adds a callback.
    pub fn callback(mut self, callback: impl Callback + 'a) -> Self {
        self.callbacks.push(Box::new(callback));
        self
    }

    /// Sets the progress output.
    pub fn verbosity(mut self, v: Verbosity) -> Self {
        self.verbosity = v;
        self
    }

    /// Saves a [`TrainingCheckpoint`] to `dir` after every epoch.
    pub fn checkpoint_every_epoch(mut self, dir: impl Into<PathBuf>) -> Self {
        self.checkpoint_dir = Some(dir.into());
        self
    }

    /// Loads a checkpoint (model, optimizer, generator, callback states and tensors, loss scaler) and
    /// continues from its epoch in the next `fit`. Returns that epoch. Set the precision and add
    /// the callbacks, in the same order, before resuming.
    pub fn resume(&mut self, dir: impl AsRef<std::path::Path>) -> Result<usize> {
        let (epoch, extras) =
            TrainingCheckpoint::load_with_extras(dir, self.model, self.optimizer.as_mut())?;
        // Callbacks are matched by position.
        for (c, state) in self.callbacks.iter_mut().zip(extras.callbacks) {
            if let Some(state) = state {
                c.load_state(state)?;
            }
        }
        for (c, tensors) in self.callbacks.iter_mut().zip(&extras.callback_tensors) {
            if let Some(tensors) = tensors {
                c.load_tensors(tensors)?;
            }
        }
        // A scaler state saved by an f16 run; an f32 or bf16 trainer has no scaler to restore.
        if let Some(state) = extras.grad_scaler.filter(|_| self.scaler.is_enabled()) {
            self.scaler.load_state_dict(&state)?;
        }
        self.start_epoch = epoch;
        Ok(epoch)
    }

    /// The optimizer (to read or set learning rates).
    pub fn optimizer(&mut self) -> &mut dyn Optimizer {
        self.optimizer.as_mut()
    }

    /// Trains until epoch `epochs` (counting from 0, or from a resumed checkpoint), evaluating
    /// on `val` after each epoch when given (`Some(&val_loader)`, any [`DataLoader`] of
    /// samples; `None` needs no type). Stops early when a callback asks.
    pub fn fit<D>(
        &mut self,
        train: &DataLoader<D>,
        val: Option<&dyn Validation>,
        epochs: usize,
    ) -> Result<History>
    where
        D: Dataset<Item = Sample> + 'static,
    {
        let mut history = History::default();
        let verbosity = if self.is_main() {
            self.verbosity
        } else {
            Verbosity::Silent
        };
        let mut progress = Progress::new(verbosity);
        let main = self.is_main();
        let total = train.num_batches();
        for epoch in self.start_epoch..epochs {
            progress.epoch_start();
            self.model.train();
            self.metrics.iter_mut().for_each(|m| m.reset());
            let (mut loss_sum, mut seen) = (0.0, 0usize);
            let mut stop = false;
            for (b, batch) in train.epoch(epoch as u64).enumerate() {
                let batch = batch?;
                let (out, loss) = if self.optimizer.needs_closure() {
                    self.closure_step(&batch)?
                } else {
                    self.plain_step(&batch)?
                };
                let out = match out.dtype() {
                    DType::F16 | DType::BF16 => out.to_dtype(DType::F32)?,
                    _ => out,
                };
                let (value, n) = (
                    loss.item()?,
                    batch.targets.dims().first().copied().unwrap_or(1),
                );
                loss_sum += value * n as f64;
                seen += n;
                for m in &mut self.metrics {
                    m.update(&out.detach(), &batch.targets)?;
                }
                let mut ctx = Context {
                    model: self.model,
                    optimizer: self.optimizer.as_mut(),
                    stop_training: false,
                };
                for c in self
                    .callbacks
                    .iter_mut()
                    .filter(|c| main || !c.main_process_only())
                {
                    c.on_batch_end(b, value, &mut ctx)?;
                }
                stop |= ctx.stop_training;
                progress.batch(epoch, epochs, b + 1, total, loss_sum / seen as f64, seen);
            }
            let (loss_sum, seen, values) = self.reduce_over_ranks(loss_sum, seen)?;
            if seen == 0 {
                return Err(no_batches("fit", "training", train));
            }
            let mut logs = Logs::new();
            logs.insert("loss".into(), loss_sum / seen as f64);
            for (m, v) in self.metrics.iter().zip(values) {
                logs.insert(m.name(), v);
            }
            if let Some(lr) = self.optimizer.lrs().first() {
                logs.insert("lr".into(), *lr);
            }
            if let Some(val) = val {
                for (k, v) in val.evaluate_on(self)? {
                    logs.insert(format!("val_{k}"), v);
                }
            }
            progress.epoch_end(epoch, epochs, &logs, seen);
            let mut ctx = Context {
                model: self.model,
                optimizer: self.optimizer.as_mut(),
                stop_training: stop,
            };
            for c in self
                .callbacks
                .iter_mut()
                .filter(|c| main || !c.main_process_only())
            {
                c.on_epoch_end(epoch, &logs, &mut ctx)?;
            }
            stop = ctx.stop_training;
            history.epochs.push(logs);
            self.start_epoch = epoch + 1;
            if let Some(dir) = self.checkpoint_dir.as_ref().filter(|_| main) {
                let extras = CheckpointExtras {
                    callbacks: self.callbacks.iter().map(|c| c.state()).collect(),
                    callback_tensors: self.callbacks.iter().map(|c| c.tensors()).collect(),
                    grad_scaler: (self.scaler.is_enabled())
                        .then(|| self.scaler.state_dict())
                        .transpose()?,
                };
                TrainingCheckpoint::save_with_extras(
                    dir,
                    self.model,
                    self.optimizer.as_ref(),
                    epoch + 1,
                    extras,
                )?;
            }
            if stop {
                break;
            }
        }
        let mut ctx = Context {
            model: self.model,
            optimizer: self.optimizer.as_mut(),
            stop_training: true,
        };
        for c in self
            .callbacks
            .iter_mut()
            .filter(|c| main || !c.main_process_only())
        {
            c.on_train_end(&mut ctx)?;
        }
        Ok(history)
    }

    /// Mean loss and metrics over `loader`, in evaluation mode without gradients. In a
    /// distributed run, over all ranks' loaders (shard them with
    /// `DistributedSampler::without_padding` so each example counts once).
    pub fn evaluate<D: Dataset<Item = Sample> + 'static>(
        &mut self,
        loader: &DataLoader<D>,
    ) -> Result<Logs> {
        self.model.eval();
        let _guard = no_grad();
        self.metrics.iter_mut().for_each(|m| m.reset());
        // The batches' losses are read when the host next waits for the device (on a GPU, once
        // at the end rather than once a batch), summed in order as `item() * n` would be.
        let (mut loss_sum, mut seen) = (DeviceSum::default(), 0usize);
        for batch in loader.epoch(0) {
            let batch = batch?;
            let out = self.model.forward(&batch.inputs)?;
            let n = batch.targets.dims().first().copied().unwrap_or(1);
            loss_sum.add(&(self.loss)(&out, &batch.targets)?, n as f64)?;
            seen += n;
            for m in &mut self.metrics {
                m.update(&out, &batch.targets)?;
            }
        }
        let (loss_sum, seen, values) = self.reduce_over_ranks(loss_sum.total()?, seen)?;
        if seen == 0 {
            return Err(no_batches("evaluate", "evaluation", loader));
        }
        let mut logs = Logs::new();
        logs.insert("loss".into(), loss_sum / seen as f64);
        for (m, v) in self.metrics.iter().zip(values) {
            logs.insert(m.name(), v);
        }
        Ok(logs)
    }

    /// The model's outputs for every example of `loader`, in order (evaluation mode).
    ///
    /// In a distributed run whose loader has a `DistributedSampler`, every rank gets all ranks'
    /// outputs, in the order one process reading the whole loader would produce them (the
    /// sampler's padding repeats dropped); without a shard, this rank's outputs.
    pub fn predict<D: Dataset<Item = Sample> + 'static>(
        &mut self,
        loader: &DataLoader<D>,
    ) -> Result<Tensor> {
        self.model.eval();
        let _guard = no_grad();
        let outs = loader
            .epoch(0)
            .map(|b| self.model.forward(&b?.inputs))
            .collect::<Result<Vec<_>>>()?;
        let local = Tensor::cat(&outs, 0)?;
        match &self.distributed {
            Some(run) if loader.config().shard.is_some() => {
                gather_predictions(run.as_ref(), &local, loader.dataset().len())
            }
            _ => Ok(local),
        }
    }
}

/// The error for a loader that gave no examples (over all ranks): an epoch over nothing has no
/// loss or accuracy, where it read as a loss of 0 and NaN metrics (Keras refuses it too).
fn no_batches<D: Dataset<Item = Sample> + 'static>(
    op: &'static str,
    what: &str,
    loader: &DataLoader<D>,
) -> Error {
    let config = loader.config();
    Error::invalid(
        op,
        format!(
            "the {what} data gave no examples ({} in the dataset, batch_size {}{})",
            loader.dataset().len(),
            config.batch_size,
            if config.drop_last { ", drop_last" } else { "" }
        ),
    )
}
