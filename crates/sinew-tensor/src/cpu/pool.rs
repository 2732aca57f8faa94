//! Direct CPU kernels of 2-d max pooling: values and indices in one pass over each window
//! (forward) and the gradient routed to the saved indices (backward).
//!
//! The forward loop is PyTorch's (`cpu_max_pool` in ATen): each window starts at its first
//! in-bounds tap, whose index is reported when every value is -inf, and a tap replaces the
//! running maximum when it is larger or NaN (so a window holding NaN reports NaN and the index
//! of its last NaN). Each (image, channel) plane is independent; planes run in parallel above
//! [`PARALLEL_THRESHOLD`] elements.

use rayon::prelude::*;

use super::alloc::try_vec;
use super::{CpuStorage, PARALLEL_THRESHOLD, contiguous_slice};
use crate::backend::Unfold2d;
use crate::{DType, Element, Error, Layout, Result, Shape};

/// Checks the spec and that `layout` is `expected`; returns `(oh, ow)`.
fn geometry(
    op: &'static str,
    layout: &Layout,
    s: &Unfold2d,
    expected: [usize; 4],
) -> Result<(usize, usize)> {
    let (oh, ow) = s.check(op)?;
    let expected = Shape::new(expected);
    if layout.shape() != &expected {
        return Err(Error::ShapeMismatch {
            op,
            lhs: layout.shape().clone(),
            rhs: expected,
        });
    }
    Ok((oh, ow))
}

/// One plane of the 2x2 window with stride 2 and no padding (`oh = h / 2`, `ow = w / 2`, so
/// every window is inside the image): the taps in PyTorch's order (row by row), a tap
/// replacing the running maximum when it is larger or NaN, by selects rather than branches.
#[inline(always)]
pub(super) fn plane_2x2<T: Element>(
    img: &[T],
    w: usize,
    ow: usize,
    vals: &mut [T],
    idxs: &mut [i64],
) {
    let outs = vals.chunks_mut(ow).zip(idxs.chunks_mut(ow));
    for (oy, (vals, idxs)) in outs.enumerate() {
        let base = 2 * oy * w;
        let (Some(r0), Some(r1)) = (
            img.get(base..base + 2 * ow),
            img.get(base + w..base + w + 2 * ow),
        ) else {
            return;
        };
        let pairs = r0.chunks_exact(2).zip(r1.chunks_exact(2));
        let outs = vals.iter_mut().zip(idxs.iter_mut());
        for (ox, ((top, bottom), (val_out, idx_out))) in pairs.zip(outs).enumerate() {
            let (mut best, mut off) = (top[0], 0);
            for (val, at) in [(top[1], 1), (bottom[0], w), (bottom[1], w + 1)] {
                #[allow(clippy::eq_op)]
                let take = val > best || val != val;
                best = if take { val } else { best };
                off = if take { at } else { off };
            }
            *val_out = best;
            *idx_out = (base + 2 * ox + off) as i64;
        }
    }
}

/// [`plane_2x2`] compiled for AVX2 (the same comparisons and selects).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn plane_2x2_avx2<T: Element>(img: &[T], w: usize, ow: usize, vals: &mut [T], idxs: &mut [i64]) {
    plane_2x2(img, w, ow, vals, idxs);
}

