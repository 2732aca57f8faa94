//! # sinew-cuda
//!
//! The CUDA backend of Sinew: NVIDIA GPUs behind sinew-tensor's [`Backend`](sinew_tensor::Backend)
//! interface, so the same tensor code runs on `Device::cuda(0)` as on the CPU.
//!
//! With the `cuda` feature (off by default) the crate drives the GPU through the driver API
//! (cust): a primary context per GPU made current on each thread that uses it, one non-blocking
//! stream, a caching allocator, pinned staging buffers for copies, and kernels compiled from
//! `cuda/<family>.cu` to PTX that is embedded here and loaded lazily per device. Without the
//! feature only the host-side parts remain: the PTX table, the kernel naming contract and the view
//! geometry, which the tests check without a GPU.
//!
//! ```no_run
//! # #[cfg(feature = "cuda")] {
//! use sinew_tensor::{DType, Device, Tensor};
//! sinew_cuda::register();
//! let gpu = Device::cuda(0)?;
//! let x = Tensor::randn([64, 32], DType::F32, &Device::cpu())?.to_device(&gpu)?;
//! let y = x.matmul(&x.t()?)?.relu()?.to_device(&Device::cpu())?;
//! # }
//! # Ok::<(), sinew_tensor::Error>(())
//! ```
//!
//! Every `Backend` method runs on the GPU, including indexing (`index_select`, `gather`,
//! `scatter`) and im2col/col2im (so convolution and pooling). Errors that depend on the data (an
//! index out of range, an i64 division by zero) are detected on the device and cost one stream
//! synchronization. Not supported: i64 `pow` (`Error::UnsupportedDType`), scatter-add of u8/bool.

pub mod geometry;
pub mod names;
pub mod ptx;

#[cfg(feature = "cuda")]
mod allocator;
#[cfg(feature = "cuda")]
mod backend;
#[cfg(feature = "cuda")]
mod device;
#[cfg(feature = "cuda")]
mod driver;
#[cfg(feature = "cuda")]
mod ops;
#[cfg(feature = "cuda")]
mod storage;
#[cfg(feature = "cuda")]
mod stream;

#[cfg(feature = "cuda")]
pub use allocator::{MemoryStats, size_class};
#[cfg(feature = "cuda")]
pub use device::{
    CudaBackend, cuda_backend, cuda_device, device_count, is_available, open, register,
};
#[cfg(feature = "cuda")]
pub use storage::CudaStorage;
#[cfg(feature = "cuda")]
pub use stream::EventTimer;
