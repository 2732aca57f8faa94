//! [`Distributed`]: what the trainer needs from a data-parallel run, implemented by `sinew-dist`
//! (this crate sits below it and knows no transport).

use sinew_tensor::{Error, Result, Tensor};

/// One process of a data-parallel run, as the [`Trainer`](crate::Trainer) sees it.
///
/// With it set (`Trainer::distributed`), only rank 0 prints progress, writes checkpoints and
/// runs callbacks that write files; epoch losses and metrics are reduced over all ranks, so
/// every rank logs (and early-stops on) the same numbers.
pub trait Distributed: Send + Sync {
    /// This process's rank.
    fn rank(&self) -> usize;
    /// Number of processes.
    fn world_size(&self) -> usize;
    /// Sums `values` over all processes, in place, on every process.
    fn all_reduce_sum(&self, values: &mut [f64]) -> Result<()>;
    /// After each backward and before the optimizer step: completes the gradient averaging.
    fn after_backward(&self) -> Result<()>;
    /// Every rank's `tensor`, in rank order (all ranks pass the same shape). PyTorch:
    /// `dist.all_gather`.
    fn all_gather(&self, tensor: &Tensor) -> Result<Vec<Tensor>>;
}

impl<D: Distributed + ?Sized> Distributed for &D {
    fn rank(&self) -> usize {
        (**self).rank()
    }
    fn world_size(&self) -> usize {
        (**self).world_size()
    }
    fn all_reduce_sum(&self, values: &mut [f64]) -> Result<()> {
        (**self).all_reduce_sum(values)
    }
    fn after_backward(&self) -> Result<()> {
        (**self).after_backward()
    }
    fn all_gather(&self, tensor: &Tensor) -> Result<Vec<Tensor>> {
        (**self).all_gather(tensor)
    }
}

/// All ranks' predictions in the order of the epoch's unsharded sequence, as one process reading
/// the whole loader would return them (`Trainer::predict` in a distributed run).
///
/// Under a `DistributedSampler`, row `k` of rank `r` is position `r + k·R` of the epoch's
/// sequence (`R` ranks). Shards may differ in length (`without_padding`, `drop_last`), so each
/// rank pads its rows with zeros to the longest shard before the gather; the result is cut at the
/// first position no rank predicted and at `dataset_len`, which drops the sampler's padding
/// repeats and the zero rows alike.
pub fn gather_predictions(
    run: &dyn Distributed,
    local: &Tensor,
    dataset_len: usize,
) -> Result<Tensor> {
    let ranks = run.world_size();
    let rank = run.rank();
    let dims = local.dims().to_vec();
    let rows = dims
        .first()
        .copied()
        .ok_or_else(|| Error::invalid("predict", "the model's output has no batch dimension"))?;
    let mut counts = vec![0.0; ranks];
    counts[rank] = rows as f64;
    run.all_reduce_sum(&mut counts)?;
    let counts: Vec<usize> = counts.iter().map(|&c| c as usize).collect();
    let longest = counts.iter().copied().max().unwrap_or(0);
    let padded = if rows < longest {
        let mut pad_dims = dims.clone();
        pad_dims[0] = longest - rows;
        let pad = Tensor::zeros(pad_dims, local.dtype(), local.device())?;
        Tensor::cat(&[local.clone(), pad], 0)?
    } else {
        local.clone()
    };
    let parts = run.all_gather(&padded)?;
    // [longest, R, ...] row-major is position k·R + r: the sequence order.
    let mut flat_dims = dims;
    flat_dims[0] = longest.checked_mul(ranks).ok_or_else(|| Error::Overflow {
        op: "predict",
        what: format!("{longest} rows × {ranks} ranks"),
    })?;
    let sequence = Tensor::stack(&parts, 1)?.reshape(flat_dims)?;
    let first_hole = counts
        .iter()
        .enumerate()
        .map(|(r, &m)| m.saturating_mul(ranks).saturating_add(r))
        .min()
        .unwrap_or(0);
    sequence.narrow(0, 0, first_hole.min(dataset_len))
}
