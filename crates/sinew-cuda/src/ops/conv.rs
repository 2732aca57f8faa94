//! Host side of `cuda/conv.cu`: im2col (`unfold2d`) and col2im (`fold2d`) of `[n, c, h, w]`
//! images, and max pooling with its backward (a gather over windows, deterministic).
//!
//! Both read their input in place through its strides (no contiguous copy). `unfold2d` moves
//! elements by width, so it serves every dtype, with the padding value converted on the host as the
//! CPU backend converts it. `fold2d` is a gather over output pixels: each pixel sums, in window-tap
//! order and in the CPU backend's arithmetic (the element type for f32 and f64, f64 for the
//! rest), the column entries that read it, so it needs no atomics and matches the CPU bit for bit.

use sinew_tensor::{DType, Error, Layout, Result, Unfold2d};

use super::cast::{bit_pattern, copy_strided};
use super::index::queue_first_bad;
use super::{FirstBad, LaunchConfig, count_u32, need};
use crate::device::CudaBackend;
use crate::geometry::Geometry;
use crate::names;
use crate::storage::CudaStorage;

/// Window geometry and input view (mirrors `Window` in `cuda/conv.cu`).
#[repr(C)]
#[derive(Debug, Clone, Copy)]
struct Window {
    c: u32,
    h: u32,
    w: u32,
    kh: u32,
    kw: u32,
    oh: u32,
    ow: u32,
    sh: u32,
    sw: u32,
    ph: u32,
    pw: u32,
    dh: u32,
    dw: u32,
    unused: [u32; 3],
    /// unfold: the input's n, c, h, w strides; fold: the columns' batch, row, column strides.
    strides: [u64; 4],
    offset: u64,
}

impl Window {
    fn new(op: &'static str, spec: &Unfold2d, layout: &Layout) -> Result<Window> {
        let (oh, ow) = spec.out_hw();
        let sizes = [
            spec.c,
            spec.h,
            spec.w,
            spec.kernel.0,
            spec.kernel.1,
            oh,
            ow,
            spec.stride.0,
            spec.stride.1,
            spec.padding.0,
            spec.padding.1,
            spec.dilation.0,
            spec.dilation.1,
        ];
        let mut v = [0u32; 13];
        for (slot, &size) in v.iter_mut().zip(&sizes) {
            *slot = u32::try_from(size).map_err(|_| {
                Error::invalid(op, format!("{spec:?} is too large for the CUDA kernels"))
            })?;
        }
        let mut strides = [0u64; 4];
        for (slot, &s) in strides.iter_mut().zip(layout.strides()) {
            *slot = s as u64;
        }
        let [c, h, w, kh, kw, oh, ow, sh, sw, ph, pw, dh, dw] = v;
        Ok(Window {
            c,
            h,
            w,
            kh,
            kw,
            oh,
            ow,
            sh,
            sw,
            ph,
            pw,
            dh,
            dw,
            unused: [0; 3],
            strides,
            offset: layout.offset() as u64,
        })
    }
}

/// Checks that `layout` has the `dims` the spec implies.
fn check_dims(op: &'static str, layout: &Layout, dims: &[usize], spec: &Unfold2d) -> Result<()> {
    if layout.dims() == dims {
        return Ok(());
    }
    Err(Error::invalid(
        op,
        format!("a view of shape {} does not fit {spec:?}", layout.shape()),
    ))
}

/// im2col of a `[n, c, h, w]` view into contiguous `[n, c*kh*kw, oh*ow]` columns.
pub(crate) fn unfold2d(
    dev: &CudaBackend,
    src: &CudaStorage,
    layout: &Layout,
    spec: &Unfold2d,
) -> Result<CudaStorage> {
    const OP: &str = "unfold2d";
    check_dims(OP, layout, &[spec.n, spec.c, spec.h, spec.w], spec)?;
    let dtype = src.dtype_of();
    let (oh, ow) = spec.out_hw();
    let total = spec.n * spec.c * spec.kernel.0 * spec.kernel.1 * oh * ow;
    let out = dev.alloc(dtype, total)?;
    if total == 0 {
        return Ok(out);
    }
    let win = Window::new(OP, spec, layout)?;
    let (count, pad) = (count_u32(OP, total)?, bit_pattern(dtype, spec.pad_value)?);
    let (s, o) = (src.device_ptr(), out.device_ptr());
    dev.launch(
        &names::unfold2d(dtype),
        LaunchConfig::elementwise(total),
        kernel_args![count, win, s, o, pad],
    )?;
    Ok(out)
}

