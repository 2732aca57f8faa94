//! `sinew_train::Distributed` for [`DistributedDataParallel`]: hand the wrapped model to
//! `Trainer::distributed` and the trainer runs as one rank of the job.

use sinew_nn::Module;
use sinew_tensor::{Result, Tensor};
use sinew_train::Distributed;

use crate::ReduceOp;
use crate::ddp::DistributedDataParallel;
use crate::group::ProcessGroup;

impl<M: Module> Distributed for DistributedDataParallel<M> {
    fn rank(&self) -> usize {
        self.group().rank()
    }
    fn world_size(&self) -> usize {
        self.group().world_size()
    }
    fn all_reduce_sum(&self, values: &mut [f64]) -> Result<()> {
        self.group().all_reduce_f64(values, ReduceOp::Sum)
    }
    fn after_backward(&self) -> Result<()> {
        self.finish_gradient_sync()
    }
    fn all_gather(&self, tensor: &Tensor) -> Result<Vec<Tensor>> {
        self.group().all_gather(tensor)
    }
}

/// A process group alone (a model whose gradients are reduced some other way, or evaluation):
/// rank-0-only output and reduced metrics, nothing to do after backward.
impl Distributed for ProcessGroup {
    fn rank(&self) -> usize {
        ProcessGroup::rank(self)
    }
    fn world_size(&self) -> usize {
        ProcessGroup::world_size(self)
    }
    fn all_reduce_sum(&self, values: &mut [f64]) -> Result<()> {
        self.all_reduce_f64(values, ReduceOp::Sum)
    }
    fn after_backward(&self) -> Result<()> {
        Ok(())
    }
    fn all_gather(&self, tensor: &Tensor) -> Result<Vec<Tensor>> {
        ProcessGroup::all_gather(self, tensor)
    }
}
