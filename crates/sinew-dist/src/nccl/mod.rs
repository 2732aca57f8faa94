//! NCCL, the GPU transport: the library opened at run time ([`NcclLibrary`], always built, so
//! its loading is checked without a GPU) and, with the `nccl` feature, `NcclBackend`, which
//! runs the process group's collectives on this rank's GPU.

#[cfg(feature = "nccl")]
mod backend;
mod library;

#[cfg(feature = "nccl")]
pub use backend::{DEFAULT_MASTER, NcclBackend};
pub use library::{NcclLibrary, UniqueId};
