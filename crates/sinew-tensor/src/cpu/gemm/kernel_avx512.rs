//! The x86_64 AVX-512 micro-kernels: a tile of up to 12 x 32 of `C` (one or two packed `A`
//! panels times two adjacent packed `B` panels) kept in up to 24 zmm accumulators, updated per
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

/// `C[0..ROWS, 0..2*NR] (+)= A @ [B_panel, B_panel_next]` over `kc` steps, for `ROWS` from 1
/// to 12: rows `0..6` from one packed `A` panel and rows `6..` from the next (`kc * MR`
/// elements after the first; a partial panel's padding rows are not read), where the second
/// `B` panel starts `kc * NR` elements after the first (the next panel of the packed block).
/// Twelve rows keep 24 accumulators busy per pair of `B` loads: on the Ice Lake bench machine
/// a 12 x 32 tile runs at ~82% of the FMA peak in L1, a 6 x 32 one ~68%; on the EPYC (Zen 4)
/// every shape reaches ~99%.
///
/// # Safety
/// AVX-512F must be available ([`available`]); `1 <= ROWS <= 12`; `a` must be valid for
/// `ROWS.div_ceil(MR) * kc * MR` reads and `b` for `2 * kc * NR` reads (two consecutive packed
/// micro-panels); `c` must be valid for reads and writes of `ROWS` rows of `2 * NR` contiguous
/// elements, row `r` starting at `c + r * rsc`, and no other thread may access those elements
/// during the call.
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
    const { assert!(ROWS >= 1 && ROWS <= 2 * MR) };
    // Steps per loop pass: four up to six rows (LLVM hoists the eight `B` loads), two above
    // (24 accumulators, four `B` vectors and a broadcast fill 29 of the 32 zmm registers).
    let unroll: usize = if ROWS <= MR { 4 } else { 2 };

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

/// [`kernel_x32`] for a row count known at run time, `rows` from 1 to 12 (others do nothing).
///
/// # Safety
/// As for [`kernel_x32`] with `ROWS = rows`.
pub(super) unsafe fn kernel_x32_rows(
    rows: usize,
    kc: usize,
    a: *const f32,
    b: *const f32,
    c: *mut f32,
    rsc: isize,
    accumulate: bool,
) {
    macro_rules! by_rows {
        ($($n:literal)*) => {
            match rows {
                // SAFETY: `ROWS = rows`, under this function's contract.
                $($n => unsafe { kernel_x32::<$n>(kc, a, b, c, rsc, accumulate) },)*
                _ => {}
            }
        };
    }
    by_rows!(1 2 3 4 5 6 7 8 9 10 11 12);
}

