//! Weight averaging: [`AveragedModel`] keeps a running average of a model's weights, for
//! stochastic weight averaging (SWA) or an exponential moving average (EMA). PyTorch
//! equivalent: `torch.optim.swa_utils.AveragedModel`; [`crate::schedule::SwaLr`] is `SWALR`,
//! and `sinew_train::update_bn` recomputes the batch-norm statistics of the averaged weights.
//!
//! The arithmetic is PyTorch's on the CPU: SWA's `avg + (x - avg) / (n + 1)` (its
//! `get_swa_avg_fn`), EMA's `avg.lerp_(x, 1 - decay)` (`get_ema_multi_avg_fn`), and for integer
//! buffers (`num_batches_tracked`, with `use_buffers`) the same formulas in f32, truncated.

use sinew_nn::{Buffer, Module, ModuleExt, Visit};
use sinew_tensor::{AverageStep, DType, Device, Error, Result, Tensor, no_grad};

/// How [`AveragedModel`] folds each new set of weights into its average.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Averaging {
    /// Equal weight for every update: the mean of all the weights seen (SWA, PyTorch's
    /// default).
    Swa,
    /// Exponential moving average: `avg = decay * avg + (1 - decay) * x` (PyTorch's
    /// `multi_avg_fn=get_ema_multi_avg_fn(decay)`).
    Ema {
        /// Weight of the average so far, in `[0, 1]` (0.999 is usual).
        decay: f64,
    },
}

/// A copy of a model whose weights are the average of the weights it was given
/// (PyTorch's `AveragedModel`). It is itself a module: `forward` runs the averaged copy, and its
/// `state_dict` has PyTorch's keys (`n_averaged`, then `module.<name>`).
///
/// PyTorch deep-copies the model; a Rust module cannot be copied generically, so the copy is a
/// second model of the same architecture, given here, which receives the source's weights and
/// buffers. It must not share a parameter or buffer with the source.
///
/// ```
/// use sinew_nn::{Linear, ModuleExt};
/// use sinew_optim::AveragedModel;
///
/// let model = Linear::new(2, 1)?;
/// let ema = AveragedModel::ema(Linear::new(2, 1)?, &model, 0.9)?;
/// // ... after each optimizer step:
/// ema.update_parameters(&model)?;
/// assert_eq!(ema.n_averaged()?, 1);
/// assert_eq!(ema.module().weight.value().to_vec::<f32>()?, model.weight.value().to_vec::<f32>()?);
/// # Ok::<(), sinew_tensor::Error>(())
/// ```
pub struct AveragedModel<M> {
    module: M,
    n_averaged: Buffer,
    averaging: Averaging,
    use_buffers: bool,
}

impl<M: Module> AveragedModel<M> {
    /// Stochastic weight averaging of `source` into `copy` (a model of the same architecture),
    /// which first receives `source`'s current state.
    pub fn new(copy: M, source: &dyn Module) -> Result<Self> {
        AveragedModel::with_averaging(copy, source, Averaging::Swa)
    }

    /// An exponential moving average with `decay` (PyTorch:
    /// `AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(decay))`).
    pub fn ema(copy: M, source: &dyn Module, decay: f64) -> Result<Self> {
        AveragedModel::with_averaging(copy, source, Averaging::Ema { decay })
    }

    /// `copy` averaging `source` by `averaging`.
    pub fn with_averaging(copy: M, source: &dyn Module, averaging: Averaging) -> Result<Self> {
        if let Averaging::Ema { decay } = averaging
            && !(0.0..=1.0).contains(&decay)
        {
            return Err(Error::invalid(
                "AveragedModel",
                format!("the EMA decay must be in [0, 1], got {decay}"),
            ));
        }
        check_not_shared(&copy, source)?;
        copy.load_state_dict(&source.state_dict(), true)?;
        Ok(AveragedModel {
            module: copy,
            n_averaged: Buffer::new(Tensor::zeros((), DType::I64, &Device::cpu())?),
            averaging,
            use_buffers: false,
        })
    }

    /// Averages the buffers too (batch norm's running statistics), instead of copying the
    /// source's at each update (PyTorch's `use_buffers=True`).
    pub fn with_buffers(mut self) -> Self {
        self.use_buffers = true;
        self
    }

    /// The averaged copy.
    pub fn module(&self) -> &M {
        &self.module
    }

    /// The averaged copy, taken out.
    pub fn into_inner(self) -> M {
        self.module
    }

    /// How many times [`AveragedModel::update_parameters`] averaged weights in.
    pub fn n_averaged(&self) -> Result<i64> {
        self.n_averaged.value().to_scalar::<i64>()
    }

