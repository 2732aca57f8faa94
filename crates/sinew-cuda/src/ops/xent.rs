//! Host side of `cuda/xent.cu`: the fused softmax cross-entropy over `[M, C]` logits with i64
//! targets (f32, f64, f16, bf16; the statistics, weights and row gradients of
//! `xent_stats_dtype`: f32 for the half types), forward and backward, one warp per row. A
//! target out of range is reported at the next synchronisation (`deferred.rs`), not by a sync
//! here: `loss.item()` stays the only wait of a training step.

use sinew_tensor::backend::BackendStorage;
use sinew_tensor::{
    DType, DeviceLocation, Error, Layout, Result, SoftmaxXentOptions, XentOperands,
    xent_stats_dtype,
};

use super::{FirstBad, LaunchConfig};
use crate::device::CudaBackend;
use crate::names;
use crate::storage::{CudaStorage, cuda};

/// Rows per 256-thread block (one warp each), as `XENT_ROWS_PER_BLOCK` in `cuda/xent.cu`.
const ROWS_PER_BLOCK: u32 = 8;

/// The device address of the one element a broadcast (stride 0) view of `dtype` reads.
fn one_value(
    op: &'static str,
    loc: DeviceLocation,
    (s, l): (&dyn BackendStorage, &Layout),
    dtype: DType,
) -> Result<u64> {
    let s: &CudaStorage = cuda(s, loc)?;
    if s.dtype_of() != dtype || l.offset() >= s.elem_count() {
        return Err(Error::invalid(op, "a broadcast view outside its storage"));
    }
    Ok(s.ptr_at(l.offset()))
}

/// The device address of a dense view's first element of type `dtype`.
fn dense(
    op: &'static str,
    loc: DeviceLocation,
    (s, l): (&dyn BackendStorage, &Layout),
    dtype: DType,
) -> Result<u64> {
    let s: &CudaStorage = cuda(s, loc)?;
    if s.dtype_of() != dtype {
        return Err(Error::DTypeMismatch {
            op,
            lhs: dtype,
            rhs: s.dtype_of(),
        });
    }
    let (start, end) = l
        .contiguous_offset()
        .ok_or_else(|| Error::invalid(op, "expects contiguous views"))?;
    if end > s.elem_count() {
        return Err(Error::invalid(op, "view exceeds its storage"));
    }
    Ok(s.ptr_at(start))
}

/// The logits' dtype, the statistics' dtype, the kernel, `(M, C)` as the kernels' u32, and the
/// addresses of the logits, targets and weights (0 when absent).
struct Operands {
    dtype: DType,
    stats: DType,
    kernel: names::Kernel,
    rows: u32,
    classes: u32,
    ptrs: [u64; 3],
}

impl Operands {
    fn new(
        dev: &CudaBackend,
        op: &'static str,
        ops: XentOperands<'_>,
        backward: bool,
    ) -> Result<Self> {
        let loc = dev.location();
        let dtype = cuda(ops.logits.0, loc)?.dtype_of();
        let kernel = names::xent(backward, dtype).ok_or(Error::UnsupportedDType { op, dtype })?;
        let &[m, c] = ops.logits.1.dims() else {
            return Err(Error::invalid(op, "expects [M, C] logits"));
        };
        if ops.target.1.dims() != [m] || ops.weight.is_some_and(|w| w.1.dims() != [c]) {
            return Err(Error::invalid(op, "expects targets [M] and weights [C]"));
        }
        let narrow = |v: usize| {
            u32::try_from(v).map_err(|_| Error::invalid(op, format!("dimension {v} exceeds 2^32")))
        };
        let stats = xent_stats_dtype(dtype);
        let weight = match ops.weight {
            Some(w) => dense(op, loc, w, stats)?,
            None => 0,
        };
        Ok(Operands {
            dtype,
            stats,
            kernel,
            rows: narrow(m)?,
            classes: narrow(c)?,
            ptrs: [
                dense(op, loc, ops.logits, dtype)?,
                dense(op, loc, ops.target, DType::I64)?,
                weight,
            ],
        })
    }

