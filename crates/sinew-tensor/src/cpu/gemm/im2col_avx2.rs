//! The im2col panel rows of a width-stride-1 convolution with AVX2 masked loads: each `NR`-wide
//! row of a packed `B` panel is two 8-lane `vmaskmovps` loads per run of output columns (lanes
//! outside the image read as zero, without touching memory), instead of a scalar loop that
//! clips, zero-fills and copies each run. The general path in `im2col.rs` keeps other strides.

use super::im2col::Tap;
use super::pack::NR;
use crate::backend::Unfold2d;

/// One run of a panel's columns inside one output row: `oy * stride_h`, the first output column
/// `ox`, the first panel column `j` and the run's length.
pub(super) type Seg = (usize, usize, usize, usize);

/// The panel and where its rows start: the image planes, the spec (width stride 1), the
/// per-tap-column [`crate::cpu::conv::tap_ranges`] and the first packed row (a tap index).
pub(super) struct PanelRows<'a> {
    pub(super) img: &'a [f32],
    pub(super) spec: &'a Unfold2d,
    pub(super) ranges: &'a [(usize, usize)],
    pub(super) row: usize,
    pub(super) segs: &'a [Seg],
}

/// Fills `dst` (whole rows of `NR`) with the panel's rows from `rows.row` on.
///
/// # Safety
/// AVX2 must be available (`kernel_avx2::available`). Nothing else: each load's lanes are
/// checked against `img` below, and masked-off lanes are never accessed by the instruction.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
// SAFETY contract: the `# Safety` section above; `im2col.rs` checks AVX2 before calling.
pub(super) unsafe fn pack_rows(rows: &PanelRows<'_>, dst: &mut [f32]) {
    use std::arch::x86_64::*;
    const _: () = assert!(NR == 16);
    let s = rows.spec;
    let (kh, kw) = s.kernel;
    let taps = kh * kw;
    let plane = s.h * s.w;
    let (pw, dw, ph, dh) = (s.padding.1, s.dilation.1, s.padding.0, s.dilation.0);
    let lanes0 = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    let lanes1 = _mm256_setr_epi32(8, 9, 10, 11, 12, 13, 14, 15);
    let (img, len) = (rows.img.as_ptr(), rows.img.len());
    let mut tap = Tap::of_row(rows.row, s.kernel);
    if let &[(oy_s, ox, 0, NR)] = rows.segs
        && (ph, pw) == (0, 0)
    {
        // No padding (written out by `im2col_pad.rs`) and the panel inside one output row:
        // row (ch, ki, kj) is img[ch * plane + (oy_s + ki * dh) * w + ox + kj * dw..][..NR].
        let last = (rows.row + dst.len() / NR).saturating_sub(1) / taps;
        // One past the last element read, computed checked: every row's offset is at most
        // this, so none of them overflows either.
        let end = (|| {
            let window = (kh - 1)
                .checked_mul(dh)?
                .checked_mul(s.w)?
                .checked_add((kw - 1).checked_mul(dw)?)?;
            last.checked_mul(plane)?
                .checked_add(window)?
                .checked_add(oy_s.checked_mul(s.w)?.checked_add(ox)?)?
                .checked_add(NR)
        })();
        if let Some(end) = end
            && end <= len
        {
            let base = oy_s * s.w + ox;
            for out in dst.chunks_exact_mut(NR) {
                let Tap { ch, ki, kj } = tap;
                let off = ch * plane + ki * dh * s.w + kj * dw + base;
                // SAFETY: `off + NR <= end <= len` (`ch <= last`, `ki < kh`, `kj < kw`), so
                // both 8-lane loads read inside `img`; `out` holds NR = 16 elements.
                unsafe {
                    let p = img.add(off);
                    _mm256_storeu_ps(out.as_mut_ptr(), _mm256_loadu_ps(p));
                    _mm256_storeu_ps(out.as_mut_ptr().add(8), _mm256_loadu_ps(p.add(8)));
                }
                tap.advance(s.kernel);
            }
            return;
        }
    }
    for out in dst.chunks_exact_mut(NR) {
        let Tap { ch, ki, kj } = tap;
        let (lo, hi) = match rows.ranges.get(kj) {
            Some(&r) => r,
            None => (0, 0),
        };
        let (mut v0, mut v1) = (_mm256_setzero_ps(), _mm256_setzero_ps());
        for &(oy_s, ox, j, run) in rows.segs {
            // Output columns [a, b) of this run read inside the image, from input row
            // y = oy * stride + ki * dh - ph, at x = o + kj * dw - pw (>= 0 on [lo, hi)).
            let (a, b) = (ox.max(lo), (ox + run).min(hi));
            let y = oy_s + ki * dh;
            if a >= b || y < ph || y - ph >= s.h {
                continue;
            }
            let first = ch * plane + (y - ph) * s.w + a + kj * dw;
            if first < pw || first - pw + (b - a) > len {
                continue;
            }
            let first = first - pw;
            // Panel lanes [lane_lo, lane_hi) take img[first..first + b - a] in order.
            let (lane_lo, lane_hi) = (j + a - ox, j + b - ox);
            let base = img.wrapping_add(first).wrapping_sub(lane_lo);
            if lane_lo == 0 && lane_hi == NR {
                // SAFETY: all 16 lanes read img[first..first + 16], inside `img` (checked
                // above: `first + (b - a) <= len` with `b - a = 16`).
                unsafe {
                    v0 = _mm256_loadu_ps(base);
                    v1 = _mm256_loadu_ps(base.add(8));
                }
                continue;
            }
            let (lo_v, hi_v) = (
                _mm256_set1_epi32(lane_lo as i32 - 1),
                _mm256_set1_epi32(lane_hi as i32),
            );
            let m0 = _mm256_and_si256(
                _mm256_cmpgt_epi32(lanes0, lo_v),
                _mm256_cmpgt_epi32(hi_v, lanes0),
            );
            let m1 = _mm256_and_si256(
                _mm256_cmpgt_epi32(lanes1, lo_v),
                _mm256_cmpgt_epi32(hi_v, lanes1),
            );
            // SAFETY: lane `l` of these loads is enabled only for `lane_lo <= l < lane_hi`,
            // where it reads `img[first + l - lane_lo]`, inside `img` (`first + (b - a) <= len`
            // checked above); masked-off lanes are not accessed (no fault, no read), so the
            // base address outside `img` is never dereferenced.
            unsafe {
                v0 = _mm256_or_ps(v0, _mm256_maskload_ps(base, m0));
                v1 = _mm256_or_ps(v1, _mm256_maskload_ps(base.wrapping_add(8), m1));
            }
        }
        // SAFETY: `out` holds NR = 16 elements (chunks_exact), two unaligned 8-lane stores.
        unsafe {
            _mm256_storeu_ps(out.as_mut_ptr(), v0);
            _mm256_storeu_ps(out.as_mut_ptr().add(8), v1);
        }
        tap.advance(s.kernel);
    }
}

