//! Host side of the pooling kernels of `cuda/conv.cu`: max pooling (values and indices) with
//! its backward as a per-pixel gather over the windows that cover it (deterministic, indices
//! checked against their windows at the next synchronisation), and average pooling with its
//! backward (a gather too). Inputs are read in place through their strides.

use sinew_tensor::{DType, Error, Layout, Result, Unfold2d};

use super::cast::copy_strided;
use super::conv::{Window, check_dims};
use super::{FirstBad, LaunchConfig, count_u32, need};
use crate::device::CudaBackend;
use crate::names;
use crate::storage::CudaStorage;

/// Max pooling of a float `[n, c, h, w]` view (the backend's `max_pool2d`): contiguous
/// `[n, c, oh, ow]` maxima and i64 plane indices, the CPU backend's values and ties.
pub(crate) fn max_pool2d(
    dev: &CudaBackend,
    src: &CudaStorage,
    layout: &Layout,
    spec: &Unfold2d,
) -> Result<(CudaStorage, CudaStorage)> {
    const OP: &str = "max_pool2d";
    let dtype = src.dtype_of();
    let kernel = need(names::max_pool2d(false, dtype), OP, dtype)?;
    check_dims(OP, layout, &[spec.n, spec.c, spec.h, spec.w], spec)?;
    let (oh, ow) = spec.check(OP)?;
    if spec.h * spec.w == 0 && spec.n * spec.c > 0 {
        return Err(Error::invalid(
            OP,
            format!("expects a non-empty input plane, got {}x{}", spec.h, spec.w),
        ));
    }
    let total = spec.n * spec.c * oh * ow;
    let (values, indices) = (dev.alloc(dtype, total)?, dev.alloc(DType::I64, total)?);
    if total == 0 {
        return Ok((values, indices));
    }
    let win = Window::new(OP, spec, layout)?;
    let count = count_u32(OP, total)?;
    let (s, v, i) = (src.device_ptr(), values.device_ptr(), indices.device_ptr());
    dev.launch(
        &kernel,
        LaunchConfig::elementwise(total),
        kernel_args![count, win, s, v, i],
    )?;
    Ok((values, indices))
}

/// `(storage, contiguous layout)` of a view, copied when it is not contiguous from element 0.
fn dense(
    dev: &CudaBackend,
    s: &CudaStorage,
    layout: &Layout,
) -> Result<(Option<CudaStorage>, Layout)> {
    let contiguous = Layout::contiguous(layout.shape().clone());
    if layout.is_contiguous() && layout.offset() == 0 {
        return Ok((None, contiguous));
    }
    Ok((Some(copy_strided(dev, s, layout)?), contiguous))
}

/// Backward of [`max_pool2d`]: each input pixel gathers the gradients of the windows whose index
/// names it. Indices that are not an in-bounds tap of their own window are reported at the next
/// synchronisation (as the index ops report theirs).
pub(crate) fn max_pool2d_backward(
    dev: &CudaBackend,
    grad: (&CudaStorage, &Layout),
    indices: (&CudaStorage, &Layout),
    spec: &Unfold2d,
    trusted: bool,
) -> Result<CudaStorage> {
    const OP: &str = "max_pool2d backward";
    let dtype = grad.0.dtype_of();
    let kernel = need(names::max_pool2d(true, dtype), OP, dtype)?;
    if indices.0.dtype_of() != DType::I64 {
        return Err(Error::UnsupportedDType {
            op: OP,
            dtype: indices.0.dtype_of(),
        });
    }
    let (oh, ow) = spec.check(OP)?;
    let out_dims = [spec.n, spec.c, oh, ow];
    check_dims(OP, grad.1, &out_dims, spec)?;
    check_dims(OP, indices.1, &out_dims, spec)?;
    let total = spec.n * spec.c * spec.h * spec.w;
    let out = dev.alloc(dtype, total)?;
    let outputs = spec.n * spec.c * oh * ow;
    if total == 0 || outputs == 0 {
        return if total == 0 {
            Ok(out)
        } else {
            super::cast::full(dev, dtype, total, 0.0)
        };
    }
    let (g_copy, g_layout) = dense(dev, grad.0, grad.1)?;
    let (i_copy, _) = dense(dev, indices.0, indices.1)?;
    let g = g_copy.as_ref().unwrap_or(grad.0);
    let idx = i_copy.as_ref().unwrap_or(indices.0);
    let win = Window::new(OP, spec, &g_layout)?;
    // Every index must name a tap of its own window: checked on the device, reported later
    // (unless they are max_pool2d's own, unmodified).
    let i = idx.device_ptr();
    if !trusted {
        let bad = FirstBad::new(dev)?;
        let (outputs32, b) = (count_u32(OP, outputs)?, bad.ptr());
        dev.launch(
            &names::max_pool2d_check(),
            LaunchConfig::elementwise(outputs),
            kernel_args![outputs32, win, i, b],
        )?;
        dev.defer_window_check(OP, *spec, bad)?;
    }
    let (count, gp, o) = (count_u32(OP, total)?, g.device_ptr(), out.device_ptr());
    dev.launch(
        &kernel,
        LaunchConfig::elementwise(total),
        kernel_args![count, win, gp, i, o],
    )?;
    Ok(out)
}

