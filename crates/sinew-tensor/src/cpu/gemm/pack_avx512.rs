//! AVX-512 packing where the scalar loops move one element per load and store:
//!
//! - a column-major `B` panel (a transposed row-major matrix, as a linear layer's
//!   `weight.t()`): sixteen columns by sixteen rows loaded as sixteen contiguous column vectors,
//!   transposed in registers (64 shuffles), and stored as sixteen packed rows, instead of 256
//!   scalar loads and stores into rows a cache line apart;
//! - an `A` panel from six contiguous rows (a row-major `A`, the im2col rows of the weight
//!   gradient): sixteen columns of the six rows interleaved by three two-source permutes and
//!   two blends per stored vector.

use super::pack::{MR, NR, View};

/// Whether the CPU running this process has AVX-512F (cached by the standard library).
pub(super) fn available() -> bool {
    crate::cpu::has_avx512f()
}

/// Packs the first `kc / 16 * 16` rows of the `kc x NR` column-major panel `b` (row stride 1)
/// into `dst` (row `p` at `dst[p * NR..][..NR]`) and returns how many rows it packed; the
/// caller packs the rest.
///
/// # Safety
/// AVX-512F must be available ([`available`]); `b` must have row stride 1 and be valid for
/// reads of `kc` rows and `NR` columns; `dst` must hold `kc * NR` elements.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
// SAFETY contract: the `# Safety` section above; `pack::pack_b_panel` checks it.
pub(super) unsafe fn pack_b_columns(b: View, kc: usize, dst: &mut [f32]) -> usize {
    use std::arch::x86_64::*;
    const _: () = assert!(NR == 16);
    let full = kc / 16 * 16;
    let dst = &mut dst[..full * NR];
    for (block, out) in dst.chunks_exact_mut(16 * NR).enumerate() {
        let p0 = (block * 16) as isize;
        let mut r = [_mm512_setzero_ps(); 16];
        for (j, r) in r.iter_mut().enumerate() {
            // SAFETY: column `j < NR`, rows `p0..p0 + 16 <= kc` are contiguous (row stride 1)
            // inside the valid `kc x NR` matrix.
            *r = unsafe { _mm512_loadu_ps(b.ptr.offset(p0 + j as isize * b.cs)) };
        }
        // 32-bit then 64-bit interleaves inside 128-bit lanes: `u[4i + m]`, lane `l`, holds
        // column `4l + m` of rows `4i..4i + 4`.
        let mut t = [_mm512_setzero_ps(); 16];
        for i in 0..8 {
            t[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]);
            t[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);
        }
        let mut u = [_mm512_setzero_ps(); 16];
        for i in 0..4 {
            for half in 0..2 {
                let a = _mm512_castps_pd(t[4 * i + half]);
                let c = _mm512_castps_pd(t[4 * i + 2 + half]);
                u[4 * i + 2 * half] = _mm512_castpd_ps(_mm512_unpacklo_pd(a, c));
                u[4 * i + 2 * half + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(a, c));
            }
        }
        // 4 x 4 transpose of the 128-bit lanes: packed row `4l + m` is lane `l` of
        // `u[m], u[4 + m], u[8 + m], u[12 + m]`.
        for m in 0..4 {
            let v0 = _mm512_shuffle_f32x4::<0x44>(u[m], u[4 + m]);
            let v1 = _mm512_shuffle_f32x4::<0xEE>(u[m], u[4 + m]);
            let v2 = _mm512_shuffle_f32x4::<0x44>(u[8 + m], u[12 + m]);
            let v3 = _mm512_shuffle_f32x4::<0xEE>(u[8 + m], u[12 + m]);
            let rows = [
                (m, _mm512_shuffle_f32x4::<0x88>(v0, v2)),
                (4 + m, _mm512_shuffle_f32x4::<0xDD>(v0, v2)),
                (8 + m, _mm512_shuffle_f32x4::<0x88>(v1, v3)),
                (12 + m, _mm512_shuffle_f32x4::<0xDD>(v1, v3)),
            ];
            for (row, v) in rows {
                // SAFETY: `row < 16`: the block's `out` holds 16 rows of `NR` elements.
                unsafe { _mm512_storeu_ps(out[row * NR..][..NR].as_mut_ptr(), v) };
            }
        }
    }
    full
}

/// The stand-in on other architectures, never reached ([`available`] is false there).
///
/// # Safety
/// None needed: packs nothing.
#[cfg(not(target_arch = "x86_64"))]
pub(super) unsafe fn pack_b_columns(_: View, _: usize, _: &mut [f32]) -> usize {
    0
}

/// For stored vector `k` of a block (packed elements `16k..16k + 16`, element `e` being
/// column `e / 6` of row `e % 6`) and row pair `q` (rows `2q`, `2q + 1`): the two-source
/// permute index of each lane (the column, plus 16 for the pair's second row) and the mask of
/// the lanes that row pair fills.
const fn interleave_table() -> ([[[i32; 16]; 3]; MR], [[u16; 3]; MR]) {
    let mut idx = [[[0i32; 16]; 3]; MR];
    let mut mask = [[0u16; 3]; MR];
    let mut k = 0;
    while k < MR {
        let mut i = 0;
        while i < 16 {
            let e = 16 * k + i;
            let (p, r) = (e / MR, e % MR);
            let q = r / 2;
            idx[k][q][i] = (p + 16 * (r % 2)) as i32;
            mask[k][q] |= 1 << i;
            i += 1;
        }
        k += 1;
    }
    (idx, mask)
}

