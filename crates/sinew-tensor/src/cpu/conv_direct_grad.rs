//! Direct f32 convolution weight gradient for layers with few output channels and a kernel 3
//! or 5 wide (LeNet-5's 1→6 and 6→16), where the im2col product is bound by packing its
//! columns: `dW[o, c, ki, kj] = Σ_{n, y, x} g[n, o, y, x] · x[n, c, y + ki, x + kj]`, read
//! straight from the output gradient and the input.
//!
//! For each image, block of `B` output channels, input channel and kernel row, `B x KW`
//! AVX-512 accumulators sum over the output rows and their segments of at most sixteen
//! columns (one vector of the gradient per channel, one shifted vector of the input per
//! kernel column); the lanes are added into a per-call buffer and summed at the end. The order
//! of the sums differs from the packed product's, so the values agree to rounding, not bits.
//!
//! It reads an input without padding (the caller writes the padding out first), stride and
//! dilation 1.

use crate::Result;
use crate::backend::Unfold2d;
use crate::cpu::alloc::try_vec;

/// Most output channels for which the direct kernel replaces the product.
const MAX_OUT: usize = 16;
/// Lanes of one vector.
const LANES: usize = 16;

/// Whether [`weight_grad`] runs for `out` output channels read through `s`.
pub(crate) fn applies(s: &Unfold2d, out: usize) -> bool {
    out <= MAX_OUT
        && matches!(s.kernel.1, 3 | 5)
        && s.padding == (0, 0)
        && s.stride == (1, 1)
        && s.dilation == (1, 1)
        && crate::cpu::has_avx512f()
}

/// Adds the weight gradient of `s.n` images `x` (`[n, c, h, w]` of `s`) and their output
/// gradient `g` (`[n, out, oh, ow]`) into `acc`, laid out `[c*kh*kw, out]` (the packed
/// product's transposed result). `Ok(false)`, `acc` untouched, when the sizes do not fit.
///
/// # Errors
/// [`crate::Error::OutOfMemory`] when the lane buffer cannot be allocated.
pub(crate) fn weight_grad(
    x: &[f32],
    s: &Unfold2d,
    g: &[f32],
    out: usize,
    acc: &mut [f32],
) -> Result<bool> {
    let (kh, kw) = s.kernel;
    let size = |v: usize, k: usize| v.checked_add(1)?.checked_sub(k);
    let (Some(oh), Some(ow)) = (size(s.h, kh), size(s.w, kw)) else {
        return Ok(false);
    };
    let product = |dims: &[usize]| dims.iter().try_fold(1usize, |a, &d| a.checked_mul(d));
    let (Some(taps), Some(input), Some(grad), Some(lanes)) = (
        product(&[s.c, kh, kw]),
        product(&[s.n, s.c, s.h, s.w]),
        product(&[s.n, out, oh, ow]),
        product(&[out, s.c, kh, kw, LANES]),
    ) else {
        return Ok(false);
    };
    let fits = applies(s, out)
        && x.len() >= input
        && g.len() >= grad
        && taps.checked_mul(out).is_some_and(|n| acc.len() >= n);
    if !fits {
        return Ok(false);
    }
    if grad == 0 || taps == 0 {
        return Ok(true);
    }
    // `sums[((o * c + ch) * kh + ki) * kw + kj]`: sixteen lanes of partial sums.
    let mut sums = try_vec("conv2d (weight gradient)", lanes, 0.0f32)?;
    let segments: Vec<(usize, usize)> = (0..ow)
        .step_by(LANES)
        .map(|x0| (x0, LANES.min(ow - x0)))
        .collect();
    let block = if kw == 5 { 4 } else { 6 };
    let l = oh * ow;
    for n in 0..s.n {
        for o0 in (0..out).step_by(block) {
            let run = kernel_for(kw, block.min(out - o0));
            for ch in 0..s.c {
                for ki in 0..kh {
                    let rows = Rows {
                        x: &x[(n * s.c + ch) * s.h * s.w + ki * s.w..],
                        w: s.w,
                        g: &g[(n * out + o0) * l..],
                        l,
                        ow,
                        oh,
                    };
                    let at = ((o0 * s.c + ch) * kh + ki) * kw * LANES;
                    let o_stride = taps * LANES;
                    // `rows.x` starts at row `ki` of plane `(n, ch)`: the kernel reads rows
                    // `y < oh` (`ki + y < h`), columns `x0 + kj + lane < ow + kw - 1 = w`
                    // (masked); `rows.g` starts at channel `o0` of image `n`.
                    // SAFETY: AVX-512F (`applies`); reads as just above, channels `o0 + o < out`
                    // of `l` each; `sums[at..]` holds `block` channels `o_stride` apart (`fits`).
                    unsafe { run(&rows, &segments, &mut sums[at..], o_stride) };
                }
            }
        }
    }
    for (t, row) in acc.chunks_exact_mut(out).take(taps).enumerate() {
        for (o, a) in row.iter_mut().enumerate() {
            *a += sums[(o * taps + t) * LANES..][..LANES].iter().sum::<f32>();
        }
    }
    Ok(true)
}