fn forward_planes<T: Element + Default>(
    v: &[T],
    layout: &Layout,
    s: &Unfold2d,
) -> Result<(Vec<T>, Vec<i64>)> {
    const OP: &str = "max_pool2d";
    let (oh, ow) = geometry(OP, layout, s, [s.n, s.c, s.h, s.w])?;
    let data = contiguous_slice(OP, v, layout)?;
    let (plane_in, plane_out) = (s.h * s.w, oh * ow);
    // Both counts are bounded by `s.check` (input and column shapes are addressable).
    let total = s.n * s.c * plane_out;
    let mut values = try_vec(OP, total, T::default())?;
    let mut indices = try_vec(OP, total, 0i64)?;
    if total == 0 {
        return Ok((values, indices));
    }
    let neg_inf = T::from_f64(f64::NEG_INFINITY);
    let (kh, kw) = s.kernel;
    // Window taps per output row and column, computed once.
    let rows: Vec<(usize, usize)> = (0..oh).map(|o| s.pool_taps(true, o)).collect();
    let cols: Vec<(usize, usize)> = (0..ow).map(|o| s.pool_taps(false, o)).collect();
    let (dh, dw, w) = (s.dilation.0, s.dilation.1, s.w);
    // The common 2x2 window with stride 2 and no padding: every window is inside the image,
    // and the running maximum is updated by selects rather than branches.
    let two_by_two =
        s.kernel == (2, 2) && s.stride == (2, 2) && s.padding == (0, 0) && s.dilation == (1, 1);
    let pool_2x2 = |(img, (vals, idxs)): (&[T], (&mut [T], &mut [i64]))| {
        if super::pool_2x2_avx2::try_plane_2x2(img, w, ow, vals, idxs) {
            return;
        }
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: `plane_2x2_avx2` only needs the AVX2 instructions it was compiled with,
            // and the line above checked at run time that this CPU has them.
            unsafe { plane_2x2_avx2(img, w, ow, vals, idxs) };
            return;
        }
        plane_2x2(img, w, ow, vals, idxs);
    };
    let pool_plane = |(img, (vals, idxs)): (&[T], (&mut [T], &mut [i64]))| {
        if two_by_two {
            return pool_2x2((img, (vals, idxs)));
        }
        let outs = vals.chunks_mut(ow).zip(idxs.chunks_mut(ow));
        for (&(y0, y1), (vals, idxs)) in rows.iter().zip(outs) {
            for ((&(x0, x1), val_out), idx_out) in cols.iter().zip(vals).zip(idxs) {
                let mut best = neg_inf;
                let mut at = y0 * w + x0;
                let mut y = y0;
                while y < y1 {
                    let row = &img[y * w..(y + 1) * w];
                    let mut x = x0;
                    while x < x1 {
                        let val = row[x];
                        // `val != val` is NaN (Element has no is_nan); PyTorch keeps the last NaN.
                        #[allow(clippy::eq_op)]
                        if val > best || val != val {
                            best = val;
                            at = y * w + x;
                        }
                        x += dw;
                    }
                    y += dh;
                }
                *val_out = best;
                *idx_out = at as i64;
            }
        }
    };
    if plane_in == 0 {
        return Err(Error::invalid(
            OP,
            format!("expects a non-empty input plane, got {}x{}", s.h, s.w),
        ));
    }
    if s.n * s.c * plane_in.max(plane_out * kh * kw) >= PARALLEL_THRESHOLD {
        data.par_chunks(plane_in)
            .zip(
                values
                    .par_chunks_mut(plane_out)
                    .zip(indices.par_chunks_mut(plane_out)),
            )
            .for_each(pool_plane);
    } else {
        data.chunks(plane_in)
            .zip(
                values
                    .chunks_mut(plane_out)
                    .zip(indices.chunks_mut(plane_out)),
            )
            .for_each(pool_plane);
    }
    Ok((values, indices))
}

fn backward_planes<T: Element + Default>(
    grad: &[T],
    grad_layout: &Layout,
    idx: &[i64],
    idx_layout: &Layout,
    s: &Unfold2d,
) -> Result<Vec<T>> {
    const OP: &str = "max_pool2d backward";
    let (oh, ow) = s.check(OP)?;
    geometry(OP, grad_layout, s, [s.n, s.c, oh, ow])?;
    geometry(OP, idx_layout, s, [s.n, s.c, oh, ow])?;
    let grad = contiguous_slice(OP, grad, grad_layout)?;
    let idx = contiguous_slice(OP, idx, idx_layout)?;
    let (plane_in, plane_out) = (s.h * s.w, oh * ow);
    if let Some(&bad) = idx.iter().find(|&&i| i < 0 || i as u64 >= plane_in as u64) {
        return Err(Error::invalid(
            OP,
            format!("index {bad} is outside the {}x{} input plane", s.h, s.w),
        ));
    }
    let mut out = try_vec(OP, s.n * s.c * plane_in, T::default())?;
    if out.is_empty() || plane_out == 0 {
        return Ok(out);
    }
    let route = |(img, (g, i)): (&mut [T], (&[T], &[i64]))| {
        for (&g, &i) in g.iter().zip(i) {
            // In bounds: every index was checked against `plane_in` above.
            let slot = &mut img[i as usize];
            *slot = T::from_f64(slot.to_f64() + g.to_f64());
        }
    };
    if s.n * s.c * plane_in >= PARALLEL_THRESHOLD {
        out.par_chunks_mut(plane_in)
            .zip(grad.par_chunks(plane_out).zip(idx.par_chunks(plane_out)))
            .for_each(route);
    } else {
        out.chunks_mut(plane_in)
            .zip(grad.chunks(plane_out).zip(idx.chunks(plane_out)))
            .for_each(route);
    }
    Ok(out)
}

