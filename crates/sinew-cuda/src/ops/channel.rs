//! Host side of `cuda/channel.cu`: batch norm's per-channel sums and affine maps on `[n, C,
//! ...]` tensors (floats), and the per-channel step between them (`channel_norm`). Strided
//! inputs are made contiguous first.

use std::sync::Arc;

use sinew_tensor::backend::check_operand_pair;
use sinew_tensor::{ChannelNormStep, DType, Error, Layout, Result};

use super::cast::{copy_strided, fill_pattern};
use super::{LaunchConfig, count_u32};
use crate::device::CudaBackend;
use crate::names;
use crate::storage::CudaStorage;

/// Threads per block of the per-channel kernels.
pub(super) const THREADS: u32 = 256;

/// `(n, C, inner)` of a `[n, C, ...]` layout, with `n` and `C` as the kernels' u32.
pub(super) fn split(op: &'static str, layout: &Layout) -> Result<(u32, u32, u64)> {
    let dims = layout.dims();
    if dims.len() < 2 {
        return Err(Error::invalid(
            op,
            format!("expects [n, C, ...], got {}", layout.shape()),
        ));
    }
    let narrow = |v: usize| {
        u32::try_from(v).map_err(|_| Error::invalid(op, format!("dimension {v} exceeds 2^32")))
    };
    let inner: usize = dims[2..].iter().product();
    Ok((narrow(dims[0])?, narrow(dims[1])?, inner as u64))
}

/// The device address of a view's first element when it is one dense run, else of a dense copy
/// (kept in `holder` until the kernel has been queued).
fn dense_ptr(
    dev: &CudaBackend,
    s: &CudaStorage,
    l: &Layout,
    holder: &mut Option<CudaStorage>,
) -> Result<u64> {
    if let Some((start, _)) = l.contiguous_offset() {
        return Ok(s.ptr_at(start));
    }
    let copy = copy_strided(dev, s, l)?;
    let ptr = copy.device_ptr();
    *holder = Some(copy);
    Ok(ptr)
}

/// Device addresses of `a` and of each of `others` (0 when absent) as dense runs, after
/// checking each of `others` against `a`; strided views are copied into `keep` first, which must
/// outlive the launch.
pub(super) fn operands<const N: usize>(
    dev: &CudaBackend,
    op: &'static str,
    (a, al): (&CudaStorage, &Layout),
    others: [Option<(&CudaStorage, &Layout)>; N],
    keep: &mut Kept<N>,
) -> Result<(u64, [u64; N])> {
    let pa = dense_ptr(dev, a, al, &mut keep.0)?;
    let mut ptrs = [0u64; N];
    for ((other, ptr), holder) in others.into_iter().zip(&mut ptrs).zip(&mut keep.1) {
        if let Some((bs, bl)) = other {
            check_operand_pair(op, (a.dtype_of(), al), (bs.dtype_of(), bl))?;
            *ptr = dense_ptr(dev, bs, bl, holder)?;
        }
    }
    Ok((pa, ptrs))
}

/// The dense copies [`operands`] made of a first operand and `N` others (none where a view was
/// already one dense run), to keep until the launch is queued.
pub(super) struct Kept<const N: usize>(Option<CudaStorage>, [Option<CudaStorage>; N]);

impl<const N: usize> Kept<N> {
    /// Nothing kept yet.
    pub(super) fn new() -> Self {
        Kept(None, std::array::from_fn(|_| None))
    }
}

/// What a per-channel sums kernel (`channel_sums_*`, `channel_stats_*`) is launched with: grid
/// (C, splits) of [`THREADS`], the operands `a`, its mask and `b` as dense runs (0 when absent),
/// `(n, C, inner)` and, with more than one split, the partial sums' workspace and the device's
/// counters (0 when unused). Holds the buffers those addresses point into until dropped (after
/// the launch is queued).
pub(super) struct SumsLaunch {
    pub(super) cfg: LaunchConfig,
    pub(super) operands: [u64; 3],
    pub(super) dims: (u32, u32, u64),
    pub(super) scratch: [u64; 2],
    _keep: (Kept<2>, Option<CudaStorage>, Option<Arc<CudaStorage>>),
}