/// col2im: sums `[n, c*kh*kw, oh*ow]` columns back into a contiguous `[n, c, h, w]` image.
pub(crate) fn fold2d(
    dev: &CudaBackend,
    cols: &CudaStorage,
    layout: &Layout,
    spec: &Unfold2d,
) -> Result<CudaStorage> {
    const OP: &str = "fold2d";
    let dtype = cols.dtype_of();
    let kernel = need(names::fold2d(dtype), OP, dtype)?;
    let (oh, ow) = spec.out_hw();
    let rows = spec.c * spec.kernel.0 * spec.kernel.1;
    check_dims(OP, layout, &[spec.n, rows, oh * ow], spec)?;
    let total = spec.n * spec.c * spec.h * spec.w;
    let out = dev.alloc(dtype, total)?;
    if total == 0 {
        return Ok(out);
    }
    let win = Window::new(OP, spec, layout)?;
    let count = count_u32(OP, total)?;
    let (c, o) = (cols.device_ptr(), out.device_ptr());
    dev.launch(
        &kernel,
        LaunchConfig::elementwise(total),
        kernel_args![count, win, c, o],
    )?;
    Ok(out)
}

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
    let (i_copy, i_layout) = dense(dev, indices.0, indices.1)?;
    let g = g_copy.as_ref().unwrap_or(grad.0);
    let idx = i_copy.as_ref().unwrap_or(indices.0);
    let win = Window::new(OP, spec, &g_layout)?;
    // Every index must name a tap of its own window: checked on the device, reported later.
    let bad = FirstBad::new(dev)?;
    let (outputs32, i, b) = (count_u32(OP, outputs)?, idx.device_ptr(), bad.ptr());
    dev.launch(
        &names::max_pool2d_check(),
        LaunchConfig::elementwise(outputs),
        kernel_args![outputs32, win, i, b],
    )?;
    let geometry = Geometry::new(OP, &[&i_layout, &i_layout])?;
    queue_first_bad(dev, geometry, idx, &bad)?;
    let window = format!(
        "kernel {:?}, stride {:?}, padding {:?}, dilation {:?} on a {}x{} plane",
        spec.kernel, spec.stride, spec.padding, spec.dilation, spec.h, spec.w
    );
    dev.defer_window_check(OP, window, bad)?;
    let (count, gp, o) = (count_u32(OP, total)?, g.device_ptr(), out.device_ptr());
    dev.launch(
        &kernel,
        LaunchConfig::elementwise(total),
        kernel_args![count, win, gp, i, o],
    )?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_matches_the_c_layout() {
        assert_eq!(std::mem::size_of::<Window>(), 64 + 40);
        assert_eq!(std::mem::offset_of!(Window, strides), 64);
        assert_eq!(std::mem::offset_of!(Window, offset), 96);
    }

    #[test]
    fn window_takes_the_view_strides() {
        let spec = Unfold2d {
            n: 2,
            c: 3,
            h: 5,
            w: 7,
            kernel: (3, 2),
            stride: (2, 1),
            padding: (1, 0),
            dilation: (1, 2),
            pad_value: 0.0,
        };
        let layout = Layout::contiguous([2, 5, 7, 3])
            .permute(&[0, 3, 1, 2])
            .unwrap();
        let win = Window::new("unfold2d", &spec, &layout).unwrap();
        assert_eq!((win.oh, win.ow), (3, 5));
        assert_eq!(win.strides, [105, 1, 21, 3]);
        assert_eq!((win.kh, win.kw, win.dw, win.ph), (3, 2, 2, 1));
    }
}
