//! `exp` and `sigmoid` of contiguous f32 views through the vectorised formulas of
//! `exp_f32.rs`, compiled for AVX-512 and for AVX2 + FMA and chosen at run time. The generic
//! kernel (`unary.rs`) calls the C library per element; other dtypes, strided views and the
//! in-place forms still go there.

use super::alloc::try_vec;
use super::exp_f32::{exp, sigmoid};
use super::{PARALLEL_THRESHOLD, par};
use crate::ops::UnaryOp;
use crate::{Layout, Result};

/// The ops served here.
#[derive(Clone, Copy)]
enum Formula {
    Exp,
    Sigmoid,
}

/// `op` of the contiguous view `layout` of `v`, or `None` when this kernel does not serve the
/// op or the layout (the caller then runs the generic one).
pub(super) fn unary(op: UnaryOp, v: &[f32], layout: &Layout) -> Option<Result<Vec<f32>>> {
    let formula = match op {
        UnaryOp::Exp => Formula::Exp,
        UnaryOp::Sigmoid => Formula::Sigmoid,
        _ => return None,
    };
    let (start, end) = layout.contiguous_offset()?;
    let src = v.get(start..end)?;
    Some(try_vec(op.name(), src.len(), 0.0f32).map(|mut out| {
        let parallel = src.len() >= PARALLEL_THRESHOLD;
        par::for_each_chunk_mut(&mut out, PARALLEL_THRESHOLD, parallel, &|t, dst| {
            let from = t * PARALLEL_THRESHOLD;
            map(formula, &src[from..from + dst.len()], dst);
        });
        out
    }))
}

/// `dst[i] = formula(src[i])` with the widest vector code this CPU runs.
fn map(formula: Formula, src: &[f32], dst: &mut [f32]) {
    match super::vector_level() {
        // SAFETY: `vector_level` found AVX-512F, AVX2 and FMA on this CPU.
        #[cfg(target_arch = "x86_64")]
        super::VectorLevel::Avx512 => unsafe { map_avx512(formula, src, dst) },
        // SAFETY: `vector_level` found AVX2 and FMA on this CPU.
        #[cfg(target_arch = "x86_64")]
        super::VectorLevel::Avx2Fma => unsafe { map_avx2(formula, src, dst) },
        _ => map_with(formula, src, dst),
    }
}

/// The loop itself, one per formula so each vectorises on its own.
#[inline(always)]
fn map_with(formula: Formula, src: &[f32], dst: &mut [f32]) {
    let pairs = dst.iter_mut().zip(src);
    match formula {
        Formula::Exp => pairs.for_each(|(d, &x)| *d = exp(x)),
        Formula::Sigmoid => pairs.for_each(|(d, &x)| *d = sigmoid(x)),
    }
}

/// [`map_with`] compiled for AVX-512.
///
/// # Safety
/// The CPU must have AVX-512F, AVX2 and FMA.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx2,fma")]
// SAFETY contract: the `# Safety` section above; `map` checks it.
unsafe fn map_avx512(formula: Formula, src: &[f32], dst: &mut [f32]) {
    map_with(formula, src, dst)
}

/// [`map_with`] compiled for AVX2 + FMA.
///
/// # Safety
/// The CPU must have AVX2 and FMA.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
// SAFETY contract: the `# Safety` section above; `map` checks it.
unsafe fn map_avx2(formula: Formula, src: &[f32], dst: &mut [f32]) {
    map_with(formula, src, dst)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Both ops of a contiguous view (split into several work items) against the f64
    /// formulas; a transposed view and another op are left to the generic kernel.
    #[test]
    fn contiguous_views_match_the_formulas() {
        let n = 3 * PARALLEL_THRESHOLD + 17;
        let v: Vec<f32> = (0..n)
            .map(|i| ((i * 7919 % 2003) as f32 - 1001.0) / 97.0)
            .collect();
        let layout = Layout::contiguous([n]);
        for (op, f) in [
            (UnaryOp::Exp, f64::exp as fn(f64) -> f64),
            (UnaryOp::Sigmoid, |x: f64| 1.0 / (1.0 + (-x).exp())),
        ] {
            let out = unary(op, &v, &layout).expect("served").expect("allocated");
            for (&x, &got) in v.iter().zip(&out) {
                let want = f(x as f64);
                assert!(
                    (got as f64 - want).abs() <= 4e-7 * want.abs(),
                    "{}({x}) = {got}, want {want}",
                    op.name()
                );
            }
        }
        let square = Layout::contiguous([2, 3])
            .permute(&[1, 0])
            .expect("permute");
        assert!(unary(UnaryOp::Exp, &[0.0; 6], &square).is_none());
        assert!(unary(UnaryOp::Relu, &v, &layout).is_none());
        assert!(unary(UnaryOp::Tanh, &v, &layout).is_none());
    }
}
