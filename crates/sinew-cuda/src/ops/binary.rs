//! Host side of `cuda/binary.cu`: elementwise arithmetic on broadcast views.

use sinew_tensor::{BinaryOp, Error, Layout, Result};

use super::{LaunchConfig, count_u32, kernel_args, need};
use crate::device::CudaBackend;
use crate::geometry::Geometry;
use crate::names;
use crate::storage::CudaStorage;

/// Elementwise `op` of two same-shape views (broadcast dims have stride 0).
pub(crate) fn binary(
    dev: &CudaBackend,
    op: BinaryOp,
    lhs: &CudaStorage,
    ll: &Layout,
    rhs: &CudaStorage,
    rl: &Layout,
) -> Result<CudaStorage> {
    let dtype = lhs.dtype_of();
    if rhs.dtype_of() != dtype {
        return Err(Error::DTypeMismatch {
            op: op.name(),
            lhs: dtype,
            rhs: rhs.dtype_of(),
        });
    }
    let kernel = need(names::binary(op, dtype), op.name(), dtype)?;
    let n = ll.elem_count();
    let out = dev.alloc(dtype, n)?;
    if n == 0 {
        return Ok(out);
    }
    let g = Geometry::new(op.name(), &[ll, rl])?;
    let (count, a, b, o) = (
        count_u32(op.name(), n)?,
        lhs.device_ptr(),
        rhs.device_ptr(),
        out.device_ptr(),
    );
    dev.launch(
        &kernel,
        LaunchConfig::elementwise(n),
        kernel_args![count, g, a, b, o],
    )?;
    Ok(out)
}
