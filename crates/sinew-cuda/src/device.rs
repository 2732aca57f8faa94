//! Opening GPUs: the primary context, the per-device backend and the registry behind
//! `Device::cuda(n)`.
//!
//! Each ordinal is opened once and shared. The primary context is made current lazily on every
//! thread that touches the device ([`CudaBackend::bind`]); "no driver", "no device" and bad
//! ordinals come back as [`Error::Device`].

use std::cell::Cell;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use cust::CudaFlags;
use cust::context::{Context, CurrentContext};
use cust::device::{Device as CuDevice, DeviceAttribute};
use cust::error::CudaError;
use cust::module::Module;
use sinew_tensor::{Backend, CpuStorage, DType, Device, DeviceLocation, Error, Result};

use crate::allocator::{Allocator, MemoryStats, Pool};
use crate::check_slots::SlotRing;
use crate::custom::CustomModules;
use crate::deferred::DeferredChecks;
use crate::driver::{CustResultExt, from_cust};
use crate::functions::{FunctionCache, RawFunction};
use crate::names::{Family, Kernel};
use crate::storage::CudaStorage;
use crate::stream::{DeviceStream, EventTimer};
use crate::tickets::Tickets;

thread_local! {
    /// Ordinal whose primary context this thread made current last.
    static BOUND: Cell<Option<usize>> = const { Cell::new(None) };
}

/// The CUDA backend of one GPU: context, stream, lazily loaded kernel modules and allocator.
///
/// Reach it from a [`Device`] with [`CudaBackend::of`] to allocate device memory
/// ([`alloc`](Self::alloc), [`zeros`](Self::zeros), [`upload`](Self::upload)) and to run your
/// own PTX on Sinew's stream ([`load_module`](Self::load_module),
/// [`launch_custom`](Self::launch_custom)); see the crate docs for an example.
pub struct CudaBackend {
    ordinal: usize,
    name: String,
    compute_capability: (i32, i32),
    multiprocessors: u32,
    modules: [OnceLock<Module>; Family::ALL.len()],
    functions: FunctionCache,
    pub(crate) custom: CustomModules,
    pub(crate) deferred: DeferredChecks,
    /// Arrival counters of single-kernel reductions across blocks ([`crate::tickets`]).
    pub(crate) tickets: Tickets,
    /// The ring that failure slots are handed out from ([`crate::check_slots`]).
    pub(crate) slot_ring: SlotRing,
    pub(crate) allocator: Arc<Allocator>,
    /// Whether `conv2d` runs the implicit-GEMM kernel (true) or im2col and a GEMM.
    implicit_conv: AtomicBool,
    /// Whether f32 convolutions may run on the tensor cores in TF32 ([`Self::set_conv_tf32`]).
    conv_tf32: AtomicBool,
    /// Whether f32 matrix products may run on the tensor cores in TF32
    /// ([`Self::set_matmul_tf32`]).
    matmul_tf32: AtomicBool,
    /// Whether f16/bf16 GEMMs may run the Hopper (wgmma) kernel ([`Self::set_wgmma_gemm`]).
    wgmma_on: AtomicBool,
    /// Whether this GPU runs the wgmma kernel correctly: decided once, at the first GEMM that
    /// could use it (`ops::gemm_sm90::ready`).
    pub(crate) wgmma_ok: OnceLock<bool>,
    /// Kernels queued so far ([`Self::kernel_launches`]).
    pub(crate) launches: AtomicU64,
    stream: DeviceStream,
    // Last field: released after the modules, stream and buffers that need it.
    context: Context,
}

impl std::fmt::Debug for CudaBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "CudaBackend(cuda:{} {} sm_{}{})",
            self.ordinal, self.name, self.compute_capability.0, self.compute_capability.1
        )
    }
}

fn no_device(ordinal: usize, err: CudaError) -> Error {
    from_cust(
        err,
        DeviceLocation::Cuda(ordinal),
        "no usable CUDA device (cuInit)",
    )
}

/// Number of CUDA GPUs the driver sees (0 without a driver or device).
pub fn device_count() -> usize {
    cust::init(CudaFlags::empty())
        .and_then(|_| CuDevice::num_devices())
        .map_or(0, |n| n as usize)
}

/// True when at least one CUDA GPU is usable.
pub fn is_available() -> bool {
    device_count() > 0
}

