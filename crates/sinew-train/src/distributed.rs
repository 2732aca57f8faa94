//! [`Distributed`]: what the trainer needs from a data-parallel run, implemented by `sinew-dist`
//! (this crate sits below it and knows no transport).

use sinew_tensor::Result;

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
}