/// The stand-in on other architectures, never reached: [`available`] is false there. Same
/// contract as the x86_64 kernel; runs the portable 6 x 16 kernel on each panel pair into a
/// scratch tile and writes its first rows.
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
    for panel in 0..ROWS.div_ceil(MR) {
        let mut tile = [0.0f32; MR * 2 * NR];
        // SAFETY: each call reads one `A` panel and one of the two `B` panels, inside what
        // this function's contract makes valid, and writes the scratch tile (MR rows of 2NR).
        unsafe {
            let a = a.add(panel * kc * MR);
            let t = tile.as_mut_ptr();
            let rs = (2 * NR) as isize;
            super::kernel_avx2::kernel_6x16(kc, a, b, t, rs, false);
            super::kernel_avx2::kernel_6x16(kc, a, b.add(kc * NR), t.add(NR), rs, false);
        }
        let rows = MR.min(ROWS - panel * MR);
        for (r, row) in tile.chunks_exact(2 * NR).take(rows).enumerate() {
            for (j, &v) in row.iter().enumerate() {
                // SAFETY: row `panel * MR + r < ROWS`, column `j < 2 * NR`: inside the tile
                // the contract makes valid for reads and writes.
                unsafe {
                    let p = c.offset((panel * MR + r) as isize * rsc + j as isize);
                    *p = if accumulate { *p + v } else { v };
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::kernel_avx2;
    use super::*;

    /// `ROWS` x 32 through the AVX-512 kernel and through the 6 x 16 kernel on each of its
    /// panel pairs (into a scratch tile whose first rows are kept), overwriting and
    /// accumulating, on a tile whose rows are `2 * NR + 3` apart with a guard row below. The
    /// packed panels' padding rows hold NaN: the wide kernel must not read them.
    fn wide_and_narrow<const ROWS: usize>(kc: usize, accumulate: bool) -> (Vec<f32>, Vec<f32>) {
        let value = |i: usize| ((i * 7919 % 211) as f32 - 105.0) / 37.0;
        let panels = ROWS.div_ceil(MR);
        let a: Vec<f32> = (0..panels * kc * MR)
            .map(|i| {
                let row = i / (kc * MR) * MR + i % MR;
                if row < ROWS { value(i) } else { f32::NAN }
            })
            .collect();
        let b: Vec<f32> = (0..2 * kc * NR).map(|i| value(i + 13)).collect();
        let rsc = 2 * NR + 3;
        let start: Vec<f32> = (0..(ROWS + 1) * rsc).map(|i| value(i + 5)).collect();
        let (mut wide, mut narrow) = (start.clone(), start);
        let rs = rsc as isize;
        // SAFETY: the caller checked AVX-512F and AVX2 + FMA; `a` holds `panels` panels of
        // `kc * MR` elements, `b` two panels of `kc * NR`; `wide` holds `ROWS + 1` rows of
        // `rsc >= 2 * NR` elements and the scratch tile MR rows of `2 * NR`, owned by this test.
        unsafe {
            kernel_x32::<ROWS>(
                kc,
                a.as_ptr(),
                b.as_ptr(),
                wide.as_mut_ptr(),
                rs,
                accumulate,
            );
            for panel in 0..panels {
                let mut tile = [0.0f32; MR * 2 * NR];
                let (a, t, ts) = (
                    a.as_ptr().add(panel * kc * MR),
                    tile.as_mut_ptr(),
                    (2 * NR) as isize,
                );
                kernel_avx2::kernel_6x16(kc, a, b.as_ptr(), t, ts, false);
                kernel_avx2::kernel_6x16(kc, a, b.as_ptr().add(kc * NR), t.add(NR), ts, false);
                let rows = MR.min(ROWS - panel * MR);
                for (r, row) in tile.chunks_exact(2 * NR).take(rows).enumerate() {
                    let out = &mut narrow[(panel * MR + r) * rsc..][..2 * NR];
                    for (o, v) in out.iter_mut().zip(row) {
                        *o = if accumulate { *o + v } else { *v };
                    }
                }
            }
        }
        (wide, narrow)
    }

    /// Every row count from 1 to 12 gives bit for bit what the 6 x 16 kernel gives on each of
    /// its panel pairs (same fused multiply-adds in the same order), and leaves the row below
    /// and the columns right of the tile alone.
    #[test]
    fn wide_kernels_match_the_narrow_one_exactly() {
        if !available() || !kernel_avx2::available() {
            return; // Not this CPU's path.
        }
        fn rows<const ROWS: usize>() {
            for kc in [1, 2, 3, 4, 7, 64, 257] {
                for accumulate in [false, true] {
                    let (wide, narrow) = wide_and_narrow::<ROWS>(kc, accumulate);
                    assert!(
                        wide.iter()
                            .zip(&narrow)
                            .all(|(w, n)| w.to_bits() == n.to_bits()),
                        "{ROWS} rows, kc {kc}, accumulate {accumulate}"
                    );
                }
            }
        }
        rows::<1>();
        rows::<2>();
        rows::<3>();
        rows::<4>();
        rows::<5>();
        rows::<6>();
        rows::<7>();
        rows::<8>();
        rows::<9>();
        rows::<10>();
        rows::<11>();
        rows::<12>();
    }
}
