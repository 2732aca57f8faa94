//! Host side of gradient clipping's multi-tensor kernels in `cuda/fused_step.cu`
//! (`pow_sum_many_<dtype>`, `mul_many_<dtype>`; PyTorch's `_foreach_norm` and
//! `_foreach_mul_`): the norm of many gradients together in one launch per [`TABLE_LEN`] of
//! them and one reduction, and their scaling in one launch per [`TABLE_LEN`], where the
//! tensor ops take several launches a gradient; and weight averaging's update
//! (`average_many_<dtype>`, `torch._foreach_lerp_` in PyTorch's `AveragedModel`) in one launch
//! per [`TABLE_LEN`] pairs.

use sinew_tensor::{
    AverageStep, BackendStorage, BoxedStorage, DType, Error, Layout, ReduceOp, Result,
};

use super::step_table::{Run, StepTable, TABLE_LEN, elementwise_blocks, read_runs, run_at};
use super::{BLOCK, cast, reduce};
use crate::device::CudaBackend;
use crate::names;
use crate::storage::{cuda, cuda_mut};

/// About how many elements each thread of `pow_sum_many` folds before the block's fold.
const PER_THREAD: usize = 8;

/// Blocks folding a run of `len` elements: at least one, at most 2^16 (threads loop beyond).
fn fold_blocks(len: usize) -> u32 {
    // At most 2^16 fits u32.
    len.div_ceil(BLOCK as usize * PER_THREAD).clamp(1, 1 << 16) as u32
}

/// The table of up to [`TABLE_LEN`] runs `(address, length)`, run `j` taken by `blocks(len)`
/// blocks.
fn table_of(op: &'static str, runs: &[Run], blocks: impl Fn(usize) -> u32) -> Result<StepTable> {
    let mut table = StepTable::empty();
    for &(ptr, len) in runs.iter().take(TABLE_LEN) {
        table.push(op, (ptr, 0, len), blocks(len))?;
    }
    Ok(table)
}

/// The kernel's `kind` for the exponent `p` (see `cuda/fused_step.cu`).
fn fold_kind(p: f64) -> Result<u32> {
    match p {
        f64::INFINITY => Ok(3),
        2.0 => Ok(2),
        1.0 => Ok(1),
        _ if p > 0.0 && p.is_finite() => Ok(0),
        _ => Err(Error::invalid(
            "pow_sum_many",
            format!("p must be positive, got {p}"),
        )),
    }
}

/// `Σ |x|^p` (the largest `|x|` for `p = ∞`) over dense runs of one float dtype, in f64, as
/// one f64 element: per-block partial results of one launch per [`TABLE_LEN`] runs, then one
/// reduction of them (so the result does not depend on how the blocks were scheduled).
pub(crate) fn pow_sum_many(
    dev: &CudaBackend,
    runs: &[(&dyn BackendStorage, usize)],
    lens: &[usize],
    p: f64,
) -> Result<Option<BoxedStorage>> {
    const OP: &str = "pow_sum_many";
    let kind = fold_kind(p)?;
    let (mut ptrs, dtype) = read_runs(dev, runs, lens, OP)?;
    ptrs.retain(|&(_, len)| len > 0);
    // The sum of no terms, and the largest of no |x| (each >= 0).
    let zero = || -> Result<Option<BoxedStorage>> {
        Ok(Some(Box::new(cast::full(dev, DType::F64, 1, 0.0)?)))
    };
    let Some(dtype) = dtype else {
        return zero();
    };
    let Some(kernel) = names::pow_sum_many(dtype) else {
        return Ok(None);
    };
    if ptrs.is_empty() {
        return zero();
    }
    let tables = ptrs
        .chunks(TABLE_LEN)
        .map(|chunk| table_of(OP, chunk, fold_blocks))
        .collect::<Result<Vec<_>>>()?;
    let total: usize = tables.iter().map(|t| t.blocks() as usize).sum();
    let partials = dev.alloc(DType::F64, total)?;
    let mut at = 0;
    for table in tables {
        let out = partials.ptr_at(at);
        dev.launch(&kernel, table.config(), kernel_args![table, out, p, kind])?;
        at += table.blocks() as usize;
    }
    let op = if kind == 3 {
        ReduceOp::Max
    } else {
        ReduceOp::Sum
    };
    let layout = Layout::contiguous(vec![total]);
    Ok(Some(Box::new(reduce::reduce(
        dev,
        op,
        &partials,
        &layout,
        &[0],
    )?)))
}

