//! Host side of `cuda/reduce.cu`: reductions over any dims and arg-reductions along one.
//!
//! The reduced dims are permuted last and the view made contiguous (a copy only when needed), so
//! one row kernel serves every case: `[rows, cols]` with `cols` the reduced elements. Long rows with
//! few of them are split into chunks reduced in two passes, so the whole GPU takes part. A
//! contiguous view whose reduced dims are one run before the last dim (a sum over the batch) is
//! read in place by the middle-axis kernel instead, without that copy; one reduced over a
//! leading and a trailing run of dims (a convolution's bias gradient, `[n, c, h, w]` over
//! `(0, 2, 3)`) by the rows kernel over the trailing run and then the middle-axis kernel over
//! the leading one, both in place (f32, f64 and i64; f16/bf16 would round the partial
//! results, so they keep the copy).

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
    reduce_into(dev, op, (src, layout), dims, Output::Dtype, 1.0)
}

/// Mean over `dims` (sorted, unique) of a float view, the output keeping them as size 1: the
/// sum divided by the count in the accumulator, then rounded to the dtype (as PyTorch's: an f16
/// mean of values whose f16 sum would overflow is finite), in the sum's own launches. An empty
/// reduction gives NaN.
pub(crate) fn mean(
    dev: &CudaBackend,
    src: &CudaStorage,
    layout: &Layout,
    dims: &[usize],
) -> Result<CudaStorage> {
    let dtype = src.dtype_of();
    if !dtype.is_float() {
        return Err(Error::UnsupportedDType { op: "mean", dtype });
    }
    let count: usize = dims.iter().map(|&d| layout.dims()[d]).product();
    reduce_into(
        dev,
        ReduceOp::Sum,
        (src, layout),
        dims,
        Output::Dtype,
        count as f64,
    )
}

/// [`reduce`] of an f16/bf16 view written as f32, each value rounded to the view's dtype
/// first: what [`reduce`] and a cast to f32 give, in the reduction's own kernels. `None` for
/// other dtypes.
pub(crate) fn reduce_widened(
    dev: &CudaBackend,
    op: ReduceOp,
    src: &CudaStorage,
    layout: &Layout,
    dims: &[usize],
) -> Result<Option<CudaStorage>> {
    if !matches!(src.dtype_of(), DType::F16 | DType::BF16) {
        return Ok(None);
    }
    reduce_into(dev, op, (src, layout), dims, Output::Widened, 1.0).map(Some)
}

/// What the last pass of a reduction writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Output {
    /// The input's dtype.
    Dtype,
    /// f32 holding values rounded to the input's dtype (f16/bf16 inputs; passes 3 and 4 of the
    /// kernels in place of 0 and 2).
    Widened,
}

impl Output {
    /// The output dtype for `dtype` input.
    fn dtype(self, dtype: DType) -> DType {
        match self {
            Output::Dtype => dtype,
            Output::Widened => DType::F32,
        }
    }

    /// The kernel's `pass` argument for a last pass that would be `pass` (0 or 2).
    fn last_pass(self, pass: u32) -> u32 {
        match self {
            Output::Dtype => pass,
            Output::Widened if pass == 0 => 3,
            Output::Widened => 4,
        }
    }
}

