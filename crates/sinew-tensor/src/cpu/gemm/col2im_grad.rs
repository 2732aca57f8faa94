//! Convolution input gradient image by image: `columns [c*kh*kw, oh*ow] = wᵀ @ grad` for one
//! image, then col2im of those columns into the image's gradient, while they are still in the
//! cache. The batch's columns are never stored whole, the output gradient is read in its
//! `[n, out, oh, ow]` layout (one image's `[out, oh*ow]` rows are contiguous, no transposed
//! copy), and each thread reuses one column buffer for its block of images.
//!
//! The sums are those of the wide-columns path (`grad/conv2d_chunks.rs`): each column element
//! is one product over the output channels in order, and col2im adds the taps in the same order.

use rayon::prelude::*;

use super::{MatMut, MatRef, sgemm};
use crate::backend::Unfold2d;
use crate::cpu::CpuStorage;
use crate::cpu::alloc::try_vec;
use crate::cpu::conv::{fold_row_with, tap_ranges};
use crate::{Error, Layout, Result, Shape};

const OP: &str = "conv2d (input gradient)";

/// The input gradient `[n, c, h, w]` of a one-group convolution of `spec` from the f32 output
/// gradient `g` (`[n, out, oh, ow]`) and weight `w` (`[out, c, kh, kw]`), plus `add` (an f32
/// `[n, c, h, w]` view) when given, image by image while it is in the cache. `None` where this
/// path does not apply (other dtypes, no packed kernel).
pub(crate) fn conv2d_input_grad_f32(
    g: &CpuStorage,
    gl: &Layout,
    w: &CpuStorage,
    wl: &Layout,
    spec: &Unfold2d,
    add: Option<(&CpuStorage, &Layout)>,
) -> Option<Result<Vec<f32>>> {
    let (CpuStorage::F32(gv), CpuStorage::F32(wv)) = (g, w) else {
        return None;
    };
    if !super::packed_kernel_available() {
        return None;
    }
    Some(input_grad(gv, gl, wv, wl, spec, add))
}

/// The values of `add` (an f32 view of the input's shape), contiguous.
fn addend<'a>(
    add: Option<(&'a CpuStorage, &Layout)>,
    spec: &Unfold2d,
) -> Result<Option<std::borrow::Cow<'a, [f32]>>> {
    let Some((storage, layout)) = add else {
        return Ok(None);
    };
    let input = [spec.n, spec.c, spec.h, spec.w];
    match storage {
        CpuStorage::F32(values) if layout.dims() == input => {
            crate::cpu::contiguous_slice(OP, values, layout).map(Some)
        }
        _ => Err(Error::invalid(
            OP,
            format!(
                "the gradient to add is {:?} {}, not f32 {:?}",
                storage.dtype(),
                layout.shape(),
                input
            ),
        )),
    }
}

