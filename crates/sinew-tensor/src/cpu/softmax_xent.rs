//! CPU kernels of the fused softmax cross-entropy (`Backend::softmax_xent_forward`,
//! `Backend::softmax_xent_backward`; formula in `ops/softmax_xent.rs`): per row, the maximum,
//! the log-sum-exp and the loss in f64, rounded once to the element type, and the totals of the
//! row losses and weights (in row order, in f64). f32 and f64, and f16/bf16 logits widened to
//! f32 here (exactly) for the f32 kernels, their gradient rounded from f32 at the end; other
//! dtypes are `UnsupportedDType` (`CrossEntropyLoss` then takes its op-by-op form).

use std::borrow::Cow;

use rayon::prelude::*;

use super::alloc::try_vec;
use super::{CpuStorage, PARALLEL_THRESHOLD, contiguous_slice, cpu, map_slice, softmax_f32};
use crate::backend::BackendStorage;
use crate::{DType, Element, Error, Layout, Result, SoftmaxXentOptions, XentOperands};
use half::{bf16, f16};

/// A float element the kernels widen to f64 and round back, with its row primitives.
trait XentFloat: Element + Copy + Default + Send + Sync + 'static {
    fn wide(self) -> f64;
    fn narrow(v: f64) -> Self;
    /// A row's `(shift, log_sum)`: `lse = shift + log_sum`, `shift` the maximum (0 when not
    /// finite); a NaN anywhere makes it NaN, as PyTorch's.
    fn log_sum_exp(row: &[Self]) -> (f64, f64);
    /// `out = softmax(row)`, given the row's `(shift, log_sum)` from the forward.
    fn softmax(row: &[Self], shift: f64, log_sum: f64, out: &mut [Self]);
}

impl XentFloat for f32 {
    fn wide(self) -> f64 {
        f64::from(self)
    }
    fn narrow(v: f64) -> f32 {
        v as f32
    }
    /// With the vectorised f32 `exp` of the softmax kernel.
    fn log_sum_exp(row: &[f32]) -> (f64, f64) {
        let (shift, log_sum) = softmax_f32::row_log_sum_exp(row);
        (f64::from(shift), f64::from(log_sum))
    }
    /// The softmax kernel's own (vectorised, recomputing the maximum): the probabilities the
    /// op-by-op form uses, bit for bit.
    fn softmax(row: &[f32], _: f64, _: f64, out: &mut [f32]) {
        if !row.is_empty() {
            softmax_f32::softmax_rows(row, out, row.len(), false);
        }
    }
}

impl XentFloat for f64 {
    fn wide(self) -> f64 {
        self
    }
    fn narrow(v: f64) -> f64 {
        v
    }
    fn log_sum_exp(row: &[f64]) -> (f64, f64) {
        let max = row.iter().fold(
            f64::NEG_INFINITY,
            |m, &x| if x > m || x.is_nan() { x } else { m },
        );
        let shift = if max.is_finite() { max } else { 0.0 };
        let sum: f64 = row.iter().map(|&x| (x - shift).exp()).sum();
        (shift, sum.ln())
    }
    fn softmax(row: &[f64], shift: f64, log_sum: f64, out: &mut [f64]) {
        for (o, &x) in out.iter_mut().zip(row) {
            *o = ((x - shift) - log_sum).exp();
        }
    }
}

/// The contiguous elements of a host view of type `T`.
fn view<'a, T: Element + Copy + Default + Send + Sync + 'static>(
    op: &'static str,
    (s, l): (&'a dyn BackendStorage, &Layout),
) -> Result<Cow<'a, [T]>> {
    let s = cpu(s);
    let v = T::slice_of(s).ok_or(Error::UnsupportedDType {
        op,
        dtype: s.dtype(),
    })?;
    if l.storage_extent() > v.len() {
        return Err(Error::invalid(op, "view exceeds its storage"));
    }
    contiguous_slice(op, v, l)
}

/// The operands as slices: logits, targets, weights widened to f64, and `(M, C)`.
struct Rows<'a, T: Clone> {
    x: Cow<'a, [T]>,
    t: Cow<'a, [i64]>,
    w: Option<Vec<f64>>,
    c: usize,
}

impl<'a, T: XentFloat> Rows<'a, T> {
    fn new(op: &'static str, ops: XentOperands<'a>) -> Result<Self> {
        Self::with_logits(op, ops, view::<T>(op, ops.logits)?)
    }

