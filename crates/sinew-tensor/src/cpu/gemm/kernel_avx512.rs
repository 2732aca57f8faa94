//! The x86_64 AVX-512 micro-kernels: a 6 x 32 or 12 x 32 tile of `C` (one or two packed `A`
//! panels times two adjacent packed `B` panels) kept in 12 or 24 zmm accumulators, updated per
//! step of `k` with two loads of packed `B`, one broadcast of packed `A` per row and two fused
//! multiply-adds per row: twice the work per instruction of the AVX2 kernel, on the same packed
//! layouts (`pack.rs`), so packing is unchanged.

use super::pack::{MR, NR};

/// Whether the CPU running this process has AVX-512F (the standard library caches the
/// answer, so this costs a load after the first call). `SINEW_NO_AVX512=1` turns the kernel
/// off (to compare the two kernels on one machine), read once.
pub(super) fn available() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        static OFF: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
        let off =
            *OFF.get_or_init(|| std::env::var_os("SINEW_NO_AVX512").is_some_and(|v| v == "1"));
        !off && std::arch::is_x86_feature_detected!("avx512f")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// `C[0..ROWS, 0..2*NR] (+)= A @ [B_panel, B_panel_next]` over `kc` steps, for `ROWS` = 6 (one
/// packed `A` panel) or 12 (two consecutive panels, the second `kc * MR` elements after the
/// first), where the second `B` panel starts `kc * NR` elements after the first (the next panel
/// of the packed block). Twelve rows keep 24 accumulators busy per pair of `B` loads: on the
/// Ice Lake bench machine a 12 x 32 tile runs at ~89% of the FMA peak in L1, a 6 x 32 one ~68%.
///
/// # Safety
/// AVX-512F must be available ([`available`]); `ROWS` must be 6 or 12; `a` must be valid for
/// `ROWS * kc` reads and `b` for `2 * kc * NR` reads (two consecutive packed micro-panels); `c`
/// must be valid for reads and writes of `ROWS` rows of `2 * NR` contiguous elements, row `r`
/// starting at `c + r * rsc`, and no other thread may access those elements during the call.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
// SAFETY contract: the `# Safety` section above; `tiles.rs` checks it before each call.
pub(super) unsafe fn kernel_x32<const ROWS: usize>(
    kc: usize,
    a: *const f32,
    b: *const f32,
    c: *mut f32,
    rsc: isize,
    accumulate: bool,
) {
    use std::arch::x86_64::*;
    const _: () = assert!(MR == 6 && NR == 16);
    const { assert!(ROWS == MR || ROWS == 2 * MR) };
    // Steps per loop pass: four for six rows (LLVM hoists the eight `B` loads), two for twelve
    // (24 accumulators, four `B` vectors and a broadcast fill 29 of the 32 zmm registers).
    let unroll: usize = if ROWS == MR { 4 } else { 2 };

    // Start fetching the tile of C (three cache lines per row at most) while the products run.
    for r in 0..ROWS {
        let row = c.wrapping_offset(r as isize * rsc);
        _mm_prefetch::<_MM_HINT_T0>(row.cast());
        _mm_prefetch::<_MM_HINT_T0>(row.wrapping_add(NR).cast());
        _mm_prefetch::<_MM_HINT_T0>(row.wrapping_add(2 * NR - 1).cast());
    }
    let mut acc = [[_mm512_setzero_ps(); 2]; ROWS];
    // SAFETY: step `p` reads `a[(r / MR) * kc * MR + p * MR + r % MR]` for `r < ROWS`,
    // `b[p * NR ..][..NR]` and `b[kc * NR + p * NR ..][..NR]` for `p < kc`, inside the
    // `ROWS * kc` and `2 * kc * NR` elements the caller guarantees; the unaligned loads need no
    // alignment; AVX-512F is enabled on this function and present by the caller's contract.
    unsafe {
        let a_next = kc * MR;
        let (mut pa, mut pb, mut pn) = (a, b, b.add(kc * NR));
        let mut step = |pa: *const f32, pb: *const f32, pn: *const f32| {
            let b0 = _mm512_loadu_ps(pb);
            let b1 = _mm512_loadu_ps(pn);
            for (r, row) in acc.iter_mut().enumerate() {
                let av = _mm512_set1_ps(*pa.add((r / MR) * a_next + r % MR));
                row[0] = _mm512_fmadd_ps(av, b0, row[0]);
                row[1] = _mm512_fmadd_ps(av, b1, row[1]);
            }
        };
        for _ in 0..kc / unroll {
            for u in 0..unroll {
                step(pa.add(u * MR), pb.add(u * NR), pn.add(u * NR));
            }
            pa = pa.add(unroll * MR);
            pb = pb.add(unroll * NR);
            pn = pn.add(unroll * NR);
        }
        for _ in 0..kc % unroll {
            step(pa, pb, pn);
            pa = pa.add(MR);
            pb = pb.add(NR);
            pn = pn.add(NR);
        }
    }
    // SAFETY: row `r < ROWS` of the tile is the `2 * NR` contiguous elements at `c + r * rsc`,
    // valid for reads and writes and not shared with another thread by the caller's contract.
    unsafe {
        for (r, row) in acc.iter().enumerate() {
            let pc = c.offset(r as isize * rsc);
            let (mut lo, mut hi) = (row[0], row[1]);
            if accumulate {
                lo = _mm512_add_ps(lo, _mm512_loadu_ps(pc));
                hi = _mm512_add_ps(hi, _mm512_loadu_ps(pc.add(NR)));
            }
            _mm512_storeu_ps(pc, lo);
            _mm512_storeu_ps(pc.add(NR), hi);
        }
    }
}

