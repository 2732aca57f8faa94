//! CPU kernels of im2col (`unfold2d`) and its adjoint col2im (`fold2d`).
//!
//! Convolution is `unfold2d` followed by a matrix product; pooling reduces over the unfolded
//! window axis. Each (image, channel) plane is independent, so planes run in parallel.

use rayon::prelude::*;

use std::mem::MaybeUninit;

use super::alloc::{try_vec, try_with_capacity};
use super::{CpuStorage, contiguous_slice};
use crate::backend::Unfold2d;
use crate::{Element, Error, Layout, Result, Shape};

/// Input coordinate read by output position `o` at window tap `t`, if inside the image.
#[inline]
pub(super) fn source(
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

/// The output positions `o < out` whose tap `t` reads inside the input (`o * stride + t *
/// dilation - pad` in `[0, size)`): a range, empty when none does.
#[inline]
fn valid_range(
    t: usize,
    stride: usize,
    pad: usize,
    dilation: usize,
    size: usize,
    out: usize,
) -> (usize, usize) {
    let off = t * dilation;
    let lo = pad.saturating_sub(off).div_ceil(stride).min(out);
    let hi = (size + pad).saturating_sub(off).div_ceil(stride).min(out);
    (lo, hi.max(lo))
}

/// Per tap column `kj < kw`: the output columns whose tap reads inside the image
/// ([`valid_range`]).
pub(super) fn tap_ranges(s: &Unfold2d, ow: usize) -> Vec<(usize, usize)> {
    let (sw, pw, dw) = (s.stride.1, s.padding.1, s.dilation.1);
    (0..s.kernel.1)
        .map(|kj| valid_range(kj, sw, pw, dw, s.w, ow))
        .collect()
}

/// Writes the im2col row of tap `(ki, kj)` of one `h x w` image plane `img`: `row` holds
/// `oh * ow` values (`ow` per output row), every one written (a tap or `pad`); `range` is
/// [`tap_ranges`]`[kj]`.
#[inline]
pub(super) fn unfold_row<T: Copy>(
    row: &mut [MaybeUninit<T>],
    img: &[T],
    s: &Unfold2d,
    ow: usize,
    (ki, kj): (usize, usize),
    (lo, hi): (usize, usize),
    pad: MaybeUninit<T>,
) {
    let (sw, pw, dw) = (s.stride.1, s.padding.1, s.dilation.1);
    for (oy, seg) in row.chunks_mut(ow).enumerate() {
        let y = source(oy, ki, s.stride.0, s.padding.0, s.dilation.0, s.h);
        let Some(y) = y.filter(|_| lo < hi) else {
            seg.fill(pad);
            continue;
        };
        seg[..lo].fill(pad);
        seg[hi..].fill(pad);
        // In bounds: `valid_range` keeps x = o * sw + kj * dw - pw in [0, w).
        let src = &img[y * s.w..(y + 1) * s.w];
        let x0 = lo * sw + kj * dw - pw;
        let mut written = 0;
        if sw == 1 {
            // A contiguous run: a plain copy loop the compiler vectorises.
            for (o, &v) in seg[lo..hi].iter_mut().zip(&src[x0..]) {
                o.write(v);
                written += 1;
            }
        } else {
            for (o, &v) in seg[lo..hi].iter_mut().zip(src[x0..].iter().step_by(sw)) {
                o.write(v);
                written += 1;
            }
        }
        // Never runs (the row holds every tap); keeps the segment initialised whatever the
        // arithmetic above.
        seg[lo + written..hi].fill(pad);
    }
}

/// Adds the col2im row of tap `(ki, kj)` (`oh * ow` values, `ow` per output row) into one
/// `h x w` image plane `img`; `range` is [`tap_ranges`]`[kj]`.
#[inline]
pub(super) fn fold_row<T: Copy + std::ops::AddAssign>(
    img: &mut [T],
    row: &[T],
    s: &Unfold2d,
    ow: usize,
    tap: (usize, usize),
    range: (usize, usize),
) {
    let add = |dst: &mut [T], src: &[T]| {
        for (d, &c) in dst.iter_mut().zip(src) {
            *d += c;
        }
    };
    fold_row_with(img, row, s, ow, tap, range, add);
}

/// [`fold_row`] with `add(dst, src)` (`dst[i] += src[i]`, equal lengths) adding the contiguous
/// segments of a width-stride-1 window row (a vectorised add for the f32 kernels).
#[inline]
pub(super) fn fold_row_with<T: Copy + std::ops::AddAssign>(
    img: &mut [T],
    row: &[T],
    s: &Unfold2d,
    ow: usize,
    (ki, kj): (usize, usize),
    (lo, hi): (usize, usize),
    add: impl Fn(&mut [T], &[T]),
) {
    let (sw, pw, dw) = (s.stride.1, s.padding.1, s.dilation.1);
    for (oy, seg) in row.chunks(ow).enumerate() {
        let y = source(oy, ki, s.stride.0, s.padding.0, s.dilation.0, s.h);
        let Some(y) = y.filter(|_| lo < hi) else {
            continue;
        };
        // In bounds: `valid_range` keeps x = o * sw + kj * dw - pw in [0, w).
        let dst = &mut img[y * s.w..(y + 1) * s.w];
        let x0 = lo * sw + kj * dw - pw;
        if sw == 1 {
            add(&mut dst[x0..x0 + (hi - lo)], &seg[lo..hi]);
        } else {
            for (i, &c) in seg[lo..hi].iter().enumerate() {
                dst[x0 + i * sw] += c;
            }
        }
    }
}

/// Checks the spec and that `layout` has the shape `expected` derives from it; returns
/// `(oh, ow)`. Kernels index with the spec's sizes, so a mismatch must be an error, not a panic.
pub(super) fn checked_geometry(
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
    let total = s.n * s.c * plane_out;
    // Every element is written below, so the buffer is not zero-filled first.
    let mut out = try_with_capacity::<T>(OP, total)?;
    if plane_out == 0 {
        return Ok(out);
    }
    let ranges = tap_ranges(s, ow);
    let pad = MaybeUninit::new(pad);
    out.spare_capacity_mut()[..total]
        .par_chunks_mut(plane_out)
        .enumerate()
        .for_each(|(plane, cols)| {
            let img = &data[plane * s.h * s.w..(plane + 1) * s.h * s.w];
            for ki in 0..kh {
                for (kj, &range) in ranges.iter().enumerate() {
                    let row = &mut cols[(ki * kw + kj) * oh * ow..][..oh * ow];
                    unfold_row(row, img, s, ow, (ki, kj), range, pad);
                }
            }
        });
    // The loop above initialised all of `spare_capacity_mut()[..total]` (slicing checks that
    // it exists): each of the `n * c` chunks of `plane_out = kh * kw * oh * ow` elements is
    // split into `kh * kw` rows of `oh * ow`, and `unfold_row` writes every element of its row
    // (each segment of `ow` whole: all padding, or padding on `[..lo]` and `[hi..]`, taps on
    // `[lo, lo + written)` and padding on the rest of `[lo, hi)`).
    // SAFETY: capacity >= total (`try_with_capacity`), the first `total` elements are
    // initialised (above), and a panic before this line leaves the length 0, exposing nothing.
    unsafe { out.set_len(total) };
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

/// col2im of f32/f64 columns, accumulating in the element type (as PyTorch does) straight
/// into the output, a contiguous row segment per window row.
fn fold_planes_float<T>(v: &[T], layout: &Layout, s: &Unfold2d) -> Result<Vec<T>>
where
    T: Element + Default + std::ops::AddAssign,
{
    const OP: &str = "fold2d";
    let (oh, ow) = checked_geometry(OP, layout, s, |oh, ow| s.cols_shape(OP, oh, ow))?;
    let cols = contiguous_slice(OP, v, layout)?;
    let (kh, kw) = s.kernel;
    let plane_in = kh * kw * oh * ow;
    let mut out = try_vec(OP, s.n * s.c * s.h * s.w, T::default())?;
    if out.is_empty() || plane_in == 0 {
        return Ok(out);
    }
    let ranges = tap_ranges(s, ow);
    out.par_chunks_mut(s.h * s.w)
        .zip(cols.par_chunks(plane_in))
        .for_each(|(img, src)| {
            for ki in 0..kh {
                for (kj, &range) in ranges.iter().enumerate() {
                    let row = &src[(ki * kw + kj) * oh * ow..][..oh * ow];
                    fold_row(img, row, s, ow, (ki, kj), range);
                }
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
        CpuStorage::F32(v) => Ok(CpuStorage::F32(fold_planes_float(v, layout, spec)?)),
        CpuStorage::F64(v) => Ok(CpuStorage::F64(fold_planes_float(v, layout, spec)?)),
        other => {
            Ok(with_cpu_storage!(other, v => Element::into_storage(fold_planes(v, layout, spec)?)))
        }
    }
}
