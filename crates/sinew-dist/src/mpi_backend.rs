//! [`MpiBackend`]: collectives through MPI (OpenMPI or MPICH, via the `mpi` crate).
//!
//! MPI has no 16-bit float type, so f16 and bf16 are reduced in f32 (exact for sums of a few
//! ranks, and what NCCL does internally for bf16) and broadcast or gathered as raw 16-bit words.

use half::{bf16, f16};
use mpi::collective::SystemOperation;
use mpi::environment::Universe;
use mpi::topology::SimpleCommunicator;
use mpi::traits::*;
use sinew_tensor::{BackendStorage, CpuStorage, Layout, Result, Tensor};

use crate::backend::{Backend, ReduceOp, all_reduce_through_host, broadcast_through_host};
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

/// The floats a collective works on in place: a [`CommBuffer`], or the elements of a contiguous
/// CPU tensor inside its storage (gradient buckets, reduced without a copy).
enum HostSlice<'a> {
    F32(&'a mut [f32]),
    F64(&'a mut [f64]),
    F16(&'a mut [f16]),
    BF16(&'a mut [bf16]),
}

impl<'a> HostSlice<'a> {
    fn of_buffer(buffer: &'a mut CommBuffer) -> HostSlice<'a> {
        match buffer {
            CommBuffer::F32(v) => HostSlice::F32(v),
            CommBuffer::F64(v) => HostSlice::F64(v),
            CommBuffer::F16(v) => HostSlice::F16(v),
            CommBuffer::BF16(v) => HostSlice::BF16(v),
        }
    }

    /// The elements of the contiguous view `layout` of a host `storage`.
    fn of_storage(storage: &'a mut dyn BackendStorage, layout: &Layout) -> Result<HostSlice<'a>> {
        let (start, end) = layout
            .contiguous_offset()
            .ok_or_else(|| backend_error("collectives need a contiguous tensor"))?;
        let Some(host) = storage.as_any_mut().downcast_mut::<CpuStorage>() else {
            return Err(backend_error("a CPU tensor without host storage"));
        };
        let dtype = host.dtype();
        let outside = || backend_error("the tensor's view lies outside its storage");
        Ok(match host {
            CpuStorage::F32(v) => HostSlice::F32(v.get_mut(start..end).ok_or_else(outside)?),
            CpuStorage::F64(v) => HostSlice::F64(v.get_mut(start..end).ok_or_else(outside)?),
            CpuStorage::F16(v) => HostSlice::F16(v.get_mut(start..end).ok_or_else(outside)?),
            CpuStorage::BF16(v) => HostSlice::BF16(v.get_mut(start..end).ok_or_else(outside)?),
            _ => {
                return Err(sinew_tensor::Error::UnsupportedDType {
                    op: "collective",
                    dtype,
                });
            }
        })
    }
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

    /// Reduces 16-bit floats in f32 (MPI has no 16-bit float type).
    fn reduce_widened<T: Copy>(
        &self,
        values: &mut [T],
        op: ReduceOp,
        widen: fn(T) -> f32,
        narrow: fn(f32) -> T,
    ) {
        let mut wide: Vec<f32> = values.iter().map(|&x| widen(x)).collect();
        self.reduce_in_place(&mut wide, op);
        values
            .iter_mut()
            .zip(wide)
            .for_each(|(x, w)| *x = narrow(w));
    }

    fn reduce(&self, values: HostSlice<'_>, op: ReduceOp) {
        match values {
            HostSlice::F32(v) => self.reduce_in_place(v, op),
            HostSlice::F64(v) => self.reduce_in_place(v, op),
            HostSlice::F16(v) => self.reduce_widened(v, op, f16::to_f32, f16::from_f32),
            HostSlice::BF16(v) => self.reduce_widened(v, op, bf16::to_f32, bf16::from_f32),
        }
    }

    /// Broadcasts from `root`; 16-bit floats travel as raw 16-bit words.
    fn broadcast_from(&self, values: HostSlice<'_>, root: usize) -> Result<()> {
        let root = self.root(root)?;
        match values {
            HostSlice::F32(v) => root.broadcast_into(v),
            HostSlice::F64(v) => root.broadcast_into(v),
            HostSlice::F16(v) => root.broadcast_into(bytemuck::cast_slice_mut::<f16, u16>(v)),
            HostSlice::BF16(v) => root.broadcast_into(bytemuck::cast_slice_mut::<bf16, u16>(v)),
        }
        Ok(())
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
        self.broadcast_from(HostSlice::of_buffer(buffer), root)
    }
    fn all_reduce(&mut self, buffer: &mut CommBuffer, op: ReduceOp) -> Result<()> {
        self.reduce(HostSlice::of_buffer(buffer), op);
        Ok(())
    }
    fn all_reduce_tensor(&mut self, tensor: &Tensor, op: ReduceOp) -> Result<()> {
        if !tensor.device().is_cpu() {
            return all_reduce_through_host(self, tensor, op);
        }
        tensor.with_storage_mut(|storage, layout| {
            self.reduce(HostSlice::of_storage(storage, layout)?, op);
            Ok(())
        })
    }
    fn broadcast_tensor(&mut self, tensor: &Tensor, root: usize) -> Result<()> {
        if !tensor.device().is_cpu() {
            return broadcast_through_host(self, tensor, root);
        }
        tensor.with_storage_mut(|storage, layout| {
            self.broadcast_from(HostSlice::of_storage(storage, layout)?, root)
        })
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
