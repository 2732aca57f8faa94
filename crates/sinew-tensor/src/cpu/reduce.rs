//! CPU kernels of reductions (sum, prod, max, min) and arg-reductions (argmax, argmin).
//!
//! The input is made contiguous, adjacent reduced dims are merged, and each merged run is reduced
//! as the middle axis of `[outer, len, inner]`: rows when `inner == 1`, vectorisable column
//! accumulation otherwise. Float accumulation happens in f64.

use super::alloc::try_with_capacity;
use super::{CpuStorage, PARALLEL_THRESHOLD, contiguous_slice, par, through_f32};
use crate::ops::{ArgReduceOp, ReduceOp};
use crate::{DType, Element, Error, Layout, Result};

/// Independent accumulators per row fold.
const LANES: usize = 8;

/// `[outer, len, inner]` view of a contiguous tensor around one axis run.
#[derive(Debug, Clone, Copy)]
struct Axis {
    outer: usize,
    len: usize,
    inner: usize,
}

/// Folds the middle axis of a contiguous `[outer, len, inner]` array.
fn reduce_axis<T, A>(
    data: &[T],
    axis: Axis,
    init: A,
    load: impl Fn(T) -> A + Sync,
    combine: impl Fn(A, A) -> A + Sync + Send,
) -> Vec<A>
where
    T: Copy + Send + Sync,
    A: Copy + Send + Sync,
{
    let Axis { outer, len, inner } = axis;
    let work = outer * len * inner;
    // Eight independent accumulators break the dependency chain of one running total, so the
    // loop vectorises; the grouping is fixed, so results do not depend on the thread count.
    let fold_row = |row: &[T]| {
        let mut lanes = [init; LANES];
        let mut chunks = row.chunks_exact(LANES);
        for chunk in &mut chunks {
            for (lane, &x) in lanes.iter_mut().zip(chunk) {
                *lane = combine(*lane, load(x));
            }
        }
        let total = lanes.iter().fold(init, |acc, &lane| combine(acc, lane));
        chunks
            .remainder()
            .iter()
            .fold(total, |acc, &x| combine(acc, load(x)))
    };
    let parallel = work >= PARALLEL_THRESHOLD;
    if inner == 1 {
        if len == 0 {
            return vec![init; outer];
        }
        if outer == 1 && parallel {
            // Partial folds of fixed chunks, combined in order: the same grouping on any
            // number of threads.
            let part = PARALLEL_THRESHOLD / 4;
            let mut partials = vec![init; len.div_ceil(part)];
            par::for_each_chunk_mut(&mut partials, 1, true, &|t, p| {
                p[0] = fold_row(&data[t * part..((t + 1) * part).min(len)]);
            });
            return vec![partials.into_iter().fold(init, &combine)];
        }
        let rows_per_task = (PARALLEL_THRESHOLD / 4 / len).max(1);
        let mut out = vec![init; outer];
        par::for_each_chunk_mut(&mut out, rows_per_task, parallel, &|t, rows| {
            let first = t * rows_per_task;
            for (i, o) in rows.iter_mut().enumerate() {
                *o = fold_row(&data[(first + i) * len..][..len]);
            }
        });
        return out;
    }
    // Column block starting at `(o, s)` of the output, accumulated into `acc`.
    let columns = |o: usize, s: usize, acc: &mut [A]| {
        for j in 0..len {
            let row = &data[(o * len + j) * inner + s..][..acc.len()];
            for (a, &x) in acc.iter_mut().zip(row) {
                *a = combine(*a, load(x));
            }
        }
    };
    let mut out = vec![init; outer * inner];
    if !parallel || outer >= rayon::current_num_threads() {
        par::for_each_chunk_mut(&mut out, inner, parallel, &|o, acc| columns(o, 0, acc));
        return out;
    }
    let block = 1024.min(inner);
    let mut blocks: Vec<&mut [A]> = out
        .chunks_mut(inner)
        .flat_map(|r| r.chunks_mut(block))
        .collect();
    let per_row = inner.div_ceil(block);
    par::for_each_chunk_mut(&mut blocks, 1, true, &|t, acc| {
        columns(t / per_row, (t % per_row) * block, acc[0]);
    });
    out
}

/// Splits a shape into alternating runs of kept and reduced dims: `(size, reduced)` per run.
fn runs(dims: &[usize], reduced: &[usize]) -> Vec<(usize, bool)> {
    let mut out: Vec<(usize, bool)> = Vec::new();
    for (i, &d) in dims.iter().enumerate() {
        let r = reduced.contains(&i);
        match out.last_mut() {
            Some(last) if last.1 == r => last.0 *= d,
            _ => out.push((d, r)),
        }
    }
    out
}

