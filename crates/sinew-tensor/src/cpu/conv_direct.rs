//! Direct f32 convolution for layers with few output channels (LeNet-5's 1→6 and 6→16), where
//! the im2col product is bound by packing its columns: each window tap of the input is read
//! once per block of up to six output channels and multiplied into all of them, with no
//! columns made at all.
//!
//! The output plane is cut into segments of at most sixteen columns of one row, taken two at a
//! time; per block of output channels and pair of segments, twelve AVX-512 accumulators (six
//! channels x two segments) sum over input channels and taps in the order of the im2col
//! product's `k` (channel, kernel row, kernel column), so for at most [`gemm::KC`] terms the
//! result is bit for bit the packed product's (one fused multiply-add chain from zero).
//!
//! It reads an input without padding (the caller writes the padding out first, as for the
//! packed path), with stride and dilation 1.
//!
//! [`gemm::KC`]: super::gemm::KC

use std::mem::MaybeUninit;

use crate::backend::Unfold2d;

/// Most output channels (of one group) for which the direct kernel replaces the product.
pub(crate) const MAX_OUT: usize = 16;
/// Output channels per block: six channels times two segments fill twelve accumulators.
const BLOCK: usize = 6;
/// Output columns per segment (one zmm vector).
const LANES: usize = 16;

/// Whether [`conv_group`] runs for a group of `og` output channels read through `s`: AVX-512F,
/// no padding left, stride and dilation 1, few output channels.
pub(crate) fn applies(s: &Unfold2d, og: usize) -> bool {
    og <= MAX_OUT
        && s.padding == (0, 0)
        && s.stride == (1, 1)
        && s.dilation == (1, 1)
        && crate::cpu::has_avx512f()
}

/// One output segment: row `y`, columns `x..x + len` (`0 < len <= LANES`).
#[derive(Clone, Copy)]
struct Segment {
    y: usize,
    x: usize,
    len: usize,
}

/// `dst [og, oh*ow] = w [og, cg*kh*kw] ⊛ planes [cg, h, w]` for one image and group, with
/// `s` the unpadded read spec (`applies` true). Returns false, `dst` untouched, when the sizes
/// do not fit the spec (the caller then takes the packed path, which reports the fault).
pub(crate) fn conv_group(
    planes: &[f32],
    s: &Unfold2d,
    w: &[f32],
    og: usize,
    cg: usize,
    dst: &mut [MaybeUninit<f32>],
) -> bool {
    let (kh, kw) = s.kernel;
    let out = |size: usize, k: usize| size.checked_add(1)?.checked_sub(k);
    let (Some(oh), Some(ow)) = (out(s.h, kh), out(s.w, kw)) else {
        return false;
    };
    let product = |a: usize, b: usize, c: usize| a.checked_mul(b)?.checked_mul(c);
    let (Some(taps), Some(input), Some(output)) = (
        product(cg, kh, kw),
        product(cg, s.h, s.w),
        product(og, oh, ow),
    ) else {
        return false;
    };
    let fits = applies(s, og)
        && planes.len() >= input
        && taps.checked_mul(og).is_some_and(|n| w.len() >= n)
        && dst.len() >= output;
    if !fits || output == 0 {
        return fits;
    }
    let segments: Vec<Segment> = (0..oh)
        .flat_map(|y| {
            (0..ow).step_by(LANES).map(move |x| Segment {
                y,
                x,
                len: LANES.min(ow - x),
            })
        })
        .collect();
    let geometry = Geometry {
        w: s.w,
        plane: s.h * s.w,
        cg,
        kh,
        kw,
        taps,
        l: oh * ow,
        ow,
    };
    for o0 in (0..og).step_by(BLOCK) {
        let block = BLOCK.min(og - o0);
        let run = match block {
            1 => Geometry::block::<1>,
            2 => Geometry::block::<2>,
            3 => Geometry::block::<3>,
            4 => Geometry::block::<4>,
            5 => Geometry::block::<5>,
            _ => Geometry::block::<BLOCK>,
        };
        for pair in segments.chunks(2) {
            // Every segment lies in the `oh x ow` output (`x + len <= ow`, `y < oh`), so its
            // reads `planes[c][y + ki][x + kj..x + kj + len]` stay inside the `cg` planes of
            // `h x w` (`y + ki < oh + kh - 1 = h`, `x + kj + len <= ow + kw - 1 = w`).
            // SAFETY: AVX-512F (`applies`); reads as just above, writes in `dst`'s `og` rows of
            // `l`, weights `w[(o0 + o) * taps + t]` for `o < block`, `t < taps` (`fits`).
            unsafe { run(&geometry, planes, w, o0, pair, dst) };
        }
    }
    true
}

/// The sizes one call of [`conv_group`] works with.
struct Geometry {
    w: usize,
    plane: usize,
    cg: usize,
    kh: usize,
    kw: usize,
    taps: usize,
    l: usize,
    ow: usize,
}

