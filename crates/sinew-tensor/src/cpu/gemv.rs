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

/// Lanes of the dot-product accumulators: four AVX2 registers of f32 (eight SSE ones), enough
/// independent sums to hide the adds' latency. The summation order is the same on every CPU.
const LANES: usize = 32;

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
    pub(super) fn row(&self, r: usize, len: usize) -> Option<&'a [T]> {
        if self.col_stride != 1 && len > 1 {
            return None;
        }
        let from = self.start.checked_add(r.checked_mul(self.row_stride)?)?;
        self.data.get(from..from.checked_add(len)?)
    }
}

/// The element types of the products: what the loops below need.
pub(super) trait Scalar:
    Copy + Send + Sync + Default + std::ops::Mul<Output = Self> + std::ops::Add<Output = Self>
{
}

impl<T> Scalar for T where
    T: Copy + Send + Sync + Default + std::ops::Mul<Output = T> + std::ops::Add<Output = T>
{
}

/// `c[rows, n] = a[rows, k] @ b[k, n]` (`c` row-major, zeroed) when the layouts allow; returns
/// false, leaving `c` untouched, when they do not.
///
/// One thread: the right operand streams from cache at memory speed. Splitting the output
/// columns over two rayon threads measured 62 us against 64 us (mlp infer b1) with one other
/// busy process on the 2-core bench machine, but 92 us with two: not worth the risk.
pub(super) fn product<T: Scalar>(
    a: Rows<T>,
    b: Rows<T>,
    rows: usize,
    k: usize,
    n: usize,
    c: &mut [T],
) -> bool {
    let Some(len) = rows.checked_mul(n) else {
        return false;
    };
    if c.len() < len || (0..rows).any(|r| a.row(r, k).is_none()) {
        return false;
    }
    let layout = if b.col_stride == 1 || n == 1 {
        // Rows of b contiguous: c[r, :] = sum_j a[r, j] * b[j, :].
        if (0..k).any(|j| b.row(j, n).is_none()) {
            return false;
        }
        Layout::Axpy(b)
    } else if b.row_stride == 1 || k == 1 {
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
        Layout::Dot(columns)
    } else {
        return false;
    };
    for (r, out) in c[..len].chunks_mut(n).enumerate() {
        layout.fill(a.row(r, k).unwrap_or_default(), out);
    }
    true
}

/// How the right operand is read, its rows or columns checked to lie inside the storage.
enum Layout<'a, T> {
    /// Rows of `b` contiguous.
    Axpy(Rows<'a, T>),
    /// Columns of `b` contiguous, as the rows of this view.
    Dot(Rows<'a, T>),
}

impl<T: Scalar> Layout<'_, T> {
    /// The output row of the row `x` of `a`, through the widest vector unit this CPU has.
    fn fill(&self, x: &[T], out: &mut [T]) {
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: `fill_avx2` only needs the AVX2 instructions it was compiled with, and
            // the line above checked at run time that this CPU has them.
            unsafe { self.fill_avx2(x, out) };
            return;
        }
        self.fill_any(x, out);
    }

    /// [`Self::fill_any`] compiled for AVX2 (same operations, same order, same values: Rust
    /// never fuses a multiply and an add on its own).
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    fn fill_avx2(&self, x: &[T], out: &mut [T]) {
        self.fill_any(x, out);
    }

    /// The portable loops.
    #[inline(always)]
    fn fill_any(&self, x: &[T], out: &mut [T]) {
        let k = x.len();
        match self {
            Layout::Axpy(b) => {
                let n = out.len();
                for (j, &scale) in x.iter().enumerate() {
                    let row = b.row(j, n).unwrap_or_default();
                    for (o, &v) in out.iter_mut().zip(row) {
                        *o = *o + scale * v;
                    }
                }
            }
            Layout::Dot(columns) => {
                for (j, o) in out.iter_mut().enumerate() {
                    *o = dot(x, columns.row(j, k).unwrap_or_default());
                }
            }
        }
    }
}

/// `x · y` with `LANES` independent accumulators, so the loop vectorises. (Summing the lanes
/// pairwise instead of in one chain made the compiler stop vectorising the main loop.)
#[inline(always)]
fn dot<T: Scalar>(x: &[T], y: &[T]) -> T {
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