    /// The operands with the logits `x` given (read from `ops.logits` by the caller).
    fn with_logits(op: &'static str, ops: XentOperands<'a>, x: Cow<'a, [T]>) -> Result<Self> {
        let dims = ops.logits.1.dims();
        let &[m, c] = dims else {
            return Err(Error::invalid(op, format!("expects [M, C], got {dims:?}")));
        };
        let t = view::<i64>(op, ops.target)?;
        if t.len() != m {
            return Err(Error::invalid(
                op,
                format!("{} targets for {m} rows", t.len()),
            ));
        }
        let w = match ops.weight {
            Some(wv) => {
                let w = view::<T>(op, wv)?;
                if w.len() != c {
                    return Err(Error::invalid(
                        op,
                        format!("{} weights for {c} classes", w.len()),
                    ));
                }
                Some(w.iter().map(|&v| v.wide()).collect())
            }
            None => None,
        };
        if x.len() != m * c {
            return Err(Error::invalid(op, "the logits are not [M, C]"));
        }
        Ok(Rows { x, t, w, c })
    }

    /// Class `k`'s weight.
    fn weight(&self, k: usize) -> f64 {
        self.w.as_ref().map_or(1.0, |w| w[k])
    }

    /// Row `i`'s target when it counts (in range and not ignored).
    fn target(&self, i: usize, ignore_index: i64) -> Option<usize> {
        let t = self.t[i];
        (t != ignore_index && t >= 0 && (t as usize) < self.c).then_some(t as usize)
    }

    /// The first target that is neither in range nor ignored, as the CPU's error.
    fn check_targets(&self, ignore_index: i64) -> Result<()> {
        match self
            .t
            .iter()
            .find(|&&t| t != ignore_index && (t < 0 || t as usize >= self.c))
        {
            Some(&index) => Err(Error::IndexOutOfBounds {
                op: "cross_entropy",
                index,
                size: self.c,
            }),
            None => Ok(()),
        }
    }

    /// Row `i`'s logits.
    fn row(&self, i: usize) -> &[T] {
        &self.x[i * self.c..(i + 1) * self.c]
    }
}

/// The operands of f16/bf16 logits, widened to f32 (exactly) for the f32 kernels.
fn widened<'a>(op: &'static str, ops: XentOperands<'a>) -> Result<Rows<'a, f32>> {
    let x = match cpu(ops.logits.0).dtype() {
        DType::F16 => map_slice(op, &view::<f16>(op, ops.logits)?, f16::to_f32)?,
        DType::BF16 => map_slice(op, &view::<bf16>(op, ops.logits)?, bf16::to_f32)?,
        dtype => return Err(Error::UnsupportedDType { op, dtype }),
    };
    Rows::with_logits(op, ops, Cow::Owned(x))
}

/// Runs `f(i, item)` over row-indexed items, in parallel for large inputs.
fn for_rows<I: Send>(
    work: usize,
    items: impl IndexedParallelIterator<Item = I>,
    f: impl Fn(usize, I) + Sync + Send,
) {
    if work >= PARALLEL_THRESHOLD {
        items.enumerate().for_each(|(i, it)| f(i, it));
    } else {
        items
            .with_min_len(usize::MAX)
            .enumerate()
            .for_each(|(i, it)| f(i, it));
    }
}

fn forward_typed<T: XentFloat>(rows: &Rows<'_, T>, o: SoftmaxXentOptions) -> Result<Vec<T>> {
    rows.check_targets(o.ignore_index)?;
    let (m, c, e) = (rows.t.len(), rows.c, o.label_smoothing);
    let mut out = try_vec("softmax_xent_forward", 4 * m + 3, T::default())?;
    let (loss, rest) = out.split_at_mut(m);
    let (row_weight, rest) = rest.split_at_mut(m);
    let (shift_out, rest) = rest.split_at_mut(m);
    let log_sum_out = &mut rest[..m];
    let items = loss
        .par_iter_mut()
        .zip(row_weight.par_iter_mut())
        .zip(shift_out.par_iter_mut().zip(log_sum_out.par_iter_mut()));
    for_rows(m * c, items, |i, ((loss, rw), (shift_out, log_sum_out))| {
        let x = rows.row(i);
        let (shift, log_sum) = T::log_sum_exp(x);
        (*shift_out, *log_sum_out) = (T::narrow(shift), T::narrow(log_sum));
        let Some(t) = rows.target(i, o.ignore_index) else {
            return;
        };
        let lse = shift + log_sum;
        let wt = rows.weight(t);
        let mut l = (1.0 - e) * wt * (lse - x[t].wide());
        if e > 0.0 {
            let smooth: f64 = (0..c).map(|k| rows.weight(k) * (lse - x[k].wide())).sum();
            l += e / c as f64 * smooth;
        }
        *loss = T::narrow(l);
        *rw = T::narrow(wt);
    });
    // The totals of the stored values, rounded once.
    let sum = |v: &[T]| v.iter().map(|x| x.wide()).sum::<f64>();
    let (loss_sum, weight_sum) = (sum(&out[..m]), sum(&out[m..2 * m]));
    out[4 * m..].copy_from_slice(&[
        T::narrow(loss_sum),
        T::narrow(weight_sum),
        T::narrow(loss_sum / weight_sum),
    ]);
    Ok(out)
}