impl CudaBackend {
    fn open(ordinal: usize) -> Result<CudaBackend> {
        let loc = DeviceLocation::Cuda(ordinal);
        cust::init(CudaFlags::empty()).map_err(|e| no_device(ordinal, e))?;
        let count = CuDevice::num_devices().map_err(|e| no_device(ordinal, e))? as usize;
        if ordinal >= count {
            return Err(Error::Device {
                device: loc,
                msg: format!("no CUDA device {ordinal} ({count} present)"),
            });
        }
        let dev = CuDevice::get_device(ordinal as u32).on(loc, "cuDeviceGet")?;
        let context = Context::new(dev).on(loc, "cuDevicePrimaryCtxRetain")?;
        BOUND.with(|b| b.set(Some(ordinal)));
        let attr = |a: DeviceAttribute| dev.get_attribute(a).on(loc, "cuDeviceGetAttribute");
        Ok(CudaBackend {
            ordinal,
            name: dev.name().on(loc, "cuDeviceGetName")?,
            compute_capability: (
                attr(DeviceAttribute::ComputeCapabilityMajor)?,
                attr(DeviceAttribute::ComputeCapabilityMinor)?,
            ),
            multiprocessors: attr(DeviceAttribute::MultiprocessorCount)? as u32,
            modules: Default::default(),
            functions: FunctionCache::default(),
            custom: CustomModules::default(),
            deferred: DeferredChecks::default(),
            tickets: Tickets::default(),
            slot_ring: SlotRing::default(),
            allocator: Arc::new(Allocator::new(loc)),
            implicit_conv: AtomicBool::new(true),
            conv_tf32: AtomicBool::new(true),
            matmul_tf32: AtomicBool::new(false),
            wgmma_on: AtomicBool::new(true),
            wgmma_ok: OnceLock::new(),
            launches: AtomicU64::new(0),
            stream: DeviceStream::new(loc)?,
            context,
        })
    }

    /// Chooses how 2-d convolutions run their forward pass (and a stride-1 convolution its
    /// input gradient): `true` (the default) the implicit-GEMM kernels of `cuda/conv_gemm.cu`
    /// (f32, f16, bf16; no column buffer), `false` im2col and a GEMM per chunk of images. For
    /// comparing the two (`cargo xtask bench --cuda`).
    pub fn set_implicit_gemm_conv(&self, on: bool) {
        self.implicit_conv.store(on, Ordering::Relaxed);
    }

    /// Whether convolutions run the implicit-GEMM kernels ([`Self::set_implicit_gemm_conv`]).
    pub fn implicit_gemm_conv(&self) -> bool {
        self.implicit_conv.load(Ordering::Relaxed)
    }

    /// Chooses whether f32 convolutions (forward, input and weight gradients, and
    /// `conv_transpose2d`) on the implicit-GEMM kernels may run on the tensor cores with their
    /// inputs rounded to TF32 (10 mantissa bits, f32's range; products summed in f32): `true`,
    /// the default, as PyTorch's `torch.backends.cudnn.allow_tf32`, or `false` for full f32
    /// products on the SIMT cores. TF32 multiplies several times faster; each product then
    /// carries a relative error up to about 1e-3 (2^-11 from each input), as in PyTorch.
    /// Convolutions on the im2col path follow [`Self::set_matmul_tf32`] instead.
    pub fn set_conv_tf32(&self, on: bool) {
        self.conv_tf32.store(on, Ordering::Relaxed);
    }

    /// Whether f32 convolutions may run in TF32 ([`Self::set_conv_tf32`]).
    pub fn conv_tf32(&self) -> bool {
        self.conv_tf32.load(Ordering::Relaxed)
    }

    /// Chooses whether f32 matrix products (`matmul`, linear layers and their gradients) run
    /// on the tensor cores with their operands rounded to TF32 (`cuda/tf32_tc.cuh`): `false`,
    /// the default, as PyTorch's `torch.backends.cuda.matmul.allow_tf32`, keeps full f32
    /// products; `true` is PyTorch's `torch.set_float32_matmul_precision("high")`, several
    /// times faster at about 1e-3 relative error per product.
    pub fn set_matmul_tf32(&self, on: bool) {
        self.matmul_tf32.store(on, Ordering::Relaxed);
    }

    /// Whether f32 matrix products run in TF32 ([`Self::set_matmul_tf32`]).
    pub fn matmul_tf32(&self) -> bool {
        self.matmul_tf32.load(Ordering::Relaxed)
    }

    /// Chooses whether f16/bf16 GEMMs whose operands TMA can load (16-byte aligned, one batch
    /// stride) on a compute-capability-9.0 GPU (H100, H200) run the wgmma kernel of `cuda/gemm_sm90.cu`
    /// (`true`, the default) or the `mma.sync` kernel every other shape and GPU runs. For
    /// comparing the two (`cargo xtask bench --cuda`).
    pub fn set_wgmma_gemm(&self, on: bool) {
        self.wgmma_on.store(on, Ordering::Relaxed);
    }

    /// Whether f16/bf16 GEMMs may run the wgmma kernel ([`Self::set_wgmma_gemm`]; it also
    /// needs compute capability 9.0 and its first-use check to pass).
    pub fn wgmma_gemm(&self) -> bool {
        self.wgmma_on.load(Ordering::Relaxed)
    }