const INTERLEAVE: ([[[i32; 16]; 3]; MR], [[u16; 3]; MR]) = interleave_table();

/// Packs the first `kc / 16 * 16` columns of six rows (`rows[r]`, each contiguous) into `dst`
/// as an `A` panel (column `p` at `dst[p * MR..][..MR]`) and returns how many columns it
/// packed; the caller packs the rest.
///
/// # Safety
/// AVX-512F must be available ([`available`]); each `rows[r]` must be valid for `kc` reads;
/// `dst` must hold `kc * MR` elements.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
// SAFETY contract: the `# Safety` section above; `pack::pack_a_panel` and `im2col_grad.rs`
// check it.
pub(super) unsafe fn pack_a_rows(rows: [*const f32; MR], kc: usize, dst: &mut [f32]) -> usize {
    use std::arch::x86_64::*;
    const _: () = assert!(MR == 6);
    let (table, masks) = &INTERLEAVE;
    let full = kc / 16 * 16;
    let dst = &mut dst[..full * MR];
    for (block, out) in dst.chunks_exact_mut(16 * MR).enumerate() {
        let p0 = block * 16;
        let mut v = [_mm512_setzero_ps(); MR];
        for (v, &row) in v.iter_mut().zip(&rows) {
            // SAFETY: columns `p0..p0 + 16 <= kc` of a row valid for `kc` reads.
            *v = unsafe { _mm512_loadu_ps(row.add(p0)) };
        }
        for (k, chunk) in out.chunks_exact_mut(16).enumerate() {
            let mut pair = [_mm512_setzero_ps(); 3];
            for (q, pair) in pair.iter_mut().enumerate() {
                // SAFETY: the table row is sixteen `i32`s.
                let idx = unsafe { _mm512_loadu_si512(table[k][q].as_ptr().cast()) };
                *pair = _mm512_permutex2var_ps(v[2 * q], idx, v[2 * q + 1]);
            }
            let lo = _mm512_mask_blend_ps(masks[k][1], pair[0], pair[1]);
            let all = _mm512_mask_blend_ps(masks[k][2], lo, pair[2]);
            // SAFETY: `chunk` is sixteen elements of `dst`.
            unsafe { _mm512_storeu_ps(chunk.as_mut_ptr(), all) };
        }
    }
    full
}

/// The stand-in on other architectures, never reached ([`available`] is false there).
///
/// # Safety
/// None needed: packs nothing.
#[cfg(not(target_arch = "x86_64"))]
pub(super) unsafe fn pack_a_rows(_: [*const f32; MR], _: usize, _: &mut [f32]) -> usize {
    0
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The register interleave packs what the scalar definition packs.
    #[test]
    fn interleaved_rows_equal_the_definition() {
        if !available() {
            return; // Not this CPU's path.
        }
        for kc in [16, 32, 47, 5, 256] {
            let src: Vec<Vec<f32>> = (0..MR)
                .map(|r| (0..kc).map(|p| (r * 1000 + p) as f32).collect())
                .collect();
            let rows: [*const f32; MR] = std::array::from_fn(|r| src[r].as_ptr());
            let mut got = vec![f32::NAN; kc * MR];
            // SAFETY: AVX-512F checked; each row holds `kc` elements.
            let done = unsafe { pack_a_rows(rows, kc, &mut got) };
            assert_eq!(done, kc / 16 * 16);
            for p in 0..done {
                for r in 0..MR {
                    assert_eq!(got[p * MR + r], src[r][p], "kc {kc}, col {p}, row {r}");
                }
            }
            assert!(
                got[done * MR..].iter().all(|v| v.is_nan()),
                "kc {kc}: wrote past"
            );
        }
    }

    /// The register transpose packs what the scalar definition packs, for depths around the
    /// block size and columns further apart than the depth.
    #[test]
    fn transposed_blocks_equal_the_definition() {
        if !available() {
            return; // Not this CPU's path.
        }
        for (kc, cs) in [(16, 16), (32, 40), (47, 64), (5, 9), (256, 300)] {
            let src: Vec<f32> = (0..cs * NR).map(|i| i as f32 * 0.25 - 7.0).collect();
            let b = View {
                ptr: src.as_ptr(),
                rs: 1,
                cs: cs as isize,
            };
            let mut got = vec![f32::NAN; kc * NR];
            // SAFETY: AVX-512F checked; `src` holds `NR` columns of `cs >= kc` elements.
            let done = unsafe { pack_b_columns(b, kc, &mut got) };
            assert_eq!(done, kc / 16 * 16);
            for p in 0..done {
                for j in 0..NR {
                    assert_eq!(
                        got[p * NR + j],
                        src[j * cs + p],
                        "kc {kc}, row {p}, col {j}"
                    );
                }
            }
            assert!(
                got[done * NR..].iter().all(|v| v.is_nan()),
                "kc {kc}: wrote past"
            );
        }
    }
}
