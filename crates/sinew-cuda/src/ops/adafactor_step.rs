//! Host side of `cuda/adafactor_step.cuh` (`MultiTensorOps::fused_adafactor`): Adafactor's step
//! on one parameter in three launches (the second moments and `p`'s sum of squares; the
//! update's sum of squares and the step's coefficient; the update applied), with the norms
//! kept on the device, where sinew-optim's tensor ops take about twenty launches and read two
//! norms back to the host.

use sinew_tensor::{AdafactorStep, BackendStorage, DType, Error, Result};

use super::step_table::run_at;
use super::{BLOCK, LaunchConfig, count_u32};
use crate::device::CudaBackend;
use crate::names;
use crate::storage::{cuda, cuda_mut};

/// Most blocks a launch takes (its threads stride over the rest): the partial sums the last
/// block adds stay few.
const MAX_BLOCKS: usize = 1024;

/// A launch of `tasks` threads' work, in blocks of [`BLOCK`] threads (at least one block).
fn striding(tasks: usize) -> LaunchConfig {
    let blocks = tasks.div_ceil(BLOCK as usize).clamp(1, MAX_BLOCKS) as u32;
    LaunchConfig {
        grid: (blocks, 1, 1),
        block: (BLOCK, 1, 1),
    }
}

/// The kernels' flags word (`cuda/adafactor_step.cuh` lists the bits).
fn flags(step: &AdafactorStep, factored: bool) -> u32 {
    u32::from(factored)
        | u32::from(step.beta.abs() < 0.5) << 1
        | u32::from(step.maximize) << 2
        | u32::from(step.shrink != 1.0) << 3
}

/// Runs `step` on the parameter `dsts[0]` (`[batch, rows, cols]` as `dims` gives it) with its
/// buffers `dsts[1..]` (`row_var`, `col_var` when factored, else `variance`) and gradient
/// `grad`, each a dense run from the given element. `false`, with nothing written, for a dtype
/// without kernels or an empty parameter (the tensor ops then run).
pub(crate) fn fused_adafactor(
    dev: &CudaBackend,
    step: &AdafactorStep,
    dsts: &mut [(&mut dyn BackendStorage, usize)],
    grad: (&dyn BackendStorage, usize),
    [batch, rows, cols]: [usize; 3],
) -> Result<bool> {
    const OP: &str = AdafactorStep::NAME;
    let factored = match dsts.len() {
        3 => true,
        2 => false,
        other => {
            return Err(Error::invalid(
                OP,
                format!(
                    "expects a parameter and 1 or 2 buffers, got {} buffers",
                    other.saturating_sub(1)
                ),
            ));
        }
    };
    let loc = dev.location();
    let g = cuda(grad.0, loc)?;
    let dtype = g.dtype_of();
    let (Some(moments), Some(norm), Some(apply)) = (
        names::adafactor_step("moments", dtype),
        names::adafactor_step("norm", dtype),
        names::adafactor_step("apply", dtype),
    ) else {
        return Ok(false);
    };
    let too_many = || Error::invalid(OP, "the parameter's size overflows");
    let n = batch
        .checked_mul(rows)
        .and_then(|r| r.checked_mul(cols))
        .ok_or_else(too_many)?;
    if n == 0 {
        return Ok(false);
    }
    // The kernels index in u32: every count below 2^32.
    let tasks = if factored {
        let row_and_col = rows.checked_add(cols).ok_or_else(too_many)?;
        batch.checked_mul(row_and_col).ok_or_else(too_many)?
    } else {
        n
    };
    count_u32(OP, tasks.max(n))?;
    let (b32, r32, c32) = (
        count_u32(OP, batch)?,
        count_u32(OP, rows)?,
        count_u32(OP, cols)?,
    );
    let buffer_lens = if factored {
        [batch * rows, batch * cols]
    } else {
        [n, 0]
    };
    let g_ptr = run_at(g, grad.1, n, dtype, OP)?;
    let mut ptrs = [0u64; 3];
    for (k, (ptr, (storage, start))) in ptrs.iter_mut().zip(dsts.iter_mut()).enumerate() {
        let len = if k == 0 { n } else { buffer_lens[k - 1] };
        *ptr = run_at(cuda_mut(&mut **storage, loc)?, *start, len, dtype, OP)?;
    }
    let (p, [row_var, col_var, variance]) = match factored {
        true => (ptrs[0], [ptrs[1], ptrs[2], 0]),
        false => (ptrs[0], [0, 0, ptrs[1]]),
    };
    let (first, rest) = (striding(tasks), striding(n));
    let (blocks1, blocks2) = (first.grid.0 as usize, rest.grid.0 as usize);
    // Scratch (f64): the two sums, a floor a batch, then each launch's partial sums.
    let scratch = dev.alloc(DType::F64, 2 + batch + blocks1 + blocks2)?;
    let sums = scratch.device_ptr();
    let at = |k: usize| sums + (k * std::mem::size_of::<f64>()) as u64;
    let (floors, partials1, partials2) = (at(2), at(2 + batch), at(2 + batch + blocks1));
    let tickets = dev.tickets(batch + 1)?;
    let t = tickets.device_ptr();
    let f = flags(step, factored);
    let (beta, eps1, eps2, rho, d, shrink) = (
        step.beta,
        step.eps1,
        step.eps2,
        step.rho,
        step.d,
        step.shrink,
    );
    dev.launch(
        &moments,
        first,
        kernel_args![
            b32, r32, c32, f, p, g_ptr, row_var, col_var, variance, beta, eps1, sums, floors,
            partials1, t
        ],
    )?;
    dev.launch(
        &norm,
        rest,
        kernel_args![
            b32, r32, c32, f, g_ptr, row_var, col_var, variance, eps1, eps2, rho, d, sums, floors,
            partials2, t
        ],
    )?;
    dev.launch(
        &apply,
        rest,
        kernel_args![
            b32, r32, c32, f, p, g_ptr, row_var, col_var, variance, eps1, shrink, sums, floors
        ],
    )?;
    Ok(true)
}
