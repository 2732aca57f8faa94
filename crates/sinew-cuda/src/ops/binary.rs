//! Host side of `cuda/binary.cu`: elementwise arithmetic on broadcast views, and ReLU's
//! gradient and a residual connection's `relu(a + b)` in one pass each.
//!
//! i64 division checks its divisors on the device (see [`FirstBad`]): a zero divisor is the CPU
//! backend's "integer division by zero" error, at the cost of one stream synchronization.

use sinew_tensor::{BinaryOp, DType, Error, Layout, Result};

use super::{FirstBad, LaunchConfig, count_u32, need};
use crate::device::CudaBackend;
use crate::geometry::Geometry;
use crate::names::{self, Kernel};
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
    let kernel = |dtype| names::binary(op, dtype);
    if op != BinaryOp::Div || lhs.dtype_of() != DType::I64 || ll.elem_count() == 0 {
        return pair(dev, op.name(), kernel, (lhs, ll), (rhs, rl), None);
    }
    let bad = FirstBad::new(dev)?;
    let out = pair(dev, op.name(), kernel, (lhs, ll), (rhs, rl), Some(&bad))?;
    if bad.first_bad(dev)?.is_some() {
        return Err(Error::invalid("div", "integer division by zero"));
    }
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
    if gl.shape() != ol.shape() {
        return Err(Error::ShapeMismatch {
            op: OP,
            lhs: gl.shape().clone(),
            rhs: ol.shape().clone(),
        });
    }
    pair(
        dev,
        OP,
        names::relu_backward,
        (grad, gl),
        (output, ol),
        None,
    )
}

/// `relu(lhs + rhs)` of two same-shape float views (broadcast dims have stride 0), in one pass.
pub(crate) fn add_relu(
    dev: &CudaBackend,
    lhs: &CudaStorage,
    ll: &Layout,
    rhs: &CudaStorage,
    rl: &Layout,
) -> Result<CudaStorage> {
    pair(dev, "add_relu", names::add_relu, (lhs, ll), (rhs, rl), None)
}

/// Launches `kernel(n, geometry, lhs, rhs, out[, bad])` (the kernel `kernel_for` names for the
/// operands' dtype) over two same-shape views of one dtype, into a fresh contiguous output;
/// `bad` is the error slot of a kernel that takes one.
fn pair(
    dev: &CudaBackend,
    op: &'static str,
    kernel_for: impl FnOnce(DType) -> Option<Kernel>,
    (lhs, ll): (&CudaStorage, &Layout),
    (rhs, rl): (&CudaStorage, &Layout),
    bad: Option<&FirstBad>,
) -> Result<CudaStorage> {
    let dtype = lhs.dtype_of();
    if rhs.dtype_of() != dtype {
        return Err(Error::DTypeMismatch {
            op,
            lhs: dtype,
            rhs: rhs.dtype_of(),
        });
    }
    let kernel = need(kernel_for(dtype), op, dtype)?;
    let n = ll.elem_count();
    let out = dev.alloc(dtype, n)?;
    if n == 0 {
        return Ok(out);
    }
    let g = Geometry::new(op, &[ll, rl])?;
    let (count, a, b, o) = (
        count_u32(op, n)?,
        lhs.device_ptr(),
        rhs.device_ptr(),
        out.device_ptr(),
    );
    let cfg = LaunchConfig::elementwise(n);
    match bad.map(FirstBad::ptr) {
        Some(slot) => dev.launch(&kernel, cfg, kernel_args![count, g, a, b, o, slot])?,
        None => dev.launch(&kernel, cfg, kernel_args![count, g, a, b, o])?,
    }
    Ok(out)
}