/// The stand-in on other architectures, never reached: [`available`] is false there. Same
/// contract as the x86_64 kernel; runs the portable 6 x 16 kernel on each panel pair.
///
/// # Safety
/// As for the x86_64 kernel, without the CPU features.
#[cfg(not(target_arch = "x86_64"))]
pub(super) unsafe fn kernel_x32<const ROWS: usize>(
    kc: usize,
    a: *const f32,
    b: *const f32,
    c: *mut f32,
    rsc: isize,
    accumulate: bool,
) {
    for panel in 0..ROWS / MR {
        // SAFETY: each call reads one `A` panel and one of the two `B` panels and writes one
        // 6 x 16 quarter or half of the tile, inside what this function's contract makes valid.
        unsafe {
            let (a, c) = (
                a.add(panel * kc * MR),
                c.offset((panel * MR) as isize * rsc),
            );
            super::kernel_avx2::kernel_6x16(kc, a, b, c, rsc, accumulate);
            super::kernel_avx2::kernel_6x16(kc, a, b.add(kc * NR), c.add(NR), rsc, accumulate);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::kernel_avx2;
    use super::*;

    /// `ROWS` x 32 through the AVX-512 kernel and through the 6 x 16 kernel on each of its
    /// panel pairs, overwriting and accumulating, on a tile whose rows are `2 * NR + 3` apart.
    fn wide_and_narrow<const ROWS: usize>(kc: usize, accumulate: bool) -> (Vec<f32>, Vec<f32>) {
        let value = |i: usize| ((i * 7919 % 211) as f32 - 105.0) / 37.0;
        let a: Vec<f32> = (0..kc * ROWS).map(value).collect();
        let b: Vec<f32> = (0..2 * kc * NR).map(|i| value(i + 13)).collect();
        let rsc = 2 * NR + 3;
        let start: Vec<f32> = (0..ROWS * rsc).map(|i| value(i + 5)).collect();
        let (mut wide, mut narrow) = (start.clone(), start);
        let rs = rsc as isize;
        // SAFETY: the caller checked AVX-512F and AVX2 + FMA; `a` holds `ROWS / MR` panels of
        // `kc * MR` elements, `b` two panels of `kc * NR`; the tiles are `ROWS` rows of
        // `rsc >= 2 * NR` elements, owned by this test.
        unsafe {
            kernel_x32::<ROWS>(
                kc,
                a.as_ptr(),
                b.as_ptr(),
                wide.as_mut_ptr(),
                rs,
                accumulate,
            );
            for panel in 0..ROWS / MR {
                let a = a.as_ptr().add(panel * kc * MR);
                let c = narrow.as_mut_ptr().add(panel * MR * rsc);
                kernel_avx2::kernel_6x16(kc, a, b.as_ptr(), c, rs, accumulate);
                let (b1, c1) = (b.as_ptr().add(kc * NR), c.add(NR));
                kernel_avx2::kernel_6x16(kc, a, b1, c1, rs, accumulate);
            }
        }
        (wide, narrow)
    }

    /// The 6 x 32 and 12 x 32 kernels give bit for bit what the 6 x 16 kernel gives on each
    /// of their panel pairs (same fused multiply-adds in the same order).
    #[test]
    fn wide_kernels_match_the_narrow_one_exactly() {
        if !available() || !kernel_avx2::available() {
            return; // Not this CPU's path.
        }
        for kc in [1, 2, 3, 4, 7, 64, 257] {
            for accumulate in [false, true] {
                let (wide, narrow) = wide_and_narrow::<6>(kc, accumulate);
                assert_eq!(wide, narrow, "6 rows, kc {kc}, accumulate {accumulate}");
                let (wide, narrow) = wide_and_narrow::<12>(kc, accumulate);
                assert_eq!(wide, narrow, "12 rows, kc {kc}, accumulate {accumulate}");
            }
        }
    }
}
