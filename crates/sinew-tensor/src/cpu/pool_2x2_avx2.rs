//! Max pooling's 2 x 2, stride-2 windows over f32 planes with AVX2: eight outputs per step,
//! the four taps of each window split from two input rows by shuffles, and the running maximum
//! and its offset updated by the same comparisons as the scalar `pool::plane_2x2` (a value
//! wins when greater or NaN, taps in the order top-left, top-right, bottom-left, bottom-right),
//! so values and indices are the same.

/// Pools the `h x w` plane `img` into `vals` and `idxs` (`oh x ow` each, row-major), as
/// `pool::plane_2x2` does.
///
/// # Safety
/// AVX2 must be available. Every read and write is checked against the slices.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
// SAFETY contract: the `# Safety` section above; `pool.rs` checks AVX2 before calling.
pub(super) unsafe fn plane_2x2_f32(
    img: &[f32],
    w: usize,
    ow: usize,
    vals: &mut [f32],
    idxs: &mut [i64],
) {
    use std::arch::x86_64::*;
    // Offsets of the window's taps and of each lane's window, as i32 lanes (`w` is checked
    // small enough by the caller's `fits_lanes`).
    let (right, below, below_right) = (
        _mm256_set1_epi32(1),
        _mm256_set1_epi32(w as i32),
        _mm256_set1_epi32(w as i32 + 1),
    );
    let lane_cols = _mm256_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14);
    let outs = vals.chunks_mut(ow.max(1)).zip(idxs.chunks_mut(ow.max(1)));
    for (oy, (vals, idxs)) in outs.enumerate() {
        let base = 2 * oy * w;
        let (Some(r0), Some(r1)) = (
            img.get(base..base + 2 * ow),
            img.get(base + w..base + w + 2 * ow),
        ) else {
            return;
        };
        let mut ox = 0;
        while ox + 8 <= ow && vals.len() >= ox + 8 && idxs.len() >= ox + 8 {
            // SAFETY: `r0` and `r1` hold `2 * ow` elements and `2 * ox + 16 <= 2 * ow`; `vals`
            // and `idxs` hold at least `ox + 8` (checked by the loop condition); unaligned
            // loads and stores.
            unsafe {
                let (t0, t1) = split_pairs(r0.as_ptr().add(2 * ox));
                let (b0, b1) = split_pairs(r1.as_ptr().add(2 * ox));
                let mut best = t0;
                let mut off = _mm256_setzero_si256();
                for (val, at) in [(t1, right), (b0, below), (b1, below_right)] {
                    let take = _mm256_or_ps(
                        _mm256_cmp_ps::<_CMP_GT_OQ>(val, best),
                        _mm256_cmp_ps::<_CMP_UNORD_Q>(val, val),
                    );
                    best = _mm256_blendv_ps(best, val, take);
                    off = _mm256_blendv_epi8(off, at, _mm256_castps_si256(take));
                }
                _mm256_storeu_ps(vals.as_mut_ptr().add(ox), best);
                let rel = _mm256_add_epi32(off, lane_cols);
                let start = _mm256_set1_epi64x((base + 2 * ox) as i64);
                let lo = _mm256_cvtepi32_epi64(_mm256_castsi256_si128(rel));
                let hi = _mm256_cvtepi32_epi64(_mm256_extracti128_si256::<1>(rel));
                let out = idxs.as_mut_ptr().add(ox).cast::<__m256i>();
                _mm256_storeu_si256(out, _mm256_add_epi64(lo, start));
                _mm256_storeu_si256(out.add(1), _mm256_add_epi64(hi, start));
            }
            ox += 8;
        }
        let taps = r0.chunks_exact(2).zip(r1.chunks_exact(2)).skip(ox);
        let outs = vals.iter_mut().zip(idxs.iter_mut()).skip(ox);
        for (ox, ((top, bottom), (val_out, idx_out))) in (ox..).zip(taps.zip(outs)) {
            let (mut best, mut off) = (top[0], 0);
            for (val, at) in [(top[1], 1), (bottom[0], w), (bottom[1], w + 1)] {
                if val > best || val.is_nan() {
                    (best, off) = (val, at);
                }
            }
            *val_out = best;
            *idx_out = (base + 2 * ox + off) as i64;
        }
    }
}