/// Reduces every reduced run, innermost first, each time shrinking it to size 1. `store(acc,
/// last)` turns a fold into an element; `last` is true for the outermost run's folds, the
/// results.
fn reduce_runs<T: Copy + Send + Sync + 'static, A: Copy + Send + Sync>(
    op: &'static str,
    data: &[T],
    dims: &[usize],
    reduced: &[usize],
    init: A,
    load: impl Fn(T) -> A + Sync + Copy,
    combine: impl Fn(A, A) -> A + Sync + Send + Copy,
    store: impl Fn(A, bool) -> T + Copy,
) -> Result<Vec<T>> {
    let mut runs = runs(dims, reduced);
    let outermost = runs.iter().position(|run| run.1);
    let mut current: Option<Vec<T>> = None;
    for r in (0..runs.len()).rev() {
        if !runs[r].1 {
            continue;
        }
        let axis = Axis {
            outer: runs[..r].iter().map(|x| x.0).product(),
            len: runs[r].0,
            inner: runs[r + 1..].iter().map(|x| x.0).product(),
        };
        let src: &[T] = current.as_deref().unwrap_or(data);
        let out = reduce_axis(src, axis, init, load, combine);
        let mut stored = try_with_capacity(op, out.len())?;
        let last = Some(r) == outermost;
        stored.extend(out.into_iter().map(|acc| store(acc, last)));
        current = Some(stored);
        runs[r].0 = 1;
    }
    match current {
        Some(out) => Ok(out),
        None => {
            let mut out = try_with_capacity(op, data.len())?;
            out.extend_from_slice(data);
            Ok(out)
        }
    }
}

#[inline]
fn nan_max(a: f64, b: f64) -> f64 {
    if a.is_nan() || b.is_nan() {
        f64::NAN
    } else {
        a.max(b)
    }
}

#[inline]
fn nan_min(a: f64, b: f64) -> f64 {
    if a.is_nan() || b.is_nan() {
        f64::NAN
    } else {
        a.min(b)
    }
}

// One `reduce_runs` call per op (closures, not function pointers), so each combine is inlined
// and the loops vectorise.
fn reduce_float<T: Element + Default>(
    op: ReduceOp,
    v: &[T],
    dims: &[usize],
    reduced: &[usize],
) -> Result<Vec<T>> {
    let (load, store) = (T::to_f64, |acc, _| T::from_f64(acc));
    let name = op.name();
    match op {
        ReduceOp::Sum => reduce_runs(name, v, dims, reduced, 0.0, load, |a, b| a + b, store),
        ReduceOp::Prod => reduce_runs(name, v, dims, reduced, 1.0, load, |a, b| a * b, store),
        ReduceOp::Max => reduce_runs(
            name,
            v,
            dims,
            reduced,
            f64::NEG_INFINITY,
            load,
            nan_max,
            store,
        ),
        ReduceOp::Min => reduce_runs(name, v, dims, reduced, f64::INFINITY, load, nan_min, store),
    }
}

fn reduce_int(op: ReduceOp, v: &[i64], dims: &[usize], reduced: &[usize]) -> Result<Vec<i64>> {
    let (id, st) = (|x| x, |x, _| x);
    let name = op.name();
    match op {
        ReduceOp::Sum => reduce_runs(name, v, dims, reduced, 0, id, i64::wrapping_add, st),
        ReduceOp::Prod => reduce_runs(name, v, dims, reduced, 1, id, i64::wrapping_mul, st),
        ReduceOp::Max => reduce_runs(name, v, dims, reduced, i64::MIN, id, std::cmp::max, st),
        ReduceOp::Min => reduce_runs(name, v, dims, reduced, i64::MAX, id, std::cmp::min, st),
    }
}

