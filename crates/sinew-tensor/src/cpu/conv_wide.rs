//! CPU kernels of the "wide" im2col layout: the columns of a batch side by side,
//! `[c*kh*kw, n*oh*ow]`, so that a convolution over a chunk of images is one matrix product
//! `weight [o, c*kh*kw] @ columns` (the weight packed once per chunk instead of once per image),
//! and its adjoint col2im from that layout.

use rayon::prelude::*;

use std::mem::MaybeUninit;

use super::alloc::{try_vec, try_with_capacity};
use super::conv::{checked_geometry, fold_row, tap_ranges, unfold_row};
use super::{CpuStorage, contiguous_slice};
use crate::backend::Unfold2d;
use crate::{Element, Error, Layout, Result, Shape};

fn unfold_wide<T: Element + Default>(v: &[T], layout: &Layout, s: &Unfold2d) -> Result<Vec<T>> {
    const OP: &str = "unfold2d_wide";
    let (oh, ow) = checked_geometry(OP, layout, s, |_, _| Ok(Shape::new([s.n, s.c, s.h, s.w])))?;
    let total = s.wide_cols_shape(OP, oh, ow)?.elem_count();
    let data = contiguous_slice(OP, v, layout)?;
    let (kh, kw) = s.kernel;
    // Bounded by `total`, the column shape's element count checked above.
    let (l, plane, row_len) = (oh * ow, s.h * s.w, s.n * oh * ow);
    // Every element is written below, so the buffer is not zero-filled first.
    let mut out = try_with_capacity::<T>(OP, total)?;
    if total == 0 {
        return Ok(out);
    }
    let ranges = tap_ranges(s, ow);
    let pad = MaybeUninit::new(T::from_f64(s.pad_value));
    out.spare_capacity_mut()[..total]
        .par_chunks_mut(row_len)
        .enumerate()
        .for_each(|(r, row)| {
            let (ch, tap) = (r / (kh * kw), r % (kh * kw));
            let (ki, kj) = (tap / kw, tap % kw);
            for (img, seg) in row.chunks_mut(l).enumerate() {
                let src = &data[(img * s.c + ch) * plane..][..plane];
                unfold_row(seg, src, s, ow, (ki, kj), ranges[kj], pad);
            }
        });
    // The loop above initialised all of `spare_capacity_mut()[..total]` (slicing checks that
    // it exists): it is split into `c * kh * kw` rows of `n * oh * ow`, each into `n` segments
    // of `oh * ow`, and `unfold_row` writes every element of its segment.
    // SAFETY: capacity >= total (`try_with_capacity`), the first `total` elements are
    // initialised (above), and a panic before this line leaves the length 0, exposing nothing.
    unsafe { out.set_len(total) };
    Ok(out)
}

fn fold_wide<T>(v: &[T], layout: &Layout, s: &Unfold2d) -> Result<Vec<T>>
where
    T: Element + Default + std::ops::AddAssign,
{
    const OP: &str = "fold2d_wide";
    let (oh, ow) = checked_geometry(OP, layout, s, |oh, ow| s.wide_cols_shape(OP, oh, ow))?;
    let cols = contiguous_slice(OP, v, layout)?;
    let (kh, kw) = s.kernel;
    // Bounded by the column shape's element count (checked above).
    let (l, taps, row_len) = (oh * ow, kh * kw, s.n * oh * ow);
    let mut out = try_vec(OP, s.n * s.c * s.h * s.w, T::default())?;
    if out.is_empty() || row_len == 0 || taps == 0 {
        return Ok(out);
    }
    let ranges = tap_ranges(s, ow);
    out.par_chunks_mut(s.h * s.w)
        .enumerate()
        .for_each(|(p, img)| {
            let (n, ch) = (p / s.c, p % s.c);
            for ki in 0..kh {
                for (kj, &range) in ranges.iter().enumerate() {
                    let r = ch * taps + ki * kw + kj;
                    let row = &cols[r * row_len + n * l..][..l];
                    fold_row(img, row, s, ow, (ki, kj), range);
                }
            }
        });
    Ok(out)
}

/// im2col of a `[n, c, h, w]` view into wide columns `[c*kh*kw, n*oh*ow]`.
pub(super) fn unfold2d_wide(
    src: &CpuStorage,
    layout: &Layout,
    spec: &Unfold2d,
) -> Result<CpuStorage> {
    Ok(with_cpu_storage!(src, v => Element::into_storage(unfold_wide(v, layout, spec)?)))
}