#[cfg(test)]
mod tests {
    use super::super::PackB;
    use super::super::im2col::Im2colB;
    use super::NR;
    use crate::backend::Unfold2d;
    use crate::cpu::conv::tap_ranges;

    /// Element `(tap, col)` of the im2col matrix, from its definition.
    fn im2col_at(img: &[f32], s: &Unfold2d, ow: usize, tap: usize, col: usize) -> f32 {
        let (kh, kw) = s.kernel;
        let (ch, ki, kj) = (tap / (kh * kw), tap % (kh * kw) / kw, tap % kw);
        let (oy, ox) = (col / ow, col % ow);
        let y = (oy * s.stride.0 + ki * s.dilation.0) as isize - s.padding.0 as isize;
        let x = (ox * s.stride.1 + kj * s.dilation.1) as isize - s.padding.1 as isize;
        if y < 0 || x < 0 || y >= s.h as isize || x >= s.w as isize {
            return 0.0;
        }
        img[ch * s.h * s.w + y as usize * s.w + x as usize]
    }

    /// Every panel (full, partial, spanning output rows) of stride-1 and strided specs, packed
    /// from any first row, equals the definition exactly (both packing paths).
    #[test]
    fn packed_panels_equal_the_im2col_definition() {
        // (c, h, w, kernel, stride, padding, dilation)
        let specs = [
            (3, 32, 32, (3, 3), (1, 1), (1, 1), (1, 1)),
            (2, 7, 5, (3, 3), (1, 1), (3, 3), (1, 1)),
            (2, 9, 21, (2, 3), (2, 1), (1, 2), (1, 2)),
            (1, 6, 20, (3, 2), (1, 3), (2, 0), (2, 1)),
            (4, 5, 40, (1, 5), (1, 1), (0, 2), (1, 1)),
            (3, 6, 40, (3, 3), (1, 1), (0, 0), (1, 2)),
            (2, 34, 34, (3, 3), (1, 1), (0, 0), (1, 1)),
        ];
        for (c, h, w, kernel, stride, padding, dilation) in specs {
            let s = Unfold2d {
                n: 1,
                c,
                h,
                w,
                kernel,
                stride,
                padding,
                dilation,
                pad_value: 0.0,
            };
            let (oh, ow) = s.out_hw();
            let img: Vec<f32> = (0..c * h * w).map(|i| i as f32 + 0.5).collect();
            let ranges = tap_ranges(&s, ow);
            let b = Im2colB::new(&img, &s, ow, &ranges);
            let (k, n) = (c * kernel.0 * kernel.1, oh * ow);
            for row in [0, 1, k / 2] {
                let kc = k - row;
                for col in (0..n).step_by(NR / 2) {
                    let cols = NR.min(n - col);
                    let mut dst = vec![f32::NAN; kc * NR];
                    b.pack_panel(row, kc, col, cols, &mut dst);
                    for (r, out) in dst.chunks_exact(NR).enumerate() {
                        for (j, &v) in out.iter().enumerate() {
                            let want = if j < cols {
                                im2col_at(&img, &s, ow, row + r, col + j)
                            } else {
                                0.0
                            };
                            assert_eq!(v, want, "{s:?} row {row}+{r} col {col}+{j}");
                        }
                    }
                }
            }
        }
    }
}
