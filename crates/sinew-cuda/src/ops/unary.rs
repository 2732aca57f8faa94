//! Host side of `cuda/unary.cu`: elementwise unary and scalar ops.

use sinew_tensor::{DType, Error, Layout, Result, UnaryOp};

use super::{LaunchConfig, count_u32, need};
use crate::device::CudaBackend;
use crate::geometry::Geometry;
use crate::names;
use crate::storage::CudaStorage;

/// The op's two kernel parameters; for i64, scalars must be integers and clamp bounds are
/// rounded inward, exactly as the CPU backend does.
pub(crate) fn params(op: UnaryOp, dtype: DType) -> Result<[f64; 2]> {
    let [a, b] = op.params();
    if dtype != DType::I64 {
        return Ok([a, b]);
    }
    match op {
        UnaryOp::AddScalar(s) | UnaryOp::MulScalar(s) | UnaryOp::RSubScalar(s)
            if s.fract() != 0.0 =>
        {
            Err(Error::invalid(
                op.name(),
                format!("scalar {s} is not an integer for an i64 tensor"),
            ))
        }
        UnaryOp::Clamp { min, max } => Ok([
            min.ceil().max(i64::MIN as f64),
            max.floor().min(i64::MAX as f64),
        ]),
        _ => Ok([a, b]),
    }
}

/// Applies `op` to every element of a view.
pub(crate) fn unary(
    dev: &CudaBackend,
    op: UnaryOp,
    src: &CudaStorage,
    layout: &Layout,
) -> Result<CudaStorage> {
    let dtype = src.dtype_of();
    let kernel = need(names::unary(&op, dtype), op.name(), dtype)?;
    let [p0, p1] = params(op, dtype)?;
    let n = layout.elem_count();
    let out = dev.alloc(dtype, n)?;
    if n == 0 {
        return Ok(out);
    }
    let g = Geometry::new(op.name(), &[layout])?;
    let (count, src_ptr, out_ptr) = (count_u32(op.name(), n)?, src.device_ptr(), out.device_ptr());
    dev.launch(
        &kernel,
        LaunchConfig::elementwise(n),
        kernel_args![count, g, src_ptr, out_ptr, p0, p1],
    )?;
    Ok(out)
}
