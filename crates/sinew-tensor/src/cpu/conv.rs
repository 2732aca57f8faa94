//! CPU kernels of im2col (`unfold2d`) and its adjoint col2im (`fold2d`).
//!
//! Convolution is `unfold2d` followed by a matrix product; pooling reduces over the unfolded
//! window axis. Each (image, channel) plane is independent, so planes run in parallel.

use rayon::prelude::*;

use super::alloc::try_vec;
use super::{CpuStorage, contiguous_slice};
use crate::backend::Unfold2d;
use crate::{Element, Error, Layout, Result, Shape};

/// Input coordinate read by output position `o` at window tap `t`, if inside the image.
#[inline]
fn source(
    o: usize,
    t: usize,
    stride: usize,
    pad: usize,
    dilation: usize,
    size: usize,
) -> Option<usize> {
    (o * stride + t * dilation)
        .checked_sub(pad)
        .filter(|&i| i < size)
}

/// Checks the spec and that `layout` has the shape `expected` derives from it; returns
/// `(oh, ow)`. Kernels index with the spec's sizes, so a mismatch must be an error, not a panic.
fn checked_geometry(
    op: &'static str,
    layout: &Layout,
    s: &Unfold2d,
    expected: impl FnOnce(usize, usize) -> Result<Shape>,
) -> Result<(usize, usize)> {
    let (oh, ow) = s.check(op)?;
    let expected = expected(oh, ow)?;
    if layout.shape() != &expected {
        return Err(Error::ShapeMismatch {
            op,
            lhs: layout.shape().clone(),
            rhs: expected,
        });
    }
    Ok((oh, ow))
}

fn unfold_planes<T: Element + Default>(v: &[T], layout: &Layout, s: &Unfold2d) -> Result<Vec<T>> {
    const OP: &str = "unfold2d";
    let (oh, ow) = checked_geometry(OP, layout, s, |_, _| Ok(Shape::new([s.n, s.c, s.h, s.w])))?;
    let data = contiguous_slice(OP, v, layout)?;
    let (kh, kw) = s.kernel;
    // Products below are bounded by the column shape's element count, checked by `s.check`.
    let plane_out = kh * kw * oh * ow;
    let pad = T::from_f64(s.pad_value);
    let mut out = try_vec(OP, s.n * s.c * plane_out, T::default())?;
    if plane_out == 0 {
        return Ok(out);
    }
    out.par_chunks_mut(plane_out)
        .enumerate()
        .for_each(|(plane, cols)| {
            let img = &data[plane * s.h * s.w..(plane + 1) * s.h * s.w];
            for ki in 0..kh {
                for kj in 0..kw {
                    let row = &mut cols[(ki * kw + kj) * oh * ow..][..oh * ow];
                    for oy in 0..oh {
                        let y = source(oy, ki, s.stride.0, s.padding.0, s.dilation.0, s.h);
                        for ox in 0..ow {
                            let x = source(ox, kj, s.stride.1, s.padding.1, s.dilation.1, s.w);
                            row[oy * ow + ox] = match (y, x) {
                                (Some(y), Some(x)) => img[y * s.w + x],
                                _ => pad,
                            };
                        }
                    }
                }
            }
        });
    Ok(out)
}

fn fold_planes<T: Element + Default>(v: &[T], layout: &Layout, s: &Unfold2d) -> Result<Vec<T>> {
    const OP: &str = "fold2d";
    let (oh, ow) = checked_geometry(OP, layout, s, |oh, ow| s.cols_shape(OP, oh, ow))?;
    let cols = contiguous_slice(OP, v, layout)?;
    let (kh, kw) = s.kernel;
    let plane_in = kh * kw * oh * ow;
    let mut out = try_vec(OP, s.n * s.c * s.h * s.w, T::default())?;
    if out.is_empty() {
        return Ok(out);
    }
    out.par_chunks_mut(s.h * s.w)
        .enumerate()
        .for_each(|(plane, img)| {
            let mut acc = vec![0f64; s.h * s.w];
            let src = &cols[plane * plane_in..(plane + 1) * plane_in];
            for ki in 0..kh {
                for kj in 0..kw {
                    let row = &src[(ki * kw + kj) * oh * ow..][..oh * ow];
                    for oy in 0..oh {
                        let Some(y) = source(oy, ki, s.stride.0, s.padding.0, s.dilation.0, s.h)
                        else {
                            continue;
                        };
                        for ox in 0..ow {
                            if let Some(x) =
                                source(ox, kj, s.stride.1, s.padding.1, s.dilation.1, s.w)
                            {
                                acc[y * s.w + x] += row[oy * ow + ox].to_f64();
                            }
                        }
                    }
                }
            }
            for (o, a) in img.iter_mut().zip(acc) {
                *o = T::from_f64(a);
            }
        });
    Ok(out)
}

/// im2col of a `[n, c, h, w]` view.
pub(super) fn unfold2d(src: &CpuStorage, layout: &Layout, spec: &Unfold2d) -> Result<CpuStorage> {
    Ok(with_cpu_storage!(src, v => Element::into_storage(unfold_planes(v, layout, spec)?)))
}

/// col2im: sums columns back into a `[n, c, h, w]` image.
pub(super) fn fold2d(cols: &CpuStorage, layout: &Layout, spec: &Unfold2d) -> Result<CpuStorage> {
    match cols {
        CpuStorage::Bool(_) | CpuStorage::U8(_) => Err(Error::UnsupportedDType {
            op: "fold2d",
            dtype: cols.dtype(),
        }),
        other => {
            Ok(with_cpu_storage!(other, v => Element::into_storage(fold_planes(v, layout, spec)?)))
        }
    }
}
