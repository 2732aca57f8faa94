//! Host side of the kernels, one file per `cuda/<family>.cu`: argument checks, launch
//! geometry and the typed launch of each kernel.

pub(crate) mod adafactor_step;
pub(crate) mod binary;
pub(crate) mod cast;
pub(crate) mod channel;
pub(crate) mod channel_stats;
pub(crate) mod compare;
pub(crate) mod conv;
pub(crate) mod conv_gemm;
pub(crate) mod conv_phase;
pub(crate) mod conv_wgrad;
pub(crate) mod foreach;
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
pub(crate) mod step_table;
pub(crate) mod tensor_map;
pub(crate) mod unary;
pub(crate) mod xent;

use std::ffi::c_void;
use std::sync::atomic::Ordering;

use sinew_tensor::{DType, Error, Result};

pub(crate) use crate::check_slots::FirstBad;
use crate::device::CudaBackend;
use crate::driver::check_with;
use crate::names::Kernel;

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
