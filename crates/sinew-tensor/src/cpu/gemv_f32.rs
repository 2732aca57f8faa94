//! The f32 matrix-vector product of one row by a linear layer's weight (`x @ wᵀ`, the columns
//! of the right operand contiguous: batch-1 inference) with an explicit AVX-512 kernel: four
//! weight rows per pass share each load of `x`, one fused multiply-add chain per row, the
//! lanes summed as a tree. The generic loops of `gemv.rs` serve every other case.
//!
//! A large product called from outside rayon's pool is split by output columns into one part
//! per thread: the calling thread computes the first part itself while pool workers take the
//! others ([`rayon::in_place_scope`]), so it does not sleep on the pool's latch and wait to be
//! woken, as it did with [`rayon::broadcast`] (the 784-512-512-10 MLP at batch 1 went from
//! ~110 to ~67 us on the 2-core Xeon bench machine). Each output is one thread's dot product, so
//! the split does not change the values.

use super::gemv::{self, Rows};

/// From this many multiply-adds on, a product called from outside rayon's pool is split.
const SPLIT_WORK: usize = 1 << 16;

/// `c[rows, n] = a[rows, k] @ b[k, n]` like [`gemv::product`], through the AVX-512 kernel when
/// there is one row, `b`'s columns are contiguous and the CPU has AVX-512F.
pub(super) fn product(
    a: Rows<f32>,
    b: Rows<f32>,
    rows: usize,
    k: usize,
    n: usize,
    c: &mut [f32],
) -> bool {
    if rows != 1 || k == 0 || (b.row_stride != 1 && k > 1) || !crate::cpu::has_avx512f() {
        return gemv::product(a, b, rows, k, n, c);
    }
    let columns = Rows {
        data: b.data,
        start: b.start,
        row_stride: b.col_stride,
        col_stride: 1,
    };
    let (Some(x), Some(out)) = (a.row(0, k), c.get_mut(..n)) else {
        return false;
    };
    // Every weight row inside its storage, checked once here.
    let Some(weight) = (0..n)
        .map(|j| columns.row(j, k))
        .collect::<Option<Vec<&[f32]>>>()
    else {
        return false;
    };
    let threads = rayon::current_num_threads();
    let split = threads > 1
        && n >= 8 * threads
        && k.saturating_mul(n) >= SPLIT_WORK
        && rayon::current_thread_index().is_none();
    if !split {
        fill(x, &weight, out);
        return true;
    }
    // One part per thread: the calling thread computes the first while pool workers compute
    // the others, so the caller sleeps waiting for the pool only when a worker is late.
    let per = n.div_ceil(threads);
    rayon::in_place_scope(|scope| {
        let mut parts = weight.chunks(per).zip(out.chunks_mut(per));
        let first = parts.next();
        for (rows, out) in parts {
            scope.spawn(move |_| fill(x, rows, out));
        }
        if let Some((rows, out)) = first {
            fill(x, rows, out);
        }
    });
    true
}

/// `out[j] = x · weight[j]` for each row (every row `x.len()` long).
fn fill(x: &[f32], weight: &[&[f32]], out: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    if crate::cpu::has_avx512f() {
        // SAFETY: `fill_avx512` needs AVX-512F, checked on the line above.
        unsafe { fill_avx512(x, weight, out) };
        return;
    }
    for (o, w) in out.iter_mut().zip(weight) {
        *o = x.iter().zip(*w).map(|(p, q)| p * q).sum();
    }
}

