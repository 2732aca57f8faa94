//! [`MatmulSpec`] on the CPU: the output dtype and the bias + ReLU epilogue.
//!
//! f16/bf16 operands are multiplied in f32; the epilogue then runs in one pass over the output
//! rows in the compute precision (f64 when the operands or the output are f64, else f32) and
//! converts to the output dtype as it writes: f16 operands asking for an f32 output get the f32
//! accumulator itself, never rounded through f16, unless the spec asks for that rounding
//! ([`MatmulSpec::round_to_operands`]: written in f16, then widened).

use num_traits::Float;
use rayon::prelude::*;

use super::{CpuStorage, PARALLEL_THRESHOLD, cast, cpu, matmul};
use crate::backend::{Activation, MatmulSpec};
use crate::{DType, Element, Error, Layout, Result};

/// Batched product of two views as `spec` asks (see [`crate::Backend::matmul`]).
pub(super) fn matmul_spec(
    lhs: &CpuStorage,
    ll: &Layout,
    rhs: &CpuStorage,
    rl: &Layout,
    spec: &MatmulSpec<'_>,
) -> Result<CpuStorage> {
    if spec.is_plain() {
        return matmul::matmul(lhs, ll, rhs, rl, spec.dims);
    }
    let out = spec.out_dtype.unwrap_or(lhs.dtype());
    if !out.is_float() {
        return Err(Error::UnsupportedDType {
            op: "matmul (output)",
            dtype: out,
        });
    }
    if lhs.dtype() != rhs.dtype() {
        return Err(Error::DTypeMismatch {
            op: "matmul",
            lhs: lhs.dtype(),
            rhs: rhs.dtype(),
        });
    }
    let n = spec.dims.n;
    let bias = match spec.bias {
        Some((b, bl)) => {
            crate::composite::check_bias(out, n, b, bl)?;
            Some((cpu(b), bl))
        }
        None => None,
    };
    let acc = match lhs {
        CpuStorage::F16(_) | CpuStorage::BF16(_) => {
            let (l, r) = (
                cast::cast(lhs, ll, DType::F32)?,
                cast::cast(rhs, rl, DType::F32)?,
            );
            let (ll, rl) = (
                Layout::contiguous(ll.shape().clone()),
                Layout::contiguous(rl.shape().clone()),
            );
            matmul::matmul(&l, &ll, &r, &rl, spec.dims)?
        }
        _ => matmul::matmul(lhs, ll, rhs, rl, spec.dims)?,
    };
    let relu = matches!(spec.activation, Some(Activation::Relu));
    let wide = acc.dtype() == DType::F64 || out == DType::F64;
    // Rounded to the operands' dtype last where the spec asks, then widened.
    let rounded = spec.round_to_operands && out != lhs.dtype();
    let target = if rounded { lhs.dtype() } else { out };
    // The bias in the compute precision, contiguous.
    let bias_in = |dtype: DType| bias.map(|(b, bl)| cast::cast(b, bl, dtype)).transpose();
    let result = match (acc, wide) {
        (CpuStorage::F64(v), _) => finish(v, n, bias_in(DType::F64)?, relu, target)?,
        (CpuStorage::F32(v), true) => {
            let v = v.into_iter().map(f64::from).collect();
            finish(v, n, bias_in(DType::F64)?, relu, target)?
        }
        (CpuStorage::F32(v), false) => finish(v, n, bias_in(DType::F32)?, relu, target)?,
        (other, _) => {
            return Err(Error::UnsupportedDType {
                op: "matmul",
                dtype: other.dtype(),
            });
        }
    };
    if !rounded {
        return Ok(result);
    }
    let len = Layout::contiguous([crate::BackendStorage::len(&result)]);
    cast::cast(&result, &len, out)
}

/// Adds the bias, applies ReLU and converts to `out`, one pass over rows of `n`.
fn finish<E>(
    mut acc: Vec<E>,
    n: usize,
    bias: Option<CpuStorage>,
    relu: bool,
    out: DType,
) -> Result<CpuStorage>
where
    E: Float + Element + Default,
{
    let bias: Option<&[E]> = bias
        .as_ref()
        .map(|b| E::slice_of(b).expect("the bias was cast to the compute dtype"));
    let zero = E::zero();
    let epilogue = move |x: E, j: usize| {
        let v = match bias {
            Some(b) => x + b[j],
            None => x,
        };
        // NaN stays NaN, as in `relu`.
        if relu && v < zero { zero } else { v }
    };
    if acc.is_empty() || n == 0 {
        return cast::cast(&E::into_storage(acc), &Layout::contiguous([0]), out);
    }
    if out == E::DTYPE {
        rows(&mut acc, n, |row| {
            for (j, x) in row.iter_mut().enumerate() {
                *x = epilogue(*x, j);
            }
        });
        return Ok(E::into_storage(acc));
    }
    fn convert<E: Float + Element, O: Element + Default>(
        acc: &[E],
        n: usize,
        f: impl Fn(E, usize) -> E + Sync + Send,
    ) -> Result<CpuStorage> {
        let mut o = super::alloc::try_vec("matmul", acc.len(), O::default())?;
        let body = |(row, src): (&mut [O], &[E])| {
            for (j, (x, &a)) in row.iter_mut().zip(src).enumerate() {
                *x = O::from_f64(f(a, j).to_f64());
            }
        };
        if acc.len() >= PARALLEL_THRESHOLD {
            o.par_chunks_mut(n).zip(acc.par_chunks(n)).for_each(body);
        } else {
            o.chunks_mut(n).zip(acc.chunks(n)).for_each(body);
        }
        Ok(O::into_storage(o))
    }
    match out {
        DType::F32 => convert::<E, f32>(&acc, n, epilogue),
        DType::F64 => convert::<E, f64>(&acc, n, epilogue),
        DType::F16 => convert::<E, half::f16>(&acc, n, epilogue),
        _ => convert::<E, half::bf16>(&acc, n, epilogue),
    }
}

/// Runs `f` on each row of `n` elements, in parallel above the threshold.
fn rows<E: Send>(data: &mut [E], n: usize, f: impl Fn(&mut [E]) + Sync + Send) {
    if data.len() >= PARALLEL_THRESHOLD {
        data.par_chunks_mut(n).for_each(f);
    } else {
        data.chunks_mut(n).for_each(f);
    }
}
