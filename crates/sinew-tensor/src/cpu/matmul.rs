//! CPU matrix product: f32 through the packed kernel of `gemm` (which falls back to
//! `matrixmultiply` on CPUs without AVX2 + FMA), f64 through `matrixmultiply`, with rayon over
//! batches and row blocks of the products the kernels run on one thread.
//!
//! Operands are read in place through their strides, so transposed views cost no copy.

use rayon::prelude::*;

use std::mem::MaybeUninit;

use super::alloc::try_with_capacity;
use super::gemv;
use super::{CpuStorage, through_f32};
use crate::backend::MatmulDims;
use crate::{Error, Layout, Result, Shape, StridedOffsets};

/// Below this many multiply-adds a single matrix is not split across threads.
const SPLIT_WORK: usize = 1 << 21;

/// From this operand size (`m*k + k*n` elements) on, matrixmultiply's `threading` feature runs one
/// product on several threads by itself (its heuristic: 2^14 per thread, at least two threads).
const GEMM_THREADING_SIZE: usize = 1 << 15;

/// Whether the product of one `m x k` and one `k x n` matrix runs on several threads inside the
/// kernel (so rayon must not split it again).
fn gemm_threads_itself<T: Gemm>(m: usize, k: usize, n: usize) -> bool {
    if T::PACKED && super::gemm::packed_kernel_available() {
        super::gemm::splits_itself(m, k, n)
    } else {
        m * k + k * n >= GEMM_THREADING_SIZE
    }
}

/// Strides and start offsets of each matrix in a batched operand.
struct Operand<'a> {
    row_stride: isize,
    col_stride: isize,
    starts: Vec<usize>,
    _layout: &'a Layout,
}

impl<'a> Operand<'a> {
    fn new(layout: &'a Layout) -> Self {
        let rank = layout.dims().len();
        let strides = layout.strides();
        let batch = Layout::from_parts(
            Shape::new(layout.dims()[..rank - 2].to_vec()),
            strides[..rank - 2].to_vec(),
            layout.offset(),
        );
        // A size-1 dim is never stepped along, so its stride (which may be any value) is
        // normalised to 0; every other stride is at most the view's storage extent.
        let stride = |d: usize| {
            if layout.dims()[d] <= 1 {
                0
            } else {
                strides[d] as isize
            }
        };
        Operand {
            row_stride: stride(rank - 2),
            col_stride: stride(rank - 1),
            starts: StridedOffsets::starting_at(&batch, 0).collect(),
            _layout: layout,
        }
    }
}

/// Up to this many rows, a product of contiguous rows or columns runs as matrix-vector products
/// (`gemv.rs`) instead of GEMM: packing the right operand would cost as much as the arithmetic.
const GEMV_MAX_ROWS: usize = 2;

/// One GEMM kernel: `c[m, n] = a[m, k] @ b[k, n]` with `c` row-major.
trait Gemm:
    Copy + Send + Sync + Default + std::ops::Mul<Output = Self> + std::ops::Add<Output = Self> + 'static
{
    /// Whether products go through `gemm::sgemm` (which decides its own threading).
    const PACKED: bool;

    /// `c = a @ b`; with `parallel`, the kernel may split one large product over rayon.
    ///
    /// # Safety
    /// `a`, `b` and `c` must be valid for the given sizes and strides.
    unsafe fn gemm(
        m: usize,
        k: usize,
        n: usize,
        a: *const Self,
        rsa: isize,
        csa: isize,
        b: *const Self,
        rsb: isize,
        csb: isize,
        c: *mut Self,
        rsc: isize,
        parallel: bool,
    ) -> Result<()>;

    /// `c[rows, n] = a[rows, k] @ b[k, n]` through the matrix-vector loops when the layouts
    /// allow (see [`gemv::product`]); false, `c` untouched, otherwise.
    fn gemv(
        a: gemv::Rows<Self>,
        b: gemv::Rows<Self>,
        rows: usize,
        k: usize,
        n: usize,
        c: &mut [Self],
    ) -> bool {
        gemv::product(a, b, rows, k, n, c)
    }
}

impl Gemm for f32 {
    const PACKED: bool = true;

    fn gemv(
        a: gemv::Rows<f32>,
        b: gemv::Rows<f32>,
        rows: usize,
        k: usize,
        n: usize,
        c: &mut [f32],
    ) -> bool {
        super::gemv_f32::product(a, b, rows, k, n, c)
    }