fn unsupported(op: &'static str, dtype: DType) -> Error {
    Error::UnsupportedDType { op, dtype }
}

/// Max pooling of a float `[n, c, h, w]` view: values `[n, c, oh, ow]` and i64 flat indices.
pub(super) fn max_pool2d(
    src: &CpuStorage,
    layout: &Layout,
    spec: &Unfold2d,
) -> Result<(CpuStorage, CpuStorage)> {
    fn run<T: Element + Default>(
        v: &[T],
        l: &Layout,
        s: &Unfold2d,
    ) -> Result<(CpuStorage, CpuStorage)> {
        let (values, indices) = forward_planes(v, l, s)?;
        Ok((T::into_storage(values), CpuStorage::I64(indices)))
    }
    match src {
        CpuStorage::F32(v) => run(v, layout, spec),
        CpuStorage::F64(v) => run(v, layout, spec),
        CpuStorage::F16(v) => run(v, layout, spec),
        CpuStorage::BF16(v) => run(v, layout, spec),
        other => Err(unsupported("max_pool2d", other.dtype())),
    }
}

/// Backward of [`max_pool2d`]: `[n, c, h, w]` zeros with each gradient element added at its
/// index. Indices outside the plane are an error.
pub(super) fn max_pool2d_backward(
    grad: &CpuStorage,
    grad_layout: &Layout,
    indices: &CpuStorage,
    indices_layout: &Layout,
    spec: &Unfold2d,
) -> Result<CpuStorage> {
    const OP: &str = "max_pool2d backward";
    let CpuStorage::I64(idx) = indices else {
        return Err(unsupported(OP, indices.dtype()));
    };
    let (gl, il) = (grad_layout, indices_layout);
    Ok(match grad {
        CpuStorage::F32(g) => CpuStorage::F32(backward_planes(g, gl, idx, il, spec)?),
        CpuStorage::F64(g) => CpuStorage::F64(backward_planes(g, gl, idx, il, spec)?),
        CpuStorage::F16(g) => CpuStorage::F16(backward_planes(g, gl, idx, il, spec)?),
        CpuStorage::BF16(g) => CpuStorage::BF16(backward_planes(g, gl, idx, il, spec)?),
        other => return Err(unsupported(OP, other.dtype())),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::CpuBackend;
    use crate::backend::BoxedStorage;
    use crate::composite_pool;

    fn spec(h: usize, w: usize, k: usize, stride: usize, pad: usize, dil: usize) -> Unfold2d {
        Unfold2d {
            n: 2,
            c: 3,
            h,
            w,
            kernel: (k, k),
            stride: (stride, stride),
            padding: (pad, pad),
            dilation: (dil, dil),
            pad_value: f64::NEG_INFINITY,
        }
    }

    /// Values on a coarse grid (many ties), some -inf, from a fixed LCG.
    fn data(len: usize, seed: u64) -> Vec<f32> {
        let mut state = seed;
        (0..len)
            .map(|_| {
                state = state
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                match (state >> 33) % 9 {
                    0 => f32::NEG_INFINITY,
                    r => r as f32 - 4.0,
                }
            })
            .collect()
    }

    fn host(s: &BoxedStorage) -> &CpuStorage {
        super::super::cpu(&**s)
    }

    #[test]
    fn forward_and_backward_equal_the_composite() {
        let cases = [
            spec(6, 6, 2, 2, 0, 1),
            spec(7, 9, 2, 2, 0, 1),
            spec(3, 34, 2, 2, 0, 1),
            spec(7, 5, 3, 1, 1, 1),
            spec(7, 7, 3, 2, 1, 2),
            spec(5, 8, 2, 1, 1, 3),
            spec(9, 6, 3, 3, 0, 1),
        ];
        for (case, s) in cases.iter().enumerate() {
            let (oh, ow) = s.check("test").unwrap();
            let layout = Layout::contiguous([s.n, s.c, s.h, s.w]);
            let x = CpuStorage::F32(data(s.n * s.c * s.h * s.w, case as u64 + 1));
            let (v, i) = max_pool2d(&x, &layout, s).unwrap();
            let (cv, ci) = composite_pool::max_pool2d(&CpuBackend, &x, &layout, s).unwrap();
            assert_eq!(&v, host(&cv), "values, case {case}");
            assert_eq!(&i, host(&ci), "indices, case {case}");
            let out = Layout::contiguous([s.n, s.c, oh, ow]);
            let g = CpuStorage::F32(
                data(s.n * s.c * oh * ow, 99)
                    .iter()
                    .map(|x| x.max(-5.0))
                    .collect(),
            );
            let dx = max_pool2d_backward(&g, &out, &i, &out, s).unwrap();
            let cdx =
                composite_pool::max_pool2d_backward(&CpuBackend, &g, &out, &i, &out, s).unwrap();
            assert_eq!(&dx, host(&cdx), "gradient, case {case}");
        }
    }

    #[test]
    fn windows_of_minus_infinity_report_their_first_in_bounds_tap() {
        // torch: F.max_pool2d(torch.full((1, 1, 3, 3), -inf), 2, stride=2, padding=1,
        // return_indices=True) -> values all -inf, indices [[0, 1], [3, 4]].
        let s = Unfold2d {
            n: 1,
            c: 1,
            ..spec(3, 3, 2, 2, 1, 1)
        };
        let x = CpuStorage::F32(vec![f32::NEG_INFINITY; 9]);
        let (v, i) = max_pool2d(&x, &Layout::contiguous([1, 1, 3, 3]), &s).unwrap();
        assert_eq!(v, CpuStorage::F32(vec![f32::NEG_INFINITY; 4]));
        assert_eq!(i, CpuStorage::I64(vec![0, 1, 3, 4]));
    }

    #[test]
    fn nan_wins_and_the_last_nan_is_reported() {
        // PyTorch's CPU kernel: `if (val > maxval || isnan(val))`.
        let s = Unfold2d {
            n: 1,
            c: 1,
            ..spec(2, 2, 2, 2, 0, 1)
        };
        let x = CpuStorage::F64(vec![1.0, f64::NAN, 3.0, f64::NAN]);
        let (v, i) = max_pool2d(&x, &Layout::contiguous([1, 1, 2, 2]), &s).unwrap();
        let CpuStorage::F64(v) = v else {
            panic!("dtype")
        };
        assert!(v[0].is_nan());
        assert_eq!(i, CpuStorage::I64(vec![3]));
    }

    #[test]
    fn bad_arguments_are_errors() {
        let s = Unfold2d {
            n: 1,
            c: 1,
            ..spec(2, 2, 2, 2, 0, 1)
        };
        let x = CpuStorage::F32(vec![0.0; 4]);
        assert!(max_pool2d(&x, &Layout::contiguous([1, 1, 2, 3]), &s).is_err());
        assert!(
            max_pool2d(
                &CpuStorage::I64(vec![0; 4]),
                &Layout::contiguous([1, 1, 2, 2]),
                &s
            )
            .is_err()
        );
        let one = Layout::contiguous([1, 1, 1, 1]);
        let g = CpuStorage::F32(vec![1.0]);
        let err = max_pool2d_backward(&g, &one, &CpuStorage::I64(vec![4]), &one, &s).unwrap_err();
        assert!(err.to_string().contains("outside"), "{err}");
        let dx = max_pool2d_backward(&g, &one, &CpuStorage::I64(vec![3]), &one, &s).unwrap();
        assert_eq!(dx, CpuStorage::F32(vec![0.0, 0.0, 0.0, 1.0]));
    }
}
