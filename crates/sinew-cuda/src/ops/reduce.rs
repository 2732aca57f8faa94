//! Host side of `cuda/reduce.cu`: reductions over any dims and arg-reductions along one.
//!
//! The reduced dims are permuted last and the view made contiguous (a copy only when needed), so
//! one row kernel serves every case: `[rows, cols]` with `cols` the reduced elements. Long rows with
//! few of them are split into chunks reduced in two passes, so the whole GPU takes part.

use sinew_tensor::{ArgReduceOp, DType, Error, Layout, ReduceOp, Result};

use super::cast::copy_strided;
use super::{LaunchConfig, count_u32, need};
use crate::device::CudaBackend;
use crate::names;
use crate::storage::CudaStorage;

/// Elements per chunk of the first pass of a two-pass reduction.
const CHUNK: usize = 4096;

/// A view as a contiguous `[rows, cols]` array with the `last` dims (sorted) as the columns.
pub(crate) struct Rows {
    /// The contiguous copy, when one was needed (kept alive until the kernels are queued).
    _copy: Option<CudaStorage>,
    /// Device address of the first element.
    pub(crate) ptr: u64,
    pub(crate) rows: usize,
    pub(crate) cols: usize,
    /// The permutation applied: dim `i` of the rows view is dim `order[i]` of the input.
    pub(crate) order: Vec<usize>,
}

pub(crate) fn rows_view(
    dev: &CudaBackend,
    src: &CudaStorage,
    layout: &Layout,
    last: &[usize],
) -> Result<Rows> {
    let dims = layout.dims();
    let mut order: Vec<usize> = (0..dims.len()).filter(|d| !last.contains(d)).collect();
    let rows = order.iter().map(|&d| dims[d]).product();
    order.extend_from_slice(last);
    let cols = last.iter().map(|&d| dims[d]).product();
    let permuted = layout.permute(&order)?;
    let (copy, ptr) = match permuted.contiguous_offset() {
        Some((start, _)) => (None, src.ptr_at(start)),
        None => {
            let dense = copy_strided(dev, src, &permuted)?;
            let ptr = dense.device_ptr();
            (Some(dense), ptr)
        }
    };
    Ok(Rows {
        _copy: copy,
        ptr,
        rows,
        cols,
        order,
    })
}

/// Reduces `dims` (sorted, unique); the output keeps them as size 1.
pub(crate) fn reduce(
    dev: &CudaBackend,
    op: ReduceOp,
    src: &CudaStorage,
    layout: &Layout,
    dims: &[usize],
) -> Result<CudaStorage> {
    let dtype = src.dtype_of();
    let kernel = need(names::reduce(op, dtype), op.name(), dtype)?;
    let view = rows_view(dev, src, layout, dims)?;
    let out = dev.alloc(dtype, view.rows)?;
    if view.rows == 0 {
        return Ok(out);
    }
    let (rows, cols) = (
        count_u32(op.name(), view.rows)?,
        count_u32(op.name(), view.cols)?,
    );
    let (src_ptr, out_ptr) = (view.ptr, out.device_ptr());
    if view.cols >= 16 * CHUNK && view.rows < 2 * dev.multiprocessors() as usize {
        let parts = view.cols.div_ceil(CHUNK);
        let partial = dev.alloc(dtype, view.rows * parts)?;
        let (chunk, part_ptr, parts32) = (CHUNK as u32, partial.device_ptr(), parts as u32);
        let first = LaunchConfig::rows(view.rows * parts, CHUNK);
        dev.launch(
            &kernel,
            first,
            kernel_args![src_ptr, part_ptr, rows, cols, chunk],
        )?;
        let second = LaunchConfig::rows(view.rows, parts);
        dev.launch(
            &kernel,
            second,
            kernel_args![part_ptr, out_ptr, rows, parts32, parts32],
        )?;
    } else {
        let chunk = cols.max(1);
        dev.launch(
            &kernel,
            LaunchConfig::rows(view.rows, view.cols),
            kernel_args![src_ptr, out_ptr, rows, cols, chunk],
        )?;
    }
    Ok(out)
}

/// Index (i64) of the first extreme along `dim`, kept with size 1.
pub(crate) fn arg_reduce(
    dev: &CudaBackend,
    op: ArgReduceOp,
    src: &CudaStorage,
    layout: &Layout,
    dim: usize,
) -> Result<CudaStorage> {
    let dtype = src.dtype_of();
    let kernel = need(names::arg_reduce(op, dtype), op.name(), dtype)?;
    if layout.dims()[dim] == 0 {
        return Err(Error::invalid(
            op.name(),
            "cannot take the extreme of an empty dimension",
        ));
    }
    let view = rows_view(dev, src, layout, &[dim])?;
    let out = dev.alloc(DType::I64, view.rows)?;
    if view.rows == 0 {
        return Ok(out);
    }
    let (rows, cols) = (
        count_u32(op.name(), view.rows)?,
        count_u32(op.name(), view.cols)?,
    );
    let (src_ptr, out_ptr) = (view.ptr, out.device_ptr());
    dev.launch(
        &kernel,
        LaunchConfig::rows(view.rows, view.cols),
        kernel_args![src_ptr, out_ptr, rows, cols],
    )?;
    Ok(out)
}
