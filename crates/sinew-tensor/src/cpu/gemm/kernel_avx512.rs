//! The x86_64 AVX-512 micro-kernel: a 6 x 32 tile of `C` (two adjacent packed `B` panels)
//! kept in twelve zmm accumulators, updated per step of `k` with two loads of packed `B`, six
//! broadcasts of packed `A` and twelve fused multiply-adds: twice the work per instruction of
//! the AVX2 kernel, on the same packed layouts (`pack.rs`), so packing is unchanged.

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

/// `C[0..MR, 0..2*NR] (+)= A_panel @ [B_panel, B_panel_next]` over `kc` steps, where the second
/// `B` panel starts `kc * NR` elements after the first (the next panel of the packed block).
///
/// # Safety
/// AVX-512F must be available ([`available`]); `a` must be valid for `kc * MR` reads and `b`
/// for `2 * kc * NR` reads (two consecutive packed micro-panels); `c` must be valid for reads
/// and writes of `MR` rows of `2 * NR` contiguous elements, row `r` starting at `c + r * rsc`,
/// and no other thread may access those elements during the call.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
// SAFETY contract: the `# Safety` section above; `tiles.rs` checks it before each call.
pub(super) unsafe fn kernel_6x32(
    kc: usize,
    a: *const f32,
    b: *const f32,
    c: *mut f32,
    rsc: isize,
    accumulate: bool,
) {
    use std::arch::x86_64::*;
    const _: () = assert!(MR == 6 && NR == 16);

    // Start fetching the tile of C (three cache lines per row at most) while the products run.
    for r in 0..MR {
        let row = c.wrapping_offset(r as isize * rsc);
        _mm_prefetch::<_MM_HINT_T0>(row.cast());
        _mm_prefetch::<_MM_HINT_T0>(row.wrapping_add(NR).cast());
        _mm_prefetch::<_MM_HINT_T0>(row.wrapping_add(2 * NR - 1).cast());
    }
    let mut acc = [[_mm512_setzero_ps(); 2]; MR];
    // SAFETY: step `p` reads `a[p * MR .. p * MR + MR]`, `b[p * NR .. p * NR + NR]` and
    // `b[kc * NR + p * NR ..][..NR]` for `p < kc`, inside the `kc * MR` and `2 * kc * NR`
    // elements the caller guarantees; the unaligned loads need no alignment; AVX-512F is
    // enabled on this function and present by the caller's contract (checked by `available`).
    unsafe {
        let (mut pa, mut pb, mut pn) = (a, b, b.add(kc * NR));
        let mut step = |pa: *const f32, pb: *const f32, pn: *const f32| {
            let b0 = _mm512_loadu_ps(pb);
            let b1 = _mm512_loadu_ps(pn);
            for (r, row) in acc.iter_mut().enumerate() {
                let av = _mm512_set1_ps(*pa.add(r));
                row[0] = _mm512_fmadd_ps(av, b0, row[0]);
                row[1] = _mm512_fmadd_ps(av, b1, row[1]);
            }
        };
        for _ in 0..kc / 4 {
            for u in 0..4 {
                step(pa.add(u * MR), pb.add(u * NR), pn.add(u * NR));
            }
            pa = pa.add(4 * MR);
            pb = pb.add(4 * NR);
            pn = pn.add(4 * NR);
        }
        for _ in 0..kc % 4 {
            step(pa, pb, pn);
            pa = pa.add(MR);
            pb = pb.add(NR);
            pn = pn.add(NR);
        }
    }
    // SAFETY: row `r < MR` of the tile is the `2 * NR` contiguous elements at `c + r * rsc`,
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
/// contract as the x86_64 kernel; runs the portable 6 x 16 kernel on each panel.
///
/// # Safety
/// As for the x86_64 kernel, without the CPU features.
#[cfg(not(target_arch = "x86_64"))]
pub(super) unsafe fn kernel_6x32(
    kc: usize,
    a: *const f32,
    b: *const f32,
    c: *mut f32,
    rsc: isize,
    accumulate: bool,
) {
    // SAFETY: each call reads one of the two panels and writes one 6 x 16 half of the tile,
    // inside what this function's contract makes valid.
    unsafe {
        super::kernel_avx2::kernel_6x16(kc, a, b, c, rsc, accumulate);
        super::kernel_avx2::kernel_6x16(kc, a, b.add(kc * NR), c.add(NR), rsc, accumulate);
    }
}

#[cfg(test)]
mod tests {
    use super::super::kernel_avx2;
    use super::*;

    /// The 6 x 32 kernel gives bit for bit what the 6 x 16 kernel gives on each of its two
    /// panels (same fused multiply-adds in the same order), overwriting and accumulating.
    #[test]
    fn wide_kernel_matches_two_narrow_ones_exactly() {
        if !available() || !kernel_avx2::available() {
            return; // Not this CPU's path.
        }
        let value = |i: usize| ((i * 7919 % 211) as f32 - 105.0) / 37.0;
        for kc in [1, 3, 4, 7, 64, 257] {
            let a: Vec<f32> = (0..kc * MR).map(value).collect();
            let b: Vec<f32> = (0..2 * kc * NR).map(|i| value(i + 13)).collect();
            for accumulate in [false, true] {
                let rsc = 2 * NR + 3;
                let start: Vec<f32> = (0..MR * rsc).map(|i| value(i + 5)).collect();
                let (mut wide, mut narrow) = (start.clone(), start.clone());
                // SAFETY: this CPU has AVX-512F and AVX2 + FMA (checked above); `a` holds
                // `kc * MR` elements, `b` two panels of `kc * NR`; the tiles are `MR` rows of
                // `rsc >= 2 * NR` elements, owned by this test.
                unsafe {
                    kernel_6x32(
                        kc,
                        a.as_ptr(),
                        b.as_ptr(),
                        wide.as_mut_ptr(),
                        rsc as isize,
                        accumulate,
                    );
                    let (c, rs) = (narrow.as_mut_ptr(), rsc as isize);
                    kernel_avx2::kernel_6x16(kc, a.as_ptr(), b.as_ptr(), c, rs, accumulate);
                    let (b1, c1) = (b.as_ptr().add(kc * NR), c.add(NR));
                    kernel_avx2::kernel_6x16(kc, a.as_ptr(), b1, c1, rs, accumulate);
                }
                assert_eq!(wide, narrow, "kc {kc}, accumulate {accumulate}");
            }
        }
    }
}
