//! [`Backend`]: the transport under a process group (MPI on CPUs; others can be added), and
//! [`SingleProcess`], the world of one.

use sinew_tensor::{Result, Tensor};

use crate::buffer::CommBuffer;

/// How `all_reduce` combines the ranks' values, elementwise.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReduceOp {
    /// The sum over ranks.
    Sum,
    /// The sum divided by the world size (what gradient averaging uses).
    Mean,
    /// The largest value.
    Max,
    /// The smallest value.
    Min,
}

/// A transport between the processes of one job. Every rank calls the same collectives in the
/// same order; a backend is created and used on the process group's communication thread only,
/// so it need not be `Sync` (MPI is initialised there with `MPI_THREAD_FUNNELED`).
///
/// Implement this to add a transport (Gloo-like TCP, NCCL, ...); [`ProcessGroup::new`] runs it.
///
/// [`ProcessGroup::new`]: crate::ProcessGroup::new
pub trait Backend {
    /// Short name for messages (`mpi`).
    fn name(&self) -> &'static str;
    /// This process's rank, `0..world_size`.
    fn rank(&self) -> usize;
    /// Number of processes.
    fn world_size(&self) -> usize;
    /// Returns once every rank has called it.
    fn barrier(&mut self) -> Result<()>;
    /// Replaces `buffer` on every rank with `root`'s.
    fn broadcast(&mut self, buffer: &mut CommBuffer, root: usize) -> Result<()>;
    /// Combines `buffer` elementwise over all ranks, the result on every rank. [`ReduceOp::Mean`]
    /// is summed like [`ReduceOp::Sum`]: the process group divides afterwards.
    fn all_reduce(&mut self, buffer: &mut CommBuffer, op: ReduceOp) -> Result<()>;
    /// Every rank's `buffer`, in rank order. The group checks beforehand that lengths agree.
    fn all_gather(&mut self, buffer: &CommBuffer) -> Result<Vec<CommBuffer>>;
    /// Combines a contiguous float `tensor` over all ranks, in place ([`ReduceOp::Mean`]
    /// is summed, as in [`all_reduce`](Self::all_reduce)). Default:
    /// [`all_reduce_through_host`]. A backend that reaches the tensor's memory itself (MPI on
    /// host memory, NCCL on its GPU) overrides this to reduce it where it lives, without copies:
    /// gradient buckets take this path.
    fn all_reduce_tensor(&mut self, tensor: &Tensor, op: ReduceOp) -> Result<()> {
        all_reduce_through_host(self, tensor, op)
    }
    /// Replaces a contiguous float `tensor` with `root`'s, in place. Default:
    /// [`broadcast_through_host`]; overridden like
    /// [`all_reduce_tensor`](Self::all_reduce_tensor).
    fn broadcast_tensor(&mut self, tensor: &Tensor, root: usize) -> Result<()> {
        broadcast_through_host(self, tensor, root)
    }
    /// Ends every process of the job at once, with `code`, after a fatal error on this rank
    /// (a backend without a way to do so returns, and the process exits by itself).
    fn abort(&mut self, code: i32) {
        let _ = code;
    }
}

/// [`Backend::all_reduce_tensor`] through a host [`CommBuffer`]: the tensor's values are copied
/// out, reduced with [`Backend::all_reduce`] and copied back into it.
pub fn all_reduce_through_host<B: Backend + ?Sized>(
    backend: &mut B,
    tensor: &Tensor,
    op: ReduceOp,
) -> Result<()> {
    let mut buffer = CommBuffer::from_tensor(tensor)?;
    backend.all_reduce(&mut buffer, op)?;
    buffer.copy_to(tensor)
}

/// [`Backend::broadcast_tensor`] through a host [`CommBuffer`], as
/// [`all_reduce_through_host`].
pub fn broadcast_through_host<B: Backend + ?Sized>(
    backend: &mut B,
    tensor: &Tensor,
    root: usize,
) -> Result<()> {
    let mut buffer = CommBuffer::from_tensor(tensor)?;
    backend.broadcast(&mut buffer, root)?;
    buffer.copy_to(tensor)
}

/// The world of one process: every collective is the identity. Lets a data-parallel program run
/// unchanged without a launcher (PyTorch needs `world_size=1` for the same).
#[derive(Clone, Copy, Debug, Default)]
pub struct SingleProcess;

impl Backend for SingleProcess {
    fn name(&self) -> &'static str {
        "single"
    }
    fn rank(&self) -> usize {
        0
    }
    fn world_size(&self) -> usize {
        1
    }
    fn barrier(&mut self) -> Result<()> {
        Ok(())
    }
    fn broadcast(&mut self, _buffer: &mut CommBuffer, _root: usize) -> Result<()> {
        Ok(())
    }
    fn all_reduce(&mut self, _buffer: &mut CommBuffer, _op: ReduceOp) -> Result<()> {
        Ok(())
    }
    fn all_gather(&mut self, buffer: &CommBuffer) -> Result<Vec<CommBuffer>> {
        Ok(vec![buffer.clone()])
    }
    fn all_reduce_tensor(&mut self, _tensor: &Tensor, _op: ReduceOp) -> Result<()> {
        Ok(())
    }
    fn broadcast_tensor(&mut self, _tensor: &Tensor, _root: usize) -> Result<()> {
        Ok(())
    }
}
