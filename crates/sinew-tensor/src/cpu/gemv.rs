//! Matrix-vector products for the matmuls of one or two rows (batch-1 inference, a linear
//! layer on one example): GEMM would pack the whole right operand for a single pass over it.
//!
//! Two layouts are handled, both read in place and without `unsafe`:
//! - the right operand's rows are contiguous (`b[k, n]` row-major): each output row is a sum of
//!   scaled rows of `b` (axpy);
//! - its columns are contiguous (`b` is `wᵀ` for a row-major `w[n, k]`, as in `F::linear`):
//!   each output is a dot product of two contiguous rows.
//!
//! Anything else falls back to GEMM. The left operand's rows must be contiguous too.

/// Lanes of the dot-product accumulators (one AVX-512 register of f32, two of AVX2).
const LANES: usize = 16;

/// A strided matrix inside a slice: element `(r, c)` is `data[start + r*row_stride +
/// c*col_stride]` (strides of size-1 dims are 0).
pub(super) struct Rows<'a, T> {
    /// The storage.
    pub data: &'a [T],
    /// Index of element (0, 0).
    pub start: usize,
    /// Step between rows.
    pub row_stride: usize,
    /// Step between columns.
    pub col_stride: usize,
}

impl<'a, T> Rows<'a, T> {
    /// Row `r` as a contiguous slice of `len` elements, when the columns are contiguous (or
    /// there is one column) and the row lies inside the storage.
    fn row(&self, r: usize, len: usize) -> Option<&'a [T]> {
        if self.col_stride != 1 && len > 1 {
            return None;
        }
        let from = self.start.checked_add(r.checked_mul(self.row_stride)?)?;
        self.data.get(from..from.checked_add(len)?)
    }
}

/// `c[rows, n] = a[rows, k] @ b[k, n]` (`c` row-major, zeroed) when the layouts allow; returns
/// false, leaving `c` untouched, when they do not.
pub(super) fn product<T>(
    a: Rows<T>,
    b: Rows<T>,
    rows: usize,
    k: usize,
    n: usize,
    c: &mut [T],
) -> bool
where
    T: Copy + Default + std::ops::Mul<Output = T> + std::ops::Add<Output = T>,
{
    if c.len() < rows * n || (0..rows).any(|r| a.row(r, k).is_none()) {
        return false;
    }
    if b.col_stride == 1 || n == 1 {
        // Rows of b contiguous: c[r, :] = sum_j a[r, j] * b[j, :].
        if (0..k).any(|j| b.row(j, n).is_none()) {
            return false;
        }
        for (r, out) in c.chunks_mut(n).take(rows).enumerate() {
            let x = a.row(r, k).unwrap_or_default();
            for (j, &scale) in x.iter().enumerate() {
                let row = b.row(j, n).unwrap_or_default();
                for (o, &v) in out.iter_mut().zip(row) {
                    *o = *o + scale * v;
                }
            }
        }
        return true;
    }
    if b.row_stride == 1 || k == 1 {
        // Columns of b contiguous: b's column j is row j of the transposed view.
        let columns = Rows {
            data: b.data,
            start: b.start,
            row_stride: b.col_stride,
            col_stride: 1,
        };
        if (0..n).any(|j| columns.row(j, k).is_none()) {
            return false;
        }
        for (r, out) in c.chunks_mut(n).take(rows).enumerate() {
            let x = a.row(r, k).unwrap_or_default();
            let fill = |first: usize, out: &mut [T]| {
                for (j, o) in out.iter_mut().enumerate() {
                    *o = dot(x, columns.row(first + j, k).unwrap_or_default());
                }
            };
            // One thread: the operand streams from cache at memory speed, and a second thread
            // measured no faster under load (median 108-148 us against 91-98 us, mlp infer b1).
            fill(0, out);
        }
        return true;
    }
    false
}

/// `x · y` with `LANES` independent accumulators, so the loop vectorises.
fn dot<T>(x: &[T], y: &[T]) -> T
where
    T: Copy + Default + std::ops::Mul<Output = T> + std::ops::Add<Output = T>,
{
    let mut acc = [T::default(); LANES];
    let (xc, yc) = (x.chunks_exact(LANES), y.chunks_exact(LANES));
    let (xr, yr) = (xc.remainder(), yc.remainder());
    for (xs, ys) in xc.zip(yc) {
        for l in 0..LANES {
            acc[l] = acc[l] + xs[l] * ys[l];
        }
    }
    let mut total = T::default();
    for (&p, &q) in xr.iter().zip(yr) {
        total = total + p * q;
    }
    acc.iter().fold(total, |s, &v| s + v)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive(
        a: &[f64],
        b: &[f64],
        b_transposed: bool,
        rows: usize,
        k: usize,
        n: usize,
    ) -> Vec<f64> {
        (0..rows * n)
            .map(|i| {
                let (r, j) = (i / n, i % n);
                (0..k)
                    .map(|t| {
                        a[r * k + t]
                            * if b_transposed {
                                b[j * k + t]
                            } else {
                                b[t * n + j]
                            }
                    })
                    .sum()
            })
            .collect()
    }

    #[test]
    fn both_layouts_match_the_definition() {
        let (rows, k, n) = (2, 37, 5);
        let a: Vec<f64> = (0..rows * k).map(|i| (i as f64 * 0.37).sin()).collect();
        let b: Vec<f64> = (0..k * n).map(|i| (i as f64 * 0.11).cos()).collect();
        let left = || Rows {
            data: &a,
            start: 0,
            row_stride: k,
            col_stride: 1,
        };
        for transposed in [false, true] {
            let right = if transposed {
                Rows {
                    data: &b,
                    start: 0,
                    row_stride: 1,
                    col_stride: k,
                }
            } else {
                Rows {
                    data: &b,
                    start: 0,
                    row_stride: n,
                    col_stride: 1,
                }
            };
            let mut c = vec![0.0; rows * n];
            assert!(product(left(), right, rows, k, n, &mut c));
            let want = naive(&a, &b, transposed, rows, k, n);
            for (got, want) in c.iter().zip(&want) {
                assert!((got - want).abs() < 1e-12, "{got} vs {want}");
            }
        }
    }

    #[test]
    fn other_layouts_and_short_storage_fall_back() {
        let a = vec![1.0f32; 8];
        let b = vec![1.0f32; 16];
        let left = || Rows {
            data: &a,
            start: 0,
            row_stride: 4,
            col_stride: 1,
        };
        // Neither rows nor columns of b contiguous.
        let strided = Rows {
            data: &b,
            start: 0,
            row_stride: 8,
            col_stride: 2,
        };
        let mut c = vec![7.0f32; 4];
        assert!(!product(left(), strided, 1, 2, 2, &mut c));
        assert_eq!(c, [7.0; 4]);
        // A right operand that would leave its storage.
        let short = Rows {
            data: &b[..3],
            start: 0,
            row_stride: 4,
            col_stride: 1,
        };
        assert!(!product(left(), short, 1, 4, 4, &mut c));
    }
}
