//! CPU kernels of index_select, gather and scatter.

use super::alloc::try_with_capacity;
use super::{CpuStorage, contiguous_slice, map_view};
use crate::backend::ScatterMode;
use crate::{Element, Error, Layout, Result, Shape, StridedOffsets};

/// Reads an i64 index view, checking every entry against `bound`.
fn indices(
    op: &'static str,
    index: &CpuStorage,
    layout: &Layout,
    bound: usize,
) -> Result<Vec<usize>> {
    let CpuStorage::I64(v) = index else {
        return Err(Error::UnsupportedDType {
            op,
            dtype: index.dtype(),
        });
    };
    map_view(op, v, layout, |x| x)?
        .into_iter()
        .map(|i| {
            if i < 0 || i as usize >= bound {
                Err(Error::IndexOutOfBounds {
                    op,
                    index: i,
                    size: bound,
                })
            } else {
                Ok(i as usize)
            }
        })
        .collect()
}

/// Picks slices of `src` along `dim` by a 1-d index.
pub(super) fn index_select(
    src: &CpuStorage,
    layout: &Layout,
    index: &CpuStorage,
    index_layout: &Layout,
    dim: usize,
) -> Result<CpuStorage> {
    let dims = layout.dims();
    let ids = indices("index_select", index, index_layout, dims[dim])?;
    let outer: usize = dims[..dim].iter().product();
    let (len, inner) = (dims[dim], dims[dim + 1..].iter().product::<usize>());
    fn run<T: Element + Default>(
        v: &[T],
        l: &Layout,
        ids: &[usize],
        outer: usize,
        len: usize,
        inner: usize,
    ) -> Result<Vec<T>> {
        let data = contiguous_slice("index_select", v, l)?;
        let count = outer
            .checked_mul(ids.len())
            .and_then(|x| x.checked_mul(inner))
            .ok_or_else(|| Error::Overflow {
                op: "index_select",
                what: format!("the output size {outer} x {} x {inner}", ids.len()),
            })?;
        let mut out = try_with_capacity("index_select", count)?;
        for o in 0..outer {
            for &i in ids {
                let start = (o * len + i) * inner;
                out.extend_from_slice(&data[start..start + inner]);
            }
        }
        Ok(out)
    }
    Ok(with_cpu_storage!(src, v => Element::into_storage(run(v, layout, &ids, outer, len, inner)?)))
}

/// Base offsets in `strides` of each position of `shape`, with `dim` contributing nothing.
fn offsets_without_dim(shape: &Shape, strides: &[usize], offset: usize, dim: usize) -> Vec<usize> {
    let mut strides = strides.to_vec();
    strides[dim] = 0;
    let layout = Layout::from_parts(shape.clone(), strides, offset);
    StridedOffsets::starting_at(&layout, 0).collect()
}

/// `out[p] = src[p with dim replaced by index[p]]` (PyTorch `gather`).
pub(super) fn gather(
    src: &CpuStorage,
    layout: &Layout,
    index: &CpuStorage,
    index_layout: &Layout,
    dim: usize,
) -> Result<CpuStorage> {
    let ids = indices("gather", index, index_layout, layout.dims()[dim])?;
    let base = offsets_without_dim(index_layout.shape(), layout.strides(), layout.offset(), dim);
    let step = layout.strides()[dim];
    Ok(with_cpu_storage!(src, v => {
        let mut out = try_with_capacity("gather", ids.len())?;
        out.extend(base.iter().zip(&ids).map(|(&b, &i)| v[b + i * step]));
        Element::into_storage(out)
    }))
}

/// A contiguous copy of `base` with `values[p]` written (or added) at `p with dim = index[p]`.
pub(super) fn scatter(
    base: &CpuStorage,
    base_layout: &Layout,
    index: &CpuStorage,
    index_layout: &Layout,
    values: &CpuStorage,
    values_layout: &Layout,
    dim: usize,
    mode: ScatterMode,
) -> Result<CpuStorage> {
    let ids = indices("scatter", index, index_layout, base_layout.dims()[dim])?;
    let out_strides = base_layout.shape().contiguous_strides();
    let targets = offsets_without_dim(index_layout.shape(), &out_strides, 0, dim);
    let step = out_strides[dim];
    // Values are read over the index's extent (they may be larger, as in PyTorch).
    let value_view = Layout::from_parts(
        index_layout.shape().clone(),
        values_layout.strides().to_vec(),
        values_layout.offset(),
    );
    fn run<T: Element + Default>(
        out: &mut [T],
        vals: &[T],
        vl: &Layout,
        targets: &[usize],
        ids: &[usize],
        step: usize,
        mode: ScatterMode,
    ) {
        for ((&t, &i), src) in targets
            .iter()
            .zip(ids)
            .zip(StridedOffsets::starting_at(vl, 0))
        {
            let slot = &mut out[t + i * step];
            *slot = match mode {
                ScatterMode::Replace => vals[src],
                ScatterMode::Add => T::from_f64(slot.to_f64() + vals[src].to_f64()),
            };
        }
    }
    let mut out = super::cast::copy_view("scatter", base, base_layout)?;
    macro_rules! arm {
        ($($v:ident),*) => {
            match (&mut out, values) {
                $((CpuStorage::$v(o), CpuStorage::$v(vals)) => run(o, vals, &value_view, &targets, &ids, step, mode),)*
                (o, v) => return Err(Error::DTypeMismatch { op: "scatter", lhs: o.dtype(), rhs: v.dtype() }),
            }
        };
    }
    arm!(F32, F64, F16, BF16, I64, U8, Bool);
    Ok(out)
}