    fn launch_config(&self) -> LaunchConfig {
        LaunchConfig {
            grid: (self.rows.div_ceil(ROWS_PER_BLOCK), 1, 1),
            block: (32 * ROWS_PER_BLOCK, 1, 1),
        }
    }
}

/// `Backend::softmax_xent_forward` on the GPU: one kernel into a fresh `[4M + 3]` output (the
/// rows, then the totals, which the last block to finish adds); a bad target is recorded in a
/// failure slot kept for the next synchronisation.
pub(crate) fn forward(
    dev: &CudaBackend,
    ops: XentOperands<'_>,
    options: SoftmaxXentOptions,
) -> Result<CudaStorage> {
    const OP: &str = "softmax_xent_forward";
    let o = Operands::new(dev, OP, ops, false)?;
    let out = dev.alloc(o.stats, 4 * o.rows as usize + 3)?;
    let cfg = o.launch_config();
    let blocks = cfg.grid.0.max(1);
    // Each block's two sums, added by the last block to arrive (none with one block).
    let (partials, tickets) = if blocks > 1 {
        (
            Some(dev.alloc(DType::F64, 2 * blocks as usize)?),
            Some(dev.tickets(1)?),
        )
    } else {
        (None, None)
    };
    let bad = FirstBad::new(dev)?;
    let [x, t, w] = o.ptrs;
    let (po, pb, rows, c) = (out.device_ptr(), bad.ptr(), o.rows, o.classes);
    let pp = partials.as_ref().map_or(0, CudaStorage::device_ptr);
    let pt = tickets.as_ref().map_or(0, |t| t.device_ptr());
    let (ignore, e) = (options.ignore_index, options.label_smoothing);
    // At least one block, so that no rows still give their totals (0, 0 and 0 / 0).
    let cfg = LaunchConfig {
        grid: (blocks, 1, 1),
        ..cfg
    };
    dev.launch(
        &o.kernel,
        cfg,
        kernel_args![x, t, w, po, rows, c, ignore, e, pb, pp, pt],
    )?;
    dev.defer_index_check("cross_entropy", o.classes as usize, bad)?;
    Ok(out)
}

/// `Backend::softmax_xent_backward` on the GPU: one kernel into a fresh `[M, C]` output.
pub(crate) fn backward(
    dev: &CudaBackend,
    ops: XentOperands<'_>,
    stats: (&dyn BackendStorage, &Layout),
    grad: (&dyn BackendStorage, &Layout),
    divisor: Option<(&dyn BackendStorage, &Layout)>,
    options: SoftmaxXentOptions,
) -> Result<CudaStorage> {
    const OP: &str = "softmax_xent_backward";
    let o = Operands::new(dev, OP, ops, true)?;
    let (rows, c) = (o.rows, o.classes);
    if stats.1.dims() != [4, rows as usize] || grad.1.dims() != [rows as usize] {
        return Err(Error::invalid(
            OP,
            format!("stats must be [4, {rows}] and grad [{rows}]"),
        ));
    }
    let loc = dev.location();
    let ps = dense(OP, loc, stats, o.stats)?;
    // One gradient for every row (stride 0: a mean's) is read in place; else a dense run.
    let (pg, grad_stride) = match grad.1.strides() {
        [0] => (one_value(OP, loc, grad, o.stats)?, 0u32),
        _ => (dense(OP, loc, grad, o.stats)?, 1u32),
    };
    let pv = match divisor {
        Some(d) => one_value(OP, loc, d, o.stats)?,
        None => 0,
    };
    let total = (rows as usize)
        .checked_mul(c as usize)
        .ok_or_else(|| Error::invalid(OP, "M * C overflows usize"))?;
    let out = dev.alloc(o.dtype, total)?;
    if total == 0 {
        return Ok(out);
    }
    let [x, t, w] = o.ptrs;
    let pd = out.device_ptr();
    let (ignore, e) = (options.ignore_index, options.label_smoothing);
    dev.launch(
        &o.kernel,
        o.launch_config(),
        kernel_args![x, t, w, ps, pg, grad_stride, pv, pd, rows, c, ignore, e],
    )?;
    Ok(out)
}