/// The gradient for row gradients `grad`, each divided by `divisor` when given (in `T`:
/// f64's quotient of two f32 values rounds to f32's).
fn backward_typed<T: XentFloat>(
    rows: &Rows<'_, T>,
    stats: &[T],
    grad: &[T],
    divisor: Option<T>,
    o: SoftmaxXentOptions,
) -> Result<Vec<T>> {
    let (m, c, e) = (rows.t.len(), rows.c, o.label_smoothing);
    if stats.len() != 4 * m || grad.len() != m {
        return Err(Error::invalid(
            "softmax_xent_backward",
            format!("stats must be [4, {m}] and grad [{m}]"),
        ));
    }
    let total: f64 = (0..c).map(|k| rows.weight(k)).sum();
    let mut out = try_vec("softmax_xent_backward", m * c, T::default())?;
    if c == 0 {
        return Ok(out);
    }
    for_rows(m * c, out.par_chunks_mut(c), |i, dx: &mut [T]| {
        let Some(t) = rows.target(i, o.ignore_index) else {
            return;
        };
        let g = match divisor {
            Some(d) => T::narrow(grad[i].wide() / d.wide()).wide(),
            None => grad[i].wide(),
        };
        let x = rows.row(i);
        let (shift, log_sum) = (stats[2 * m + i].wide(), stats[3 * m + i].wide());
        let hard = (1.0 - e) * rows.weight(t);
        let soft = e / c as f64;
        T::softmax(x, shift, log_sum, dx);
        for (k, d) in dx.iter_mut().enumerate() {
            let p = d.wide();
            let mut v = hard * (p - f64::from(u8::from(k == t)));
            if e > 0.0 {
                v += soft * (total * p - rows.weight(k));
            }
            *d = T::narrow(g * v);
        }
    });
    Ok(out)
}

/// `Backend::softmax_xent_forward` on host storages.
pub(crate) fn forward(ops: XentOperands<'_>, o: SoftmaxXentOptions) -> Result<CpuStorage> {
    const OP: &str = "softmax_xent_forward";
    Ok(match cpu(ops.logits.0).dtype() {
        DType::F32 => CpuStorage::F32(forward_typed(&Rows::<f32>::new(OP, ops)?, o)?),
        DType::F64 => CpuStorage::F64(forward_typed(&Rows::<f64>::new(OP, ops)?, o)?),
        DType::F16 | DType::BF16 => CpuStorage::F32(forward_typed(&widened(OP, ops)?, o)?),
        dtype => return Err(Error::UnsupportedDType { op: OP, dtype }),
    })
}

/// `Backend::softmax_xent_backward` on host storages.
pub(crate) fn backward(
    ops: XentOperands<'_>,
    stats: (&dyn BackendStorage, &Layout),
    grad: (&dyn BackendStorage, &Layout),
    divisor: Option<(&dyn BackendStorage, &Layout)>,
    o: SoftmaxXentOptions,
) -> Result<CpuStorage> {
    const OP: &str = "softmax_xent_backward";
    let sgd = (stats, grad, divisor);
    Ok(match cpu(ops.logits.0).dtype() {
        DType::F32 => CpuStorage::F32(backward_of(&Rows::<f32>::new(OP, ops)?, sgd, o)?),
        DType::F64 => CpuStorage::F64(backward_of(&Rows::<f64>::new(OP, ops)?, sgd, o)?),
        DType::F16 => {
            let dx = backward_of(&widened(OP, ops)?, sgd, o)?;
            CpuStorage::F16(map_slice(OP, &dx, f16::from_f32)?)
        }
        DType::BF16 => {
            let dx = backward_of(&widened(OP, ops)?, sgd, o)?;
            CpuStorage::BF16(map_slice(OP, &dx, bf16::from_f32)?)
        }
        dtype => return Err(Error::UnsupportedDType { op: OP, dtype }),
    })
}

/// The stats, row gradients and divisor views of [`backward`].
type BackwardViews<'a> = (
    (&'a dyn BackendStorage, &'a Layout),
    (&'a dyn BackendStorage, &'a Layout),
    Option<(&'a dyn BackendStorage, &'a Layout)>,
);

/// [`backward`] over rows of type `T` (the stats, gradients and divisor are `T` too).
fn backward_of<T: XentFloat>(
    rows: &Rows<'_, T>,
    (stats, grad, divisor): BackwardViews<'_>,
    o: SoftmaxXentOptions,
) -> Result<Vec<T>> {
    const OP: &str = "softmax_xent_backward";
    let (s, g) = (view::<T>(OP, stats)?, view::<T>(OP, grad)?);
    let divisor = match divisor {
        Some(d) => match view::<T>(OP, d)?.first() {
            Some(&d) => Some(d),
            None => return Err(Error::invalid(OP, "an empty divisor")),
        },
        None => None,
    };
    backward_typed(rows, &s, &g, divisor, o)
}
