//! [`Backend`]: the transport under a process group (MPI on CPUs; others can be added), and
//! [`SingleProcess`], the world of one.

use sinew_tensor::Result;

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
    /// arrives as [`ReduceOp::Sum`]: the process group divides afterwards.
    fn all_reduce(&mut self, buffer: &mut CommBuffer, op: ReduceOp) -> Result<()>;
    /// Every rank's `buffer`, in rank order. The group checks beforehand that lengths agree.
    fn all_gather(&mut self, buffer: &CommBuffer) -> Result<Vec<CommBuffer>>;
    /// Ends every process of the job at once, with `code`, after a fatal error on this rank
    /// (a backend without a way to do so returns, and the process exits by itself).
    fn abort(&mut self, code: i32) {
        let _ = code;
    }
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
}
