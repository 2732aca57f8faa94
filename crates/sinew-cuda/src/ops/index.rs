//! Host side of `cuda/index.cu`: gather, index_select and scatter (replace or add).
//!
//! Every op walks the positions of an i64 index view. `index_select` is a gather whose index is
//! broadcast over the output (stride 0 everywhere but the selected dim), so one kernel serves both.
//!
//! Indices are validated **on the device**: each kernel checks every index against its bound and
//! records the lowest bad position and its index (see [`FirstBad`]), skipping it so nothing out
//! of range is read or written. No op waits for that: the slot is read at the backend's next
//! synchronisation ([`crate::deferred`]), which returns the CPU backend's
//! `Error::IndexOutOfBounds` naming the first bad index in row-major order and the bound. Only an
//! `index_select` whose output is empty (so no kernel runs) validates its indices on the host,
//! from a download, and fails at the call.
//!
//! Scatter-replace is deterministic: when two positions can hit one slot (the index is longer than
//! 1 along `dim`), a first pass claims each slot for its last writer in row-major order (what the
//! CPU keeps). Float scatter-adds sort the positions by output slot and add each slot's values
//! in position order ([`super::sorted_sum`]), so they equal the CPU's bit for bit; i64 adds are
//! atomic (integer sums do not depend on the order). index_select's gradient has its own
//! sorted sum.

use sinew_tensor::{CpuStorage, DType, Error, Layout, Result, ScatterMode, Shape};

use super::cast::{copy_strided, download, fill_pattern};
use super::{FirstBad, LaunchConfig, count_u32, need, sorted_sum};
use crate::device::CudaBackend;
use crate::geometry::Geometry;
use crate::names;
use crate::storage::CudaStorage;

/// The error for an index that is not i64.
pub(crate) fn check_index_dtype(op: &'static str, index: &CudaStorage) -> Result<()> {
    match index.dtype_of() {
        DType::I64 => Ok(()),
        dtype => Err(Error::UnsupportedDType { op, dtype }),
    }
}

/// A view of `shape` with the given strides and offset.
pub(crate) fn view(dims: &[usize], strides: Vec<usize>, offset: usize) -> Layout {
    Layout::from_parts(Shape::new(dims.to_vec()), strides, offset)
}

/// Launches `gather_b<bytes>` over the positions of `idx_view` (same shape as `src_view`), its
/// index check deferred.
fn launch_gather(
    dev: &CudaBackend,
    op: &'static str,
    (src, src_view): (&CudaStorage, &Layout),
    (index, idx_view): (&CudaStorage, &Layout),
    out: &CudaStorage,
    step: usize,
    bound: usize,
) -> Result<()> {
    let n = idx_view.elem_count();
    let g = Geometry::new(op, &[src_view, idx_view])?;
    let bad = FirstBad::new(dev)?;
    let (count, step, bound64) = (count_u32(op, n)?, step as u64, bound as u64);
    let (s, i, o, b) = (
        src.device_ptr(),
        index.device_ptr(),
        out.device_ptr(),
        bad.ptr(),
    );
    dev.launch(
        &names::gather(src.dtype_of()),
        LaunchConfig::elementwise(n),
        kernel_args![count, g, s, i, o, step, bound64, b],
    )?;
    dev.defer_index_check(op, bound, bad)
}

/// `out[p] = src[p with dim replaced by index[p]]`; the output has the index's shape.
pub(crate) fn gather(
    dev: &CudaBackend,
    src: &CudaStorage,
    layout: &Layout,
    index: &CudaStorage,
    il: &Layout,
    dim: usize,
) -> Result<CudaStorage> {
    const OP: &str = "gather";
    check_index_dtype(OP, index)?;
    let out = dev.alloc(src.dtype_of(), il.elem_count())?;
    if il.elem_count() == 0 {
        return Ok(out);
    }
    let mut strides = layout.strides().to_vec();
    let step = std::mem::take(&mut strides[dim]);
    let src_view = view(il.dims(), strides, layout.offset());
    let bound = layout.dims()[dim];
    launch_gather(dev, OP, (src, &src_view), (index, il), &out, step, bound)?;
    Ok(out)
}

