//! Batch normalisation (`BatchNorm1d`, `BatchNorm2d`) and its functional form: normalise with
//! the batch's biased variance in training and update the running statistics with the unbiased
//! one; normalise with the running statistics in evaluation mode.

use sinew_tensor::{DType, Device, Error, Parameter, Result, Tensor};

use super::norm_node::Tail;
use crate::{Buffer, Mode, Module, Visit, summary};

/// Options of batch normalisation, with PyTorch's defaults.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BatchNormConfig {
    /// Channels (`C` of `[n, C, ...]`).
    pub num_features: usize,
    /// Added to the variance (default 1e-5).
    pub eps: f64,
    /// Weight of the new batch in the running statistics (default `Some(0.1)`); `None` gives
    /// the cumulative average `1 / num_batches_tracked`.
    pub momentum: Option<f64>,
    /// Learnable `weight` (ones) and `bias` (zeros) (default true).
    pub affine: bool,
    /// Keep running statistics (default true); without them evaluation uses batch statistics.
    pub track_running_stats: bool,
}

impl BatchNormConfig {
    /// PyTorch's defaults for `num_features` channels.
    pub fn new(num_features: usize) -> Self {
        BatchNormConfig {
            num_features,
            eps: 1e-5,
            momentum: Some(0.1),
            affine: true,
            track_running_stats: true,
        }
    }
}

/// `[1, C, 1, ...]` view of a per-channel vector for an input of `rank` dimensions.
fn per_channel(v: &Tensor, rank: usize) -> Result<Tensor> {
    let mut shape = vec![1; rank];
    shape[1] = v.elem_count();
    v.reshape(shape)
}

/// Functional batch normalisation (PyTorch's `F.batch_norm`). In training, `running_mean` and
/// `running_var` (if given) are updated in place with weight `momentum`. The output has `x`'s
/// dtype: an f16 or bf16 input (a convolution's output under autocast) is normalised with f64
/// statistics and f32 arithmetic and stays half precision, as in PyTorch, where batch norm is on
/// neither autocast list.
#[allow(clippy::too_many_arguments)]
pub fn batch_norm(
    x: &Tensor,
    running_mean: Option<&Tensor>,
    running_var: Option<&Tensor>,
    weight: Option<&Tensor>,
    bias: Option<&Tensor>,
    training: bool,
    momentum: f64,
    eps: f64,
) -> Result<Tensor> {
    let running = (running_mean, running_var, None);
    let scalars = (training, momentum, eps);
    batch_norm_counting(x, running, (weight, bias), scalars, Tail::None)
}

/// The running statistics and batch count of [`batch_norm_counting`].
type Running<'a> = (Option<&'a Tensor>, Option<&'a Tensor>, Option<&'a Tensor>);

