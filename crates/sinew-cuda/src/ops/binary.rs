//! Host side of `cuda/binary.cu`: elementwise arithmetic on broadcast views, and ReLU's
//! gradient in one pass.
//!
//! i64 division checks its divisors on the device (see [`FirstBad`]): a zero divisor is the CPU
//! backend's "integer division by zero" error, at the cost of one stream synchronization.

use sinew_tensor::{BinaryOp, DType, Error, Layout, Result};

use super::{FirstBad, LaunchConfig, count_u32, need};
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
    if op == BinaryOp::Div && dtype == DType::I64 {
        let bad = FirstBad::new(dev)?;
        let bad_ptr = bad.ptr();
        dev.launch(
            &kernel,
            LaunchConfig::elementwise(n),
            kernel_args![count, g, a, b, o, bad_ptr],
        )?;
        if bad.position(dev)?.is_some() {
            return Err(Error::invalid("div", "integer division by zero"));
        }
        return Ok(out);
    }
    dev.launch(
        &kernel,
        LaunchConfig::elementwise(n),
        kernel_args![count, g, a, b, o],
    )?;
    Ok(out)
}

/// ReLU's input gradient `grad * (output > 0)` of two same-shape float views, in one pass (the
/// values of the composed comparison, cast and product).
pub(crate) fn relu_backward(
    dev: &CudaBackend,
    grad: &CudaStorage,
    gl: &Layout,
    output: &CudaStorage,
    ol: &Layout,
) -> Result<CudaStorage> {
    const OP: &str = "relu backward";
    let dtype = grad.dtype_of();
    if output.dtype_of() != dtype {
        return Err(Error::DTypeMismatch {
            op: OP,
            lhs: dtype,
            rhs: output.dtype_of(),
        });
    }
    if gl.shape() != ol.shape() {
        return Err(Error::ShapeMismatch {
            op: OP,
            lhs: gl.shape().clone(),
            rhs: ol.shape().clone(),
        });
    }
    let kernel = need(names::relu_backward(dtype), OP, dtype)?;
    let n = gl.elem_count();
    let out = dev.alloc(dtype, n)?;
    if n == 0 {
        return Ok(out);
    }
    let g = Geometry::new(OP, &[gl, ol])?;
    let (count, a, b, o) = (
        count_u32(OP, n)?,
        grad.device_ptr(),
        output.device_ptr(),
        out.device_ptr(),
    );
    dev.launch(
        &kernel,
        LaunchConfig::elementwise(n),
        kernel_args![count, g, a, b, o],
    )?;
    Ok(out)
}
