//! Host side of `channel_stats_<dtype>` (`cuda/channel.cu`): `Backend::channel_norm_of`, a
//! tensor's per-channel sums and the normalisation step on them in one kernel, the block that
//! finishes a channel's sums computing that channel's rows (batch norm's statistics forward and
//! its backward coefficients: one launch each instead of two), and in a training step's forward
//! the update of batch norm's running statistics from them (`Backend::channel_norm_updating`:
//! one launch instead of two more).

use sinew_tensor::{ChannelNormStep, DType, Error, Layout, Result};

use super::channel::{SumsLaunch, norm_args, run_of};
use crate::device::CudaBackend;
use crate::names;
use crate::storage::CudaStorage;

/// `RunningArgs` of `cuda/channel.cu`, field for field (passed by value): the running
/// statistics a forward launch updates.
#[repr(C)]
#[derive(Clone, Copy)]
struct RunningArgs {
    mean: u64,
    var: u64,
    count: u64,
    momentum: f64,
    unbias: f64,
    /// 1: update, 2: the buffers are f64 (else f32), 4: lerp's first branch.
    flags: u32,
}

const _: () = assert!(std::mem::size_of::<RunningArgs>() == 48);

/// Batch norm's running statistics as the kernel updates them: the mean's and variance's
/// buffers and the batch count, each from the given element, and `(momentum, unbias)`.
pub(crate) struct Running<'s> {
    /// The running mean and variance (f32 or f64, one dtype), `C` elements each.
    pub(crate) stats: [(&'s CudaStorage, usize); 2],
    /// The i64 `num_batches_tracked`, if any.
    pub(crate) count: Option<(&'s CudaStorage, usize)>,
    /// The update's momentum and the variance's unbiasing factor.
    pub(crate) scalars: (f64, f64),
}

impl Running<'_> {
    /// The kernel's argument for `c` channels; `None` for buffers of a dtype it does not
    /// update (f16, bf16: the ops run instead).
    fn args(&self, c: usize) -> Result<Option<RunningArgs>> {
        const OP: &str = "channel_norm_updating";
        let dtype = self.stats[0].0.dtype_of();
        if !matches!(dtype, DType::F32 | DType::F64) {
            return Ok(None);
        }
        let [mean, var] = self.stats.map(|(s, at)| run_of(s, at, c, dtype, OP));
        let count = match self.count {
            Some((n, at)) => run_of(n, at, 1, DType::I64, OP)?,
            None => 0,
        };
        let (momentum, unbias) = self.scalars;
        // lerp_'s branch, decided in f64 as the CPU backend decides it.
        let small = u32::from(momentum.abs() < 0.5);
        Ok(Some(RunningArgs {
            mean: mean?,
            var: var?,
            count,
            momentum,
            unbias,
            flags: 1 | u32::from(dtype == DType::F64) << 1 | small << 2,
        }))
    }
}

/// What a launch does besides the `[6, C]` rows.
pub(crate) enum Extra<'s> {
    /// Nothing.
    None,
    /// A forward step updates these running statistics.
    Running(Running<'s>),
    /// A backward step also writes the affine parameters' gradients, as f32 `[2, C]`.
    ParamGrads,
}

/// The `[6, C]` f64 rows of `step` on the channel sums of `a` (read as `a * (mask > 0)` with a
/// mask: a ReLU's output gradient taken back through it) and `b`, with `extra`'s work
/// (and, for [`Extra::ParamGrads`], that storage); `None`, with nothing written, for a dtype
/// without a kernel or a tensor with no value in a channel (the ops run instead).
pub(crate) fn channel_norm_of(
    dev: &CudaBackend,
    a: (&CudaStorage, &Layout),
    [mask, b]: [Option<(&CudaStorage, &Layout)>; 2],
    step: ChannelNormStep,
    rows: &[(&CudaStorage, usize)],
    extra: Extra<'_>,
) -> Result<Option<(CudaStorage, Option<CudaStorage>)>> {
    const OP: &str = "channel_norm_of";
    let Some(kernel) = names::channel_stats(a.0.dtype_of()) else {
        return Ok(None);
    };
    let forward = matches!(step, ChannelNormStep::Forward { .. });
    let mut run = RunningArgs {
        mean: 0,
        var: 0,
        count: 0,
        momentum: 0.0,
        unbias: 0.0,
        flags: 0,
    };
    match (&extra, forward) {
        (Extra::None, _) => {}
        (Extra::Running(running), true) => {
            let c = a.1.dims().get(1).copied().unwrap_or(0);
            match running.args(c)? {
                Some(args) => run = args,
                None => return Ok(None),
            }
        }
        (Extra::ParamGrads, false) => {}
        (Extra::Running(_), false) | (Extra::ParamGrads, true) => {
            return Err(Error::invalid(
                OP,
                "running statistics go with a forward step, parameter gradients a backward one",
            ));
        }
    }
    let Some(launch) = SumsLaunch::new(dev, OP, a, [mask, b])? else {
        return Ok(None);
    };
    let ([pa, pm, pb], (n, c, inner), [pp, pt]) = (launch.operands, launch.dims, launch.scratch);
    let ([r0, r1, r2], flags) = norm_args(OP, step, rows, c as usize)?;
    let (count, eps, backward) = match step {
        ChannelNormStep::Forward { count, eps } => (count, eps, 0u32),
        ChannelNormStep::Backward { count } => (count, 0.0, 1u32),
    };
    let out = dev.alloc(DType::F64, 6 * c as usize)?;
    let params = match extra {
        Extra::ParamGrads => Some(dev.alloc(DType::F32, 2 * c as usize)?),
        _ => None,
    };
    let po = out.device_ptr();
    let pg = params.as_ref().map_or(0, CudaStorage::device_ptr);
    dev.launch(
        &kernel,
        launch.cfg,
        kernel_args![
            pa, pm, pb, n, c, inner, pp, pt, r0, r1, r2, count, eps, flags, backward, po, run, pg
        ],
    )?;
    Ok(Some((out, params)))
}
