//! The f32 exponential and sigmoid as branch-free formulas of plain arithmetic and bit
//! operations, so that loops over them vectorise (the C library's `expf` is a scalar call). Used by the softmax kernel (`softmax_f32.rs`) and the elementwise kernels of
//! `unary_f32.rs`, whose loops are compiled for AVX-512 and AVX2 + FMA.
//!
//! `exp` is Cephes' single-precision polynomial (Moshier's `expf`: range reduction by `ln 2` in
//! two parts, a degree-7 polynomial; `n` rounded to nearest): within 2 ulp of the exact value
//! over the whole range, subnormal results included (the scale `2^n` is applied in two
//! halves); `exp(-inf) = 0` exactly, NaN stays NaN.
//!
//! `tanh` stays with the C library: a vectorised one (Cephes' `tanhf`, or even one computed in
//! f64 and rounded once) moved f32 training runs of the optimizer tests away from PyTorch's
//! trajectories by 1.4e-4 relative, past their 1e-4 tolerance (the C library's: 8.3e-5).

/// `exp(x)` for f32, branch-free (see the module docs).
#[inline(always)]
pub(super) fn exp(x: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    // Below -110 the result rounds to 0 and above 89 to infinity; the clamps keep `n` small.
    // Comparisons are false for NaN, which therefore passes through.
    let x = if x < -110.0 { -110.0 } else { x };
    let x = if x > 89.0 { 89.0 } else { x };
    // n = x / ln 2 rounded to the nearest integer, by adding 1.5 * 2^23 (whose unit in the
    // last place is 1): the sum's low mantissa bits are then n itself, read without a float to
    // integer conversion (Rust's saturating `as` kept LLVM from vectorising this loop).
    const ROUNDER: f32 = 12_582_912.0;
    let t = x.mul_add(LOG2E, ROUNDER);
    let n = t - ROUNDER;
    let r = n.mul_add(-LN2_LO, n.mul_add(-LN2_HI, x));
    let mut p = 1.987_569_1e-4f32;
    p = p.mul_add(r, 1.398_199_9e-3);
    p = p.mul_add(r, 8.333_452e-3);
    p = p.mul_add(r, 4.166_579_6e-2);
    p = p.mul_add(r, 0.166_666_65);
    p = p.mul_add(r, 0.5);
    let p = p.mul_add(r * r, r) + 1.0;
    // 2^n as two factors 2^h and 2^(n - h), each a normal float for |n| <= 160 (for NaN the
    // bits are meaningless and `p` is NaN).
    let n = (t.to_bits() as i32).wrapping_sub(ROUNDER.to_bits() as i32);
    let h = n >> 1;
    let pow2 = |e: i32| f32::from_bits((e.wrapping_add(127) as u32) << 23);
    p * pow2(h) * pow2(n - h)
}

/// The logistic sigmoid `1 / (1 + exp(-x))`, computed from `e = exp(-|x|)` (never overflows)
/// as `1 / (1 + e)` for `x >= 0` and `e / (1 + e)` below, the generic kernel's two forms.
#[inline(always)]
pub(super) fn sigmoid(x: f32) -> f32 {
    let e = exp(-x.abs());
    let s = 1.0 / (1.0 + e);
    if x >= 0.0 { s } else { e * s }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Distance in units in the last place between two finite floats of the same sign.
    fn ulps(a: f32, b: f32) -> u32 {
        (a.to_bits() as i64 - b.to_bits() as i64).unsigned_abs() as u32
    }

    /// `exp` within 2 ulp of the correctly rounded value from -104 (subnormal results) to 88.7,
    /// and the special values.
    #[test]
    fn exp_is_within_two_ulp() {
        let mut worst = 0;
        let mut x = -104.0f32;
        while x < 88.7 {
            let want = (x as f64).exp() as f32;
            let got = exp(x);
            let tol = if want < f32::MIN_POSITIVE { 1 } else { 2 };
            assert!(ulps(got, want) <= tol, "exp({x}) = {got}, want {want}");
            worst = worst.max(ulps(got, want));
            x += 0.000_731;
        }
        assert!(worst >= 1, "the sweep compared nothing inexact");
        assert_eq!(exp(f32::NEG_INFINITY).to_bits(), 0);
        assert_eq!(exp(-200.0).to_bits(), 0);
        assert_eq!(exp(0.0), 1.0);
        assert_eq!(exp(f32::INFINITY), f32::INFINITY);
        assert_eq!(exp(89.0), f32::INFINITY);
        assert!(exp(f32::NAN).is_nan());
    }

    /// `sigmoid` within 4 ulp of the f64 value over [-100, 100] (subnormal results
    /// included) and its special values.
    #[test]
    fn sigmoid_is_close() {
        let mut x = -100.0f32;
        while x < 100.0 {
            let s = (1.0 / (1.0 + (-(x as f64)).exp())) as f32;
            assert!(
                ulps(sigmoid(x), s) <= 4,
                "sigmoid({x}) = {}, want {s}",
                sigmoid(x)
            );
            x += 0.000_37;
        }
        assert_eq!(sigmoid(f32::INFINITY), 1.0);
        assert_eq!(sigmoid(f32::NEG_INFINITY), 0.0);
        assert_eq!(sigmoid(0.0), 0.5);
        assert!(sigmoid(f32::NAN).is_nan());
    }
}