/// Whether a plane `w` wide keeps the lane offsets (`w + 1 + 14`) inside an i32.
#[cfg(target_arch = "x86_64")]
fn fits_lanes(w: usize) -> bool {
    w < (i32::MAX as usize) / 2
}

/// Sixteen consecutive values from `p` as their even- and odd-indexed halves, in order.
///
/// # Safety
/// AVX2 must be available and `p` valid for 16 reads.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
// SAFETY contract: the `# Safety` section above; `plane_2x2_f32` checks the reads.
unsafe fn split_pairs(p: *const f32) -> (std::arch::x86_64::__m256, std::arch::x86_64::__m256) {
    use std::arch::x86_64::*;
    // SAFETY: `p` is valid for 16 reads by this function's contract; unaligned loads.
    let (a, b) = unsafe { (_mm256_loadu_ps(p), _mm256_loadu_ps(p.add(8))) };
    // Per 128-bit half: [a0 a2 b0 b2 | a4 a6 b4 b6]; the 64-bit permute puts a's pairs first.
    let even = _mm256_shuffle_ps::<0x88>(a, b);
    let odd = _mm256_shuffle_ps::<0xDD>(a, b);
    (
        _mm256_castpd_ps(_mm256_permute4x64_pd::<0xD8>(_mm256_castps_pd(even))),
        _mm256_castpd_ps(_mm256_permute4x64_pd::<0xD8>(_mm256_castps_pd(odd))),
    )
}

/// Runs [`plane_2x2_f32`] when `T` is f32, the CPU has AVX2 and `w` [`fits_lanes`]; returns
/// whether it did (else the caller runs the generic kernel).
pub(super) fn try_plane_2x2<T: 'static>(
    img: &[T],
    w: usize,
    ow: usize,
    vals: &mut [T],
    idxs: &mut [i64],
) -> bool {
    #[cfg(target_arch = "x86_64")]
    if std::any::TypeId::of::<T>() == std::any::TypeId::of::<f32>()
        && std::arch::is_x86_feature_detected!("avx2")
        && fits_lanes(w)
    {
        // SAFETY: `T` is `f32` (same `TypeId`, checked just above), so both slices are f32
        // slices of the same length and lifetime.
        let (img, vals) = unsafe {
            (
                std::slice::from_raw_parts(img.as_ptr().cast::<f32>(), img.len()),
                std::slice::from_raw_parts_mut(vals.as_mut_ptr().cast::<f32>(), vals.len()),
            )
        };
        // SAFETY: AVX2 checked just above; the kernel checks its reads and writes.
        unsafe { plane_2x2_f32(img, w, ow, vals, idxs) };
        return true;
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (img, w, ow, vals, idxs);
    false
}

#[cfg(test)]
mod tests {
    use super::try_plane_2x2;

    /// The vector kernel against the scalar one, bit for bit: widths around the 8-output step,
    /// odd input sizes, ties, infinities and NaNs (the last NaN of a window wins).
    #[test]
    fn vector_windows_equal_the_scalar_kernel() {
        let specials = [f32::NAN, f32::NEG_INFINITY, f32::INFINITY, 0.0, -0.0, 1.0];
        for (h, w) in [(2, 2), (4, 16), (5, 17), (6, 33), (3, 40), (8, 62)] {
            let (oh, ow) = (h / 2, w / 2);
            let mut state = (h * 131 + w) as u64;
            let img: Vec<f32> = (0..h * w)
                .map(|_| {
                    state = state
                        .wrapping_mul(6364136223846793005)
                        .wrapping_add(1442695040888963407);
                    let r = (state >> 33) as usize;
                    if r.is_multiple_of(5) {
                        specials[r / 5 % specials.len()]
                    } else {
                        (r % 7) as f32
                    }
                })
                .collect();
            let (mut vals, mut idxs) = (vec![0.0f32; oh * ow], vec![0i64; oh * ow]);
            if !try_plane_2x2(&img, w, ow, &mut vals, &mut idxs) {
                return; // No AVX2 on this CPU: the scalar kernel is the only one.
            }
            let (mut want_vals, mut want_idxs) = (vec![0.0f32; oh * ow], vec![0i64; oh * ow]);
            super::super::pool::plane_2x2(&img, w, ow, &mut want_vals, &mut want_idxs);
            assert_eq!(idxs, want_idxs, "{h} x {w}");
            let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&vals), bits(&want_vals), "{h} x {w}");
        }
    }
}
