//! The operands of the packed products: [`PackA`] and [`PackB`] write panels straight into the
//! micro-kernel's packed layouts (strided matrices through `pack.rs`, or operands computed
//! while packing, such as im2col columns), and the product entries that take them.

use super::pack::{View, pack_a_panel, pack_b_panel};
use super::{Job, MatMut, MatRef, packed_kernel_available};
use crate::{Error, Result};

/// A right operand `B` that writes its panels straight into the packed layout (e.g. im2col
/// columns computed from images while packing, never stored whole).
pub(crate) trait PackB: Sync {
    /// Writes rows `row..row + kc` and columns `col..col + cols` of `B` (all inside it,
    /// `cols <= 16`) into `dst` (`kc * 16` elements): for each row `p`, its columns at
    /// `dst[p * 16..]`, the columns from `cols` on zero.
    fn pack_panel(&self, row: usize, kc: usize, col: usize, cols: usize, dst: &mut [f32]);
}

/// A left operand `A` that writes its panels straight into the packed layout (e.g. im2col
/// rows computed from images while packing).
pub(crate) trait PackA: Sync {
    /// Writes rows `row..row + rows` (`rows <= 6`) and columns `col..col + kc` of `A` (all
    /// inside it) into `dst` (`kc * 6` elements): for each column `p`, its rows at
    /// `dst[p * 6..]`, the rows from `rows` on zero.
    fn pack_panel(&self, row: usize, rows: usize, col: usize, kc: usize, dst: &mut [f32]);
}

/// A strided `A` read through [`pack_a_panel`]; built only by [`sgemm`] and
/// [`sgemm_packed_b`] from their caller's operand, valid by their contract for the call.
#[derive(Clone, Copy)]
pub(super) struct StridedA(pub(super) View);

impl PackA for StridedA {
    fn pack_panel(&self, row: usize, rows: usize, col: usize, kc: usize, dst: &mut [f32]) {
        // SAFETY: a `StridedA` is built only by `sgemm` and `sgemm_packed_b`, whose contracts
        // make its view valid for reads of `m x k` elements; `Job::blocks` asks for rows and
        // columns inside it.
        unsafe { pack_a_panel(self.0.at(row, col), rows, kc, dst) }
    }
}

/// A strided `B` read through [`pack_b_panel`]; built only by [`sgemm`] from its caller's
/// operand, valid by `sgemm`'s contract for the whole call.
#[derive(Clone, Copy)]
pub(super) struct StridedB(pub(super) View);

impl PackB for StridedB {
    fn pack_panel(&self, row: usize, kc: usize, col: usize, cols: usize, dst: &mut [f32]) {
        // SAFETY: a `StridedB` is built only by `sgemm`, whose contract makes its view valid
        // for reads of `k x n` elements; `Job::blocks` asks for rows and columns inside it.
        unsafe { pack_b_panel(self.0.at(row, col), kc, cols, dst) }
    }
}

/// `C = A @ B` (or `C += A @ B` when `accumulate`) like [`sgemm`], with `B` produced panel by
/// panel by `b` (`k x n`). Only for CPUs where [`packed_kernel_available`].
///
/// # Errors
/// As [`sgemm`]; [`Error::InvalidArgument`] when the packed kernel is not available on this
/// CPU.
///
/// # Safety
/// As [`sgemm`], for `a` and `c` (`b` checks its own reads).
// SAFETY contract: the `# Safety` section above.
pub(crate) unsafe fn sgemm_packed_b<B: PackB>(
    m: usize,
    k: usize,
    n: usize,
    a: MatRef,
    b: &B,
    c: MatMut,
    accumulate: bool,
    parallel: bool,
) -> Result<()> {
    let a = StridedA(View {
        ptr: a.ptr,
        rs: a.row_stride,
        cs: a.col_stride,
    });
    // SAFETY: the caller's contract covers `c`; `a` is valid by it too.
    unsafe { sgemm_packed(m, k, n, &a, b, c, accumulate, parallel) }
}

/// `C = A @ B` (or `C += A @ B` when `accumulate`) like [`sgemm`], with both operands produced
/// panel by panel (`a`: `m x k`, `b`: `k x n`). Only for CPUs where
/// [`packed_kernel_available`].
///
/// # Errors
/// As [`sgemm_packed_b`].
///
/// # Safety
/// As [`sgemm`], for `c` (`a` and `b` check their own reads).
// SAFETY contract: the `# Safety` section above.
pub(crate) unsafe fn sgemm_packed<A: PackA, B: PackB>(
    m: usize,
    k: usize,
    n: usize,
    a: &A,
    b: &B,
    c: MatMut,
    accumulate: bool,
    parallel: bool,
) -> Result<()> {
    if !packed_kernel_available() {
        return Err(Error::invalid(
            "matmul",
            "a packed operand needs the AVX2 + FMA kernel",
        ));
    }
    if m == 0 || n == 0 {
        return Ok(());
    }
    if k == 0 {
        if !accumulate {
            for i in 0..m {
                for j in 0..n {
                    // SAFETY: `(i, j)` is an element of the valid `m x n` matrix `C`
                    // (this function's contract), written by this call only.
                    unsafe {
                        *c.ptr
                            .offset(i as isize * c.row_stride + j as isize * c.col_stride) = 0.0
                    };
                }
            }
        }
        return Ok(());
    }
    let job = Job {
        m,
        k,
        n,
        a,
        b,
        c,
        accumulate,
    };
    job.start(parallel)
}
