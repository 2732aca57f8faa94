//! Max pooling's window geometry (shared by the CPU kernel and the composite) and the default
//! bodies of [`Backend::max_pool2d`] / [`Backend::max_pool2d_backward`], built from the
//! backend's own `unfold2d`, `reduce`, `arg_reduce`, `gather`, `full` and `scatter`.

use crate::backend::{Backend, BackendStorage, BoxedStorage, ScatterMode, Unfold2d};
use crate::ops::{ArgReduceOp, ReduceOp};
use crate::{CpuStorage, Error, Layout, Result, Shape};

impl Unfold2d {
    /// The taps of output coordinate `o` along one axis (`height` = axis 0, else width): the
    /// first in-bounds input coordinate and the end of the window, clamped to the input. The
    /// first tap is PyTorch's (its kernel steps over the padding in whole dilations), so it may
    /// lie past the input when the window covers only padding; the range is then empty.
    pub(crate) fn pool_taps(&self, height: bool, o: usize) -> (usize, usize) {
        let s = self;
        let (stride, pad, dilation, k, size) = if height {
            (s.stride.0, s.padding.0, s.dilation.0, s.kernel.0, s.h)
        } else {
            (s.stride.1, s.padding.1, s.dilation.1, s.kernel.1, s.w)
        };
        // In padded coordinates (shifted by `pad`, never negative) the window covers
        // [o * stride, o * stride + (k - 1) * dilation]; `check` bounds these below the padded
        // size, so nothing overflows.
        let start = o * stride;
        let first = match start.checked_sub(pad) {
            Some(first) => first,
            None => {
                let deficit = pad - start;
                deficit.div_ceil(dilation) * dilation - deficit
            }
        };
        let end = (start + (k - 1) * dilation + 1)
            .saturating_sub(pad)
            .min(size);
        (first, end)
    }
}

/// `[kh*kw, oh*ow]`: the flat input index (`y * w + x`) that tap `t` of window `p` reads, with
/// padding taps mapped to the window's first in-bounds tap (PyTorch's index for a window whose
/// values are all -inf, where argmax may pick a padding tap).
fn tap_table(spec: &Unfold2d, oh: usize, ow: usize) -> Result<Vec<i64>> {
    const OP: &str = "max_pool2d";
    let (kh, kw) = spec.kernel;
    let overflow = || Error::Overflow {
        op: OP,
        what: format!(
            "the flat input index of a {}x{} input's windows",
            spec.h, spec.w
        ),
    };
    let flat = |y: usize, x: usize| {
        y.checked_mul(spec.w)
            .and_then(|v| v.checked_add(x))
            .and_then(|v| i64::try_from(v).ok())
            .ok_or_else(overflow)
    };
    let tap = |o: usize, k: usize, stride: usize, pad: usize, dil: usize, size: usize| {
        (o * stride + k * dil)
            .checked_sub(pad)
            .filter(|&i| i < size)
    };
    let mut table = crate::cpu::alloc::try_with_capacity(OP, kh * kw * oh * ow)?;
    for ki in 0..kh {
        for kj in 0..kw {
            for oy in 0..oh {
                let y = tap(
                    oy,
                    ki,
                    spec.stride.0,
                    spec.padding.0,
                    spec.dilation.0,
                    spec.h,
                );
                for ox in 0..ow {
                    let x = tap(
                        ox,
                        kj,
                        spec.stride.1,
                        spec.padding.1,
                        spec.dilation.1,
                        spec.w,
                    );
                    table.push(match (y, x) {
                        (Some(y), Some(x)) => flat(y, x)?,
                        _ => flat(spec.pool_taps(true, oy).0, spec.pool_taps(false, ox).0)?,
                    });
                }
            }
        }
    }
    Ok(table)
}

/// [`Backend::max_pool2d`] as `unfold2d` (padding read as -inf), `reduce` max and `arg_reduce`
/// over the window axis, then a `gather` of each winning tap's flat index from a table.
pub(crate) fn max_pool2d<B: Backend + ?Sized>(
    b: &B,
    src: &dyn BackendStorage,
    layout: &Layout,
    spec: &Unfold2d,
) -> Result<(BoxedStorage, BoxedStorage)> {
    let (oh, ow) = spec.check("max_pool2d")?;
    let spec = Unfold2d {
        pad_value: f64::NEG_INFINITY,
        ..*spec
    };
    let (n, c, taps, l) = (spec.n, spec.c, spec.kernel.0 * spec.kernel.1, oh * ow);
    let cols = b.unfold2d(src, layout, &spec)?;
    let cols_layout = Layout::contiguous([n, c, taps, l]);
    let values = b.reduce(ReduceOp::Max, &*cols, &cols_layout, &[2])?;
    let window = b.arg_reduce(ArgReduceOp::ArgMax, &*cols, &cols_layout, 2)?;
    drop(cols);
    let table = b.upload(&CpuStorage::I64(tap_table(&spec, oh, ow)?))?;
    // The same table for every (image, channel) plane.
    let table_layout = Layout::from_parts(Shape::new([n, c, taps, l]), vec![0, 0, l, 1], 0);
    let indices = b.gather(
        &*table,
        &table_layout,
        &*window,
        &Layout::contiguous([n, c, 1, l]),
        2,
    )?;
    Ok((values, indices))
}

/// A `[n, c, l]` view of a `[n, c, oh, ow]` view, copied when it cannot be reshaped in place.
fn as_rows<B: Backend + ?Sized>(
    b: &B,
    s: &dyn BackendStorage,
    layout: &Layout,
    rows: &Shape,
) -> Result<(Option<BoxedStorage>, Layout)> {
    match layout.reshape(rows) {
        Some(view) => Ok((None, view)),
        None => Ok((
            Some(b.copy_strided(s, layout)?),
            Layout::contiguous(rows.clone()),
        )),
    }
}

/// [`Backend::max_pool2d_backward`] as `full` zeros and a `scatter` add of the gradient at the
/// indices.
pub(crate) fn max_pool2d_backward<B: Backend + ?Sized>(
    b: &B,
    grad: &dyn BackendStorage,
    grad_layout: &Layout,
    indices: &dyn BackendStorage,
    indices_layout: &Layout,
    spec: &Unfold2d,
) -> Result<BoxedStorage> {
    const OP: &str = "max_pool2d backward";
    let (oh, ow) = spec.check(OP)?;
    let (n, c) = (spec.n, spec.c);
    let expected = Shape::new([n, c, oh, ow]);
    for l in [grad_layout, indices_layout] {
        if l.shape() != &expected {
            return Err(Error::ShapeMismatch {
                op: OP,
                lhs: l.shape().clone(),
                rhs: expected,
            });
        }
    }
    let rows = Shape::new([n, c, oh * ow]);
    let (g_copy, gl) = as_rows(b, grad, grad_layout, &rows)?;
    let (i_copy, il) = as_rows(b, indices, indices_layout, &rows)?;
    let g = g_copy.as_deref().unwrap_or(grad);
    let i = i_copy.as_deref().unwrap_or(indices);
    let zeros = b.full(grad.dtype(), n * c * spec.h * spec.w, 0.0)?;
    let base = Layout::contiguous([n, c, spec.h * spec.w]);
    b.scatter(&*zeros, &base, i, &il, g, &gl, 2, ScatterMode::Add)
}
