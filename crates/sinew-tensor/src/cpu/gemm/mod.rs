//! Packed f32 GEMM in the BLIS style: `C (+)= A @ B` for strided operands.
//!
//! The loops, outermost first: columns of `C` in blocks of [`NC`]; `k` in blocks of [`KC`], for
//! which the `KC x NC` block of `B` is packed once into `NR`-column panels (kept in L3);
//! rows of `C` in chunks whose `A` rows are packed into `MR`-row panels; then the chunk's tiles,
//! grouped into row blocks of at most [`MC`] rows (their packed `A`, `MC x KC`, stays in L2) and
//! column blocks, each `B` micro-panel (`KC x NR`, in L1) swept over all row panels of its block
//! by the micro-kernel. On two threads or more, products above [`PARALLEL_WORK`] multiply-adds
//! pack both operands and run the tile blocks over rayon, on one pool worker throughout.
//!
//! Operands can also be made while packing (`operands.rs`): the convolutions' im2col columns
//! go straight into the packed panels (`im2col.rs`, `im2col_grad.rs`), and the input gradient
//! folds each image's product while it is in the cache (`col2im_grad.rs`).
//!
//! The micro-kernel is x86_64 AVX2 + FMA (6 x 16, `kernel_avx2.rs`), chosen at run time, and on
//! CPUs with AVX-512F two full column panels at a time go through a 6 x 32 zmm kernel
//! (`kernel_avx512.rs`) that gives the same bits; other CPUs and architectures use
//! `matrixmultiply`. Packing buffers are kept per thread, aligned to
//! a cache line, grown fallibly: a failed allocation is an error, never an abort.

pub(crate) mod col2im_grad;
pub(crate) mod im2col;
#[cfg(target_arch = "x86_64")]
mod im2col_avx2;
pub(crate) mod im2col_grad;
mod im2col_pad;
mod kernel_avx2;
mod kernel_avx512;
mod operands;
mod pack;
mod pack_avx512;
#[cfg(test)]
mod tests;
mod tiles;

use std::cell::Cell;

use rayon::prelude::*;

pub(crate) use self::operands::{PackA, PackB, sgemm_packed, sgemm_packed_b};
use self::operands::{StridedA, StridedB};
use self::pack::{MR, NR, View};
use self::tiles::Tiles;
use crate::{Error, Result};

/// Depth of one packed block (`k` elements per panel step): a `KC x NR` panel of `B` is 16 KiB,
/// half the 32 KiB L1 data cache.
pub const KC: usize = 256;
/// Most rows of `C` one row block runs with the same `B` micro-panel: its packed `A`
/// (`MC x KC`, 144 KiB) stays in the L2 cache.
pub const MC: usize = 144;
/// Most columns of `C` one packed block of `B` covers (`KC x NC`, 4 MiB, in L3).
pub const NC: usize = 4096;
/// Most rows of `A` packed at once (one rayon round of tile blocks).
const M_CHUNK: usize = 4 * MC;
/// From this many multiply-adds (`m * n * k`) on, a product is split over rayon's threads.
pub const PARALLEL_WORK: usize = 1 << 20;

/// A read-only strided matrix operand: element `(i, j)` is at `ptr + i * row_stride +
/// j * col_stride` (strides in elements, any sign).
#[derive(Clone, Copy, Debug)]
pub struct MatRef {
    /// Address of element `(0, 0)`.
    pub ptr: *const f32,
    /// Distance between rows, in elements.
    pub row_stride: isize,
    /// Distance between columns, in elements.
    pub col_stride: isize,
}

/// The written strided matrix `C`: element `(i, j)` is at `ptr + i * row_stride +
/// j * col_stride`.
#[derive(Clone, Copy, Debug)]
pub struct MatMut {
    /// Address of element `(0, 0)`.
    pub ptr: *mut f32,
    /// Distance between rows, in elements.
    pub row_stride: isize,
    /// Distance between columns, in elements.
    pub col_stride: isize,
}

// SAFETY: `C` is written only through `sgemm`, whose contract gives it exclusive access to the
// elements `MatMut` names; the threads it starts write disjoint tiles of them.
unsafe impl Send for MatMut {}
// SAFETY: as for `Send` just above: concurrent uses touch disjoint tiles only.
unsafe impl Sync for MatMut {}

/// Whether [`sgemm`] runs the packed AVX2 + FMA kernel on this CPU (else `matrixmultiply`).
pub fn packed_kernel_available() -> bool {
    kernel_avx2::available()
}