fn input_grad(
    gv: &[f32],
    gl: &Layout,
    wv: &[f32],
    wl: &Layout,
    spec: &Unfold2d,
    add: Option<(&CpuStorage, &Layout)>,
) -> Result<Vec<f32>> {
    let (oh, ow) = spec.check(OP)?;
    let &[gn, out, goh, gow] = gl.dims() else {
        return Err(Error::invalid(OP, format!("gradient shape {}", gl.shape())));
    };
    let (kh, kw) = spec.kernel;
    let weight = Shape::new([out, spec.c, kh, kw]);
    if wl.shape() != &weight || (gn, goh, gow) != (spec.n, oh, ow) {
        return Err(Error::ShapeMismatch {
            op: OP,
            lhs: gl.shape().clone(),
            rhs: wl.shape().clone(),
        });
    }
    let g = crate::cpu::contiguous_slice(OP, gv, gl)?;
    let w = crate::cpu::contiguous_slice(OP, wv, wl)?;
    // Bounded by the checked gradient, weight and column sizes (`spec.check`).
    let (l, taps, rows) = (oh * ow, kh * kw, spec.c * kh * kw);
    let (plane, image) = (spec.h * spec.w, spec.c * spec.h * spec.w);
    let cols_len = rows.checked_mul(l).ok_or_else(|| Error::Overflow {
        op: OP,
        what: format!("the columns {rows} x {l}"),
    })?;
    let total = spec.n.checked_mul(image).ok_or_else(|| Error::Overflow {
        op: OP,
        what: format!("the input gradient of {} images of {image}", spec.n),
    })?;
    let add = addend(add, spec)?;
    let add = add.as_deref();
    let mut dx = try_vec(OP, total, 0.0f32)?;
    if total == 0 || l == 0 || rows == 0 || out == 0 {
        if let Some(add) = add {
            dx.iter_mut().zip(add).for_each(|(d, a)| *d += a);
        }
        return Ok(dx);
    }
    let (g, w) = (&g[..], &w[..]);
    if g.len() != spec.n * out * l || w.len() != out * rows {
        return Err(Error::invalid(OP, "operands shorter than their shapes"));
    }
    let ranges = tap_ranges(spec, ow);
    let add_assign = add_assign_fn();
    let blocks = rayon::current_num_threads().min(spec.n).max(1);
    let per = spec.n.div_ceil(blocks);
    // Images `[i0, i0 + len)` into `dx_block`, through one column buffer.
    let block = |i0: usize, dx_block: &mut [f32], parallel: bool| -> Result<()> {
        let mut cols = try_vec(OP, cols_len, 0.0f32)?;
        for (i, dx_img) in dx_block.chunks_exact_mut(image).enumerate() {
            let g_img = &g[(i0 + i) * out * l..][..out * l];
            // `wᵀ`: rows `c*kh*kw` one element apart, columns (output channels) `rows` apart.
            let a = MatRef {
                ptr: w.as_ptr(),
                row_stride: 1,
                col_stride: rows as isize,
            };
            let b = MatRef {
                ptr: g_img.as_ptr(),
                row_stride: l as isize,
                col_stride: 1,
            };
            let c = MatMut {
                ptr: cols.as_mut_ptr(),
                row_stride: l as isize,
                col_stride: 1,
            };
            // SAFETY: `w` holds `out * rows` elements (checked above), so `a` reads `rows x
            // out` inside it; `g_img` is `out x l`; `cols` is the `rows x l` buffer, distinct
            // elements, owned by this closure and overlapping neither operand.
            unsafe { sgemm(rows, out, l, a, b, c, false, parallel)? };
            for (ch, dst) in dx_img.chunks_exact_mut(plane).enumerate() {
                for ki in 0..kh {
                    for (kj, &range) in ranges.iter().enumerate() {
                        let row = &cols[(ch * taps + ki * kw + kj) * l..][..l];
                        fold_row_with(dst, row, spec, ow, (ki, kj), range, add_assign);
                    }
                }
            }
            if let Some(add) = add {
                let add_img = &add[(i0 + i) * image..][..image];
                dx_img.iter_mut().zip(add_img).for_each(|(d, a)| *d += a);
            }
        }
        Ok(())
    };
    if blocks > 1 {
        dx.par_chunks_mut(per * image)
            .enumerate()
            .try_for_each(|(b, dx_block)| block(b * per, dx_block, false))?;
    } else {
        block(0, &mut dx, true)?;
    }
    Ok(dx)
}

/// `dst[i] += src[i]` over the shorter length, for the fold: through AVX-512 (one masked
/// vector for a short segment) where the CPU has it, else the plain loop.
fn add_assign_fn() -> fn(&mut [f32], &[f32]) {
    #[cfg(target_arch = "x86_64")]
    if crate::cpu::has_avx512f() {
        return |dst, src| {
            let n = dst.len().min(src.len());
            // SAFETY: this closure is returned only after AVX-512F was detected just above;
            // both slices hold at least `n` elements.
            unsafe { add_assign_avx512(&mut dst[..n], &src[..n]) }
        };
    }
    |dst, src| {
        for (d, &s) in dst.iter_mut().zip(src) {
            *d += s;
        }
    }
}