impl SumsLaunch {
    /// The launch over `a` (read as `a * (mask > 0)` with a mask) and `b`; `None` when there
    /// is nothing to add (no channel, or no value in one).
    pub(super) fn new(
        dev: &CudaBackend,
        op: &'static str,
        a: (&CudaStorage, &Layout),
        [mask, b]: [Option<(&CudaStorage, &Layout)>; 2],
    ) -> Result<Option<Self>> {
        let (n, c, inner) = split(op, a.1)?;
        let per_channel = u64::from(n) * inner;
        if c == 0 || per_channel == 0 {
            return Ok(None);
        }
        let mut keep = Kept::new();
        let (pa, [pm, pb]) = operands(dev, op, a, [mask, b], &mut keep)?;
        let splits = per_channel.div_ceil(u64::from(THREADS) * 8).clamp(1, 1024) as u32;
        // One split finishes on its own; more share a workspace and the channel's counter.
        let (partials, tickets) = if splits > 1 {
            let partials = dev.alloc(DType::F64, 2 * c as usize * splits as usize)?;
            (Some(partials), Some(dev.tickets(c as usize)?))
        } else {
            (None, None)
        };
        Ok(Some(SumsLaunch {
            cfg: LaunchConfig {
                grid: (c, splits, 1),
                block: (THREADS, 1, 1),
            },
            operands: [pa, pm, pb],
            dims: (n, c, inner),
            scratch: [
                partials.as_ref().map_or(0, CudaStorage::device_ptr),
                tickets.as_ref().map_or(0, |t| t.device_ptr()),
            ],
            _keep: (keep, partials, tickets),
        }))
    }
}

/// `Backend::channel_sums` on the GPU: one kernel, its blocks' partial sums added by the last
/// block of each channel (in a fixed order: the same sums on every run).
pub(crate) fn channel_sums(
    dev: &CudaBackend,
    a: &CudaStorage,
    al: &Layout,
    b: Option<(&CudaStorage, &Layout)>,
) -> Result<CudaStorage> {
    const OP: &str = "channel_sums";
    let dtype = a.dtype_of();
    let kernel = names::channel(false, dtype).ok_or(Error::UnsupportedDType { op: OP, dtype })?;
    let c = split(OP, al)?.1 as usize;
    let Some(launch) = SumsLaunch::new(dev, OP, (a, al), [None, b])? else {
        return fill_pattern(dev, DType::F64, 2 * c, 0);
    };
    let out = dev.alloc(DType::F64, 2 * c)?;
    let ([pa, _, pb], (n, c, inner), [pp, pt]) = (launch.operands, launch.dims, launch.scratch);
    let po = out.device_ptr();
    dev.launch(
        &kernel,
        launch.cfg,
        kernel_args![pa, pb, po, n, c, inner, pp, pt],
    )?;
    Ok(out)
}

/// What [`channel_lincomb`] does besides the map (the kernel's `flags` and `masked`).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Around {
    /// ReLU of the result.
    pub(crate) relu: bool,
    /// The second operand is a residual added to the rounded map (not a `beta` term).
    pub(crate) residual: bool,
    /// With a mask: also return the masked first operand.
    pub(crate) keep_masked: bool,
}