/// [`reduce`] writing `output`, each value divided by `divisor` after its rounding (1: none).
fn reduce_into(
    dev: &CudaBackend,
    op: ReduceOp,
    (src, layout): (&CudaStorage, &Layout),
    dims: &[usize],
    output: Output,
    divisor: f64,
) -> Result<CudaStorage> {
    let dtype = src.dtype_of();
    if let Some(axis) = middle_axis(layout, dims) {
        return reduce_middle(dev, op, src, axis, (output, divisor));
    }
    if matches!(dtype, DType::F32 | DType::F64 | DType::I64)
        && let Some(split) = outer_and_inner_runs(layout, dims)
    {
        // The trailing run first (rows, in place), then the leading run of what is left.
        let (leading, trailing) = dims.split_at(split);
        let partial = reduce(dev, op, src, layout, trailing)?;
        let mut kept: Vec<usize> = layout.dims().to_vec();
        for &d in trailing {
            kept[d] = 1;
        }
        let kept = Layout::contiguous(kept);
        return reduce_into(dev, op, (&partial, &kept), leading, output, divisor);
    }
    let kernel = need(names::reduce(op, dtype), op.name(), dtype)?;
    let view = rows_view(dev, src, layout, dims)?;
    let out = dev.alloc(output.dtype(dtype), view.rows)?;
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
        let partial = dev.alloc(partial_dtype(dtype), view.rows * parts)?;
        let (chunk, part_ptr, parts32) = (CHUNK as u32, partial.device_ptr(), parts as u32);
        let (first, second) = (1u32, output.last_pass(2));
        dev.launch(
            &kernel,
            LaunchConfig::rows(view.rows * parts, CHUNK),
            kernel_args![src_ptr, part_ptr, rows, cols, chunk, first, 1.0f64],
        )?;
        dev.launch(
            &kernel,
            LaunchConfig::rows(view.rows, parts),
            kernel_args![part_ptr, out_ptr, rows, parts32, parts32, second, divisor],
        )?;
    } else {
        let (chunk, pass) = (cols.max(1), output.last_pass(0));
        dev.launch(
            &kernel,
            LaunchConfig::rows(view.rows, view.cols),
            kernel_args![src_ptr, out_ptr, rows, cols, chunk, pass, divisor],
        )?;
    }
    Ok(out)
}

/// The dtype of a two-pass reduction's partial results (pass 1 of the kernels): the compute type,
/// f32 for f16/bf16, so the result is rounded once.
fn partial_dtype(dtype: DType) -> DType {
    if matches!(dtype, DType::F16 | DType::BF16) {
        DType::F32
    } else {
        dtype
    }
}

/// A contiguous view whose reduced dims are one run before its last dim: `[outer, len, inner]`
/// elements from `start`, `len` the run's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct MiddleAxis {
    start: usize,
    outer: usize,
    len: usize,
    inner: usize,
}

/// The [`MiddleAxis`] of reducing `dims` (sorted, unique) of `layout`, when they are one run of
/// consecutive dims followed by more than one element, in a contiguous view: the sums over a
/// batch (a bias gradient), which the rows kernel could only read after a transposing copy.
fn middle_axis(layout: &Layout, dims: &[usize]) -> Option<MiddleAxis> {
    let (&first, &last) = (dims.first()?, dims.last()?);
    let (start, _) = layout.contiguous_offset()?;
    let sizes = layout.dims();
    let inner: usize = sizes[last + 1..].iter().product();
    (last - first + 1 == dims.len() && inner > 1).then(|| MiddleAxis {
        start,
        outer: sizes[..first].iter().product(),
        len: sizes[first..=last].iter().product(),
        inner,
    })
}

/// Where `dims` (sorted, unique) of a contiguous `layout` split into a leading run from dim 0
/// and a trailing run to the last dim, with kept dims between (the index of the trailing run's
/// first entry in `dims`); `None` for any other pattern.
fn outer_and_inner_runs(layout: &Layout, dims: &[usize]) -> Option<usize> {
    layout.contiguous_offset()?;
    let rank = layout.dims().len();
    let split = dims.iter().enumerate().position(|(i, &d)| d != i)?;
    let trailing = &dims[split..];
    let consecutive = trailing.windows(2).all(|w| w[1] == w[0] + 1);
    let kept_between = trailing[0] > split;
    (split > 0 && consecutive && kept_between && trailing.last() == Some(&(rank - 1)))
        .then_some(split)
}

/// Parts the middle axis is split into (each folded by its own threads, then the parts folded
/// in a second launch): one, unless the outputs are too few to fill the GPU and the axis is
/// long; then enough for about four threads per core, each folding at least 64 elements.
fn middle_parts(outputs: usize, len: usize, multiprocessors: u32) -> usize {
    let target = 4 * 256 * multiprocessors.max(1) as usize;
    if len <= 256 || outputs >= target {
        return 1;
    }
    (target / outputs.max(1)).clamp(1, len.div_ceil(64))
}