/// col2im of wide f32/f64 columns `[c*kh*kw, n*oh*ow]` into `[n, c, h, w]`, accumulating in
/// the element type; `None` for other dtypes (the caller composes those).
pub(super) fn fold2d_wide(
    cols: &CpuStorage,
    layout: &Layout,
    spec: &Unfold2d,
) -> Option<Result<CpuStorage>> {
    Some(match cols {
        CpuStorage::F32(v) => fold_wide(v, layout, spec).map(CpuStorage::F32),
        CpuStorage::F64(v) => fold_wide(v, layout, spec).map(CpuStorage::F64),
        CpuStorage::Bool(_) | CpuStorage::U8(_) => Err(Error::UnsupportedDType {
            op: "fold2d_wide",
            dtype: cols.dtype(),
        }),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use crate::{DType, Device, Generator, Tensor, Unfold2d};

    /// Geometries with padding, stride, dilation and a non-square kernel.
    fn specs(x: &Tensor) -> Vec<Unfold2d> {
        [
            ((3, 3), (1, 1), (1, 1), (1, 1)),
            ((2, 3), (2, 1), (1, 2), (1, 2)),
            ((1, 1), (3, 2), (0, 0), (1, 1)),
            ((3, 2), (1, 3), (2, 0), (2, 1)),
        ]
        .into_iter()
        .map(|(k, s, p, d)| x.unfold_spec("unfold2d", k, s, p, d, 0.0).unwrap())
        .collect()
    }

    /// `[n, rows, l]` columns as wide `[rows, n*l]` (the reference layout).
    fn widen(cols: &Tensor) -> Tensor {
        let d = cols.dims().to_vec();
        cols.permute(&[1, 0, 2])
            .unwrap()
            .contiguous()
            .unwrap()
            .reshape([d[1], d[0] * d[2]])
            .unwrap()
    }

    #[test]
    fn wide_unfold_and_fold_equal_the_per_image_kernels() {
        let cpu = Device::cpu();
        for dtype in [DType::F32, DType::F64, DType::F16] {
            let x = Generator::new(5)
                .uniform([3, 2, 7, 6], -1.0, 1.0, dtype, &cpu)
                .unwrap();
            for spec in specs(&x) {
                let wide = x.unfold2d_wide_untracked(&spec).unwrap();
                let reference = widen(&x.unfold2d_untracked(&spec).unwrap());
                assert_eq!(wide.dims(), reference.dims());
                assert_eq!(
                    wide.to_vec_f64().unwrap(),
                    reference.to_vec_f64().unwrap(),
                    "unfold {dtype:?} {spec:?}"
                );
                // Fold: distinct values per column so every accumulation is checked.
                let cols = Generator::new(9)
                    .uniform(wide.dims().to_vec(), -1.0, 1.0, dtype, &cpu)
                    .unwrap();
                let d = x.unfold2d_untracked(&spec).unwrap().dims().to_vec();
                let per_image = cols
                    .reshape([d[1], d[0], d[2]])
                    .unwrap()
                    .permute(&[1, 0, 2])
                    .unwrap()
                    .contiguous()
                    .unwrap();
                let a = cols.fold2d_wide_untracked(&spec).unwrap();
                let b = per_image.fold2d_untracked(&spec).unwrap();
                let (a, b) = (a.to_vec_f64().unwrap(), b.to_vec_f64().unwrap());
                let tol = if dtype == DType::F16 { 1e-2 } else { 1e-6 };
                for (u, v) in a.iter().zip(&b) {
                    assert!((u - v).abs() <= tol, "fold {dtype:?} {spec:?}: {u} vs {v}");
                }
            }
        }
    }

    #[test]
    fn wide_ops_reject_mismatched_shapes_and_empty_batches_work() {
        let cpu = Device::cpu();
        let x = Tensor::zeros([2, 3, 5, 5], DType::F32, &cpu).unwrap();
        let spec = specs(&x)[0];
        let other = Tensor::zeros([2, 3, 5, 4], DType::F32, &cpu).unwrap();
        assert!(other.unfold2d_wide_untracked(&spec).is_err());
        assert!(other.fold2d_wide_untracked(&spec).is_err());
        let empty = Tensor::zeros([0, 3, 5, 5], DType::F32, &cpu).unwrap();
        let spec = specs(&empty)[0];
        let cols = empty.unfold2d_wide_untracked(&spec).unwrap();
        assert_eq!(cols.dims(), &[27, 0]);
        assert_eq!(
            cols.fold2d_wide_untracked(&spec).unwrap().dims(),
            &[0, 3, 5, 5]
        );
    }
}