/// Whether [`sgemm`] with `parallel` set splits an `m x k @ k x n` product over rayon's threads
/// (callers that run many products in parallel themselves use that for smaller ones).
pub fn splits_itself(m: usize, k: usize, n: usize) -> bool {
    rayon::current_num_threads() > 1
        && m.saturating_mul(n).saturating_mul(k) >= PARALLEL_WORK
        && packed_kernel_available()
}

/// `C = A @ B` (or `C += A @ B` when `accumulate`) for an `m x k` matrix `A` and a `k x n`
/// matrix `B`. With `parallel`, large products ([`splits_itself`]) run on rayon's threads.
///
/// # Errors
/// [`Error::OutOfMemory`] when the packing buffers cannot be allocated, [`Error::Overflow`]
/// when their sizes overflow; both are found before `C` is written.
///
/// # Safety
/// `a` must be valid for reads of `m` rows and `k` columns, `b` for reads of `k` rows and `n`
/// columns, and `c` for reads and writes of `m` rows and `n` columns, whose elements are all
/// distinct (no two `(i, j)` at one address) and overlap neither `a` nor `b`; nothing else may
/// write `a` or `b` or access `c` during the call.
// SAFETY contract: the `# Safety` section above; `cpu/matmul.rs` derives it from the layouts.
pub unsafe fn sgemm(
    m: usize,
    k: usize,
    n: usize,
    a: MatRef,
    b: MatRef,
    c: MatMut,
    accumulate: bool,
    parallel: bool,
) -> Result<()> {
    if m == 0 || n == 0 {
        return Ok(());
    }
    let (a, b) = (
        View {
            ptr: a.ptr,
            rs: a.row_stride,
            cs: a.col_stride,
        },
        View {
            ptr: b.ptr,
            rs: b.row_stride,
            cs: b.col_stride,
        },
    );
    if k == 0 || !packed_kernel_available() {
        // SAFETY: the caller's contract is matrixmultiply's (valid strided operands, `C`
        // exclusive); beta 0 overwrites `C` without reading it, beta 1 accumulates.
        unsafe {
            matrixmultiply::sgemm(
                m,
                k,
                n,
                1.0,
                a.ptr,
                a.rs,
                a.cs,
                b.ptr,
                b.rs,
                b.cs,
                if accumulate { 1.0 } else { 0.0 },
                c.ptr,
                c.row_stride,
                c.col_stride,
            )
        };
        return Ok(());
    }
    let (a, b) = (StridedA(a), StridedB(b));
    let job = Job {
        m,
        k,
        n,
        a: &a,
        b: &b,
        c,
        accumulate,
    };
    job.start(parallel)
}

/// One product with its checked-valid operands (the contract of [`sgemm`]).
struct Job<'o, A, B> {
    m: usize,
    k: usize,
    n: usize,
    a: &'o A,
    b: &'o B,
    c: MatMut,
    accumulate: bool,
}

impl<A, B> Clone for Job<'_, A, B> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<A, B> Copy for Job<'_, A, B> {}

thread_local! {
    /// This thread's packing buffers for `A` and `B`, taken out while in use (a nested product
    /// on the same thread, e.g. one stolen by rayon while this one waits, allocates its own).
    static BUFFERS: Cell<Option<(Packed, Packed)>> = const { Cell::new(None) };
}

/// A growable packing buffer handing out slices aligned to 64 bytes.
#[derive(Default)]
struct Packed(Vec<f32>);

impl Packed {
    /// `len` elements starting on a 64-byte boundary, or an out-of-memory error.
    fn slice(&mut self, len: usize) -> Result<&mut [f32]> {
        const ALIGN: usize = 64 / std::mem::size_of::<f32>();
        let need = len.checked_add(ALIGN).ok_or_else(|| Error::Overflow {
            op: "matmul",
            what: format!("the packing buffer of {len} elements"),
        })?;
        if self.0.len() < need {
            self.0 = Vec::new();
            self.0
                .try_reserve_exact(need)
                .map_err(|_| super::alloc::out_of_memory::<f32>("matmul", need))?;
            self.0.resize(need, 0.0);
        }
        let off = self.0.as_ptr().align_offset(64).min(ALIGN);
        Ok(&mut self.0[off..off + len])
    }
}

/// `x` rounded up to a multiple of `to`, or an overflow error.
fn round_up(x: usize, to: usize) -> Result<usize> {
    x.div_ceil(to)
        .checked_mul(to)
        .ok_or_else(|| Error::Overflow {
            op: "matmul",
            what: format!("{x} rounded up to a multiple of {to}"),
        })
}

/// `x * y`, or an overflow error.
fn mul(x: usize, y: usize) -> Result<usize> {
    x.checked_mul(y).ok_or_else(|| Error::Overflow {
        op: "matmul",
        what: format!("the packing buffer of {x} x {y} elements"),
    })
}