/// `Backend::channel_lincomb` on the GPU (with `around.relu`, `Backend::channel_lincomb_relu`;
/// with a `mask`, `Backend::channel_lincomb_masked`): one elementwise kernel into a fresh
/// contiguous output, and the masked first operand when `around.keep_masked` asks for it.
pub(crate) fn channel_lincomb(
    dev: &CudaBackend,
    (a, al): (&CudaStorage, &Layout),
    [mask, b]: [Option<(&CudaStorage, &Layout)>; 2],
    coef: &CudaStorage,
    around: Around,
) -> Result<(CudaStorage, Option<CudaStorage>)> {
    const OP: &str = "channel_lincomb";
    let dtype = a.dtype_of();
    let kernel = names::channel(true, dtype).ok_or(Error::UnsupportedDType { op: OP, dtype })?;
    let (_, c, inner) = split(OP, al)?;
    if coef.dtype_of() != DType::F64 || coef.elem_count() < 3 * c as usize {
        return Err(Error::invalid(
            OP,
            format!("coefficients must be f64 [3, {c}]"),
        ));
    }
    if around.residual && b.is_none() {
        return Err(Error::invalid(OP, "a residual map needs its residual"));
    }
    let total = al.elem_count();
    let out = dev.alloc(dtype, total)?;
    let masked = match mask {
        Some(_) if around.keep_masked => Some(dev.alloc(dtype, total)?),
        _ => None,
    };
    if total == 0 {
        return Ok((out, masked));
    }
    let mut keep = Kept::new();
    let (pa, [pm, pb]) = operands(dev, OP, (a, al), [mask, b], &mut keep)?;
    let (pk, po, total64) = (coef.device_ptr(), out.device_ptr(), total as u64);
    let pmo = masked.as_ref().map_or(0, CudaStorage::device_ptr);
    let flags = u32::from(around.relu) | u32::from(around.residual) << 1;
    dev.launch(
        &kernel,
        LaunchConfig::elementwise(total),
        kernel_args![pa, pm, pb, pk, po, pmo, total64, c, inner, flags],
    )?;
    Ok((out, masked))
}

/// The kernel arguments of a normalisation's step from its `[C]` rows after the sums (each a
/// dense run from the given element): the rows' addresses (0 when absent; forward scale and
/// shift, backward mean, invstd and scale) and the flags (forward: 1 scale, 2 shift given, 4
/// scale, 8 shift f32; backward: 1 scale given, 2 scale f32).
pub(super) fn norm_args(
    op: &'static str,
    step: ChannelNormStep,
    rows: &[(&CudaStorage, usize)],
    c: usize,
) -> Result<([u64; 3], u32)> {
    let (forward, fixed) = match step {
        ChannelNormStep::Forward { .. } => (true, 0),
        ChannelNormStep::Backward { .. } => (false, 2),
    };
    let optional = rows
        .len()
        .checked_sub(fixed)
        .filter(|&o| o <= 2 && (forward || o <= 1));
    let Some(optional) = optional else {
        return Err(Error::invalid(
            op,
            format!("{} rows after the sums", rows.len()),
        ));
    };
    let mut ptrs = [0u64; 3];
    // Bit j: the j-th optional (parameter) row is f32 rather than f64.
    let mut narrow = 0u32;
    for (k, ((storage, start), ptr)) in rows.iter().zip(ptrs.iter_mut()).enumerate() {
        let fits = start
            .checked_add(c)
            .is_some_and(|end| end <= storage.elem_count());
        let dtype = storage.dtype_of();
        let parameter_f32 = k >= fixed && dtype == DType::F32;
        if !(dtype == DType::F64 || parameter_f32) || !fits {
            return Err(Error::invalid(
                op,
                format!("row {k} is not {c} f64 elements from element {start}"),
            ));
        }
        narrow |= u32::from(parameter_f32) << (k.saturating_sub(fixed));
        *ptr = storage.ptr_at(*start);
    }
    let flags = ((1u32 << optional) - 1) | narrow << if forward { 2 } else { 1 };
    Ok((ptrs, flags))
}