    /// `Some(passed)` once a GEMM that could run the wgmma kernel has made this GPU check it
    /// (against the `mma.sync` kernel, on integer products, which both compute exactly); `None` before that, on GPUs
    /// other than compute capability 9.0 and while [`Self::set_wgmma_gemm`] is off.
    pub fn wgmma_gemm_checked(&self) -> Option<bool> {
        self.wgmma_ok.get().copied()
    }

    /// The device ordinal.
    pub fn ordinal(&self) -> usize {
        self.ordinal
    }

    /// The GPU's name as the driver reports it (e.g. "NVIDIA H100 80GB HBM3").
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Compute capability `(major, minor)`, e.g. `(9, 0)` for Hopper.
    pub fn compute_capability(&self) -> (i32, i32) {
        self.compute_capability
    }

    /// Number of streaming multiprocessors.
    pub fn multiprocessors(&self) -> u32 {
        self.multiprocessors
    }

    /// Allocated, cached and peak bytes of the caching allocator.
    pub fn memory_stats(&self) -> MemoryStats {
        self.allocator.stats()
    }

    /// Starts the peak of [`Self::memory_stats`] over from the bytes allocated now (PyTorch's
    /// `torch.cuda.reset_peak_memory_stats`), to measure one piece of work's high-water mark.
    pub fn reset_peak_memory_stats(&self) {
        self.allocator.reset_peak();
    }

    /// Gives every cached (freed) block back to the driver.
    pub fn empty_cache(&self) -> Result<()> {
        self.bind()?;
        self.stream.synchronize()?;
        self.allocator.empty_cache()
    }

    /// Kernels queued on this device's stream since it was opened: Sinew's own and those of
    /// [`Self::launch_custom`] (copies and fills by the driver's `cuMemcpy`/`cuMemset` are not
    /// kernels and do not count). The difference over a piece of work is its launch count,
    /// which bounds how fast small batches can go (each launch costs the host microseconds).
    pub fn kernel_launches(&self) -> u64 {
        self.launches.load(Ordering::Relaxed)
    }

    /// How many times the host has waited for this device's kernel stream to drain: every
    /// download (`item()`, `to_vec`, a copy to the CPU), [`Self::synchronize_stream`] and
    /// [`Self::empty_cache`]. The difference over a training step counts its synchronisations:
    /// one, its `loss.item()`, when nothing else makes the host wait for the GPU. (Waits for an
    /// earlier upload's staging buffer, which do not drain the stream, are not counted.)
    pub fn stream_synchronizations(&self) -> u64 {
        self.stream.synchronizations()
    }

    /// Starts an event timer on the device's stream (see [`EventTimer::stop`]).
    pub fn timer(&self) -> Result<EventTimer> {
        self.bind()?;
        EventTimer::start(&self.stream)
    }

    /// Makes this device's primary context current on the calling thread (once per thread).
    pub fn bind(&self) -> Result<()> {
        if BOUND.with(Cell::get) == Some(self.ordinal) {
            return Ok(());
        }
        CurrentContext::set_current(&self.context).on(self.location(), "cuCtxSetCurrent")?;
        BOUND.with(|b| b.set(Some(self.ordinal)));
        Ok(())
    }

    pub(crate) fn location(&self) -> DeviceLocation {
        DeviceLocation::Cuda(self.ordinal)
    }

    pub(crate) fn stream(&self) -> &DeviceStream {
        &self.stream
    }

    /// The CUDA backend behind `device`, or `None` when it is another backend (e.g. the CPU).
    pub fn of(device: &Device) -> Option<&CudaBackend> {
        device.backend().as_any().downcast_ref::<CudaBackend>()
    }

    /// The stream every Sinew kernel and copy of this device is queued on. Work queued on it is
    /// ordered with Sinew's; work on other streams needs explicit synchronization.
    pub fn cuda_stream(&self) -> &cust::stream::Stream {
        &self.stream.stream
    }

    /// The raw driver handle of [`cuda_stream`](Self::cuda_stream), for driver API calls or
    /// other CUDA libraries. Valid as long as this backend (which lives until the process ends).
    pub fn raw_stream(&self) -> cust::sys::CUstream {
        self.stream.stream.as_inner()
    }

    /// Waits until every kernel and copy queued on the device's stream has finished, then
    /// reports the first index error of the ops queued since the last check, if any (read in
    /// the same wait).
    pub fn synchronize_stream(&self) -> Result<()> {
        self.synchronize_checked()
    }

    /// Uninitialized device storage for `len` elements of `dtype` (from the caching
    /// allocator; returned to it on drop). Errors when the size overflows or the GPU is out
    /// of memory.
    pub fn alloc(&self, dtype: DType, len: usize) -> Result<CudaStorage> {
        self.alloc_in(Pool::Stream, dtype, len)
    }