/// `dst[i] += src[i]` for `i < dst.len()`, sixteen lanes at a time, the tail masked.
///
/// # Safety
/// AVX-512F must be available, and `src` at least as long as `dst`.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
// SAFETY contract: the `# Safety` section above; `add_assign_fn` checks both.
unsafe fn add_assign_avx512(dst: &mut [f32], src: &[f32]) {
    use std::arch::x86_64::*;
    let n = dst.len();
    let (d, s) = (dst.as_mut_ptr(), src.as_ptr());
    let mut i = 0;
    // SAFETY: whole vectors read and write `i..i + 16 <= n`; the tail's mask covers the
    // `n - i < 16` elements left (masked-off lanes are neither read nor written); `src` holds
    // `n` elements by the contract.
    unsafe {
        while i + 16 <= n {
            let v = _mm512_add_ps(_mm512_loadu_ps(d.add(i)), _mm512_loadu_ps(s.add(i)));
            _mm512_storeu_ps(d.add(i), v);
            i += 16;
        }
        if i < n {
            let mask: __mmask16 = (1u16 << (n - i)) - 1;
            let v = _mm512_add_ps(
                _mm512_maskz_loadu_ps(mask, d.add(i)),
                _mm512_maskz_loadu_ps(mask, s.add(i)),
            );
            _mm512_mask_storeu_ps(d.add(i), mask, v);
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::{Conv2dConfig, DType, Device, Generator, Tensor, Unfold2d};

    /// The per-image input gradient against `wᵀ @ grad` folded by `fold2d`.
    #[test]
    fn per_image_input_grad_matches_matmul_and_fold() {
        let cpu = Device::cpu();
        let mut rng = Generator::new(11);
        let cases = [
            ([5, 3, 9, 11], [7, 3, 3, 3], (1, 1), (1, 1), (1, 1)),
            ([2, 4, 13, 7], [6, 4, 2, 3], (2, 1), (1, 2), (1, 2)),
            ([1, 2, 5, 5], [17, 2, 1, 1], (3, 2), (0, 0), (1, 1)),
            ([3, 6, 14, 14], [16, 6, 5, 5], (1, 1), (0, 0), (1, 1)),
            ([4, 3, 8, 8], [5, 3, 3, 3], (2, 2), (1, 1), (1, 1)),
        ];
        for (input, weight, stride, padding, dilation) in cases {
            let x = rng.randn(input, DType::F32, &cpu).unwrap();
            let w = rng.randn(weight, DType::F32, &cpu).unwrap();
            let cfg = Conv2dConfig {
                stride,
                padding,
                dilation,
                groups: 1,
            };
            let spec: Unfold2d = x
                .unfold_spec(
                    "test",
                    (weight[2], weight[3]),
                    stride,
                    padding,
                    dilation,
                    0.0,
                )
                .unwrap();
            let (oh, ow) = spec.check("test").unwrap();
            let g = rng
                .randn([input[0], weight[0], oh, ow], DType::F32, &cpu)
                .unwrap();
            let wm = w
                .reshape([weight[0], weight[1] * weight[2] * weight[3]])
                .unwrap();
            // [n, out, l] -> per image wᵀ @ g -> [n, c*kh*kw, l], folded.
            let g3 = g.reshape([input[0], weight[0], oh * ow]).unwrap();
            let cols = wm.transpose(0, 1).unwrap().matmul(&g3).unwrap();
            let want = cols.fold2d(&spec).unwrap().to_vec::<f32>().unwrap();
            let got = super::input_grad(
                &g.contiguous().unwrap().to_vec::<f32>().unwrap(),
                g.layout(),
                &w.to_vec::<f32>().unwrap(),
                w.layout(),
                &spec,
                None,
            )
            .unwrap();
            assert_eq!(got.len(), want.len(), "{cfg:?}");
            for (i, (a, b)) in got.iter().zip(&want).enumerate() {
                assert!(
                    (a - b).abs() <= 1e-4 * (1.0 + b.abs()),
                    "{cfg:?} at {i}: {a} vs {b}"
                );
            }
        }
    }

    /// The vector add equals the plain one on every length around the vector width.
    #[test]
    fn vector_add_matches_the_plain_loop() {
        let add = super::add_assign_fn();
        for n in [0, 1, 7, 15, 16, 17, 31, 32, 40] {
            let src: Vec<f32> = (0..n + 3).map(|i| i as f32 * 0.5 - 3.0).collect();
            let mut got: Vec<f32> = (0..n).map(|i| (i * i) as f32).collect();
            let want: Vec<f32> = got.iter().zip(&src).map(|(d, s)| d + s).collect();
            add(&mut got, &src);
            assert_eq!(got, want, "length {n}");
        }
    }

    /// Shapes that do not fit the spec are errors, not panics.
    #[test]
    fn mismatched_shapes_are_errors() {
        let cpu = Device::cpu();
        let x = Tensor::zeros([2, 3, 6, 6], DType::F32, &cpu).unwrap();
        let spec = x
            .unfold_spec("test", (3, 3), (1, 1), (0, 0), (1, 1), 0.0)
            .unwrap();
        let g = Tensor::zeros([2, 4, 4, 4], DType::F32, &cpu).unwrap();
        let w = Tensor::zeros([4, 2, 3, 3], DType::F32, &cpu).unwrap();
        let got = super::input_grad(
            &g.to_vec::<f32>().unwrap(),
            g.layout(),
            &w.to_vec::<f32>().unwrap(),
            w.layout(),
            &spec,
            None,
        );
        assert!(got.is_err());
    }
}
