//! Packing of GEMM operands into the layouts the micro-kernel streams: `A` in panels of `MR`
//! rows (for each step of `k`, the panel's `MR` values next to each other) and `B` in panels of
//! `NR` columns (for each step of `k`, the panel's `NR` values next to each other). Rows or
//! columns past the edge of the matrix are packed as zeros, so the kernel always runs full tiles.
//! Any row and column strides are read, so transposed or sliced operands cost no extra copy.

/// Rows of `C` (and of a packed `A` panel) one micro-kernel call computes.
pub(super) const MR: usize = 6;
/// Columns of `C` (and of a packed `B` panel) one micro-kernel call computes.
pub(super) const NR: usize = 16;

/// A read-only strided matrix: element `(i, j)` is at `ptr + i * rs + j * cs`.
#[derive(Clone, Copy, Debug)]
pub(super) struct View {
    pub(super) ptr: *const f32,
    pub(super) rs: isize,
    pub(super) cs: isize,
}

// SAFETY: a `View` is only read through, and every function that reads through it is `unsafe`
// with the contract that the elements it names stay valid and unwritten for the call's duration
// (the public `sgemm`'s contract); sharing the address between threads adds no other access.
unsafe impl Send for View {}
// SAFETY: as for `Send` just above: shared reads only.
unsafe impl Sync for View {}

impl View {
    /// The view starting at element `(i, j)` of this one.
    ///
    /// # Safety
    /// `(i, j)` must be an element of the matrix the view's contract makes valid.
    pub(super) unsafe fn at(self, i: usize, j: usize) -> View {
        // SAFETY: the element is inside the valid matrix by this function's contract, so the
        // offset stays inside its allocation (and fits an `isize`).
        let ptr = unsafe { self.ptr.offset(i as isize * self.rs + j as isize * self.cs) };
        View { ptr, ..self }
    }
}

/// Packs `rows <= MR` rows and `kc` columns of `a` into `dst` (`kc * MR` elements): for each
/// column `p`, rows `0..MR` at `dst[p * MR..]`, rows from `rows` on zero.
///
/// # Safety
/// `a` must be valid for reads of `rows` rows and `kc` columns.
pub(super) unsafe fn pack_a_panel(a: View, rows: usize, kc: usize, dst: &mut [f32]) {
    debug_assert!(rows <= MR && dst.len() >= kc * MR);
    let dst = &mut dst[..kc * MR];
    if rows == MR && a.cs == 1 {
        // Row-major A: six rows read side by side, sixteen columns at a time in registers
        // where the CPU has AVX-512.
        let done = if super::pack_avx512::available() {
            let starts = std::array::from_fn(|r| a.ptr.wrapping_offset(r as isize * a.rs));
            // SAFETY: AVX-512F checked; row `r < MR = rows` of the valid `rows x kc` matrix
            // is `kc` contiguous elements (`cs == 1`); `dst` holds `kc * MR` elements.
            unsafe { super::pack_avx512::pack_a_rows(starts, kc, dst) }
        } else {
            0
        };
        for (p, out) in dst.chunks_exact_mut(MR).enumerate().skip(done) {
            for (r, o) in out.iter_mut().enumerate() {
                // SAFETY: `r < rows` and `p < kc`, an element of the valid `rows x kc` matrix.
                *o = unsafe { *a.ptr.offset(r as isize * a.rs + p as isize) };
            }
        }
        return;
    }
    if rows == MR && a.rs == 1 {
        // Column-major A (a transposed row-major matrix): each column's six rows contiguous.
        for (p, out) in dst.chunks_exact_mut(MR).enumerate() {
            // SAFETY: rows `0..MR` (= `rows`) of column `p < kc` of the valid matrix,
            // contiguous because the row stride is 1.
            let col = unsafe { std::slice::from_raw_parts(a.ptr.offset(p as isize * a.cs), MR) };
            out.copy_from_slice(col);
        }
        return;
    }
    for (p, out) in dst.chunks_exact_mut(MR).enumerate() {
        for (r, o) in out.iter_mut().enumerate() {
            *o = if r < rows {
                // SAFETY: `r < rows` and `p < kc`, an element of the valid `rows x kc` matrix.
                unsafe { *a.ptr.offset(r as isize * a.rs + p as isize * a.cs) }
            } else {
                0.0
            };
        }
    }
}

/// Packs `kc` rows and `cols <= NR` columns of `b` into `dst` (`kc * NR` elements): for each row
/// `p`, columns `0..NR` at `dst[p * NR..]`, columns from `cols` on zero.
///
/// # Safety
/// `b` must be valid for reads of `kc` rows and `cols` columns.
pub(super) unsafe fn pack_b_panel(b: View, kc: usize, cols: usize, dst: &mut [f32]) {
    debug_assert!(cols <= NR && dst.len() >= kc * NR);
    let dst = &mut dst[..kc * NR];
    if cols == NR && b.cs == 1 {
        // Row-major B: each row of the panel is NR contiguous elements.
        for (p, out) in dst.chunks_exact_mut(NR).enumerate() {
            // SAFETY: row `p < kc`, columns `0..NR` (= `cols`) of the valid matrix, contiguous
            // because the column stride is 1.
            let row = unsafe { std::slice::from_raw_parts(b.ptr.offset(p as isize * b.rs), NR) };
            out.copy_from_slice(row);
        }
        return;
    }
    if b.rs == 1 {
        // Column-major B (a transposed row-major matrix): blocks of 16 full rows transposed
        // in AVX-512 registers, the rest by walking each column contiguously.
        let done = if cols == NR && super::pack_avx512::available() {
            // SAFETY: AVX-512F checked; `b` has row stride 1 and is valid for `kc x NR`
            // (this function's contract, `cols == NR`); `dst` holds `kc * NR` elements.
            unsafe { super::pack_avx512::pack_b_columns(b, kc, dst) }
        } else {
            0
        };
        let dst = &mut dst[done * NR..];
        dst.fill(0.0);
        for j in 0..cols {
            for (p, out) in dst.chunks_exact_mut(NR).enumerate() {
                let p = p + done;
                // SAFETY: `p < kc` and `j < cols`, an element of the valid `kc x cols` matrix.
                out[j] = unsafe { *b.ptr.offset(p as isize + j as isize * b.cs) };
            }
        }
        return;
    }
    for (p, out) in dst.chunks_exact_mut(NR).enumerate() {
        for (j, o) in out.iter_mut().enumerate() {
            *o = if j < cols {
                // SAFETY: `p < kc` and `j < cols`, an element of the valid `kc x cols` matrix.
                unsafe { *b.ptr.offset(p as isize * b.rs + j as isize * b.cs) }
            } else {
                0.0
            };
        }
    }
}