    /// Like [`alloc`](Self::alloc), from the copy pool: storage that no queued kernel uses,
    /// for the copy stream to fill while the kernels run (see the allocator).
    pub(crate) fn alloc_for_copy(&self, dtype: DType, len: usize) -> Result<CudaStorage> {
        self.alloc_in(Pool::Copy, dtype, len)
    }

    fn alloc_in(&self, pool: Pool, dtype: DType, len: usize) -> Result<CudaStorage> {
        self.bind()?;
        let bytes = len.checked_mul(dtype.size_in_bytes()).ok_or_else(|| {
            Error::invalid(
                "alloc",
                format!("{len} elements of {dtype} overflow the address space"),
            )
        })?;
        let block = match pool {
            Pool::Stream => self.allocator.alloc(bytes)?,
            Pool::Copy => self.allocator.alloc_for_copy(bytes, &self.stream.stream)?,
        };
        Ok(CudaStorage::new(
            block,
            len,
            dtype,
            self.location(),
            self.allocator.clone(),
        ))
    }

    /// Device storage of `len` zeros of `dtype` (queued on the stream).
    pub fn zeros(&self, dtype: DType, len: usize) -> Result<CudaStorage> {
        crate::ops::cast::full(self, dtype, len, 0.0)
    }

    /// A device copy of host data (queued on the stream; `data` may be dropped on return).
    pub fn upload(&self, data: &CpuStorage) -> Result<CudaStorage> {
        crate::ops::cast::upload(self, data)
    }

    /// The elements of a device storage, on the host (waits for the stream).
    pub fn download(&self, storage: &CudaStorage) -> Result<CpuStorage> {
        let layout = sinew_tensor::Layout::contiguous([storage.elem_count()]);
        Backend::download(self, storage, &layout)
    }

    /// The kernel's function: cached after the first launch, which loads its module (JIT of
    /// the PTX) if needed and looks the entry up. Formats the name only on a miss or an error.
    pub(crate) fn function(&self, kernel: &Kernel) -> Result<RawFunction> {
        self.bind()?;
        if let Some(f) = self.functions.get(kernel) {
            return Ok(f);
        }
        let slot = &self.modules[kernel.family.index()];
        let module = match slot.get() {
            Some(m) => m,
            None => {
                let m = Module::from_ptx(crate::ptx::ptx(kernel.family), &[]).on_with(
                    self.location(),
                    || {
                        format!(
                            "loading the {} kernels (PTX JIT)",
                            kernel.family.file_stem()
                        )
                    },
                )?;
                // A racing thread may have loaded it too; either copy works.
                let _ = slot.set(m);
                slot.get().expect("set above")
            }
        };
        let f = module
            .get_function(kernel.name())
            .on_with(self.location(), || format!("kernel {kernel}"))?;
        let raw = RawFunction(f.to_raw());
        self.functions.insert(*kernel, raw);
        Ok(raw)
    }
}

fn registry() -> &'static Mutex<Vec<Arc<CudaBackend>>> {
    static DEVICES: OnceLock<Mutex<Vec<Arc<CudaBackend>>>> = OnceLock::new();
    DEVICES.get_or_init(Default::default)
}

/// The backend of GPU `ordinal`, opening it on first use.
pub fn cuda_backend(ordinal: usize) -> Result<Arc<CudaBackend>> {
    let mut devices = registry().lock().unwrap_or_else(|e| e.into_inner());
    if let Some(b) = devices.iter().find(|b| b.ordinal == ordinal) {
        return Ok(b.clone());
    }
    let backend = Arc::new(CudaBackend::open(ordinal)?);
    devices.push(backend.clone());
    Ok(backend)
}

/// A sinew [`Device`] for GPU `ordinal` (what `Device::cuda(ordinal)` returns once registered).
pub fn cuda_device(ordinal: usize) -> Result<Device> {
    Ok(Device::from_backend(cuda_backend(ordinal)?))
}

/// `Ok(Some(device))` for a usable GPU `ordinal`, `Ok(None)` when there is no driver or no such
/// device, and an error for any other failure.
pub fn open(ordinal: usize) -> Result<Option<Device>> {
    match cust::init(CudaFlags::empty()).and_then(|_| CuDevice::num_devices()) {
        Err(CudaError::NoDevice) => return Ok(None),
        Err(e) => return Err(no_device(ordinal, e)),
        Ok(n) if ordinal >= n as usize => return Ok(None),
        Ok(_) => {}
    }
    cuda_device(ordinal).map(Some)
}

/// Makes `Device::cuda(n)` open GPUs through this crate. Safe to call more than once.
pub fn register() {
    sinew_tensor::register_backend("cuda", cuda_device);
}
