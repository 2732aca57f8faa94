//! [`MpiBackend`]: collectives through MPI (OpenMPI or MPICH, via the `mpi` crate).
//!
//! MPI has no 16-bit float type, so f16 and bf16 are reduced in f32 (exact for sums of a few
//! ranks, and what NCCL does internally for bf16) and broadcast or gathered as raw 16-bit words.

use half::{bf16, f16};
use mpi::collective::SystemOperation;
use mpi::environment::Universe;
use mpi::topology::SimpleCommunicator;
use mpi::traits::*;
use sinew_tensor::Result;

use crate::backend::{Backend, ReduceOp};
use crate::buffer::CommBuffer;
use crate::error::DistError;

/// MPI's `MPI_COMM_WORLD`. Create it on the thread that will make every call (the process
/// group's communication thread does): MPI is initialised with `MPI_THREAD_FUNNELED`.
pub struct MpiBackend {
    world: SimpleCommunicator,
    rank: usize,
    size: usize,
    // Finalizes MPI when dropped; declared last so the communicator goes first.
    _universe: Universe,
}

fn backend_error(msg: impl Into<String>) -> sinew_tensor::Error {
    DistError::Backend {
        backend: "mpi",
        msg: msg.into(),
    }
    .into()
}

impl MpiBackend {
    /// Initialises MPI (once per process) and joins `MPI_COMM_WORLD`.
    pub fn init() -> Result<MpiBackend> {
        let (universe, _threading) = mpi::initialize_with_threading(mpi::Threading::Funneled)
            .ok_or_else(|| {
                backend_error(
                    "MPI is already initialised in this process (one process group per process)",
                )
            })?;
        let world = universe.world();
        let (rank, size) = (world.rank(), world.size());
        Ok(MpiBackend {
            world,
            rank: usize::try_from(rank).map_err(|_| backend_error("negative rank"))?,
            size: usize::try_from(size).map_err(|_| backend_error("negative world size"))?,
            _universe: universe,
        })
    }

    fn reduce_in_place<T: Equivalence + Copy>(&self, values: &mut [T], op: ReduceOp) {
        let send = values.to_vec();
        let op = match op {
            ReduceOp::Max => SystemOperation::max(),
            ReduceOp::Min => SystemOperation::min(),
            ReduceOp::Sum | ReduceOp::Mean => SystemOperation::sum(),
        };
        self.world.all_reduce_into(&send[..], values, op);
    }

    fn root(&self, root: usize) -> Result<mpi::topology::Process<'_>> {
        let r = i32::try_from(root)
            .ok()
            .filter(|_| root < self.size)
            .ok_or_else(|| backend_error(format!("root {root} is not a rank of {}", self.size)))?;
        Ok(self.world.process_at_rank(r))
    }

    fn gather<T: Equivalence + Copy + Default>(&self, values: &[T]) -> Vec<Vec<T>> {
        if values.is_empty() {
            return vec![Vec::new(); self.size];
        }
        let mut out = vec![T::default(); values.len() * self.size];
        self.world.all_gather_into(values, &mut out[..]);
        out.chunks(values.len())
            .take(self.size)
            .map(<[T]>::to_vec)
            .collect()
    }
}

impl Backend for MpiBackend {
    fn name(&self) -> &'static str {
        "mpi"
    }
    fn rank(&self) -> usize {
        self.rank
    }
    fn world_size(&self) -> usize {
        self.size
    }
    fn barrier(&mut self) -> Result<()> {
        self.world.barrier();
        Ok(())
    }
    fn broadcast(&mut self, buffer: &mut CommBuffer, root: usize) -> Result<()> {
        let root = self.root(root)?;
        match buffer {
            CommBuffer::F32(v) => root.broadcast_into(&mut v[..]),
            CommBuffer::F64(v) => root.broadcast_into(&mut v[..]),
            CommBuffer::F16(v) => root.broadcast_into(bytemuck::cast_slice_mut::<f16, u16>(v)),
            CommBuffer::BF16(v) => root.broadcast_into(bytemuck::cast_slice_mut::<bf16, u16>(v)),
        }
        Ok(())
    }
    fn all_reduce(&mut self, buffer: &mut CommBuffer, op: ReduceOp) -> Result<()> {
        match buffer {
            CommBuffer::F32(v) => self.reduce_in_place(v, op),
            CommBuffer::F64(v) => self.reduce_in_place(v, op),
            CommBuffer::F16(v) => {
                let mut wide: Vec<f32> = v.iter().map(|x| x.to_f32()).collect();
                self.reduce_in_place(&mut wide, op);
                v.iter_mut()
                    .zip(wide)
                    .for_each(|(x, w)| *x = f16::from_f32(w));
            }
            CommBuffer::BF16(v) => {
                let mut wide: Vec<f32> = v.iter().map(|x| x.to_f32()).collect();
                self.reduce_in_place(&mut wide, op);
                v.iter_mut()
                    .zip(wide)
                    .for_each(|(x, w)| *x = bf16::from_f32(w));
            }
        }
        Ok(())
    }
    fn all_gather(&mut self, buffer: &CommBuffer) -> Result<Vec<CommBuffer>> {
        Ok(match buffer {
            CommBuffer::F32(v) => self.gather(v).into_iter().map(CommBuffer::F32).collect(),
            CommBuffer::F64(v) => self.gather(v).into_iter().map(CommBuffer::F64).collect(),
            CommBuffer::F16(v) => self
                .gather(bytemuck::cast_slice::<f16, u16>(v))
                .into_iter()
                .map(|w| CommBuffer::F16(bytemuck::cast_vec(w)))
                .collect(),
            CommBuffer::BF16(v) => self
                .gather(bytemuck::cast_slice::<bf16, u16>(v))
                .into_iter()
                .map(|w| CommBuffer::BF16(bytemuck::cast_vec(w)))
                .collect(),
        })
    }
    fn abort(&mut self, code: i32) {
        self.world.abort(code)
    }
}