/// `x *= factor` over dense runs of the dtype of `factor` (one element), in one launch per
/// [`TABLE_LEN`] runs. `false`, with nothing written, for a dtype without a kernel.
pub(crate) fn mul_many(
    dev: &CudaBackend,
    runs: &mut [(&mut dyn BackendStorage, usize)],
    lens: &[usize],
    factor: (&dyn BackendStorage, usize),
) -> Result<bool> {
    const OP: &str = "mul_many_";
    if runs.len() != lens.len() {
        return Err(Error::invalid(OP, "one length a run"));
    }
    let loc = dev.location();
    let factor_storage = cuda(factor.0, loc)?;
    let dtype = factor_storage.dtype_of();
    let factor_ptr = run_at(factor_storage, factor.1, 1, dtype, OP)?;
    let mut ptrs = Vec::with_capacity(runs.len());
    for ((storage, start), &len) in runs.iter_mut().zip(lens) {
        let storage = cuda_mut(&mut **storage, loc)?;
        ptrs.push((run_at(storage, *start, len, dtype, OP)?, len));
    }
    let Some(kernel) = names::mul_many(dtype) else {
        return Ok(false);
    };
    for chunk in ptrs.chunks(TABLE_LEN) {
        let table = table_of(OP, chunk, elementwise_blocks)?;
        dev.launch(&kernel, table.config(), kernel_args![table, factor_ptr])?;
    }
    Ok(true)
}

/// Weight averaging's update over dense pairs of one float dtype (`avgs[i]` and `xs[i]` each
/// a run of `lens[i]` elements), in one launch per [`TABLE_LEN`] pairs, with the tensor ops'
/// values. `false` for a dtype without a kernel.
pub(crate) fn average_many(
    dev: &CudaBackend,
    avgs: &mut [(&mut dyn BackendStorage, usize)],
    xs: &[(&dyn BackendStorage, usize)],
    lens: &[usize],
    step: AverageStep,
) -> Result<bool> {
    const OP: &str = "average_many_";
    if avgs.len() != lens.len() || xs.len() != lens.len() {
        return Err(Error::invalid(OP, "one value and one length an average"));
    }
    let loc = dev.location();
    let mut pairs = Vec::with_capacity(lens.len());
    let mut dtype = None;
    for (((storage, start), &(x, x_at)), &len) in avgs.iter_mut().zip(xs).zip(lens) {
        let storage = cuda_mut(&mut **storage, loc)?;
        let d = *dtype.get_or_insert(storage.dtype_of());
        let avg = run_at(storage, *start, len, d, OP)?;
        pairs.push((avg, run_at(cuda(x, loc)?, x_at, len, d, OP)?, len));
    }
    let Some(dtype) = dtype else {
        return Ok(true);
    };
    let Some(kernel) = names::average_many(dtype) else {
        return Ok(false);
    };
    // See `average_dense` in `cuda/fused_step.cu`; lerp's branch decided in f64 as the CPU
    // backend decides it.
    let (value, flags) = match step {
        AverageStep::Lerp { weight } => (weight, 1 | u32::from(weight.abs() < 0.5) << 1),
        AverageStep::Mean { count } => (count as f64 + 1.0, 0),
    };
    for chunk in pairs.chunks(TABLE_LEN) {
        let mut table = StepTable::empty();
        for &(avg, x, len) in chunk {
            table.push(OP, (avg, x, len), elementwise_blocks(len))?;
        }
        dev.launch(&kernel, table.config(), kernel_args![table, value, flags])?;
    }
    Ok(true)
}