/// Slices of `src` along `dim` at the positions of a 1-d index.
pub(crate) fn index_select(
    dev: &CudaBackend,
    src: &CudaStorage,
    layout: &Layout,
    index: &CudaStorage,
    il: &Layout,
    dim: usize,
) -> Result<CudaStorage> {
    const OP: &str = "index_select";
    check_index_dtype(OP, index)?;
    let (dims, count) = (layout.dims(), il.elem_count());
    let bound = dims[dim];
    let mut out_dims = dims.to_vec();
    out_dims[dim] = count;
    let total: usize = out_dims.iter().product();
    let out = dev.alloc(src.dtype_of(), total)?;
    if total == 0 {
        let CpuStorage::I64(ids) = download(dev, index, il)? else {
            unreachable!("the index dtype was checked")
        };
        if let Some(&bad) = ids.iter().find(|&&i| i < 0 || i as usize >= bound) {
            return Err(Error::IndexOutOfBounds {
                op: OP,
                index: bad,
                size: bound,
            });
        }
        return Ok(out);
    }
    let mut strides = layout.strides().to_vec();
    let step = std::mem::take(&mut strides[dim]);
    let src_view = view(&out_dims, strides, layout.offset());
    let mut idx_strides = vec![0; dims.len()];
    idx_strides[dim] = il.strides()[0];
    let idx_view = view(&out_dims, idx_strides, il.offset());
    launch_gather(
        dev,
        OP,
        (src, &src_view),
        (index, &idx_view),
        &out,
        step,
        bound,
    )?;
    Ok(out)
}

/// A contiguous copy of `base` with `values[p]` written (or added) at `p with dim = index[p]`.
pub(crate) fn scatter(
    dev: &CudaBackend,
    base: &CudaStorage,
    bl: &Layout,
    index: &CudaStorage,
    il: &Layout,
    values: &CudaStorage,
    vl: &Layout,
    dim: usize,
    mode: ScatterMode,
) -> Result<CudaStorage> {
    const OP: &str = "scatter";
    check_index_dtype(OP, index)?;
    let dtype = base.dtype_of();
    if values.dtype_of() != dtype {
        return Err(Error::DTypeMismatch {
            op: OP,
            lhs: dtype,
            rhs: values.dtype_of(),
        });
    }
    // Float adds sum in position order (sorted_sum.rs); i64 adds are atomic (order-free).
    let atomic_add = match mode {
        ScatterMode::Add if names::scatter_add_runs(dtype).is_none() => {
            Some(need(names::scatter_add(dtype), "scatter_add", dtype)?)
        }
        _ => None,
    };
    let out = copy_strided(dev, base, bl)?;
    let n = il.elem_count();
    if n == 0 {
        return Ok(out);
    }
    let mut out_strides = Layout::contiguous(bl.shape().clone()).strides().to_vec();
    let step = std::mem::take(&mut out_strides[dim]);
    let target = view(il.dims(), out_strides, 0);
    // Values are read over the index's extent (they may be larger, as in PyTorch).
    let value_view = view(il.dims(), vl.strides().to_vec(), vl.offset());
    let g = Geometry::new(OP, &[&target, il, &value_view])?;
    let bound = bl.dims()[dim];
    let bad = FirstBad::new(dev)?;
    let (count, step64, bound64) = (count_u32(OP, n)?, step as u64, bound as u64);
    let cfg = LaunchConfig::elementwise(n);
    let (v, i, o, b) = (
        values.device_ptr(),
        index.device_ptr(),
        out.device_ptr(),
        bad.ptr(),
    );
    if let Some(kernel) = atomic_add {
        dev.launch(
            &kernel,
            cfg,
            kernel_args![count, g, v, i, o, step64, bound64, b],
        )?;
    } else if matches!(mode, ScatterMode::Add) {
        let out_len = bl.elem_count() as u64;
        sorted_sum::scatter_add(
            dev,
            (count, g),
            index,
            (values, &out),
            (step64, bound64, out_len),
            &bad,
        )?;
    } else {
        // Claims (last writer per output slot) are needed only when two positions can collide.
        let claims = if il.dims()[dim] > 1 {
            Some(fill_pattern(dev, DType::I64, bl.elem_count(), 0)?)
        } else {
            None
        };
        let w = claims.as_ref().map_or(0, CudaStorage::device_ptr);
        if claims.is_some() {
            dev.launch(
                &names::scatter_claim(),
                cfg,
                kernel_args![count, g, i, step64, bound64, b, w],
            )?;
        }
        dev.launch(
            &names::scatter(dtype),
            cfg,
            kernel_args![count, g, v, i, o, step64, bound64, b, w],
        )?;
    }
    dev.defer_index_check(OP, bound, bad)?;
    Ok(out)
}