/// [`reduce`] of a [`MiddleAxis`] by the `reduce_mid` kernels, without a copy, writing
/// `output` divided by `divisor` (as [`reduce_into`]).
fn reduce_middle(
    dev: &CudaBackend,
    op: ReduceOp,
    src: &CudaStorage,
    axis: MiddleAxis,
    (output, divisor): (Output, f64),
) -> Result<CudaStorage> {
    let dtype = src.dtype_of();
    let kernel = need(names::reduce_middle(op, dtype), op.name(), dtype)?;
    let outputs = axis.outer * axis.inner;
    let out = dev.alloc(output.dtype(dtype), outputs)?;
    if outputs == 0 {
        return Ok(out);
    }
    let u32_of = |n: usize| count_u32(op.name(), n);
    let (outer, len, inner) = (u32_of(axis.outer)?, u32_of(axis.len)?, u32_of(axis.inner)?);
    let parts = middle_parts(outputs, axis.len, dev.multiprocessors());
    let chunk = axis.len.div_ceil(parts).max(1);
    let parts = axis.len.div_ceil(chunk).max(1);
    let src_ptr = src.ptr_at(axis.start);
    if parts == 1 {
        let (out_ptr, chunk, pass) = (out.device_ptr(), len.max(1), output.last_pass(0));
        return dev
            .launch(
                &kernel,
                LaunchConfig::elementwise(outputs),
                kernel_args![src_ptr, out_ptr, outer, len, inner, chunk, pass, divisor],
            )
            .map(|()| out);
    }
    let partial = dev.alloc(partial_dtype(dtype), outputs * parts)?;
    let (part_ptr, out_ptr) = (partial.device_ptr(), out.device_ptr());
    let (chunk, parts) = (u32_of(chunk)?, u32_of(parts)?);
    let (first, second) = (1u32, output.last_pass(2));
    dev.launch(
        &kernel,
        LaunchConfig::elementwise(outputs * parts as usize),
        kernel_args![src_ptr, part_ptr, outer, len, inner, chunk, first, 1.0f64],
    )?;
    dev.launch(
        &kernel,
        LaunchConfig::elementwise(outputs),
        kernel_args![
            part_ptr, out_ptr, outer, parts, inner, parts, second, divisor
        ],
    )?;
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

#[cfg(test)]
mod tests {
    use super::*;
    use sinew_tensor::Shape;

    fn axis(dims: &[usize], reduced: &[usize]) -> Option<(usize, usize, usize)> {
        let layout = Layout::contiguous(Shape::new(dims.to_vec()));
        middle_axis(&layout, reduced).map(|a| (a.outer, a.len, a.inner))
    }

    #[test]
    fn leading_and_middle_runs_are_read_in_place() {
        assert_eq!(axis(&[64, 512], &[0]), Some((1, 64, 512)));
        assert_eq!(axis(&[5, 6, 7, 9], &[1, 2]), Some((5, 42, 9)));
        // The last dims (rows), a split run and a transposed view take the rows kernel.
        assert_eq!(axis(&[64, 512], &[1]), None);
        assert_eq!(axis(&[7, 33, 129], &[0, 2]), None);
        let t = Layout::contiguous(Shape::new(vec![512, 64]))
            .permute(&[1, 0])
            .unwrap();
        assert_eq!(middle_axis(&t, &[0]), None);
    }

    #[test]
    fn leading_and_trailing_runs_split_where_dims_are_kept_between() {
        let nchw = Layout::contiguous(Shape::new(vec![8, 6, 5, 5]));
        assert_eq!(outer_and_inner_runs(&nchw, &[0, 2, 3]), Some(1));
        assert_eq!(outer_and_inner_runs(&nchw, &[0, 1, 3]), Some(2));
        assert_eq!(outer_and_inner_runs(&nchw, &[0, 3]), Some(1));
        // One run, or a gap in the trailing one, or no trailing run to the last dim.
        assert_eq!(outer_and_inner_runs(&nchw, &[0, 1, 2, 3]), None);
        assert_eq!(outer_and_inner_runs(&nchw, &[1, 3]), None);
        assert_eq!(outer_and_inner_runs(&nchw, &[0, 2]), None);
        assert_eq!(outer_and_inner_runs(&nchw, &[2, 3]), None);
        let transposed = nchw.permute(&[1, 0, 2, 3]).unwrap();
        assert_eq!(outer_and_inner_runs(&transposed, &[0, 2, 3]), None);
    }

    #[test]
    fn long_axes_with_few_outputs_split_into_parts() {
        // 132 SMs: 135,168 threads wanted.
        assert_eq!(middle_parts(512, 64, 132), 1);
        assert_eq!(middle_parts(200_000, 10_000, 132), 1);
        assert_eq!(middle_parts(3, 300_001, 132), 4688);
        assert_eq!(middle_parts(512, 100_000, 132), 264);
    }
}
