//! Host side of `channel_stats_<dtype>` (`cuda/channel.cu`): `Backend::channel_norm_of`, a
//! tensor's per-channel sums and the normalisation step on them in one kernel, the block that
//! finishes a channel's sums computing that channel's rows (batch norm's statistics forward and
//! its backward coefficients: one launch each instead of two).

use sinew_tensor::{ChannelNormStep, DType, Layout, Result};

use super::channel::{SumsLaunch, norm_args};
use crate::device::CudaBackend;
use crate::names;
use crate::storage::CudaStorage;

/// The `[6, C]` f64 rows of `step` on the channel sums of `a` (and `b`); `None` for a dtype
/// without a kernel or a tensor with no value in a channel (the two ops run instead).
pub(crate) fn channel_norm_of(
    dev: &CudaBackend,
    a: (&CudaStorage, &Layout),
    b: Option<(&CudaStorage, &Layout)>,
    step: ChannelNormStep,
    rows: &[(&CudaStorage, usize)],
) -> Result<Option<CudaStorage>> {
    const OP: &str = "channel_norm_of";
    let Some(kernel) = names::channel_stats(a.0.dtype_of()) else {
        return Ok(None);
    };
    let Some(launch) = SumsLaunch::new(dev, OP, a, b)? else {
        return Ok(None);
    };
    let ([pa, pb], (n, c, inner), [pp, pt]) = (launch.operands, launch.dims, launch.scratch);
    let ([r0, r1, r2], flags) = norm_args(OP, step, rows, c as usize)?;
    let (count, eps, backward) = match step {
        ChannelNormStep::Forward { count, eps } => (count, eps, 0u32),
        ChannelNormStep::Backward { count } => (count, 0.0, 1u32),
    };
    let out = dev.alloc(DType::F64, 6 * c as usize)?;
    let po = out.device_ptr();
    dev.launch(
        &kernel,
        launch.cfg,
        kernel_args![
            pa, pb, n, c, inner, pp, pt, r0, r1, r2, count, eps, flags, backward, po
        ],
    )?;
    Ok(Some(out))
}