/// [`batch_norm`] whose running statistics' update (when it happens) also counts the batch in
/// `batches` (the module's i64 `num_batches_tracked`; one kernel for both on the GPU), followed
/// by `tail` (a ReLU, or a residual's sum and a ReLU: in the output's pass where the fused
/// kernels run).
fn batch_norm_counting(
    x: &Tensor,
    (running_mean, running_var, batches): Running<'_>,
    (weight, bias): (Option<&Tensor>, Option<&Tensor>),
    (training, momentum, eps): (bool, f64, f64),
    tail: Tail<'_>,
) -> Result<Tensor> {
    const OP: &str = "batch_norm";
    if x.rank() < 2 {
        return Err(Error::invalid(
            OP,
            format!("expects [n, C, ...], got {}", x.shape()),
        ));
    }
    let rank = x.rank();
    let dims: Vec<isize> = std::iter::once(0).chain(2..rank as isize).collect();
    // A residual's sum rides in the fused output pass; on every other path it follows batch
    // norm (and the ReLU then follows it), as the ops.
    let (inner, residual) = match tail {
        Tail::AddRelu(r) => (Tail::None, Some(r)),
        other => (other, None),
    };
    let then_add_relu = |y: Tensor| match residual {
        Some(r) => y.add_relu(r),
        None => Ok(y),
    };
    // This function again on a half input widened to f32 (see `half_in_f32`).
    let in_f32_form = |x: &Tensor| {
        let running = (running_mean, running_var, batches);
        let scalars = (training, momentum, eps);
        batch_norm_counting(x, running, (weight, bias), scalars, inner)
    };
    let use_batch = training || running_mean.is_none() || running_var.is_none();
    // `x - mean` and `1 / sqrt(var + eps)`: batch statistics from one centred copy of `x`
    // (the centred values give both the variance and the output), or the running ones.
    let (centered, invstd) = if use_batch {
        let count = x.elem_count() / x.dims()[1].max(1);
        if training && count <= 1 {
            return Err(Error::invalid(
                OP,
                format!(
                    "expected more than 1 value per channel when training, got input of shape {}",
                    x.shape()
                ),
            ));
        }
        // One read for the statistics and one pass for the output where the backend has
        // per-channel kernels (floats on the CPU and CUDA backends).
        let running = running_mean.zip(running_var).filter(|_| training);
        if let Some(y) = super::batch_norm_fused::batch_norm_batch_stats(
            x,
            running.map(|(m, v)| (m, v, batches)),
            weight,
            bias,
            (momentum, eps),
            tail,
        )? {
            return Ok(y);
        }
        if let Some(y) = half_in_f32(x, in_f32_form)? {
            return then_add_relu(y);
        }
        let mean = x.mean(&dims, true)?;
        let centered = x.sub(&mean)?;
        let var = centered.square()?.mean(&dims, true)?;
        if training && let (Some(rm), Some(rv)) = (running_mean, running_var) {
            let (mean, var) = (mean.detach().flatten_all()?, var.detach().flatten_all()?);
            let unbias = count as f64 / (count - 1) as f64;
            Tensor::update_running_stats_(rm, rv, &mean, &var, (momentum, unbias), batches)?;
        }
        (centered, var.add_scalar(eps)?.rsqrt()?)
    } else {
        if let Some(y) = half_in_f32(x, in_f32_form)? {
            return then_add_relu(y);
        }
        let (rm, rv) = (running_mean.unwrap_or(x), running_var.unwrap_or(x));
        let invstd = per_channel(rv, rank)?.add_scalar(eps)?.rsqrt()?;
        (x.sub(&per_channel(rm, rank)?)?, invstd)
    };
    // The weight folds into the per-channel scale, so the full-size tensor is multiplied once.
    let scale = match weight {
        Some(w) => invstd.mul(&per_channel(w, rank)?)?,
        None => invstd,
    };
    let mut y = centered.mul(&scale)?;
    if let Some(b) = bias {
        y = y.add(&per_channel(b, rank)?)?;
    }
    then_add_relu(inner.apply(y)?)
}

/// For an f16 or bf16 `x`: `norm` of `x` in f32, cast back to `x`'s dtype (the normalisations
/// keep their input's dtype, as PyTorch's do; their statistics need f32's range and precision:
/// an f16 variance of values around 300 is already beyond f16's range). `None` for other dtypes.
pub(crate) fn half_in_f32(
    x: &Tensor,
    norm: impl FnOnce(&Tensor) -> Result<Tensor>,
) -> Result<Option<Tensor>> {
    if !matches!(x.dtype(), DType::F16 | DType::BF16) {
        return Ok(None);
    }
    norm(&x.to_dtype(DType::F32)?)?
        .to_dtype(x.dtype())
        .map(Some)
}

