//! The f32 matrix-vector product of one row by a linear layer's weight (`x @ wᵀ`, the columns
//! of the right operand contiguous: batch-1 inference) with an explicit AVX-512 kernel: four
//! weight rows per pass share each load of `x`, one fused multiply-add chain per row, the
//! lanes summed as a tree. The generic loops of `gemv.rs` serve every other case.
//!
//! A large product called from outside rayon's pool is split by output columns into one part
//! per thread: the calling thread computes the first part itself while spinning helper threads
//! compute the others (`spin_split.rs`; through rayon's pool the 784-512-512-10 MLP at batch 1
//! took ~39-62 us on the 2-core EPYC bench machine, its idle workers sleeping between layers
//! and a third thread spinning beside the two computing). Each output is one thread's dot
//! product, so the split does not change the values.

use std::sync::{Mutex, PoisonError};

use super::gemv::{self, Rows};
use super::spin_split;

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
    let (Some(x), Some(out), Some(weight)) =
        (a.row(0, k), c.get_mut(..n), WeightRows::new(columns, k, n))
    else {
        return false;
    };
    let threads = rayon::current_num_threads();
    let split = threads > 1
        && n >= 8 * threads
        && k.saturating_mul(n) >= SPLIT_WORK
        && rayon::current_thread_index().is_none();
    let parts = if split { spin_split::parts() } else { 1 };
    if parts < 2 {
        fill(x, weight, out);
        return true;
    }
    // One part per thread, the calling thread computing the first (`spin_split`).
    let per = n.div_ceil(parts);
    let chunks: Vec<Mutex<(WeightRows, &mut [f32])>> = out
        .chunks_mut(per)
        .enumerate()
        .map(|(i, out)| Mutex::new((weight.part(i * per, out.len()), out)))
        .collect();
    spin_split::run(&|part| {
        if let Some(chunk) = chunks.get(part) {
            // Each part runs once, so its lock is never contended.
            let mut chunk = chunk.lock().unwrap_or_else(PoisonError::into_inner);
            let (rows, out) = &mut *chunk;
            fill(x, *rows, out);
        }
    });
    true
}

/// `n` weight rows of `k` contiguous elements, `stride` apart from `start`, every one inside
/// `data` (checked once, by [`WeightRows::new`]).
#[derive(Clone, Copy)]
struct WeightRows<'a> {
    data: &'a [f32],
    start: usize,
    stride: usize,
    k: usize,
    n: usize,
}

impl<'a> WeightRows<'a> {
    /// The first `n` rows of `columns`, `None` unless the last one lies inside the storage
    /// (rows lie at increasing offsets, so then all do).
    fn new(columns: Rows<'a, f32>, k: usize, n: usize) -> Option<Self> {
        columns.row(n.checked_sub(1)?, k)?;
        Some(WeightRows {
            data: columns.data,
            start: columns.start,
            stride: columns.row_stride,
            k,
            n,
        })
    }

    /// Rows `from..from + n` (inside `0..self.n`). No overflow: for `from < self.n` the new
    /// start is at most the last row's, which `new` computed with checked arithmetic.
    fn part(self, from: usize, n: usize) -> Self {
        WeightRows {
            start: self.start + from * self.stride,
            n: n.min(self.n - from),
            ..self
        }
    }

    /// Row `j < n` (`None` past the end: not reached, the rows were checked).
    fn row(&self, j: usize) -> Option<&'a [f32]> {
        let from = self.start.checked_add(j.checked_mul(self.stride)?)?;
        self.data.get(from..from.checked_add(self.k)?)
    }
}

/// `out[j] = x · weight[j]` for each row `j < weight.n` (every row `x.len()` long).
fn fill(x: &[f32], weight: WeightRows, out: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    if crate::cpu::has_avx512f() {
        // SAFETY: `fill_avx512` needs AVX-512F, checked on the line above.
        unsafe { fill_avx512(x, weight, out) };
        return;
    }
    for (j, o) in out.iter_mut().enumerate().take(weight.n) {
        if let Some(w) = weight.row(j) {
            *o = x.iter().zip(w).map(|(p, q)| p * q).sum();
        }
    }
}

/// [`fill`] on AVX-512F: four rows per pass, sixteen lanes per step, the tail of `k` scalar.
///
/// # Safety
/// The CPU must have AVX-512F.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
// SAFETY contract: the `# Safety` section above; `fill` checks it.
unsafe fn fill_avx512(x: &[f32], weight: WeightRows, out: &mut [f32]) {
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
    let len = weight.n.min(out.len());
    let out = &mut out[..len];
    let done = len - len % 4;
    let mut outs = out.chunks_exact_mut(4);
    for (q, o) in (&mut outs).enumerate() {
        let rows = [0, 1, 2, 3].map(|r| weight.row(4 * q + r).filter(|w| w.len() >= k));
        let [Some(w0), Some(w1), Some(w2), Some(w3)] = rows else {
            return; // Not reached: `product` checked every row, `k` elements long.
        };
        let w = [w0, w1, w2, w3];
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
    for (j, o) in out.iter_mut().enumerate().skip(done) {
        let Some(r) = weight.row(j).filter(|w| w.len() >= k) else {
            return; // Not reached, as above.
        };
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