    /// Folds `model`'s current weights into the average (the first call copies them), and its
    /// buffers too with [`AveragedModel::with_buffers`] (else they are copied). The tensors pair
    /// up in order, as PyTorch zips them; a different count or shape is an error that changes
    /// nothing.
    pub fn update_parameters(&self, model: &dyn Module) -> Result<()> {
        let _guard = no_grad();
        let (pairs, params) = paired(&self.module, model)?;
        // The parameters are averaged, and the buffers with `use_buffers`; the rest copied.
        let averaged = if self.use_buffers {
            pairs.len()
        } else {
            params
        };
        let n = self.n_averaged()?;
        if n < 0 {
            return Err(Error::invalid(
                "AveragedModel::update_parameters",
                format!("n_averaged is {n}: a count of updates cannot be negative"),
            ));
        }
        // The float weights go together (one multi-tensor kernel a few dozen on the GPU).
        let (mut avgs, mut xs) = (Vec::new(), Vec::new());
        for (i, (avg, x)) in pairs.iter().enumerate() {
            if n == 0 || i >= averaged {
                avg.copy_(x)?;
            } else if avg.dtype().is_float() {
                avgs.push(avg);
                xs.push(x);
            } else {
                self.fold_integer(avg, x, n)?;
            }
        }
        if !avgs.is_empty() {
            let step = match self.averaging {
                Averaging::Swa => AverageStep::Mean { count: n as u64 },
                Averaging::Ema { decay } => AverageStep::Lerp {
                    weight: 1.0 - decay,
                },
            };
            Tensor::average_many_(&avgs, &xs, step)?;
        }
        self.n_averaged.value().add_scalar_(1.0)
    }

    /// An integer `avg` <- the average of `n` earlier values and `x`: PyTorch's formulas give
    /// f32, which `copy_` truncates.
    fn fold_integer(&self, avg: &Tensor, x: &Tensor, n: i64) -> Result<()> {
        match self.averaging {
            Averaging::Swa => {
                let step = x.sub(avg)?.div_scalar((n + 1) as f64)?;
                avg.copy_(&avg.to_dtype(DType::F32)?.add(&step)?)
            }
            Averaging::Ema { decay } => {
                let kept = avg.to_dtype(DType::F32)?.mul_scalar(decay)?;
                let new = x.to_dtype(DType::F32)?.mul_scalar(1.0 - decay)?;
                avg.copy_(&kept.add(&new)?)
            }
        }
    }
}

impl<M: Module> Module for AveragedModel<M> {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        self.module.forward(x)
    }

    fn visit<'a>(&'a self, v: &mut Visit<'a, '_>) {
        v.buffer("n_averaged", &self.n_averaged);
        v.child("module", &self.module);
    }

    fn type_name(&self) -> &'static str {
        "AveragedModel"
    }
}

/// A module's parameters (deduplicated, as `parameters()`), then its buffers, with names; and
/// how many of them are parameters.
fn tensors(module: &dyn Module) -> (Vec<(String, Tensor)>, usize) {
    let params = module.named_parameters();
    let count = params.len();
    let buffers = module.named_buffers().into_iter();
    let all = params
        .into_iter()
        .map(|(name, p)| (name, p.value()))
        .chain(buffers.map(|(name, b)| (name, b.value())))
        .collect();
    (all, count)
}

/// `copy`'s tensors paired in order with `model`'s, these moved to their devices (the same count
/// and each the same shape, else an error naming the first that differs), and how many of the
/// pairs are parameters.
fn paired(copy: &dyn Module, model: &dyn Module) -> Result<(Vec<(Tensor, Tensor)>, usize)> {
    let ((mine, params), (theirs, _)) = (tensors(copy), tensors(model));
    if mine.len() != theirs.len() {
        return Err(Error::invalid(
            "AveragedModel::update_parameters",
            format!(
                "the averaged model has {} parameters and buffers, the model {}: give a model \
                 of the same architecture",
                mine.len(),
                theirs.len()
            ),
        ));
    }
    let pairs = mine
        .into_iter()
        .zip(theirs)
        .map(|((name, avg), (their_name, x))| {
            if avg.shape() != x.shape() {
                return Err(Error::invalid(
                    "AveragedModel::update_parameters",
                    format!(
                        "`{their_name}` has shape {:?}, the averaged `{name}` {:?}",
                        x.dims(),
                        avg.dims()
                    ),
                ));
            }
            let x = x.detach().to_device(avg.device())?;
            Ok((avg, x))
        })
        .collect::<Result<_>>()?;
    Ok((pairs, params))
}

/// An error if `copy` holds a parameter or buffer of `source` (a clone sharing its weights
/// would average nothing).
fn check_not_shared(copy: &dyn Module, source: &dyn Module) -> Result<()> {
    let params = source.named_parameters();
    let buffers = source.named_buffers();
    let shared = copy
        .named_parameters()
        .into_iter()
        .find(|(_, p)| params.iter().any(|(_, q)| q.ptr_eq(p)))
        .map(|(name, _)| name)
        .or_else(|| {
            let copy_buffers = copy.named_buffers().into_iter();
            copy_buffers
                .into_iter()
                .find(|(_, b)| buffers.iter().any(|(_, c)| c.ptr_eq(b)))
                .map(|(name, _)| name)
        });
    match shared {
        Some(name) => Err(Error::invalid(
            "AveragedModel",
            format!(
                "the copy shares `{name}` with the source model: build a second model of the \
                 same architecture for the average"
            ),
        )),
        None => Ok(()),
    }
}
