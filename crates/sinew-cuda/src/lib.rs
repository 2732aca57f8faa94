//! # sinew-cuda
//!
//! The CUDA backend of Sinew: NVIDIA GPUs behind sinew-tensor's [`Backend`](sinew_tensor::Backend)
//! interface, so the same tensor code runs on `Device::cuda(0)` as on the CPU.
//!
//! With the `cuda` feature (off by default) the crate drives the GPU through the driver API
//! (cust): a primary context per GPU made current on each thread that uses it, one non-blocking
//! stream for the kernels and a copy stream on which batch-sized uploads (64 KiB to 64 MiB) run
//! beside them (the kernel stream waits for each with an event, and the caching allocator hands
//! such uploads blocks that no queued kernel uses), pinned staging buffers for copies, and
//! kernels compiled from `cuda/<family>.cu` to PTX that is embedded here and loaded lazily per
//! device. Without the feature only the host-side parts remain: the PTX table, the kernel naming
//! contract and the view geometry, which the tests check without a GPU.
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
//! `scatter`) and im2col/col2im. f16/bf16 matrix products run on the tensor cores (`mma.sync`,
//! `cuda/gemm_tc.cuh`); on an H100/H200 (compute capability 9.0) products whose operands TMA
//! can load (16-byte aligned, one batch stride) run a TMA + `wgmma` kernel instead, at any size
//! (`cuda/gemm_sm90.cu`), once the GPU has checked it against the `mma.sync` kernel at first use
//! (`CudaBackend::set_wgmma_gemm(false)` keeps `mma.sync`, for comparison); f32 products run
//! on the tensor cores with TF32 operands when `CudaBackend::set_matmul_tf32(true)` asks (off by
//! default, as in PyTorch). Convolutions (forward, input and weight gradients, and so
//! transposed convolutions) run as implicit GEMMs that never store the im2col columns, on the
//! tensor cores in f16/bf16, and in f32 too with the inputs rounded to TF32, as PyTorch does by
//! default (`cuda/conv_gemm.cu`, `cuda/conv_wgrad.cu`; `CudaBackend::set_conv_tf32(false)` keeps
//! full f32 products on the SIMT cores;
//! `CudaBackend::set_implicit_gemm_conv(false)` switches back to im2col and a GEMM per chunk of
//! images, for comparison); max and average pooling have their own kernels, their backward
//! passes gathering per pixel (deterministic, no atomics). Errors that depend on the data are
//! detected on the device: an index out of range is reported at the next synchronisation (any
//! download, `item`, `synchronize`) without a stream sync of its own; an i64 division by zero
//! costs one stream synchronization and fails at the call. Not supported: i64 `pow`
//! (`Error::UnsupportedDType`), scatter-add of u8/bool.
//!
//! ## Your own kernels on Sinew's GPU
//!
//! Another crate can allocate device memory from Sinew's caching allocator and run its own PTX
//! on the device's stream, ordered with Sinew's work: downcast the device with
//! `CudaBackend::of`, then `CudaBackend::alloc` / `zeros` /
//! `upload`, `CudaBackend::load_module` (JIT once, functions cached by
//! name) and `CudaBackend::launch_custom` with [`kernel_args!`]. A tensor's device memory is
//! reached with `Tensor::with_storage` and `CudaStorage::downcast`; a storage becomes a tensor
//! with `Tensor::from_storage`.
//!
//! ```no_run
//! # #[cfg(feature = "cuda")] {
//! use sinew_cuda::{CudaBackend, CudaStorage, kernel_args};
//! use sinew_tensor::{DType, Device, Tensor};
//!
//! // x[i] = a * x[i] + y[i] (compiled with `nvcc -ptx -arch=compute_80`).
//! const PTX: &str = "
//! .version 9.0
//! .target sm_80
//! .address_size 64
//! .visible .entry scale_add(.param .u64 px, .param .u64 py, .param .f32 a, .param .u32 n)
//! {
//!     .reg .pred %p<2>; .reg .f32 %f<5>; .reg .b32 %r<6>; .reg .b64 %rd<8>;
//!     ld.param.u64 %rd1, [px]; ld.param.u64 %rd2, [py];
//!     ld.param.f32 %f1, [a]; ld.param.u32 %r2, [n];
//!     mov.u32 %r3, %ctaid.x; mov.u32 %r4, %ntid.x; mov.u32 %r5, %tid.x;
//!     mad.lo.s32 %r1, %r3, %r4, %r5;
//!     setp.ge.u32 %p1, %r1, %r2;
//!     @%p1 bra DONE;
//!     cvta.to.global.u64 %rd3, %rd1; mul.wide.u32 %rd4, %r1, 4; add.s64 %rd5, %rd3, %rd4;
//!     ld.global.f32 %f2, [%rd5];
//!     cvta.to.global.u64 %rd6, %rd2; add.s64 %rd7, %rd6, %rd4; ld.global.f32 %f3, [%rd7];
//!     fma.rn.f32 %f4, %f2, %f1, %f3;
//!     st.global.f32 [%rd5], %f4;
//! DONE:
//!     ret;
//! }";
//!
//! sinew_cuda::register();
//! let gpu = Device::cuda(0)?;
//! let cuda = CudaBackend::of(&gpu).expect("a CUDA device");
//! let n = 1024usize;
//! let x = cuda.zeros(DType::F32, n)?; // Sinew's allocator, queued on Sinew's stream
//! let y = Tensor::ones([n], DType::F32, &gpu)?;
//! let f = cuda.load_module(PTX)?.function("scale_add")?;
//! let (x_ptr, a, count) = (x.device_ptr(), 3.0f32, n as u32);
//! y.with_storage(|s, layout| {
//!     let y_ptr = CudaStorage::downcast(s).expect("CUDA storage").ptr_at(layout.offset());
//!     // SAFETY: the kernel takes (float *, const float *, float, unsigned) and touches n
//!     // elements of x and y, both alive until the stream has run it (x is used below).
//!     unsafe {
//!         cuda.launch_custom(&f, (4, 1, 1), (256, 1, 1), 0, kernel_args![x_ptr, y_ptr, a, count])
//!     }
//! })?;
//! let x = Tensor::from_storage(Box::new(x), [n], gpu.clone())?; // ordered after the kernel
//! assert_eq!(x.to_device(&Device::cpu())?.to_vec::<f32>()?, vec![1.0; n]);
//! # }
//! # Ok::<(), sinew_tensor::Error>(())
//! ```