/// `Backend::channel_norm` on the GPU: one thread a channel (`channel_norm_forward_f64`,
/// `channel_norm_backward_f64`). `rows`: `sums` `[2, C]`, then the `[C]` rows (mean and
/// invstd backward; the optional scale, then shift), each f64 from the given element.
pub(crate) fn channel_norm(
    dev: &CudaBackend,
    step: ChannelNormStep,
    rows: &[(&CudaStorage, usize)],
    c: usize,
) -> Result<CudaStorage> {
    const OP: &str = "channel_norm";
    let Some(((sums, at), rest)) = rows.split_first() else {
        return Err(Error::invalid(OP, "no sums"));
    };
    let fits = at
        .checked_add(2 * c)
        .is_some_and(|end| end <= sums.elem_count());
    if sums.dtype_of() != DType::F64 || !fits {
        return Err(Error::invalid(OP, "sums are not [2, C] f64"));
    }
    let ([r0, r1, r2], flags) = norm_args(OP, step, rest, c)?;
    let out = dev.alloc(DType::F64, 6 * c)?;
    if c == 0 {
        return Ok(out);
    }
    let (c32, po, sums) = (count_u32(OP, c)?, out.device_ptr(), sums.ptr_at(*at));
    let cfg = LaunchConfig::elementwise(c);
    match step {
        ChannelNormStep::Forward { count, eps } => dev.launch(
            &names::channel_norm(true),
            cfg,
            kernel_args![c32, sums, r0, r1, count, eps, flags, po],
        )?,
        ChannelNormStep::Backward { count } => dev.launch(
            &names::channel_norm(false),
            cfg,
            kernel_args![c32, sums, r0, r1, r2, count, flags, po],
        )?,
    }
    Ok(out)
}

/// Device address of element `start` of `storage` after checking that it holds `c` elements
/// of `dtype` from there.
pub(super) fn run_of(
    storage: &CudaStorage,
    start: usize,
    c: usize,
    dtype: DType,
    op: &'static str,
) -> Result<u64> {
    let fits = start
        .checked_add(c)
        .is_some_and(|end| end <= storage.elem_count());
    if storage.dtype_of() != dtype || !fits {
        return Err(Error::invalid(
            op,
            format!("an operand is not {c} {dtype} elements from element {start}"),
        ));
    }
    Ok(storage.ptr_at(start))
}

/// Batch norm's running statistics update (`running_stats_<dtype>`): `running` the mean's and
/// variance's buffers (f32 or f64), `stats` the batch's f64 mean and biased variance, dense
/// runs of `c` elements, and `count` an i64 element incremented by the same kernel. `false`
/// for a dtype without a kernel.
pub(crate) fn update_running_stats(
    dev: &CudaBackend,
    running: [(&CudaStorage, usize); 2],
    stats: [(&CudaStorage, usize); 2],
    c: usize,
    (momentum, unbias): (f64, f64),
    count: Option<(&CudaStorage, usize)>,
) -> Result<bool> {
    const OP: &str = "update_running_stats_";
    let dtype = running[0].0.dtype_of();
    let Some(kernel) = names::running_stats(dtype) else {
        return Ok(false);
    };
    let [rm, rv] = running.map(|(s, at)| run_of(s, at, c, dtype, OP));
    let [mean, var] = stats.map(|(s, at)| run_of(s, at, c, DType::F64, OP));
    let (rm, rv, mean, var) = (rm?, rv?, mean?, var?);
    let counter = match count {
        Some((n, at)) => run_of(n, at, 1, DType::I64, OP)?,
        None => 0,
    };
    if c == 0 && count.is_none() {
        return Ok(true);
    }
    let c32 = count_u32(OP, c)?;
    // lerp_'s branch, decided in f64 as the CPU backend decides it.
    let flags = u32::from(momentum.abs() < 0.5);
    // At least one block (elementwise launches have one), so the count goes up for C = 0 too.
    dev.launch(
        &kernel,
        LaunchConfig::elementwise(c),
        kernel_args![c32, mean, var, rm, rv, momentum, unbias, flags, counter],
    )?;
    Ok(true)
}