    // SAFETY contract: the trait method's (pointers valid for the sizes and strides).
    unsafe fn gemm(
        m: usize,
        k: usize,
        n: usize,
        a: *const f32,
        rsa: isize,
        csa: isize,
        b: *const f32,
        rsb: isize,
        csb: isize,
        c: *mut f32,
        rsc: isize,
        parallel: bool,
    ) -> Result<()> {
        let (a, b) = (
            super::gemm::MatRef {
                ptr: a,
                row_stride: rsa,
                col_stride: csa,
            },
            super::gemm::MatRef {
                ptr: b,
                row_stride: rsb,
                col_stride: csb,
            },
        );
        let c = super::gemm::MatMut {
            ptr: c,
            row_stride: rsc,
            col_stride: 1,
        };
        // SAFETY: the caller upholds this function's contract (pointers valid for the sizes
        // and strides, `c` a distinct row-major output), which is `gemm::sgemm`'s; `batched`
        // establishes it via `check_operands`.
        unsafe { super::gemm::sgemm(m, k, n, a, b, c, false, parallel) }
    }
}

impl Gemm for f64 {
    const PACKED: bool = false;

    // SAFETY contract: the trait method's (pointers valid for the sizes and strides).
    unsafe fn gemm(
        m: usize,
        k: usize,
        n: usize,
        a: *const f64,
        rsa: isize,
        csa: isize,
        b: *const f64,
        rsb: isize,
        csb: isize,
        c: *mut f64,
        rsc: isize,
        _parallel: bool,
    ) -> Result<()> {
        // SAFETY: the caller upholds this function's contract (pointers valid for the sizes
        // and strides), which is exactly dgemm's; `batched` establishes it via `check_operands`.
        unsafe { matrixmultiply::dgemm(m, k, n, 1.0, a, rsa, csa, b, rsb, csb, 0.0, c, rsc, 1) };
        Ok(())
    }
}

/// Checks, in every build, what the unsafe GEMM calls rely on: each operand is a
/// `[batch.., rows, cols]` view whose sizes match `dims` and whose every element lies inside
/// its storage. Returns the output length `batch * m * n`.
fn check_operands<T>(
    a: &[T],
    la: &Layout,
    b: &[T],
    lb: &Layout,
    dims: MatmulDims,
) -> Result<usize> {
    let MatmulDims { batch, m, n, k } = dims;
    let fits = |data: &[T], l: &Layout, rows: usize, cols: usize| {
        let r = l.dims().len();
        r >= 2
            && l.dims()[r - 2..] == [rows, cols]
            && l.dims()[..r - 2].iter().product::<usize>() == batch
            && l.shape().checked_elem_count("matmul").is_ok()
            && l.checked_storage_extent().is_some_and(|e| e <= data.len())
    };
    if !fits(a, la, m, k) || !fits(b, lb, k, n) {
        return Err(Error::invalid(
            "matmul",
            format!(
                "operand views {} (strides {:?}) and {} (strides {:?}) do not match sizes {dims:?} or leave their storages",
                la.shape(),
                la.strides(),
                lb.shape(),
                lb.strides()
            ),
        ));
    }
    batch
        .checked_mul(m)
        .and_then(|x| x.checked_mul(n))
        .ok_or_else(|| Error::Overflow {
            op: "matmul",
            what: format!("the output size {batch} x {m} x {n}"),
        })
}

