//! CPU matrix product through `matrixmultiply`, with rayon over batches and row blocks of the
//! products matrixmultiply would run on one thread.
//!
//! Operands are read in place through their strides, so transposed views cost no copy.

use rayon::prelude::*;

use super::{CpuStorage, through_f32};
use crate::backend::MatmulDims;
use crate::{Error, Layout, Result, Shape, StridedOffsets};

/// Below this many multiply-adds a single matrix is not split across threads.
const SPLIT_WORK: usize = 1 << 21;

/// From this operand size (`m*k + k*n` elements) on, matrixmultiply's `threading` feature runs one
/// product on several threads by itself (its heuristic: 2^14 per thread, at least two threads).
const GEMM_THREADING_SIZE: usize = 1 << 15;

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
        Operand {
            row_stride: strides[rank - 2] as isize,
            col_stride: strides[rank - 1] as isize,
            starts: StridedOffsets::starting_at(&batch, 0).collect(),
            _layout: layout,
        }
    }
}

/// One GEMM kernel: `c[m, n] = a[m, k] @ b[k, n]` with `c` row-major.
trait Gemm: Copy + Send + Sync + Default + 'static {
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
    );
}

impl Gemm for f32 {
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
    ) {
        // SAFETY: forwarded from the caller's contract.
        unsafe { matrixmultiply::sgemm(m, k, n, 1.0, a, rsa, csa, b, rsb, csb, 0.0, c, rsc, 1) }
    }
}

impl Gemm for f64 {
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
    ) {
        // SAFETY: forwarded from the caller's contract.
        unsafe { matrixmultiply::dgemm(m, k, n, 1.0, a, rsa, csa, b, rsb, csb, 0.0, c, rsc, 1) }
    }
}

fn batched<T: Gemm>(a: &[T], la: &Layout, b: &[T], lb: &Layout, dims: MatmulDims) -> Vec<T> {
    let MatmulDims { batch, m, n, k } = dims;
    let mut out = vec![T::default(); batch * m * n];
    if out.is_empty() {
        return out;
    }
    let (lhs, rhs) = (Operand::new(la), Operand::new(lb));
    // One matrix product of rows [r0, r1) of batch `i` into `c` (those rows of the output).
    let product = |i: usize, r0: usize, r1: usize, c: &mut [T]| {
        if k == 0 {
            return;
        }
        // SAFETY: the layouts were validated against their storages by the ops layer, so every
        // (row, col) read stays inside `a` and `b`; `c` holds (r1 - r0) * n elements.
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
                c.as_mut_ptr(),
                n as isize,
            )
        }
    };
    // matrixmultiply (built with its `threading` feature) already splits one product over up to
    // four threads once `m*k + k*n` passes its own threshold; splitting such a product again by
    // row blocks over rayon oversubscribes the cores and repacks the right operand per block
    // (measured 10-40% slower at 256-1024). So rayon takes the work matrixmultiply runs on one
    // thread: many small matrices (split over batches) and large outputs of thin operands (split
    // over row blocks).
    let threads = rayon::current_num_threads();
    let gemm_threads_itself = m * k + k * n >= GEMM_THREADING_SIZE;
    if batch > 1 && !gemm_threads_itself && batch * m * n * k >= super::PARALLEL_THRESHOLD {
        out.par_chunks_mut(m * n)
            .enumerate()
            .for_each(|(i, c)| product(i, 0, m, c));
    } else if !gemm_threads_itself && m * n * k >= SPLIT_WORK && m >= 2 * threads && n > 0 {
        let rows = m.div_ceil(threads * 2).max(16);
        for (i, c) in out.chunks_mut(m * n).enumerate() {
            c.par_chunks_mut(rows * n)
                .enumerate()
                .for_each(|(blk, c)| product(i, blk * rows, (blk * rows + rows).min(m), c));
        }
    } else {
        for (i, c) in out.chunks_mut(m * n).enumerate() {
            product(i, 0, m, c);
        }
    }
    out
}

/// Batched matrix product of two views.
pub(super) fn matmul(
    lhs: &CpuStorage,
    ll: &Layout,
    rhs: &CpuStorage,
    rl: &Layout,
    dims: MatmulDims,
) -> Result<CpuStorage> {
    if let Some(out) = through_f32(lhs, ll, |l, ll| {
        let r = super::cast::cast(rhs, rl, crate::DType::F32);
        matmul(l, ll, &r, &Layout::contiguous(rl.shape().clone()), dims)
    }) {
        return out;
    }
    Ok(match (lhs, rhs) {
        (CpuStorage::F32(a), CpuStorage::F32(b)) => CpuStorage::F32(batched(a, ll, b, rl, dims)),
        (CpuStorage::F64(a), CpuStorage::F64(b)) => CpuStorage::F64(batched(a, ll, b, rl, dims)),
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
