//! Host side of the kernels, one file per `cuda/<family>.cu`: argument checks, launch
//! geometry and the typed launch of each kernel.

pub(crate) mod binary;
pub(crate) mod cast;
pub(crate) mod channel;
pub(crate) mod compare;
pub(crate) mod conv;
pub(crate) mod conv_gemm;
pub(crate) mod conv_phase;
pub(crate) mod conv_wgrad;
pub(crate) mod fused_step;
pub(crate) mod gemm;
pub(crate) mod gemm_sm90;
pub(crate) mod gemm_sm90_check;
pub(crate) mod index;
pub(crate) mod inplace;
pub(crate) mod pool;
pub(crate) mod random;
pub(crate) mod reduce;
pub(crate) mod softmax;
pub(crate) mod sorted_sum;
pub(crate) mod tensor_map;
pub(crate) mod unary;
pub(crate) mod xent;

use std::ffi::c_void;
use std::sync::atomic::Ordering;

use sinew_tensor::{DType, Error, Result};

use crate::device::CudaBackend;
use crate::driver::check_with;
use crate::names::Kernel;
use crate::storage::CudaStorage;

/// Threads per block of the elementwise kernels.
pub(crate) const BLOCK: u32 = 256;

/// Launch shape of one kernel.
#[derive(Debug, Clone, Copy)]
pub(crate) struct LaunchConfig {
    pub(crate) grid: (u32, u32, u32),
    pub(crate) block: (u32, u32, u32),
}

impl LaunchConfig {
    /// A grid-stride elementwise launch over `n` elements.
    pub(crate) fn elementwise(n: usize) -> Self {
        let blocks = n.div_ceil(BLOCK as usize).clamp(1, 1 << 20) as u32;
        LaunchConfig {
            grid: (blocks, 1, 1),
            block: (BLOCK, 1, 1),
        }
    }

    /// One group of threads per row: warps for short rows (8 rows per block), 256 threads for long.
    pub(crate) fn rows(groups: usize, cols: usize) -> Self {
        if cols <= 512 {
            LaunchConfig {
                grid: (groups.div_ceil(8) as u32, 1, 1),
                block: (32, 8, 1),
            }
        } else {
            LaunchConfig {
                grid: (groups as u32, 1, 1),
                block: (256, 1, 1),
            }
        }
    }
}

impl CudaBackend {
    /// Queues `kernel` on the device's stream.
    ///
    /// Callers pass exactly the values the kernel's C signature takes, in order (see the `.cu`
    /// file named by the kernel's family).
    pub(crate) fn launch(
        &self,
        kernel: &Kernel,
        cfg: LaunchConfig,
        args: &[*mut c_void],
    ) -> Result<()> {
        self.launch_with_shared(kernel, cfg, 0, args)
    }

    /// [`Self::launch`] with `shared_bytes` of dynamic shared memory (a kernel that needs more
    /// than 48 KiB has it allowed first: `ops::gemm_sm90`).
    pub(crate) fn launch_with_shared(
        &self,
        kernel: &Kernel,
        cfg: LaunchConfig,
        shared_bytes: u32,
        args: &[*mut c_void],
    ) -> Result<()> {
        let function = self.function(kernel)?;
        // SAFETY: the typed wrappers in ops/ pass one pointer per kernel parameter, each to a value
        // of the parameter's C type, and device addresses inside live storages; the function
        // belongs to a module this backend keeps loaded and the stream is the backend's.
        let code = unsafe {
            cust::sys::cuLaunchKernel(
                function.0,
                cfg.grid.0,
                cfg.grid.1,
                cfg.grid.2,
                cfg.block.0,
                cfg.block.1,
                cfg.block.2,
                shared_bytes,
                self.stream().stream.as_inner(),
                args.as_ptr() as *mut *mut c_void,
                std::ptr::null_mut(),
            )
        };
        check_with(code, self.location(), || format!("launching {kernel}"))?;
        self.launches.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
}

/// The kernel for an op, or the error saying the dtype is not supported on the GPU.
pub(crate) fn need(kernel: Option<Kernel>, op: &'static str, dtype: DType) -> Result<Kernel> {
    kernel.ok_or(Error::UnsupportedDType { op, dtype })
}

/// Element count as the kernels' u32, or an error past 2^32.
pub(crate) fn count_u32(op: &'static str, n: usize) -> Result<u32> {
    u32::try_from(n).map_err(|_| {
        Error::invalid(
            op,
            format!("{n} elements exceed the CUDA kernels' 2^32 limit"),
        )
    })
}

/// Two device words in which kernels record, first, the lowest position (row-major,
/// `atomicMin`) of an element that makes the op fail (an index out of range, a zero divisor), for
/// errors that only the data reveals, and second (index ops, `index_first_bad`) the index found
/// there. Reading it waits for the stream: i64 division reads it at once; index ops leave it to
/// the next synchronisation ([`crate::deferred`]).
pub(crate) struct FirstBad(CudaStorage);

impl FirstBad {
    /// A fresh slot holding "none" (`u64::MAX`) in both words.
    pub(crate) fn new(dev: &CudaBackend) -> Result<Self> {
        cast::fill_pattern(dev, DType::I64, 2, u64::MAX).map(FirstBad)
    }

    /// Device address of the slot (the kernels' `unsigned long long *bad`).
    pub(crate) fn ptr(&self) -> u64 {
        self.0.device_ptr()
    }

    /// Waits for the queued kernels and returns the first bad position, if any.
    pub(crate) fn position(&self, dev: &CudaBackend) -> Result<Option<usize>> {
        let value = read_word(dev, self.ptr())?;
        Ok((value != u64::MAX).then_some(value as usize))
    }

    /// Waits for the queued kernels and returns the first bad position and the index recorded
    /// there by `index_first_bad`, if any (one 16-byte copy).
    pub(crate) fn first_bad_index(&self, dev: &CudaBackend) -> Result<Option<(usize, i64)>> {
        let mut bytes = [0u8; 16];
        dev.bind()?;
        dev.stream().download(self.ptr(), &mut bytes)?;
        let word = |k: usize| {
            let mut w = [0u8; 8];
            w.copy_from_slice(&bytes[8 * k..8 * k + 8]);
            u64::from_le_bytes(w)
        };
        let position = word(0);
        Ok((position != u64::MAX).then_some((position as usize, word(1) as i64)))
    }
}

/// The 8 bytes at a device address, after all queued work.
pub(crate) fn read_word(dev: &CudaBackend, ptr: u64) -> Result<u64> {
    let mut bytes = [0u8; 8];
    dev.bind()?;
    dev.stream().download(ptr, &mut bytes)?;
    Ok(u64::from_le_bytes(bytes))
}
