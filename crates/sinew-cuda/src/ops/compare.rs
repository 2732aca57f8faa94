//! Host side of `cuda/compare.cu`: comparisons into Bool, `where`, and the deferred range
//! check.

use sinew_tensor::{CmpOp, DType, Error, Layout, Result};

use super::{LaunchConfig, count_u32};
use crate::check_slots::FirstBad;
use crate::device::CudaBackend;
use crate::geometry::Geometry;
use crate::names;
use crate::storage::CudaStorage;

/// Elementwise comparison of two same-shape, same-dtype views.
pub(crate) fn compare(
    dev: &CudaBackend,
    op: CmpOp,
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
    let n = ll.elem_count();
    let out = dev.alloc(DType::Bool, n)?;
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
        &names::compare(op, dtype),
        LaunchConfig::elementwise(n),
        kernel_args![count, g, a, b, o],
    )?;
    Ok(out)
}

/// `cond ? on_true : on_false` over three same-shape views.
pub(crate) fn where_cond(
    dev: &CudaBackend,
    cond: (&CudaStorage, &Layout),
    on_true: (&CudaStorage, &Layout),
    on_false: (&CudaStorage, &Layout),
) -> Result<CudaStorage> {
    const OP: &str = "where_cond";
    if cond.0.dtype_of() != DType::Bool {
        return Err(Error::UnsupportedDType {
            op: "where_cond (condition)",
            dtype: cond.0.dtype_of(),
        });
    }
    let dtype = on_true.0.dtype_of();
    if on_false.0.dtype_of() != dtype {
        return Err(Error::DTypeMismatch {
            op: OP,
            lhs: dtype,
            rhs: on_false.0.dtype_of(),
        });
    }
    let n = cond.1.elem_count();
    let out = dev.alloc(dtype, n)?;
    if n == 0 {
        return Ok(out);
    }
    let g = Geometry::new(OP, &[cond.1, on_true.1, on_false.1])?;
    let count = count_u32(OP, n)?;
    let (c, t, f, o) = (
        cond.0.device_ptr(),
        on_true.0.device_ptr(),
        on_false.0.device_ptr(),
        out.device_ptr(),
    );
    dev.launch(
        &names::where_cond(dtype),
        LaunchConfig::elementwise(n),
        kernel_args![count, g, c, t, f, o],
    )?;
    Ok(out)
}

/// Queues `range_check_<dtype>` over the view `x` into a new failure slot, kept for the next
/// wait ([`crate::deferred`]) with `message`; `false`, with nothing queued, for a dtype
/// without the kernel.
pub(crate) fn defer_range_check(
    dev: &CudaBackend,
    op: &'static str,
    (x, layout): (&CudaStorage, &Layout),
    (lo, hi): (f64, f64),
    message: &str,
) -> Result<bool> {
    let Some(kernel) = names::range_check(x.dtype_of()) else {
        return Ok(false);
    };
    let n = layout.elem_count();
    if n == 0 {
        return Ok(true);
    }
    let g = Geometry::new(op, &[layout])?;
    let bad = FirstBad::new(dev)?;
    let (count, ptr, slot) = (count_u32(op, n)?, x.device_ptr(), bad.ptr());
    dev.launch(
        &kernel,
        LaunchConfig::elementwise(n),
        kernel_args![count, g, ptr, lo, hi, slot],
    )?;
    dev.defer_range_check_slot(op, message, bad)?;
    Ok(true)
}