/// Batch normalisation over the channel dim of `[n, C, ...]`, its input's rank fixed by `D` as
/// PyTorch's classes fix it: [`BatchNorm1d`] (`D = 1`: `[n, C]` or `[n, C, L]`), [`BatchNorm2d`]
/// (`D = 2`: `[n, C, H, W]`), and [`BatchNorm`] (`D = 0`: any `[n, C, ...]` up to rank 5). State:
/// `weight`, `bias`, `running_mean`, `running_var`, `num_batches_tracked` (i64), PyTorch's
/// names.
pub struct BatchNormNd<const D: usize> {
    /// `[C]` scale (ones), if affine.
    pub weight: Option<Parameter>,
    /// `[C]` shift (zeros), if affine.
    pub bias: Option<Parameter>,
    /// `[C]` running mean (zeros), if tracked.
    pub running_mean: Option<Buffer>,
    /// `[C]` running variance (ones), if tracked.
    pub running_var: Option<Buffer>,
    /// Batches seen in training (i64 scalar), if tracked.
    pub num_batches_tracked: Option<Buffer>,
    /// Options.
    pub config: BatchNormConfig,
    /// Training flag.
    pub mode: Mode,
}

/// Batch normalisation of any `[n, C, ...]` input (rank 2 to 5).
pub type BatchNorm = BatchNormNd<0>;
/// PyTorch's `BatchNorm1d` (inputs `[n, C]` or `[n, C, L]`).
pub type BatchNorm1d = BatchNormNd<1>;
/// PyTorch's `BatchNorm2d` (inputs `[n, C, H, W]`).
pub type BatchNorm2d = BatchNormNd<2>;

