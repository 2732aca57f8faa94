//! Weight averaging's update over many tensors ([`Tensor::average_many_`]): SWA's running
//! mean and EMA's `lerp_` of an averaged model's weights towards a model's, PyTorch's
//! `AveragedModel.update_parameters` (which uses `torch._foreach_lerp_` on a GPU). On the GPU
//! the dense pairs of one dtype take one multi-tensor kernel a few dozen, where the tensor ops
//! take one to three launches a tensor; the tensor ops define the values, bit for bit.

use super::many::{groups_by, write_dense_runs};
use crate::{Error, Result, Tensor, no_grad};

/// How [`Tensor::average_many_`] folds a new value `x` into an average `avg`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum AverageStep {
    /// The mean of `count` earlier values and `x`: `avg += (x - avg) / (count + 1)`
    /// (PyTorch's `get_swa_avg_fn`).
    Mean {
        /// How many values the average holds so far (at least 1).
        count: u64,
    },
    /// `avg = lerp(avg, x, weight)` (PyTorch's `get_ema_multi_avg_fn`, `weight = 1 - decay`).
    Lerp {
        /// The new value's weight.
        weight: f64,
    },
}

impl AverageStep {
    /// The step on one pair with the tensor ops: the reference every kernel follows.
    fn apply_one(&self, avg: &Tensor, x: &Tensor) -> Result<()> {
        match *self {
            AverageStep::Mean { count } => avg.add_(&x.sub(avg)?.div_scalar(count as f64 + 1.0)?),
            AverageStep::Lerp { weight } => avg.lerp_(x, weight),
        }
    }
}

impl Tensor {
    /// `avgs[i]` <- `step` of `avgs[i]` and `xs[i]` in place, for every pair: float tensors of
    /// one dtype and device a pair, `xs[i]` of `avgs[i]`'s shape or broadcastable to it. The
    /// values are those of the tensor ops (`add_(x.sub(avg).div_scalar(count + 1))`,
    /// `lerp_(x, weight)`). Not recorded by autograd. On the GPU the pairs of one device and
    /// dtype that are dense, of one shape, and whose averages have storages of their own
    /// (shared with no other operand) take one multi-tensor kernel a few dozen; the others run
    /// the tensor ops one pair at a time (with their errors).
    pub fn average_many_(avgs: &[&Tensor], xs: &[&Tensor], step: AverageStep) -> Result<()> {
        const OP: &str = "average_many_";
        if avgs.len() != xs.len() {
            return Err(Error::invalid(
                OP,
                format!("{} averages and {} values", avgs.len(), xs.len()),
            ));
        }
        if let AverageStep::Mean { count: 0 } = step {
            return Err(Error::invalid(
                OP,
                "a mean of 0 values has no average to update",
            ));
        }
        for (avg, x) in avgs.iter().zip(xs) {
            avg.check_float(OP)?;
            avg.check_same_device(OP, x)?;
            if x.dtype() != avg.dtype() {
                return Err(Error::DTypeMismatch {
                    op: OP,
                    lhs: avg.dtype(),
                    rhs: x.dtype(),
                });
            }
        }
        let _guard = no_grad();
        let key = |t: &&Tensor| (t.device().clone(), t.dtype());
        for ((device, dtype), members) in groups_by(avgs, key) {
            // Without a kernel (the CPU), every pair runs its tensor ops, with nothing planned.
            if !device.backend().fuses_average(dtype) {
                for i in members {
                    step.apply_one(avgs[i], xs[i])?;
                }
                continue;
            }
            let batched = |&i: &usize| {
                avgs[i].is_contiguous() && xs[i].is_contiguous() && avgs[i].shape() == xs[i].shape()
            };
            let (batch, others): (Vec<usize>, Vec<usize>) = members.into_iter().partition(batched);
            for i in others {
                step.apply_one(avgs[i], xs[i])?;
            }
            for launch in distinct_launches(avgs, xs, batch) {
                if !average_launch(&launch, avgs, xs, step)? {
                    for &i in &launch {
                        step.apply_one(avgs[i], xs[i])?;
                    }
                }
            }
        }
        Ok(())
    }
}

/// The pairs `batch` split into launches whose averages share a storage with no other operand
/// of the launch (pairs in the order given; a clashing pair waits for a later launch, one that
/// clashes with itself runs alone and falls back).
fn distinct_launches(avgs: &[&Tensor], xs: &[&Tensor], mut batch: Vec<usize>) -> Vec<Vec<usize>> {
    let mut launches = Vec::new();
    while !batch.is_empty() {
        let (mut now, mut later): (Vec<usize>, Vec<usize>) = (Vec::new(), Vec::new());
        for i in batch {
            let clashes = now.iter().any(|&j| {
                avgs[j].same_storage(avgs[i])
                    || avgs[j].same_storage(xs[i])
                    || xs[j].same_storage(avgs[i])
            });
            if clashes { later.push(i) } else { now.push(i) }
        }
        launches.push(now);
        batch = later;
    }
    launches
}

/// One multi-tensor launch over the pairs `launch` (dense, of one shape a pair, one device
/// and dtype); `false`, with nothing written, where the backend has no kernel or an average
/// shares its storage with another operand.
fn average_launch(
    launch: &[usize],
    avgs: &[&Tensor],
    xs: &[&Tensor],
    step: AverageStep,
) -> Result<bool> {
    let Some(&first) = launch.first() else {
        return Ok(true);
    };
    let backend = avgs[first].device().backend();
    let dsts: Vec<&Tensor> = launch.iter().map(|&i| avgs[i]).collect();
    let srcs: Vec<&Tensor> = launch.iter().map(|&i| xs[i]).collect();
    let lens: Vec<usize> = dsts.iter().map(|t| t.elem_count()).collect();
    write_dense_runs(&dsts, &srcs, |runs, values| {
        backend.average_many(runs, values, &lens, step)
    })
}
