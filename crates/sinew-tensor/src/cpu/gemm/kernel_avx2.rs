//! The x86_64 AVX2 + FMA micro-kernel: a 6 x 16 tile of `C` kept in twelve ymm accumulators,
//! updated per step of `k` with two loads of packed `B`, six broadcasts of packed `A` and twelve
//! fused multiply-adds.

use super::pack::{MR, NR};

/// Whether the CPU running this process has AVX2 and FMA (the standard library caches the
/// answer, so this costs a load after the first call).
pub(super) fn available() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// `C[0..MR, 0..NR] (+)= A_panel @ B_panel` over `kc` steps, on an x86_64 CPU with AVX2 and FMA.
///
/// # Safety
/// AVX2 and FMA must be available ([`available`]); `a` must be valid for `kc * MR` reads and `b`
/// for `kc * NR` reads (one packed micro-panel each, `pack.rs`); `c` must be valid for reads and
/// writes of `MR` rows of `NR` contiguous elements, row `r` starting at `c + r * rsc`, and no
/// other thread may access those elements during the call.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
// SAFETY contract: the `# Safety` section above; `tiles.rs` checks it before each call.
pub(super) unsafe fn kernel_6x16(
    kc: usize,
    a: *const f32,
    b: *const f32,
    c: *mut f32,
    rsc: isize,
    accumulate: bool,
) {
    use std::arch::x86_64::*;
    const _: () = assert!(MR == 6 && NR == 16);

    // Start fetching the tile of C (two cache lines per row at most) while the products run.
    for r in 0..MR {
        let row = c.wrapping_offset(r as isize * rsc);
        _mm_prefetch::<_MM_HINT_T0>(row.cast());
        _mm_prefetch::<_MM_HINT_T0>(row.wrapping_add(NR - 1).cast());
    }
    let mut acc = [[_mm256_setzero_ps(); 2]; MR];
    // SAFETY: step `p` reads `a[p * MR .. p * MR + MR]` and `b[p * NR .. p * NR + NR]` for
    // `p < kc`, inside the `kc * MR` and `kc * NR` elements the caller guarantees; the unaligned
    // load and broadcast instructions need no alignment; AVX2 and FMA are enabled on this
    // function and present by the caller's contract (checked through `available`).
    unsafe {
        let (mut pa, mut pb) = (a, b);
        let mut step = |pa: *const f32, pb: *const f32| {
            let b0 = _mm256_loadu_ps(pb);
            let b1 = _mm256_loadu_ps(pb.add(8));
            for (r, row) in acc.iter_mut().enumerate() {
                let av = _mm256_broadcast_ss(&*pa.add(r));
                row[0] = _mm256_fmadd_ps(av, b0, row[0]);
                row[1] = _mm256_fmadd_ps(av, b1, row[1]);
            }
        };
        for _ in 0..kc / 4 {
            for u in 0..4 {
                step(pa.add(u * MR), pb.add(u * NR));
            }
            pa = pa.add(4 * MR);
            pb = pb.add(4 * NR);
        }
        for _ in 0..kc % 4 {
            step(pa, pb);
            pa = pa.add(MR);
            pb = pb.add(NR);
        }
    }
    // SAFETY: row `r < MR` of the tile is the `NR` contiguous elements at `c + r * rsc`, valid
    // for reads and writes and not shared with another thread by the caller's contract.
    unsafe {
        for (r, row) in acc.iter().enumerate() {
            let pc = c.offset(r as isize * rsc);
            let (mut lo, mut hi) = (row[0], row[1]);
            if accumulate {
                lo = _mm256_add_ps(lo, _mm256_loadu_ps(pc));
                hi = _mm256_add_ps(hi, _mm256_loadu_ps(pc.add(8)));
            }
            _mm256_storeu_ps(pc, lo);
            _mm256_storeu_ps(pc.add(8), hi);
        }
    }
}

/// The portable stand-in on other architectures, never reached: [`available`] is false there,
/// so `sgemm` uses `matrixmultiply` instead. Same contract as the x86_64 kernel.
///
/// # Safety
/// As for the x86_64 kernel, without the CPU features.
#[cfg(not(target_arch = "x86_64"))]
pub(super) unsafe fn kernel_6x16(
    kc: usize,
    a: *const f32,
    b: *const f32,
    c: *mut f32,
    rsc: isize,
    accumulate: bool,
) {
    // SAFETY: the reads stay inside the `kc * MR` and `kc * NR` packed elements and the writes
    // inside the caller's MR x NR tile, by this function's contract.
    unsafe {
        for r in 0..MR {
            for j in 0..NR {
                let mut s = 0.0f32;
                for p in 0..kc {
                    s += *a.add(p * MR + r) * *b.add(p * NR + j);
                }
                let pc = c.offset(r as isize * rsc).add(j);
                *pc = if accumulate { *pc + s } else { s };
            }
        }
    }
}
