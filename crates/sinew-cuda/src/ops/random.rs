//! Host side of `cuda/random.cu`: counter-based uniforms, bit for bit those of
//! `sinew_tensor::philox` (so dropout masks drawn on the GPU equal the CPU's).

use sinew_tensor::{DType, Result};

use super::LaunchConfig;
use crate::device::CudaBackend;
use crate::names;
use crate::storage::CudaStorage;

/// `len` f32 uniforms on `[0, 1)` from Philox4x32-10 under `key` (one thread per block of four).
pub(crate) fn philox_uniform(dev: &CudaBackend, len: usize, key: u64) -> Result<CudaStorage> {
    let out = dev.alloc(DType::F32, len)?;
    if len == 0 {
        return Ok(out);
    }
    let (ptr, n) = (out.device_ptr(), len as u64);
    dev.launch(
        &names::philox_uniform(),
        LaunchConfig::elementwise(len.div_ceil(4)),
        kernel_args![ptr, n, key],
    )?;
    Ok(out)
}