impl Geometry {
    /// Output channels `o0..o0 + B` of one or two segments.
    ///
    /// # Safety
    /// AVX-512F must be available; the segments, planes, weights and `dst` must fit as
    /// [`conv_group`] checks.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f")]
    // SAFETY contract: the `# Safety` section above; `conv_group` checks it.
    unsafe fn block<const B: usize>(
        &self,
        planes: &[f32],
        w: &[f32],
        o0: usize,
        pair: &[Segment],
        dst: &mut [MaybeUninit<f32>],
    ) {
        use std::arch::x86_64::*;
        let mask = |s: &Segment| -> __mmask16 { (((1u32 << s.len) - 1) & 0xffff) as u16 };
        let (s0, s1) = (pair[0], pair.get(1).copied());
        let (m0, m1) = (mask(&s0), s1.map_or(0, |s| mask(&s)));
        // Second segment's offset in the planes and the output (a copy of the first when
        // there is none, loaded with an empty mask).
        let s1 = s1.unwrap_or(s0);
        let mut acc = [[_mm512_setzero_ps(); 2]; B];
        let (xp, wp) = (planes.as_ptr(), w.as_ptr());
        // SAFETY: by the caller's contract (see `conv_group`), every read below is inside
        // `planes` (masked lanes past a segment are neither read nor faulted) and `w`.
        unsafe {
            for c in 0..self.cg {
                for ki in 0..self.kh {
                    let row0 = xp.add(c * self.plane + (s0.y + ki) * self.w + s0.x);
                    let row1 = xp.add(c * self.plane + (s1.y + ki) * self.w + s1.x);
                    let tap = (c * self.kh + ki) * self.kw;
                    for kj in 0..self.kw {
                        let x0 = _mm512_maskz_loadu_ps(m0, row0.add(kj));
                        let x1 = _mm512_maskz_loadu_ps(m1, row1.add(kj));
                        for (o, acc) in acc.iter_mut().enumerate() {
                            let wv = _mm512_set1_ps(*wp.add((o0 + o) * self.taps + tap + kj));
                            acc[0] = _mm512_fmadd_ps(wv, x0, acc[0]);
                            acc[1] = _mm512_fmadd_ps(wv, x1, acc[1]);
                        }
                    }
                }
            }
        }
        let out = dst.as_mut_ptr().cast::<f32>();
        // SAFETY: row `o0 + o < og` (`o < B`) of `dst`, columns `y * ow + x ..+ len` of its `l`, masked
        // to the segment's `len` lanes.
        unsafe {
            for (o, acc) in acc.iter().enumerate() {
                let row = out.add((o0 + o) * self.l);
                _mm512_mask_storeu_ps(row.add(s0.y * self.ow + s0.x), m0, acc[0]);
                _mm512_mask_storeu_ps(row.add(s1.y * self.ow + s1.x), m1, acc[1]);
            }
        }
    }

    /// The stand-in on other architectures, never reached ([`applies`] is false there).
    ///
    /// # Safety
    /// Never called.
    #[cfg(not(target_arch = "x86_64"))]
    unsafe fn block<const B: usize>(
        &self,
        _: &[f32],
        _: &[f32],
        _: usize,
        _: &[Segment],
        _: &mut [MaybeUninit<f32>],
    ) {
        unreachable!("the direct convolution needs AVX-512F")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The direct convolution against the definition, on widths around the vector length,
    /// odd row counts (an unpaired last segment) and up to `MAX_OUT` channels.
    #[test]
    fn direct_convolution_equals_the_definition() {
        if !crate::cpu::has_avx512f() {
            return; // Not this CPU's path.
        }
        let value = |i: usize| ((i * 7919 % 211) as f32 - 105.0) / 37.0;
        for (cg, h, w, kh, kw, og) in [
            (1, 32, 32, 5, 5, 6),
            (6, 14, 14, 5, 5, 16),
            (2, 5, 20, 3, 2, 7),
            (3, 9, 40, 1, 1, 1),
            (1, 3, 3, 3, 3, 13),
        ] {
            let s = Unfold2d::dense(1, cg, h, w, (kh, kw));
            let (oh, ow) = (h + 1 - kh, w + 1 - kw);
            let planes: Vec<f32> = (0..cg * h * w).map(value).collect();
            let weight: Vec<f32> = (0..og * cg * kh * kw).map(|i| value(i + 3)).collect();
            let mut dst = vec![MaybeUninit::new(f32::NAN); og * oh * ow];
            assert!(conv_group(&planes, &s, &weight, og, cg, &mut dst));
            for o in 0..og {
                for y in 0..oh {
                    for x in 0..ow {
                        let mut want = 0.0f64;
                        for c in 0..cg {
                            for ki in 0..kh {
                                for kj in 0..kw {
                                    let xv = planes[c * h * w + (y + ki) * w + x + kj];
                                    let wv = weight[((o * cg + c) * kh + ki) * kw + kj];
                                    want += f64::from(xv) * f64::from(wv);
                                }
                            }
                        }
                        // SAFETY: every element was written by `conv_group` (or is the NaN
                        // it started as, which fails the comparison).
                        let got = unsafe { dst[(o * oh + y) * ow + x].assume_init() };
                        let tol = 1e-4 * (1.0 + want.abs());
                        assert!((f64::from(got) - want).abs() <= tol, "{o} {y} {x}: {got}");
                    }
                }
            }
        }
    }

    /// Sizes that do not fit are refused, not read past.
    #[test]
    fn short_buffers_are_refused() {
        let s = Unfold2d::dense(1, 1, 8, 8, (3, 3));
        let mut dst = vec![MaybeUninit::new(0.0f32); 36];
        assert!(!conv_group(&[0.0; 63], &s, &[0.0; 9], 1, 1, &mut dst));
        assert!(!conv_group(&[0.0; 64], &s, &[0.0; 8], 1, 1, &mut dst));
        assert!(!conv_group(&[0.0; 64], &s, &[0.0; 9], 1, 1, &mut dst[..35]));
    }
}
