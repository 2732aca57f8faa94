//! [`SyncBatchNorm`]: batch normalisation whose training statistics are computed over the whole
//! data-parallel batch (all ranks), and [`all_reduce_sum`], the differentiable all-reduce it is
//! built from. PyTorch: `torch.nn.SyncBatchNorm`.

use sinew_nn::{BatchNormNd, Buffer, Module, Visit};
use sinew_tensor::{Result, Save, Tensor, with_no_grad};

use crate::backend::ReduceOp;
use crate::group::ProcessGroup;

/// The sum of `x` over all ranks, recorded for autograd: its gradient is the sum of the
/// ranks' output gradients (every rank's loss depends on every rank's `x`). All ranks must call
/// it, in forward and in backward, in the same order.
pub fn all_reduce_sum(group: &ProcessGroup, x: &Tensor) -> Result<Tensor> {
    let value = summed_copy(group, x)?;
    let group = group.clone();
    Ok(Tensor::from_op(
        value,
        "all_reduce_sum",
        &[x],
        Save::NOTHING,
        move |_, grad| Ok(vec![Some(summed_copy(&group, grad)?)]),
    ))
}

/// A fresh copy of `x`, summed over all ranks where it lives (on the GPU under NCCL).
fn summed_copy(group: &ProcessGroup, x: &Tensor) -> Result<Tensor> {
    let copy = with_no_grad(|| x.detach().force_contiguous())?;
    group.all_reduce(&copy, ReduceOp::Sum)?;
    Ok(copy)
}

/// A batch norm ([`BatchNormNd`]: `BatchNorm`, `BatchNorm1d` or `BatchNorm2d`) that, in
/// training, normalises with the mean and variance of the batch of all ranks together and
/// updates its running statistics from them, so every rank keeps the same statistics. In evaluation it is the wrapped layer. Parameter and buffer names are the wrapped
/// layer's, so checkpoints are interchangeable with the plain layer's.
pub struct SyncBatchNorm<const D: usize> {
    inner: BatchNormNd<D>,
    group: ProcessGroup,
}

impl<const D: usize> SyncBatchNorm<D> {
    /// Synchronises `bn` over `group` (PyTorch: `SyncBatchNorm.convert_sync_batchnorm`).
    pub fn new(bn: BatchNormNd<D>, group: &ProcessGroup) -> Self {
        SyncBatchNorm {
            inner: bn,
            group: group.clone(),
        }
    }

    /// The wrapped layer.
    pub fn inner(&self) -> &BatchNormNd<D> {
        &self.inner
    }
}

fn update(buffer: &Option<Buffer>, batch: &Tensor, momentum: f64) -> Result<()> {
    if let Some(b) = buffer {
        let old = b.value();
        let new = with_no_grad(|| {
            old.mul_scalar(1.0 - momentum)?
                .add(&batch.mul_scalar(momentum)?)
        })?;
        b.set_value(new);
    }
    Ok(())
}

impl<const D: usize> Module for SyncBatchNorm<D> {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let bn = &self.inner;
        let training = bn.mode.updates_statistics() || bn.running_mean.is_none();
        if !training || !bn.accepts_rank(x) || x.dims()[1] != bn.config.num_features {
            // Evaluation, or an input the wrapped layer will reject with its own message.
            return bn.forward(x);
        }
        let c = bn.config.num_features;
        let dims: Vec<isize> = (0..x.rank() as isize).filter(|&d| d != 1).collect();
        let local = (x.dims().iter().product::<usize>() / c.max(1)) as f64;
        // One all-reduce for [sum, sum of squares, count] per channel.
        let count = Tensor::full([c], local, x.dtype(), x.device())?;
        let stats = Tensor::cat(
            &[x.sum(&dims, false)?, x.square()?.sum(&dims, false)?, count],
            0,
        )?;
        let stats = all_reduce_sum(&self.group, &stats)?;
        let total = stats.narrow(0, 2 * c, 1)?.detach().to_vec_f64()?[0];
        let mean = stats.narrow(0, 0, c)?.mul_scalar(1.0 / total)?;
        let var = stats
            .narrow(0, c, c)?
            .mul_scalar(1.0 / total)?
            .sub(&mean.square()?)?;
        if bn.mode.updates_statistics() {
            let momentum = bn.next_momentum()?;
            let unbiased = total / (total - 1.0).max(1.0);
            update(&bn.running_mean, &mean.detach(), momentum)?;
            update(
                &bn.running_var,
                &var.detach().mul_scalar(unbiased)?,
                momentum,
            )?;
        }
        let mut shape = vec![1usize; x.rank()];
        shape[1] = c;
        let inv_std = var.add_scalar(bn.config.eps)?.sqrt()?.recip()?;
        let mut y = x
            .sub(&mean.reshape(shape.clone())?)?
            .mul(&inv_std.reshape(shape.clone())?)?;
        if let Some(w) = &bn.weight {
            y = y.mul(&w.value().reshape(shape.clone())?)?;
        }
        if let Some(b) = &bn.bias {
            y = y.add(&b.value().reshape(shape)?)?;
        }
        Ok(y)
    }
    fn visit<'a>(&'a self, v: &mut Visit<'a, '_>) {
        self.inner.visit(v)
    }
    fn type_name(&self) -> &'static str {
        "SyncBatchNorm"
    }
}