impl<const D: usize> BatchNormNd<D> {
    /// The input ranks this layer takes; another `D` does not compile.
    const RANKS: &'static [usize] = match D {
        0 => &[2, 3, 4, 5],
        1 => &[2, 3],
        2 => &[4],
        _ => panic!("BatchNormNd<D>: D is 0 (any rank), 1 or 2"),
    };

    /// PyTorch's class name.
    const NAME: &'static str = match D {
        1 => "BatchNorm1d",
        2 => "BatchNorm2d",
        _ => "BatchNorm",
    };

    /// Batch norm over `num_features` channels with PyTorch's defaults: `BatchNorm2d::new(c)`
    /// is `nn.BatchNorm2d(c)`.
    pub fn new(num_features: usize) -> Result<Self> {
        Self::with_config(BatchNormConfig::new(num_features))
    }

    /// Whether `x` has a rank this layer takes.
    pub fn accepts_rank(&self, x: &Tensor) -> bool {
        Self::RANKS.contains(&x.rank())
    }

    /// From a config.
    pub fn with_config(config: BatchNormConfig) -> Result<Self> {
        let c = config.num_features;
        let cpu = Device::cpu();
        let f32s = |v: f64| Tensor::full([c], v, DType::F32, &cpu);
        let (weight, bias) = if config.affine {
            (
                Some(Parameter::new(f32s(1.0)?)),
                Some(Parameter::new(f32s(0.0)?)),
            )
        } else {
            (None, None)
        };
        let tracked = config.track_running_stats;
        let buffer = |t: Result<Tensor>| t.map(|t| tracked.then(|| Buffer::new(t)));
        Ok(BatchNormNd {
            weight,
            bias,
            running_mean: buffer(f32s(0.0))?,
            running_var: buffer(f32s(1.0))?,
            num_batches_tracked: buffer(Tensor::zeros((), DType::I64, &cpu))?,
            config,
            mode: Mode::new(),
        })
    }

    /// The momentum of the running statistics: the configured one, or `None` (the cumulative
    /// average) while the mode says so ([`Mode::is_cumulative`], set by `update_bn`).
    pub fn momentum(&self) -> Option<f64> {
        if self.mode.is_cumulative() {
            None
        } else {
            self.config.momentum
        }
    }

    /// Resets the running statistics: mean 0, variance 1, no batches tracked (PyTorch's
    /// `reset_running_stats`), in place.
    pub fn reset_running_stats(&self) -> Result<()> {
        reset_running_stats(
            self.running_mean.as_ref(),
            self.running_var.as_ref(),
            self.num_batches_tracked.as_ref(),
        )
    }

    /// Counts one more training batch in `num_batches_tracked` and returns the momentum for
    /// its running-statistics update: the configured one, or the cumulative average `1/n` when
    /// `momentum` is `None` (PyTorch's rule). For layers that compute the batch statistics
    /// themselves, such as a synchronised batch norm.
    pub fn next_momentum(&self) -> Result<f64> {
        let Some(count) = &self.num_batches_tracked else {
            return Ok(self.momentum().unwrap_or(0.0));
        };
        let count = count.value();
        match self.momentum() {
            // Counted in place on the buffer's device: no host read, so no GPU synchronisation
            // per layer and step.
            Some(m) => {
                count.add_scalar_(1.0)?;
                Ok(m)
            }
            // The cumulative average needs the count on the host (PyTorch reads it too).
            None => {
                let n = count.to_scalar::<i64>()? + 1;
                count.add_scalar_(1.0)?;
                Ok(1.0 / n as f64)
            }
        }
    }

    /// The momentum of this training batch's running-statistics update and, with a fixed
    /// momentum, the batch counter that update increments (in the same kernel on the GPU);
    /// with the cumulative average the count is taken here ([`BatchNormNd::next_momentum`]).
    fn momentum_and_count(&self) -> Result<(f64, Option<Tensor>)> {
        match (&self.num_batches_tracked, self.momentum()) {
            (Some(count), Some(m)) => Ok((m, Some(count.value()))),
            _ => Ok((self.next_momentum()?, None)),
        }
    }

    /// `relu(self.forward(x)? + residual)` (a ResNet block's last batch norm, the sum with its
    /// shortcut and the ReLU), with the sum and the ReLU in batch norm's output pass where the
    /// fused kernels run (training: one kernel on the GPU instead of two, and in the backward
    /// the ReLU's mask inside batch norm's two kernels, one of which also writes the residual's
    /// gradient); the same values. `residual` has the output's shape and dtype.
    pub fn forward_add_relu(&self, x: &Tensor, residual: &Tensor) -> Result<Tensor> {
        self.run(x, Tail::AddRelu(residual))
    }

    /// The forward, followed by `tail`.
    fn run(&self, x: &Tensor, tail: Tail<'_>) -> Result<Tensor> {
        if !self.accepts_rank(x) || x.dims()[1] != self.config.num_features {
            return Err(Error::invalid(
                Self::NAME,
                format!(
                    "expects an input of rank {} with {} channels, got {}",
                    rank_list(Self::RANKS),
                    self.config.num_features,
                    x.shape()
                ),
            ));
        }
        let training = self.mode.updates_statistics() || self.running_mean.is_none();
        let (momentum, count) = if self.mode.updates_statistics() {
            self.momentum_and_count()?
        } else {
            (0.0, None)
        };
        let (rm, rv) = (
            self.running_mean.as_ref().map(Buffer::value),
            self.running_var.as_ref().map(Buffer::value),
        );
        let (w, b) = (
            self.weight.as_ref().map(Parameter::value),
            self.bias.as_ref().map(Parameter::value),
        );
        let y = batch_norm_counting(
            x,
            (rm.as_ref(), rv.as_ref(), count.as_ref()),
            (w.as_ref(), b.as_ref()),
            (training, momentum, self.config.eps),
            tail,
        )?;
        summary::note(self, &y);
        Ok(y)
    }
}

impl<const D: usize> Module for BatchNormNd<D> {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        self.run(x, Tail::None)
    }

    /// `self.forward(x)?.relu()` (a ResNet block's `relu(bn(conv(x)))`), with the ReLU in batch
    /// norm's output pass where the fused kernels run (training: one kernel on the GPU instead
    /// of two, one full-size pass fewer); the same values.
    fn forward_relu(&self, x: &Tensor) -> Result<Tensor> {
        self.run(x, Tail::Relu)
    }

    fn visit<'a>(&'a self, v: &mut Visit<'a, '_>) {
        v.optional_parameter("weight", &self.weight);
        v.optional_parameter("bias", &self.bias);
        if let Some(b) = &self.running_mean {
            v.buffer("running_mean", b);
        }
        if let Some(b) = &self.running_var {
            v.buffer("running_var", b);
        }
        if let Some(b) = &self.num_batches_tracked {
            v.buffer("num_batches_tracked", b);
        }
        v.mode(&self.mode);
    }

    fn type_name(&self) -> &'static str {
        Self::NAME
    }
}

