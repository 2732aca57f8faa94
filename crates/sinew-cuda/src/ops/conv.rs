//! Host side of `cuda/conv.cu`: im2col (`unfold2d`) and col2im (`fold2d`) of `[n, c, h, w]`
//! images (pooling, whose kernels share the file and the `Window`: `pool.rs`).
//!
//! Both read their input in place through its strides (no contiguous copy). `unfold2d` moves
//! elements by width, so it serves every dtype, with the padding value converted on the host as the
//! CPU backend converts it. `fold2d` is a gather over output pixels: each pixel sums, in window-tap
//! order and in the CPU backend's arithmetic (the element type for f32 and f64, f64 for the
//! rest), the column entries that read it, so it needs no atomics and matches the CPU bit for bit.

use sinew_tensor::{Error, Layout, Result, Unfold2d};

use super::cast::bit_pattern;
use super::{LaunchConfig, count_u32, need};
use crate::device::CudaBackend;
use crate::names;
use crate::storage::CudaStorage;

/// Window geometry and input view (mirrors `Window` in `cuda/conv.cu`).
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub(crate) struct Window {
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
    pub(crate) fn new(op: &'static str, spec: &Unfold2d, layout: &Layout) -> Result<Window> {
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
pub(crate) fn check_dims(
    op: &'static str,
    layout: &Layout,
    dims: &[usize],
    spec: &Unfold2d,
) -> Result<()> {
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
