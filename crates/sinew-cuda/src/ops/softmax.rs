//! Host side of `cuda/softmax.cu`: softmax and log-softmax along any dim.
//!
//! The dim is moved last (a contiguous copy when it is not already), rows are normalised, and the
//! result is permuted back into the input's dim order.

use sinew_tensor::{Layout, Result};

use super::cast::copy_strided;
use super::reduce::rows_view;
use super::{LaunchConfig, count_u32, need};
use crate::device::CudaBackend;
use crate::names;
use crate::storage::CudaStorage;

/// Softmax (or log-softmax when `log`) of a view along `dim`, contiguous in the view's shape.
pub(crate) fn softmax(
    dev: &CudaBackend,
    src: &CudaStorage,
    layout: &Layout,
    dim: usize,
    log: bool,
) -> Result<CudaStorage> {
    let op = if log { "log_softmax" } else { "softmax" };
    let dtype = src.dtype_of();
    let kernel = need(names::softmax(log, dtype), op, dtype)?;
    let n = layout.elem_count();
    if n == 0 {
        return dev.alloc(dtype, 0);
    }
    let view = rows_view(dev, src, layout, &[dim])?;
    let out = dev.alloc(dtype, n)?;
    let (rows, cols) = (count_u32(op, view.rows)?, count_u32(op, view.cols)?);
    let (src_ptr, out_ptr) = (view.ptr, out.device_ptr());
    dev.launch(
        &kernel,
        LaunchConfig::rows(view.rows, view.cols),
        kernel_args![src_ptr, out_ptr, rows, cols],
    )?;
    if dim + 1 == layout.dims().len() {
        return Ok(out);
    }
    // `out` is contiguous in the permuted order; view it in the input's order and copy.
    let permuted_dims: Vec<usize> = view.order.iter().map(|&d| layout.dims()[d]).collect();
    let mut inverse = vec![0; view.order.len()];
    for (i, &d) in view.order.iter().enumerate() {
        inverse[d] = i;
    }
    let back = Layout::contiguous(permuted_dims).permute(&inverse)?;
    copy_strided(dev, &out, &back)
}