/// Zeroes a running mean and count and fills a running variance with ones, in place (each where
/// present).
pub fn reset_running_stats(
    mean: Option<&Buffer>,
    var: Option<&Buffer>,
    count: Option<&Buffer>,
) -> Result<()> {
    for (buffer, value) in [(mean, 0.0), (var, 1.0), (count, 0.0)] {
        if let Some(b) = buffer {
            b.value().fill_(value)?;
        }
    }
    Ok(())
}

/// `2, 3 or 4` for a message.
fn rank_list(ranks: &[usize]) -> String {
    match ranks.split_last() {
        Some((last, [])) => last.to_string(),
        Some((last, rest)) => {
            let rest: Vec<String> = rest.iter().map(usize::to_string).collect();
            format!("{} or {last}", rest.join(", "))
        }
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use sinew_tensor::{DType, Device, Generator, Result, Tensor};

    use super::batch_norm;

    /// Output, input and weight gradients, running mean and variance of one batch norm step.
    fn step(x: &Tensor, w: &Tensor, probe: &Tensor, training: bool) -> Result<[Tensor; 5]> {
        let cpu = Device::cpu();
        let (x, w) = (x.detach().requires_grad_(), w.detach().requires_grad_());
        let b = w.mul_scalar(0.5)?.detach();
        let rm = Tensor::full([3], 0.25, DType::F32, &cpu)?;
        let rv = Tensor::full([3], 2.0, DType::F32, &cpu)?;
        let y = batch_norm(
            &x,
            Some(&rm),
            Some(&rv),
            Some(&w),
            Some(&b),
            training,
            0.1,
            1e-5,
        )?;
        y.to_dtype(DType::F32)?.mul(probe)?.sum_all()?.backward()?;
        Ok([y, x.grad().unwrap(), w.grad().unwrap(), rm, rv])
    }

    /// An f16 or bf16 input stays in its dtype (PyTorch's batch norm, on neither autocast
    /// list), in training (the per-channel kernels: f64 statistics, the map in f32 rounded once)
    /// and in eval (f32, cast back): on values exact in both dtypes its output and input
    /// gradient are the f32 ones rounded once, and the weight gradient and running statistics
    /// are the f32 ones exactly.
    #[test]
    fn half_inputs_stay_half_with_f32_statistics() -> Result<()> {
        let cpu = Device::cpu();
        let mut g = Generator::new(21);
        // Values with 8 significant bits: exact in f16 and in bf16.
        let exact = |t: Tensor| t.to_dtype(DType::BF16)?.to_dtype(DType::F32);
        let x = exact(g.randn([6, 3, 4, 4], DType::F32, &cpu)?.mul_scalar(2.0)?)?;
        let probe = exact(g.randn([6, 3, 4, 4], DType::F32, &cpu)?)?;
        let w = g.randn([3], DType::F32, &cpu)?;
        for dtype in [DType::F16, DType::BF16] {
            for training in [true, false] {
                let half = step(&x.to_dtype(dtype)?, &w, &probe, training)?;
                let full = step(&x, &w, &probe, training)?;
                let what = format!("{dtype} training={training}");
                assert_eq!(half[0].dtype(), dtype, "{what}: output dtype");
                assert_eq!(half[1].dtype(), dtype, "{what}: gradient dtype");
                for k in 0..5 {
                    let want = if k < 2 {
                        full[k].to_dtype(dtype)?.to_dtype(DType::F32)?
                    } else {
                        full[k].clone()
                    };
                    let got = half[k].to_dtype(DType::F32)?.to_vec::<f32>()?;
                    assert_eq!(got, want.to_vec::<f32>()?, "{what}: tensor {k}");
                }
            }
        }
        Ok(())
    }
}
