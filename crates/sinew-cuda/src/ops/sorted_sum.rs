//! Host side of `cuda/sorted_sum.cu`: sums over an index without atomics.
//!
//! The values that land on one output slot are summed in ascending position order with each
//! addition rounded to the dtype, as the CPU's sequential loops do, so the results are the CPU's
//! bit for bit and repeat exactly from run to run (PyTorch's CUDA embedding backward is
//! deterministic too; its `scatter_add_` is not by default). The positions are sorted stably by
//! output slot, carried along (a radix sort, 8 bits a pass, as many passes as the slot count has
//! bits), then summed: for `index_select`'s gradient one thread per output element
//! binary-searches its row's run of positions (the 1-d index is the key, shared by every
//! column); for a float scatter-add the first position of each run adds the run. Indices are
//! checked on the device like every index op ([`super::index`]): a bad one is reported at the
//! next synchronisation and contributes nothing.

use sinew_tensor::{DType, Error, Layout, Result, Shape};

use super::cast::copy_strided;
use super::index::{check_index_dtype, view};
use super::{FirstBad, LaunchConfig, count_u32};
use crate::device::CudaBackend;
use crate::geometry::Geometry;
use crate::names;
use crate::storage::CudaStorage;

/// Positions per radix tile (`RADIX_TILE` in the kernels), one thread each.
const TILE: usize = 256;
/// Threads of the one `radix_scan` block (`RADIX_SCAN_THREADS`).
const SCAN_THREADS: u32 = 1024;
/// Bits sorted per pass (256 digits).
const DIGIT_BITS: u32 = 8;

/// The input gradient of `index_select(dim, indices)` for an input of `input_dims`, from the
/// output gradient `grad`; `None` for dtypes without a kernel (the caller scatter-adds).
pub(crate) fn index_select_backward(
    dev: &CudaBackend,
    (grad, gl): (&CudaStorage, &Layout),
    (index, il): (&CudaStorage, &Layout),
    dim: usize,
    input_dims: &[usize],
) -> Result<Option<CudaStorage>> {
    const OP: &str = "index_select backward";
    check_index_dtype(OP, index)?;
    let dtype = grad.dtype_of();
    let Some(sum_kernel) = names::index_grad(dtype) else {
        return Ok(None);
    };
    if il.dims().len() != 1 || dim >= input_dims.len() {
        return Err(Error::invalid(
            OP,
            format!(
                "expects 1-d indices and a dim of the input, got indices {} and dim {dim} of {} dims",
                il.shape(),
                input_dims.len()
            ),
        ));
    }
    let n = il.dims()[0];
    let mut expected = input_dims.to_vec();
    expected[dim] = n;
    if gl.dims() != expected {
        return Err(Error::ShapeMismatch {
            op: OP,
            lhs: gl.shape().clone(),
            rhs: Shape::new(expected),
        });
    }
    let overflow = || Error::invalid(OP, format!("input of {input_dims:?} overflows"));
    let total = input_dims
        .iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .ok_or_else(overflow)?;
    let rows = input_dims[dim];
    let inner: usize = input_dims[dim + 1..].iter().product(); // divides `total`
    if n == 0 {
        return Ok(Some(dev.zeros(dtype, total)?));
    }
    let count = count_u32(OP, n)?;
    // The key of position p is its index itself (slot offset 0, step 1); a bad one sorts last.
    let geom = Geometry::new(OP, &[&view(il.dims(), vec![0], 0), il])?;
    let bad = FirstBad::new(dev)?;
    let bound = rows as u64;
    let (keys, perm) = sort_by_slot(dev, (count, geom), index, (1, bound, bound), &bad)?;
    let out = dev.alloc(dtype, total)?;
    if total > 0 {
        let dense;
        let g = if gl.is_contiguous() {
            grad.ptr_at(gl.offset())
        } else {
            dense = copy_strided(dev, grad, gl)?;
            dense.device_ptr()
        };
        let (t, r, e) = (total as u64, rows as u64, inner as u64);
        let (k, p, o) = (keys.device_ptr(), perm.device_ptr(), out.device_ptr());
        dev.launch(
            &sum_kernel,
            LaunchConfig::elementwise(total),
            kernel_args![t, r, e, count, k, p, g, o],
        )?;
    }
    dev.defer_index_check(OP, rows, bad)?;
    Ok(Some(out))
}