/// [`fill`] on AVX-512F: four rows per pass, sixteen lanes per step, the tail of `k` scalar.
///
/// # Safety
/// The CPU must have AVX-512F.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
// SAFETY contract: the `# Safety` section above; `fill` checks it.
unsafe fn fill_avx512(x: &[f32], weight: &[&[f32]], out: &mut [f32]) {
    use std::arch::x86_64::*;
    let k = x.len();
    let body = k - k % 16;
    let tail = |w: &[f32]| -> f32 {
        let mut s = 0.0;
        for (p, q) in x[body..].iter().zip(w.get(body..).unwrap_or_default()) {
            s += p * q;
        }
        s
    };
    let mut rows = weight.chunks_exact(4);
    let mut outs = out.chunks_exact_mut(4);
    for (w, o) in (&mut rows).zip(&mut outs) {
        if w.iter().any(|r| r.len() < k) {
            return; // Not reached: `product` hands rows of length `k` only.
        }
        let mut acc = [_mm512_setzero_ps(); 4];
        for i in (0..body).step_by(16) {
            // SAFETY: `i + 16 <= body <= k`, and `x` and every row hold at least `k` elements
            // (checked above); unaligned loads need no alignment.
            unsafe {
                let xv = _mm512_loadu_ps(x.as_ptr().add(i));
                for (a, r) in acc.iter_mut().zip(w) {
                    *a = _mm512_fmadd_ps(xv, _mm512_loadu_ps(r.as_ptr().add(i)), *a);
                }
            }
        }
        for ((o, a), r) in o.iter_mut().zip(acc).zip(w) {
            *o = _mm512_reduce_add_ps(a) + tail(r);
        }
    }
    for (o, r) in outs.into_remainder().iter_mut().zip(rows.remainder()) {
        if r.len() < k {
            return; // Not reached, as above.
        }
        let mut acc = _mm512_setzero_ps();
        for i in (0..body).step_by(16) {
            // SAFETY: as above: `i + 16 <= k <= x.len(), r.len()`.
            unsafe {
                acc = _mm512_fmadd_ps(
                    _mm512_loadu_ps(x.as_ptr().add(i)),
                    _mm512_loadu_ps(r.as_ptr().add(i)),
                    acc,
                );
            }
        }
        *o = _mm512_reduce_add_ps(acc) + tail(r);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The kernel (or, without AVX-512, the generic loops) against an f64 reference, for
    /// widths with and without a tail and row counts with and without a remainder of four,
    /// on one thread and split.
    #[test]
    fn matches_the_definition() {
        for (k, n) in [(1, 3), (16, 4), (37, 9), (784, 512), (512, 10)] {
            let x: Vec<f32> = (0..k).map(|i| (i as f32 * 0.37).sin()).collect();
            let w: Vec<f32> = (0..k * n).map(|i| (i as f32 * 0.11).cos()).collect();
            let left = Rows {
                data: &x,
                start: 0,
                row_stride: k,
                col_stride: 1,
            };
            // `b = wᵀ`: element (t, j) at `j * k + t`.
            let right = Rows {
                data: &w,
                start: 0,
                row_stride: 1,
                col_stride: k,
            };
            let mut c = vec![0.0f32; n];
            assert!(product(left, right, 1, k, n, &mut c));
            for (j, got) in c.iter().enumerate() {
                let want: f64 = (0..k)
                    .map(|t| f64::from(x[t]) * f64::from(w[j * k + t]))
                    .sum();
                assert!(
                    (f64::from(*got) - want).abs() < 1e-4 * (k as f64).sqrt(),
                    "{k}x{n} [{j}]: {got} vs {want}"
                );
            }
        }
    }

    /// A weight that would leave its storage falls back (false), output untouched.
    #[test]
    fn short_storage_is_refused() {
        let (x, w) = (vec![1.0f32; 32], vec![1.0f32; 40]);
        let left = Rows {
            data: &x,
            start: 0,
            row_stride: 32,
            col_stride: 1,
        };
        let right = Rows {
            data: &w,
            start: 0,
            row_stride: 1,
            col_stride: 32,
        };
        let mut c = vec![7.0f32; 2];
        assert!(!product(left, right, 1, 32, 2, &mut c));
        assert_eq!(c, [7.0; 2]);
    }
}