/// One kernel row of one input plane against a block of output-gradient planes.
struct Rows<'a> {
    /// The input from row `ki` of the plane on, rows `w` apart.
    x: &'a [f32],
    w: usize,
    /// The block's first output-gradient plane, planes `l` apart.
    g: &'a [f32],
    l: usize,
    ow: usize,
    oh: usize,
}

/// One instance of [`rows`].
// SAFETY: only a type; each call is under `rows`' contract (see `weight_grad`).
type Kernel = unsafe fn(&Rows<'_>, &[(usize, usize)], &mut [f32], usize);

/// The kernel for kernel width `kw` (3 or 5) and `b` output channels.
fn kernel_for(kw: usize, b: usize) -> Kernel {
    match (kw, b) {
        (5, 1) => rows::<5, 1>,
        (5, 2) => rows::<5, 2>,
        (5, 3) => rows::<5, 3>,
        (5, _) => rows::<5, 4>,
        (_, 1) => rows::<3, 1>,
        (_, 2) => rows::<3, 2>,
        (_, 3) => rows::<3, 3>,
        (_, 4) => rows::<3, 4>,
        (_, 5) => rows::<3, 5>,
        _ => rows::<3, 6>,
    }
}

/// `sums[o * o_stride + kj * LANES + lane] +=` the lanes of `Σ_{y, x} g[o][y, x] · x[y, x +
/// kj]` over the rows' segments, for `o < B`, `kj < KW`.
///
/// # Safety
/// AVX-512F must be available; the reads described in [`weight_grad`] must lie inside `rows.x`
/// and `rows.g`, and `sums` must hold `(B - 1) * o_stride + KW * LANES` elements.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
// SAFETY contract: the `# Safety` section above; `weight_grad` checks it.
unsafe fn rows<const KW: usize, const B: usize>(
    rows: &Rows<'_>,
    segments: &[(usize, usize)],
    sums: &mut [f32],
    o_stride: usize,
) {
    use std::arch::x86_64::*;
    let mut acc = [[_mm512_setzero_ps(); KW]; B];
    let (xp, gp) = (rows.x.as_ptr(), rows.g.as_ptr());
    for y in 0..rows.oh {
        for &(x0, len) in segments {
            let mask: __mmask16 = (((1u32 << len) - 1) & 0xffff) as u16;
            let mut gv = [_mm512_setzero_ps(); B];
            // SAFETY: plane `o < B` of the block, row `y < oh`, columns `x0..x0 + len <= ow`
            // (masked), inside `rows.g` by the contract.
            for (o, gv) in gv.iter_mut().enumerate() {
                *gv = unsafe { _mm512_maskz_loadu_ps(mask, gp.add(o * rows.l + y * rows.ow + x0)) };
            }
            for kj in 0..KW {
                // SAFETY: row `y`, columns `x0 + kj..x0 + kj + len <= w` (masked), inside
                // `rows.x` by the contract.
                let xv = unsafe { _mm512_maskz_loadu_ps(mask, xp.add(y * rows.w + x0 + kj)) };
                for (acc, &gv) in acc.iter_mut().zip(&gv) {
                    acc[kj] = _mm512_fmadd_ps(gv, xv, acc[kj]);
                }
            }
        }
    }
    for (o, acc) in acc.iter().enumerate() {
        for (kj, &v) in acc.iter().enumerate() {
            let lanes = &mut sums[o * o_stride + kj * LANES..][..LANES];
            // SAFETY: `lanes` is sixteen elements (sliced just above).
            unsafe {
                let p = lanes.as_mut_ptr();
                _mm512_storeu_ps(p, _mm512_add_ps(_mm512_loadu_ps(p), v));
            }
        }
    }
}

/// The stand-in on other architectures, never reached ([`applies`] is false there).
///
/// # Safety
/// Never called.
#[cfg(not(target_arch = "x86_64"))]
unsafe fn rows<const KW: usize, const B: usize>(
    _: &Rows<'_>,
    _: &[(usize, usize)],
    _: &mut [f32],
    _: usize,
) {
    unreachable!("the direct weight gradient needs AVX-512F")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The direct weight gradient against the definition, for both kernel widths, partial
    /// channel blocks, rows wider than a vector and more than one image.
    #[test]
    fn direct_weight_grad_equals_the_definition() {
        if !crate::cpu::has_avx512f() {
            return; // Not this CPU's path.
        }
        let value = |i: usize| ((i * 7919 % 211) as f32 - 105.0) / 37.0;
        for (n, c, h, w, kh, kw, out) in [
            (2, 1, 32, 32, 5, 5, 6),
            (3, 6, 14, 14, 5, 5, 16),
            (2, 2, 6, 20, 2, 3, 7),
            (1, 3, 5, 40, 3, 3, 13),
        ] {
            let s = Unfold2d::dense(n, c, h, w, (kh, kw));
            let (oh, ow) = (h + 1 - kh, w + 1 - kw);
            let x: Vec<f32> = (0..n * c * h * w).map(value).collect();
            let g: Vec<f32> = (0..n * out * oh * ow).map(|i| value(i + 5)).collect();
            let taps = c * kh * kw;
            let mut acc = vec![0.5f32; taps * out];
            assert!(weight_grad(&x, &s, &g, out, &mut acc).unwrap());
            for o in 0..out {
                for ch in 0..c {
                    for ki in 0..kh {
                        for kj in 0..kw {
                            let mut want = 0.5f64;
                            for i in 0..n {
                                for y in 0..oh {
                                    for xx in 0..ow {
                                        let gv = g[((i * out + o) * oh + y) * ow + xx];
                                        let xv = x[((i * c + ch) * h + y + ki) * w + xx + kj];
                                        want += f64::from(gv) * f64::from(xv);
                                    }
                                }
                            }
                            let t = (ch * kh + ki) * kw + kj;
                            let got = f64::from(acc[t * out + o]);
                            let tol = 1e-3 * (1.0 + want.abs());
                            assert!((got - want).abs() <= tol, "{o} {ch} {ki} {kj}: {got}");
                        }
                    }
                }
            }
        }
    }

    /// Sizes that do not fit are refused, not read past.
    #[test]
    fn short_buffers_are_refused() {
        let s = Unfold2d::dense(1, 1, 8, 8, (3, 3));
        let mut acc = [0.0f32; 9];
        assert!(!weight_grad(&[0.0; 63], &s, &[0.0; 36], 1, &mut acc).unwrap());
        assert!(!weight_grad(&[0.0; 64], &s, &[0.0; 35], 1, &mut acc).unwrap());
        assert!(!weight_grad(&[0.0; 64], &s, &[0.0; 36], 1, &mut acc[..8]).unwrap());
        // A kernel width without a kernel here.
        let wide = Unfold2d {
            kernel: (3, 4),
            ..s
        };
        assert!(!weight_grad(&[0.0; 64], &wide, &[0.0; 30], 1, &mut acc).unwrap());
    }
}