/// The positions `0..count` of the geometry `geom` (operand 0: the output slot with the indexed
/// dim's stride 0; operand 1: the index view) as `(keys, perm)`: their output slots
/// `off0 + index * step` in ascending order, `sentinel` for bad indices (recorded in `bad`,
/// checked against `bound`), and the positions in that order, stable (ascending within a slot).
/// Keys must lie in `[0, sentinel]`.
pub(crate) fn sort_by_slot(
    dev: &CudaBackend,
    (count, geom): (u32, Geometry),
    index: &CudaStorage,
    (step, bound, sentinel): (u64, u64, u64),
    bad: &FirstBad,
) -> Result<(CudaStorage, CudaStorage)> {
    let n = count as usize;
    let (mut keys, mut perm) = (dev.alloc(DType::I64, n)?, dev.alloc(DType::I64, n)?);
    let (mut keys_out, mut perm_out) = (dev.alloc(DType::I64, n)?, dev.alloc(DType::I64, n)?);
    let (i, b, k, p) = (
        index.device_ptr(),
        bad.ptr(),
        keys.device_ptr(),
        perm.device_ptr(),
    );
    dev.launch(
        &names::radix("keys"),
        LaunchConfig::elementwise(n),
        kernel_args![count, geom, i, step, bound, sentinel, b, k, p],
    )?;
    let tiles = n.div_ceil(TILE);
    let hist_len = tiles * (1 << DIGIT_BITS); // n <= u32::MAX, so no overflow
    let hist = dev.alloc(DType::I64, hist_len)?;
    let tile_cfg = LaunchConfig {
        grid: (tiles as u32, 1, 1),
        block: (TILE as u32, 1, 1),
    };
    let key_bits = u64::BITS - sentinel.leading_zeros();
    for shift in (0..key_bits).step_by(DIGIT_BITS as usize) {
        let (k, p, h) = (keys.device_ptr(), perm.device_ptr(), hist.device_ptr());
        let (ko, po) = (keys_out.device_ptr(), perm_out.device_ptr());
        let len = hist_len as u64;
        dev.launch(
            &names::radix("histogram"),
            tile_cfg,
            kernel_args![count, k, shift, h],
        )?;
        dev.launch(
            &names::radix("scan"),
            LaunchConfig {
                grid: (1, 1, 1),
                block: (SCAN_THREADS, 1, 1),
            },
            kernel_args![len, h],
        )?;
        dev.launch(
            &names::radix("scatter"),
            tile_cfg,
            kernel_args![count, k, p, shift, h, ko, po],
        )?;
        std::mem::swap(&mut keys, &mut keys_out);
        std::mem::swap(&mut perm, &mut perm_out);
    }
    Ok((keys, perm))
}

/// Adds `values` (operand 2 of `geom`, read at each position) into `out` (a contiguous copy of
/// the base, `out_len` elements) at the positions' output slots (operands 0 and 1, as for
/// [`sort_by_slot`]), in position order; `false` for dtypes without a kernel (integers).
pub(crate) fn scatter_add(
    dev: &CudaBackend,
    (count, geom): (u32, Geometry),
    index: &CudaStorage,
    (values, out): (&CudaStorage, &CudaStorage),
    (step, bound, out_len): (u64, u64, u64),
    bad: &FirstBad,
) -> Result<bool> {
    let Some(kernel) = names::scatter_add_runs(out.dtype_of()) else {
        return Ok(false);
    };
    let (keys, perm) = sort_by_slot(dev, (count, geom), index, (step, bound, out_len), bad)?;
    let (k, p, v, o) = (
        keys.device_ptr(),
        perm.device_ptr(),
        values.device_ptr(),
        out.device_ptr(),
    );
    dev.launch(
        &kernel,
        LaunchConfig::elementwise(count as usize),
        kernel_args![count, k, p, geom, v, out_len, o],
    )?;
    Ok(true)
}
