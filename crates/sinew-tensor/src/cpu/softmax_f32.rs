//! Softmax and log-softmax of contiguous f32 rows (the last dimension) with a vectorised `exp`:
//! one pass for the maximum, one computing `exp(x - max)` (stored for softmax) and its sum,
//! one scaling. The generic kernel (`softmax.rs`) called the C library's scalar `expf` twice
//! per element and summed in f64; on the 2-core EPYC bench machine a 4096 x 1024 softmax took
//! 22 ms that way.
//!
//! `exp` is `exp_f32.rs`'s; the loops are compiled for AVX-512 and for AVX2 + FMA and chosen at
//! run time.

use super::exp_f32::exp;

/// Lanes per accumulator: the sums and maxima run over this many partial results.
const LANES: usize = 16;

/// The largest element, NaN if any is NaN (as `softmax.rs` defines it).
#[inline(always)]
fn max_of(row: &[f32]) -> f32 {
    let mut acc = [f32::NEG_INFINITY; LANES];
    let mut chunks = row.chunks_exact(LANES);
    for chunk in &mut chunks {
        for (m, &x) in acc.iter_mut().zip(chunk) {
            *m = if x > *m || x.is_nan() { x } else { *m };
        }
    }
    let pick = |m: f32, x: f32| if x > m || x.is_nan() { x } else { m };
    let tail = chunks
        .remainder()
        .iter()
        .fold(f32::NEG_INFINITY, |m, &x| pick(m, x));
    acc.iter().fold(tail, |m, &x| pick(m, x))
}

/// `Σ exp(x - shift)`, writing each term to `out` when it is given.
#[inline(always)]
fn sum_exp(row: &[f32], shift: f32, out: Option<&mut [f32]>) -> f32 {
    let mut acc = [0.0f32; LANES];
    let mut tail = 0.0f32;
    match out {
        Some(out) => {
            let mut outs = out.chunks_exact_mut(LANES);
            let mut chunks = row.chunks_exact(LANES);
            for (chunk, o) in (&mut chunks).zip(&mut outs) {
                for ((s, d), &x) in acc.iter_mut().zip(o.iter_mut()).zip(chunk) {
                    *d = exp(x - shift);
                    *s += *d;
                }
            }
            for (d, &x) in outs.into_remainder().iter_mut().zip(chunks.remainder()) {
                *d = exp(x - shift);
                tail += *d;
            }
        }
        None => {
            let mut chunks = row.chunks_exact(LANES);
            for chunk in &mut chunks {
                for (s, &x) in acc.iter_mut().zip(chunk) {
                    *s += exp(x - shift);
                }
            }
            tail = chunks.remainder().iter().map(|&x| exp(x - shift)).sum();
        }
    }
    acc.iter().sum::<f32>() + tail
}

/// Softmax (or log-softmax) of each `len`-long row of `src` into `dst`.
#[inline(always)]
fn rows(src: &[f32], dst: &mut [f32], len: usize, log: bool) {
    for (row, out) in src.chunks_exact(len).zip(dst.chunks_exact_mut(len)) {
        let max = max_of(row);
        // An all -inf row has no finite maximum; shift by 0 (NaN-free where PyTorch is).
        let shift = if max.is_finite() { max } else { 0.0 };
        if log {
            let log_sum = sum_exp(row, shift, None).ln();
            for (d, &x) in out.iter_mut().zip(row) {
                *d = x - shift - log_sum;
            }
        } else {
            let sum = sum_exp(row, shift, Some(out));
            for d in out.iter_mut() {
                *d /= sum;
            }
        }
    }
}

/// [`rows`] compiled for AVX-512.
///
/// # Safety
/// The CPU must have AVX-512F, AVX2 and FMA.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx2,fma")]
// SAFETY contract: the `# Safety` section above; `softmax_rows` checks it.
unsafe fn rows_avx512(src: &[f32], dst: &mut [f32], len: usize, log: bool) {
    rows(src, dst, len, log)
}

/// [`rows`] compiled for AVX2 + FMA.
///
/// # Safety
/// The CPU must have AVX2 and FMA.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
// SAFETY contract: the `# Safety` section above; `softmax_rows` checks it.
unsafe fn rows_avx2(src: &[f32], dst: &mut [f32], len: usize, log: bool) {
    rows(src, dst, len, log)
}

