//! Data-parallel training for Sinew on existing transports: MPI for CPU clusters (feature
//! `mpi`) and NCCL for GPUs (feature `nccl`; NVIDIA's `libnccl.so.2` opened at run time,
//! bootstrapped over a `MASTER_ADDR`/`MASTER_PORT` TCP rendezvous), with a [`Backend`] trait for
//! others.
//!
//! The pieces, as in PyTorch's `torch.distributed`:
//! - [`init_process_group`] reads the launcher's environment (`mpirun`, `torchrun`-style
//!   variables, or none: a world of one) and returns a [`ProcessGroup`] with `rank`, `world_size`, `barrier`, `broadcast`,
//!   `all_reduce` (sum, mean, max) and `all_gather` on f32/f64/f16/bf16 tensors;
//! - [`DistributedDataParallel`] wraps any module: rank 0's weights are broadcast, gradients are
//!   averaged in buckets from gradient hooks while backward runs;
//! - `sinew_data::DistributedSampler` gives each rank its shard of every epoch;
//! - `Trainer::distributed(&ddp)` (the wrapper implements `sinew_train::Distributed`) makes the
//!   trainer print, checkpoint and plot on rank 0 only, with losses and metrics reduced over
//!   ranks.
//!
//! ```no_run
//! use sinew_dist::{DistributedDataParallel, init_process_group};
//! use sinew_nn::{Linear, ModuleExt};
//! # fn main() -> sinew_tensor::Result<()> {
//! let group = init_process_group()?; // under `mpirun -np 4`: rank 0..4 of 4
//! let model = DistributedDataParallel::new(Linear::new(784, 10)?, &group)?;
//! println!("rank {} of {}: {} buckets", group.rank(), group.world_size(), model.buckets().len());
//! # Ok(()) }
//! ```
//!
//! See `docs/distributed.md` for launching, the equality guarantee and the cost model.

mod backend;
mod buffer;
mod ddp;
mod env;
mod error;
mod group;
#[cfg(feature = "mpi")]
mod mpi_backend;
pub mod nccl;
mod reducer;
pub mod rendezvous;
mod sync_batch_norm;
mod training;

pub use backend::{
    Backend, ReduceOp, SingleProcess, all_reduce_through_host, broadcast_through_host,
};
pub use buffer::CommBuffer;
pub use ddp::{DdpConfig, DistributedDataParallel, NoSync};
pub use env::{
    BackendKind, LaunchInfo, Launcher, backend_kind_from, init_process_group, launch_info,
    launch_info_from, timeout_from_env,
};
pub use error::DistError;
pub use group::{DEFAULT_TIMEOUT, ProcessGroup, Work};
#[cfg(feature = "mpi")]
pub use mpi_backend::MpiBackend;
#[cfg(feature = "nccl")]
pub use nccl::NcclBackend;
pub use reducer::StepEvent;
pub use sync_batch_norm::{SyncBatchNorm, all_reduce_sum};
