//! `exp` and `sigmoid` of f32 views through the vectorised formulas of `exp_f32.rs`, compiled
//! for AVX-512 and for AVX2 + FMA and chosen at run time. A strided view is gathered first, so
//! an op's f32 values do not depend on the layout (and f16/bf16, computed through a contiguous
//! f32 copy, are the f32 values rounded once whatever their layout); the in-place forms
//! (`exp_`, `sigmoid_`) use the same formulas. The generic kernel (`unary.rs`) calls the C
//! library per element; other dtypes go there.

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

/// `op` of the view `layout` of `v`, or `None` when this kernel does not serve the op or the
/// view does not fit in `v` (the caller then runs the generic one, which reports it).
pub(super) fn unary(op: UnaryOp, v: &[f32], layout: &Layout) -> Option<Result<Vec<f32>>> {
    let formula = match op {
        UnaryOp::Exp => Formula::Exp,
        UnaryOp::Sigmoid => Formula::Sigmoid,
        _ => return None,
    };
    let gathered;
    let src = match layout.contiguous_offset() {
        Some((start, end)) => v.get(start..end)?,
        None => {
            if layout.storage_extent() > v.len() {
                return None;
            }
            gathered = match try_vec(op.name(), layout.elem_count(), 0.0f32) {
                Ok(mut g) => {
                    g.iter_mut()
                        .zip(layout.offsets())
                        .for_each(|(d, at)| *d = v[at]);
                    g
                }
                Err(e) => return Some(Err(e)),
            };
            &gathered[..]
        }
    };
    Some(try_vec(op.name(), src.len(), 0.0f32).map(|mut out| {
        let parallel = src.len() >= PARALLEL_THRESHOLD;
        par::for_each_chunk_mut(&mut out, PARALLEL_THRESHOLD, parallel, &|t, dst| {
            let from = t * PARALLEL_THRESHOLD;
            map(formula, &src[from..from + dst.len()], dst);
        });
        out
    }))
}

/// Elements per block of [`map_in_place`]: its values go through a stack buffer.
const BLOCK: usize = 256;

/// The formula of `op` for in-place use (`exp_`, `sigmoid_`), or `None` when this kernel does
/// not serve `op`.
pub(super) fn in_place_formula(op: UnaryOp) -> Option<InPlaceFormula> {
    match op {
        UnaryOp::Exp => Some(InPlaceFormula(Formula::Exp)),
        UnaryOp::Sigmoid => Some(InPlaceFormula(Formula::Sigmoid)),
        _ => None,
    }
}

/// One of this kernel's formulas, applied in place by `cpu/inplace.rs` so that an in-place op
/// gives the bits of its out-of-place form.
#[derive(Clone, Copy)]
pub(super) struct InPlaceFormula(Formula);

impl InPlaceFormula {
    /// The formula of one element (for strided views; the same bits as [`Self::map_in_place`],
    /// which runs it vectorised).
    pub(super) fn scalar(self) -> fn(f32) -> f32 {
        match self.0 {
            Formula::Exp => exp,
            Formula::Sigmoid => sigmoid,
        }
    }

    /// `x = formula(x)` over a dense run, each element read as f32 by `load` and written back by
    /// `store` (f16 and bf16 round once, as their out-of-place ops do).
    pub(super) fn map_in_place<T: Copy>(
        self,
        values: &mut [T],
        load: fn(T) -> f32,
        store: fn(f32) -> T,
    ) {
        let (mut src, mut dst) = ([0.0f32; BLOCK], [0.0f32; BLOCK]);
        for chunk in values.chunks_mut(BLOCK) {
            let (src, dst) = (&mut src[..chunk.len()], &mut dst[..chunk.len()]);
            src.iter_mut()
                .zip(chunk.iter())
                .for_each(|(s, &x)| *s = load(x));
            map(self.0, src, dst);
            chunk
                .iter_mut()
                .zip(dst.iter())
                .for_each(|(x, &y)| *x = store(y));
        }
    }
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
    /// formulas, a transposed view as its contiguous copy; other ops are left to the generic
    /// kernel.
    #[test]
    fn views_match_the_formulas_whatever_their_layout() {
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
        // A transposed view is gathered: the bits of its contiguous copy.
        let square = Layout::contiguous([2, 3])
            .permute(&[1, 0])
            .expect("permute");
        let data: Vec<f32> = (0..6).map(|i| i as f32 * 0.7 - 2.0).collect();
        let copy: Vec<f32> = square.offsets().map(|at| data[at]).collect();
        let dense = Layout::contiguous([3, 2]);
        for op in [UnaryOp::Exp, UnaryOp::Sigmoid] {
            let got = unary(op, &data, &square)
                .expect("served")
                .expect("allocated");
            let want = unary(op, &copy, &dense)
                .expect("served")
                .expect("allocated");
            assert_eq!(got, want, "{}", op.name());
        }
        // A view past its storage is left to the generic kernel, which reports it.
        assert!(unary(UnaryOp::Exp, &[0.0; 4], &square).is_none());
        assert!(unary(UnaryOp::Relu, &v, &layout).is_none());
        assert!(unary(UnaryOp::Tanh, &v, &layout).is_none());
    }
}