/// Average pooling of a float `[n, c, h, w]` view (the backend's `avg_pool2d`; dilation 1):
/// a contiguous `[n, c, oh, ow]`.
pub(crate) fn avg_pool2d(
    dev: &CudaBackend,
    src: &CudaStorage,
    layout: &Layout,
    spec: &Unfold2d,
    count_include_pad: bool,
) -> Result<CudaStorage> {
    const OP: &str = "avg_pool2d";
    let dtype = src.dtype_of();
    let kernel = need(names::avg_pool2d(false, dtype), OP, dtype)?;
    check_dims(OP, layout, &[spec.n, spec.c, spec.h, spec.w], spec)?;
    no_dilation(OP, spec)?;
    let (oh, ow) = spec.check(OP)?;
    let total = spec.n * spec.c * oh * ow;
    let out = dev.alloc(dtype, total)?;
    if total == 0 {
        return Ok(out);
    }
    let win = Window::new(OP, spec, layout)?;
    let (count, include) = (count_u32(OP, total)?, count_include_pad as u32);
    let (s, o) = (src.device_ptr(), out.device_ptr());
    dev.launch(
        &kernel,
        LaunchConfig::elementwise(total),
        kernel_args![count, win, s, o, include],
    )?;
    Ok(out)
}

/// Backward of [`avg_pool2d`]: each input pixel gathers `grad / count` over the windows that
/// cover it, into a contiguous `[n, c, h, w]`.
pub(crate) fn avg_pool2d_backward(
    dev: &CudaBackend,
    grad: (&CudaStorage, &Layout),
    spec: &Unfold2d,
    count_include_pad: bool,
) -> Result<CudaStorage> {
    const OP: &str = "avg_pool2d backward";
    let dtype = grad.0.dtype_of();
    let kernel = need(names::avg_pool2d(true, dtype), OP, dtype)?;
    no_dilation(OP, spec)?;
    let (oh, ow) = spec.check(OP)?;
    check_dims(OP, grad.1, &[spec.n, spec.c, oh, ow], spec)?;
    let total = spec.n * spec.c * spec.h * spec.w;
    if total == 0 || oh * ow == 0 {
        return super::cast::full(dev, dtype, total, 0.0);
    }
    let out = dev.alloc(dtype, total)?;
    let (g_copy, g_layout) = dense(dev, grad.0, grad.1)?;
    let g = g_copy.as_ref().unwrap_or(grad.0);
    let win = Window::new(OP, spec, &g_layout)?;
    let (count, include) = (count_u32(OP, total)?, count_include_pad as u32);
    let (gp, o) = (g.device_ptr(), out.device_ptr());
    dev.launch(
        &kernel,
        LaunchConfig::elementwise(total),
        kernel_args![count, win, gp, o, include],
    )?;
    Ok(out)
}

fn no_dilation(op: &'static str, spec: &Unfold2d) -> Result<()> {
    if spec.dilation == (1, 1) {
        return Ok(());
    }
    Err(Error::invalid(op, "average pooling has no dilation"))
}