/// The mean over `dims` of a float view (the output keeps them with size 1): the sum,
/// accumulated in f64, divided by the count before it is rounded to the dtype, as PyTorch
/// computes it (an f16 mean of values whose sum overflows f16 is finite). f16/bf16 go through
/// f32, as the reductions do. NaN for an empty reduction.
pub(super) fn mean(src: &CpuStorage, layout: &Layout, dims: &[usize]) -> Result<CpuStorage> {
    if let Some(out) = through_f32("mean", src, layout, |s, l| mean(s, l, dims)) {
        return out;
    }
    fn run<T: Element + Default>(v: &[T], layout: &Layout, dims: &[usize]) -> Result<Vec<T>> {
        let data = contiguous_slice("mean", v, layout)?;
        // At most the view's element count, which its shape's checks bound.
        let count = dims.iter().map(|&d| layout.dims()[d]).product::<usize>() as f64;
        let store = |acc: f64, last| T::from_f64(if last { acc / count } else { acc });
        let add = |a: f64, b: f64| a + b;
        reduce_runs(
            "mean",
            &data,
            layout.dims(),
            dims,
            0.0,
            T::to_f64,
            add,
            store,
        )
    }
    Ok(match src {
        CpuStorage::F32(v) => CpuStorage::F32(run(v, layout, dims)?),
        CpuStorage::F64(v) => CpuStorage::F64(run(v, layout, dims)?),
        other => {
            return Err(Error::UnsupportedDType {
                op: "mean",
                dtype: other.dtype(),
            });
        }
    })
}

/// Reduces `dims` of a view; the output has the view's rank with those dims set to 1.
pub(super) fn reduce(
    op: ReduceOp,
    src: &CpuStorage,
    layout: &Layout,
    dims: &[usize],
) -> Result<CpuStorage> {
    if let Some(out) = through_f32(op.name(), src, layout, |s, l| reduce(op, s, l, dims)) {
        return out;
    }
    let shape = layout.dims();
    let name = op.name();
    Ok(match src {
        CpuStorage::F32(v) => {
            let data = contiguous_slice(name, v, layout)?;
            CpuStorage::F32(reduce_float(op, &data, shape, dims)?)
        }
        CpuStorage::F64(v) => {
            let data = contiguous_slice(name, v, layout)?;
            CpuStorage::F64(reduce_float(op, &data, shape, dims)?)
        }
        CpuStorage::I64(v) => {
            let data = contiguous_slice(name, v, layout)?;
            CpuStorage::I64(reduce_int(op, &data, shape, dims)?)
        }
        other => {
            return Err(Error::UnsupportedDType {
                op: op.name(),
                dtype: other.dtype(),
            });
        }
    })
}

/// Index of the extreme value along `dim` (first on ties; NaN counts as the extreme).
pub(super) fn arg_reduce(
    op: ArgReduceOp,
    src: &CpuStorage,
    layout: &Layout,
    dim: usize,
) -> Result<CpuStorage> {
    fn run<T: Element + Default>(
        op: ArgReduceOp,
        v: &[T],
        layout: &Layout,
        dim: usize,
    ) -> Result<Vec<i64>> {
        let data = contiguous_slice(op.name(), v, layout)?;
        let dims = layout.dims();
        let axis = Axis {
            outer: dims[..dim].iter().product(),
            len: dims[dim],
            inner: dims[dim + 1..].iter().product(),
        };
        let better: fn(f64, f64) -> bool = match op {
            ArgReduceOp::ArgMax => |cand, best| cand > best || (cand.is_nan() && !best.is_nan()),
            ArgReduceOp::ArgMin => |cand, best| cand < best || (cand.is_nan() && !best.is_nan()),
        };
        let mut out = try_with_capacity(op.name(), axis.outer * axis.inner)?;
        for o in 0..axis.outer {
            for i in 0..axis.inner {
                let at = |j: usize| data[(o * axis.len + j) * axis.inner + i].to_f64();
                let mut best = (0usize, at(0));
                for j in 1..axis.len {
                    let x = at(j);
                    if better(x, best.1) {
                        best = (j, x);
                    }
                }
                out.push(best.0 as i64);
            }
        }
        Ok(out)
    }
    if layout.dims()[dim] == 0 {
        return Err(Error::invalid(
            op.name(),
            "cannot take the extreme of an empty dimension",
        ));
    }
    Ok(CpuStorage::I64(match src {
        CpuStorage::F32(v) => run(op, v, layout, dim)?,
        CpuStorage::F64(v) => run(op, v, layout, dim)?,
        CpuStorage::F16(v) => run(op, v, layout, dim)?,
        CpuStorage::BF16(v) => run(op, v, layout, dim)?,
        CpuStorage::I64(v) => run(op, v, layout, dim)?,
        CpuStorage::U8(v) => run(op, v, layout, dim)?,
        CpuStorage::Bool(_) => {
            return Err(Error::UnsupportedDType {
                op: op.name(),
                dtype: DType::Bool,
            });
        }
    }))
}
