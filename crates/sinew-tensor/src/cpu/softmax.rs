//! CPU kernel of numerically stable softmax and log-softmax along one dimension.

use num_traits::Float;
use rayon::prelude::*;

use super::alloc::try_vec;
use super::{CpuStorage, PARALLEL_THRESHOLD, contiguous_slice, par, softmax_f32, through_f32};
use crate::{Error, Layout, Result};

fn softmax_float<T: Float + Send + Sync + Default + 'static>(
    v: &[T],
    layout: &Layout,
    dim: usize,
    log: bool,
) -> Result<Vec<T>> {
    let op = if log { "log_softmax" } else { "softmax" };
    let data = contiguous_slice(op, v, layout)?;
    let dims = layout.dims();
    let (len, inner) = (dims[dim], dims[dim + 1..].iter().product::<usize>());
    let mut out = try_vec(op, data.len(), T::zero())?;
    if len == 0 || inner == 0 {
        return Ok(out);
    }
    let block = len * inner;
    let per_outer =
        |(src, dst): (&[T], &mut [T])| {
            for i in 0..inner {
                let at = |j: usize| src[j * inner + i];
                let max = (0..len).map(at).fold(T::neg_infinity(), |m, x| {
                    if x > m || x.is_nan() { x } else { m }
                });
                // An all -inf row has no finite maximum; shift by 0 so the result is NaN-free where PyTorch is.
                let shift = if max.is_finite() { max } else { T::zero() };
                let sum: f64 = (0..len)
                    .map(|j| (at(j) - shift).exp().to_f64().unwrap_or(f64::NAN))
                    .sum();
                let sum = T::from(sum).expect("float");
                for j in 0..len {
                    dst[j * inner + i] = if log {
                        at(j) - shift - sum.ln()
                    } else {
                        (at(j) - shift).exp() / sum
                    };
                }
            }
        };
    if data.len() >= PARALLEL_THRESHOLD {
        data.par_chunks(block)
            .zip(out.par_chunks_mut(block))
            .for_each(per_outer);
    } else {
        data.chunks(block)
            .zip(out.chunks_mut(block))
            .for_each(per_outer);
    }
    Ok(out)
}

/// Softmax (or log-softmax) of f32 along `dim`, the last dimension (or followed by sizes of 1
/// only): contiguous rows through the vectorised kernel of `softmax_f32.rs`, enough rows per
/// work item for at least [`PARALLEL_THRESHOLD`] elements.
fn last_dim_f32(v: &[f32], layout: &Layout, dim: usize, log: bool) -> Result<Vec<f32>> {
    let op = if log { "log_softmax" } else { "softmax" };
    let data = contiguous_slice(op, v, layout)?;
    let len = layout.dims()[dim];
    let mut out = try_vec(op, data.len(), 0.0f32)?;
    if len == 0 || data.is_empty() {
        return Ok(out);
    }
    let chunk = len.saturating_mul(PARALLEL_THRESHOLD.div_ceil(len));
    let parallel = data.len() >= PARALLEL_THRESHOLD;
    par::for_each_chunk_mut(&mut out, chunk, parallel, &|t, dst| {
        let src = &data[t * chunk..][..dst.len()];
        softmax_f32::softmax_rows(src, dst, len, log);
    });
    Ok(out)
}

/// Softmax (or log-softmax) of a view along `dim`.
pub(super) fn softmax(
    src: &CpuStorage,
    layout: &Layout,
    dim: usize,
    log: bool,
) -> Result<CpuStorage> {
    if let Some(out) = through_f32("softmax", src, layout, |s, l| softmax(s, l, dim, log)) {
        return out;
    }
    Ok(match src {
        CpuStorage::F32(v) if layout.dims()[dim + 1..].iter().all(|&d| d == 1) => {
            CpuStorage::F32(last_dim_f32(v, layout, dim, log)?)
        }
        CpuStorage::F32(v) => CpuStorage::F32(softmax_float(v, layout, dim, log)?),
        CpuStorage::F64(v) => CpuStorage::F64(softmax_float(v, layout, dim, log)?),
        other => {
            return Err(Error::UnsupportedDType {
                op: if log { "log_softmax" } else { "softmax" },
                dtype: other.dtype(),
            });
        }
    })
}
