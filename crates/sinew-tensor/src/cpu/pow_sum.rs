//! The CPU's [`crate::MultiTensorOps::pow_sum_many`] (gradient clipping's joint norm): every
//! run folded in f64 where it lies, with no temporaries (the tensor ops it replaces made four
//! f64 copies of each gradient). A long run is folded in chunks of [`CHUNK`] elements over
//! rayon's threads and the chunks' results are combined in order, so the value does not
//! depend on the number of threads.

use half::{bf16, f16};

use super::cpu;
use super::par::for_each_chunk_mut;
use crate::{BackendStorage, BoxedStorage, CpuStorage, Error, Result};

/// Elements a chunk folds before the chunks' results are combined.
const CHUNK: usize = 1 << 15;

/// What is summed (or the largest taken) over `|x|`.
#[derive(Debug, Clone, Copy)]
enum Fold {
    /// `|x|^p`.
    Pow(f64),
    /// `|x|`.
    Abs,
    /// `x * x`.
    Square,
    /// The largest `|x|` (NaN wins).
    Max,
}

impl Fold {
    fn of(p: f64) -> Result<Fold> {
        match p {
            f64::INFINITY => Ok(Fold::Max),
            2.0 => Ok(Fold::Square),
            1.0 => Ok(Fold::Abs),
            _ if p > 0.0 && p.is_finite() => Ok(Fold::Pow(p)),
            _ => Err(Error::invalid(
                "pow_sum_many",
                format!("p must be positive, got {p}"),
            )),
        }
    }

    /// The term of an element whose absolute value is `a`.
    fn term(self, a: f64) -> f64 {
        match self {
            Fold::Pow(p) => a.powf(p),
            Fold::Abs | Fold::Max => a,
            Fold::Square => a * a,
        }
    }

    /// Two partial results combined.
    fn combine(self, acc: f64, v: f64) -> f64 {
        match self {
            Fold::Max if acc.is_nan() || v.is_nan() => f64::NAN,
            Fold::Max => acc.max(v),
            _ => acc + v,
        }
    }

    /// The fold of a slice, in order.
    fn slice<T: Copy>(self, x: &[T], to_f64: &impl Fn(T) -> f64) -> f64 {
        x.iter()
            .fold(0.0, |acc, &v| self.combine(acc, self.term(to_f64(v).abs())))
    }

    /// The fold of a run: in chunks over rayon's threads when long, combined in order.
    fn run<T: Copy + Sync>(self, x: &[T], to_f64: impl Fn(T) -> f64 + Sync) -> f64 {
        if x.len() <= CHUNK {
            return self.slice(x, &to_f64);
        }
        let mut parts = vec![0.0f64; x.len().div_ceil(CHUNK)];
        for_each_chunk_mut(&mut parts, 1, true, &|t, out| {
            let end = ((t + 1) * CHUNK).min(x.len());
            out[0] = self.slice(&x[t * CHUNK..end], &to_f64);
        });
        parts.into_iter().fold(0.0, |acc, v| self.combine(acc, v))
    }
}

/// `Σ |x|^p` (the largest `|x|` for `p = ∞`) over dense runs of float storages, as one f64
/// element.
pub(crate) fn pow_sum_many(
    runs: &[(&dyn BackendStorage, usize)],
    lens: &[usize],
    p: f64,
) -> Result<Option<BoxedStorage>> {
    const OP: &str = "pow_sum_many";
    let fold = Fold::of(p)?;
    if runs.len() != lens.len() {
        return Err(Error::invalid(OP, "one length a run"));
    }
    let mut total = 0.0;
    for (&(storage, start), &len) in runs.iter().zip(lens) {
        let storage = cpu(storage);
        // An overflowing end saturates, and fails the check below like any end past the data.
        let range = start..start.saturating_add(len);
        if range.end > storage.len() {
            return Err(Error::invalid(
                OP,
                format!(
                    "a storage of {} elements cannot hold {len} elements from {start}",
                    storage.len()
                ),
            ));
        }
        let part = match storage {
            CpuStorage::F32(v) => fold.run(&v[range], f64::from),
            CpuStorage::F64(v) => fold.run(&v[range], |x| x),
            CpuStorage::F16(v) => fold.run(&v[range], f16::to_f64),
            CpuStorage::BF16(v) => fold.run(&v[range], bf16::to_f64),
            other => {
                return Err(Error::UnsupportedDType {
                    op: OP,
                    dtype: other.dtype(),
                });
            }
        };
        total = fold.combine(total, part);
    }
    Ok(Some(Box::new(CpuStorage::F64(vec![total]))))
}