fn batched<T: Gemm>(
    a: &[T],
    la: &Layout,
    b: &[T],
    lb: &Layout,
    dims: MatmulDims,
) -> Result<Vec<T>> {
    let MatmulDims { batch, m, n, k } = dims;
    let len = check_operands(a, la, b, lb, dims)?;
    // Not zero-filled: every product below writes all of its output rows (see `product`).
    let mut buffer = try_with_capacity::<T>("matmul", len)?;
    if len == 0 {
        return Ok(buffer);
    }
    let out = &mut buffer.spare_capacity_mut()[..len];
    let (lhs, rhs) = (Operand::new(la), Operand::new(lb));
    // One matrix product of rows [r0, r1) of batch `i` into `c` (those rows of the output).
    // With `parallel`, the kernel may split the product over rayon itself.
    let product =
        |i: usize, r0: usize, r1: usize, c: &mut [MaybeUninit<T>], parallel: bool| -> Result<()> {
            if k == 0 || r1 - r0 <= GEMV_MAX_ROWS {
                // The empty sum is zero, and `gemv::product` accumulates into a zeroed output.
                c.fill(MaybeUninit::new(T::default()));
            }
            if k == 0 {
                return Ok(());
            }
            if r1 - r0 <= GEMV_MAX_ROWS {
                // SAFETY: every element of `c` was initialised just above, so viewing the slice
                // as initialised `T`s (same size and alignment as `MaybeUninit<T>`) is sound.
                let c = unsafe { &mut *(std::ptr::from_mut(c) as *mut [T]) };
                let rows = gemv::Rows {
                    data: a,
                    start: lhs.starts[i] + r0 * lhs.row_stride as usize,
                    row_stride: lhs.row_stride as usize,
                    col_stride: lhs.col_stride as usize,
                };
                let right = gemv::Rows {
                    data: b,
                    start: rhs.starts[i],
                    row_stride: rhs.row_stride as usize,
                    col_stride: rhs.col_stride as usize,
                };
                if T::gemv(rows, right, r1 - r0, k, n, c) {
                    return Ok(());
                }
            }
            // SAFETY: `check_operands` (run in every build, above) verified that `la` is
            // [batch.., m, k] and `lb` [batch.., k, n] and that every element of both views
            // lies inside `a` and `b`; so the start of matrix `i` row `r0` and every (row, col)
            // read from there with the views' strides stay inside the slices (strides of dims
            // longer than 1 are at most the storage length, so the `isize` casts are exact;
            // `Operand::new` zeroes the others). `c` is a row-major chunk of (r1 - r0) * n
            // output elements, the rows written with row stride `n`; with `k > 0` the kernels
            // overwrite every one of them without reading it (beta 0), so `c` may be
            // uninitialised. (SAFETY: established above.)
            unsafe {
                T::gemm(
                    r1 - r0,
                    k,
                    n,
                    a.as_ptr().add(lhs.starts[i] + r0 * lhs.row_stride as usize),
                    lhs.row_stride,
                    lhs.col_stride,
                    b.as_ptr().add(rhs.starts[i]),
                    rhs.row_stride,
                    rhs.col_stride,
                    c.as_mut_ptr().cast::<T>(),
                    n as isize,
                    parallel,
                )
            }
        };
    // The kernels split one large product over threads themselves (the packed f32 kernel over
    // rayon above `gemm::PARALLEL_WORK`, matrixmultiply's `threading` feature once `m*k + k*n`
    // passes its own threshold); splitting such a product again by row blocks over rayon
    // oversubscribes the cores and repacks the right operand per block (measured 10-40% slower
    // at 256-1024 with matrixmultiply). So rayon here takes the work the kernels run on one
    // thread: many small matrices (split over batches) and large outputs of thin operands (split
    // over row blocks).
    let threads = rayon::current_num_threads();
    let threads_itself = gemm_threads_itself::<T>(m, k, n);
    if batch > 1 && !threads_itself && batch * m * n * k >= super::PARALLEL_THRESHOLD {
        out.par_chunks_mut(m * n)
            .enumerate()
            .try_for_each(|(i, c)| product(i, 0, m, c, false))?;
    } else if !threads_itself && m * n * k >= SPLIT_WORK && m >= 2 * threads && n > 0 {
        let rows = m.div_ceil(threads * 2).max(16);
        for (i, c) in out.chunks_mut(m * n).enumerate() {
            c.par_chunks_mut(rows * n)
                .enumerate()
                .try_for_each(|(blk, c)| {
                    product(i, blk * rows, (blk * rows + rows).min(m), c, false)
                })?;
        }
    } else {
        for (i, c) in out.chunks_mut(m * n).enumerate() {
            product(i, 0, m, c, true)?;
        }
    }
    // SAFETY: capacity >= len (`try_with_capacity`), and every one of the first `len`
    // elements was written above: the loops cover all `batch * m` rows, each filled by
    // `product` (zeros, gemv on a zeroed chunk, or a beta-0 GEMM); on an error we returned
    // early with the length still 0, exposing nothing.
    unsafe { buffer.set_len(len) };
    Ok(buffer)
}

/// Batched matrix product of two views.
pub(super) fn matmul(
    lhs: &CpuStorage,
    ll: &Layout,
    rhs: &CpuStorage,
    rl: &Layout,
    dims: MatmulDims,
) -> Result<CpuStorage> {
    if let Some(out) = through_f32("matmul", lhs, ll, |l, ll| {
        let r = super::cast::cast(rhs, rl, crate::DType::F32).map_err(|e| e.in_op("matmul"))?;
        matmul(l, ll, &r, &Layout::contiguous(rl.shape().clone()), dims)
    }) {
        return out;
    }
    Ok(match (lhs, rhs) {
        (CpuStorage::F32(a), CpuStorage::F32(b)) => CpuStorage::F32(batched(a, ll, b, rl, dims)?),
        (CpuStorage::F64(a), CpuStorage::F64(b)) => CpuStorage::F64(batched(a, ll, b, rl, dims)?),
        (a, b) if a.dtype() != b.dtype() => {
            return Err(Error::DTypeMismatch {
                op: "matmul",
                lhs: a.dtype(),
                rhs: b.dtype(),
            });
        }
        (a, _) => {
            return Err(Error::UnsupportedDType {
                op: "matmul",
                dtype: a.dtype(),
            });
        }
    })
}