/// Pointers to a kernel's argument values, in parameter order: the `args` of
/// `CudaBackend::launch_custom` (each argument must be a named value that outlives the launch
/// call, e.g. a local `let n = 5u32;`, not a temporary).
#[macro_export]
macro_rules! kernel_args {
    ($($arg:expr),* $(,)?) => {
        &[$(&$arg as *const _ as *mut ::std::ffi::c_void),*]
    };
}

pub mod geometry;
pub mod names;
pub mod ptx;

#[cfg(feature = "cuda")]
mod allocator;
#[cfg(feature = "cuda")]
mod backend;
#[cfg(feature = "cuda")]
mod backend_deferred;
#[cfg(feature = "cuda")]
mod backend_multi;
#[cfg(feature = "cuda")]
mod check_slots;
#[cfg(feature = "cuda")]
mod custom;
#[cfg(feature = "cuda")]
mod deferred;
#[cfg(feature = "cuda")]
mod device;
#[cfg(feature = "cuda")]
mod driver;
#[cfg(feature = "cuda")]
mod functions;
#[cfg(feature = "cuda")]
mod ops;
#[cfg(feature = "cuda")]
mod storage;
#[cfg(feature = "cuda")]
mod stream;
#[cfg(feature = "cuda")]
mod tickets;

#[cfg(feature = "cuda")]
pub use allocator::{MemoryStats, size_class};
#[cfg(feature = "cuda")]
pub use custom::{CudaFunction, CudaModule};
#[cfg(feature = "cuda")]
pub use device::{
    CudaBackend, cuda_backend, cuda_device, device_count, is_available, open, register,
};
#[cfg(feature = "cuda")]
pub use storage::CudaStorage;
#[cfg(feature = "cuda")]
pub use stream::EventTimer;