/// Softmax (or log-softmax) of each `len`-long row of `src` into `dst` (same length, a
/// multiple of `len > 0`), with the widest vector code this CPU runs.
pub(super) fn softmax_rows(src: &[f32], dst: &mut [f32], len: usize, log: bool) {
    match super::vector_level() {
        // SAFETY: `vector_level` found AVX-512F, AVX2 and FMA on this CPU.
        #[cfg(target_arch = "x86_64")]
        super::VectorLevel::Avx512 => unsafe { rows_avx512(src, dst, len, log) },
        // SAFETY: `vector_level` found AVX2 and FMA on this CPU.
        #[cfg(target_arch = "x86_64")]
        super::VectorLevel::Avx2Fma => unsafe { rows_avx2(src, dst, len, log) },
        _ => rows(src, dst, len, log),
    }
}

/// `(shift, ln Σ exp(x - shift))` of one row, `shift` its maximum (0 when not finite).
#[inline(always)]
fn shift_log_sum(row: &[f32]) -> (f32, f32) {
    let max = max_of(row);
    let shift = if max.is_finite() { max } else { 0.0 };
    (shift, sum_exp(row, shift, None).ln())
}

/// [`shift_log_sum`] compiled for AVX-512.
///
/// # Safety
/// The CPU must have AVX-512F, AVX2 and FMA.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx2,fma")]
// SAFETY contract: the `# Safety` section above; `row_log_sum_exp` checks it.
unsafe fn shift_log_sum_avx512(row: &[f32]) -> (f32, f32) {
    shift_log_sum(row)
}

/// [`shift_log_sum`] compiled for AVX2 + FMA.
///
/// # Safety
/// The CPU must have AVX2 and FMA.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
// SAFETY contract: the `# Safety` section above; `row_log_sum_exp` checks it.
unsafe fn shift_log_sum_avx2(row: &[f32]) -> (f32, f32) {
    shift_log_sum(row)
}

/// A row's log-sum-exp as `(shift, log_sum)` (`lse = shift + log_sum`; `shift` the maximum,
/// 0 when that is not finite), with the vectorised `exp` (the fused cross-entropy's forward).
pub(super) fn row_log_sum_exp(row: &[f32]) -> (f32, f32) {
    match super::vector_level() {
        // SAFETY: `vector_level` found AVX-512F, AVX2 and FMA on this CPU.
        #[cfg(target_arch = "x86_64")]
        super::VectorLevel::Avx512 => unsafe { shift_log_sum_avx512(row) },
        // SAFETY: `vector_level` found AVX2 and FMA on this CPU.
        #[cfg(target_arch = "x86_64")]
        super::VectorLevel::Avx2Fma => unsafe { shift_log_sum_avx2(row) },
        _ => shift_log_sum(row),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Rows of several lengths (with and without a remainder of 16) against an f64 reference,
    /// through the dispatched kernel, both forms.
    #[test]
    fn rows_match_the_definition() {
        for len in [1, 3, 16, 17, 100, 1024] {
            let src: Vec<f32> = (0..3 * len)
                .map(|i| ((i * 7919 % 211) as f32 - 105.0) / 9.0)
                .collect();
            for log in [false, true] {
                let mut dst = vec![f32::NAN; src.len()];
                softmax_rows(&src, &mut dst, len, log);
                for (row, out) in src.chunks(len).zip(dst.chunks(len)) {
                    let max = row.iter().fold(f64::NEG_INFINITY, |m, &x| m.max(x as f64));
                    let sum: f64 = row.iter().map(|&x| (x as f64 - max).exp()).sum();
                    for (&x, &got) in row.iter().zip(out) {
                        let z = x as f64 - max;
                        let want = if log { z - sum.ln() } else { z.exp() / sum };
                        let tol = 2e-6 * want.abs().max(if log { 1.0 } else { 1e-30 });
                        assert!(
                            (got as f64 - want).abs() <= tol,
                            "len {len} log {log}: {got} vs {want}"
                        );
                    }
                }
            }
        }
    }

    /// -inf entries give exact zeros, an all -inf row NaN, a NaN poisons its row only.
    #[test]
    fn special_rows() {
        let inf = f32::INFINITY;
        let src = [
            0.5,
            -inf,
            1.5,
            -inf, // masked entries
            -inf,
            -inf,
            -inf,
            -inf, // nothing left
            1.0,
            f32::NAN,
            2.0,
            3.0, // NaN
        ];
        let mut dst = [0.0f32; 12];
        softmax_rows(&src, &mut dst, 4, false);
        assert_eq!(dst[1], 0.0);
        assert_eq!(dst[3], 0.0);
        assert!((dst[0] + dst[2] - 1.0).abs() < 1e-6);
        assert!(dst[4..].iter().all(|v| v.is_nan()));
        let mut logs = [0.0f32; 12];
        softmax_rows(&src, &mut logs, 4, true);
        assert_eq!(logs[1], -inf);
        assert!(logs[8..].iter().all(|v| v.is_nan()));
    }
}