impl<A: PackA, B: PackB> Job<'_, A, B> {
    /// Runs the product, split over rayon's threads when `parallel` and large enough.
    fn start(self, parallel: bool) -> Result<()> {
        let Job { m, k, n, .. } = self;
        if parallel && splits_itself(m, k, n) {
            if rayon::current_thread_index().is_none() {
                // Run the whole product on one pool worker, so that each parallel step below
                // is a cheap fork inside the pool instead of a wake-up from outside it.
                return rayon::scope(|_| self.run(true));
            }
            return self.run(true);
        }
        self.run(false)
    }

    fn run(self, parallel: bool) -> Result<()> {
        let (mut pa, mut pb) = BUFFERS.with(Cell::take).unwrap_or_default();
        let result = self.blocks(&mut pa, &mut pb, parallel);
        BUFFERS.with(|cell| cell.set(Some((pa, pb))));
        result
    }

    fn blocks(self, pa: &mut Packed, pb: &mut Packed, parallel: bool) -> Result<()> {
        let Job { m, k, n, .. } = self;
        // Rows per packed chunk of A: equal chunks of at most M_CHUNK rows, MR-aligned.
        let chunk = round_up(m.div_ceil(m.div_ceil(M_CHUNK)), MR)?;
        // Depth blocks of equal size, at most KC: a 288-deep product runs as two blocks of
        // 144, not 256 and a 32-deep remainder whose tiles would spend most of their time
        // loading and storing C.
        let kc_max = k.div_ceil(k.div_ceil(KC).max(1));
        let a_buf = pa.slice(mul(kc_max, round_up(chunk.min(round_up(m, MR)?), MR)?)?)?;
        let b_buf = pb.slice(mul(kc_max, round_up(n.min(NC), NR)?)?)?;
        for jc in (0..n).step_by(NC) {
            let nc = NC.min(n - jc);
            for pc in (0..k).step_by(kc_max.max(1)) {
                let kc = kc_max.min(k - pc);
                let b = self.b;
                let b_packed = &mut b_buf[..kc * nc.div_ceil(NR) * NR];
                // Panel `j`: columns `jc + j * NR..` (at most NR, below `jc + nc <= n`) and rows
                // `pc..pc + kc` (below `k`), inside the `k x n` B.
                let pack_b = |(j, dst): (usize, &mut [f32])| {
                    b.pack_panel(pc, kc, jc + j * NR, NR.min(nc - j * NR), dst)
                };
                if parallel {
                    b_packed
                        .par_chunks_mut(kc * NR)
                        .with_min_len(4)
                        .enumerate()
                        .for_each(pack_b);
                } else {
                    b_packed.chunks_mut(kc * NR).enumerate().for_each(pack_b);
                }
                let accumulate = self.accumulate || pc > 0;
                for ic in (0..m).step_by(chunk) {
                    let mc = chunk.min(m - ic);
                    let a = self.a;
                    let a_packed = &mut a_buf[..kc * mc.div_ceil(MR) * MR];
                    // Panel `i`: rows `ic + i * MR..` (at most MR, below `ic + mc <= m`) and
                    // columns `pc..pc + kc` (below `k`), inside the `m x k` A.
                    let pack_a = |(i, dst): (usize, &mut [f32])| {
                        a.pack_panel(ic + i * MR, MR.min(mc - i * MR), pc, kc, dst)
                    };
                    if parallel {
                        a_packed
                            .par_chunks_mut(kc * MR)
                            .with_min_len(4)
                            .enumerate()
                            .for_each(pack_a);
                    } else {
                        a_packed.chunks_mut(kc * MR).enumerate().for_each(pack_a);
                    }
                    let tiles = Tiles {
                        a: a_packed,
                        b: b_packed,
                        kc,
                        // SAFETY: `ic < m`, `jc < n`: element (ic, jc) of the valid `m x n` C.
                        c: unsafe { self.c_at(ic, jc) },
                        accumulate,
                    };
                    tiles.run(mc, nc, parallel);
                }
            }
        }
        Ok(())
    }

    /// `C` starting at element `(i, j)`.
    ///
    /// # Safety
    /// `(i, j)` must be an element of the valid `m x n` matrix `C`.
    unsafe fn c_at(self, i: usize, j: usize) -> MatMut {
        let c = self.c;
        // SAFETY: the element is inside `C` by this function's contract, so the offset stays
        // inside its allocation.
        let ptr = unsafe {
            c.ptr
                .offset(i as isize * c.row_stride + j as isize * c.col_stride)
        };
        MatMut { ptr, ..c }
    }
}
