//! Unbatched inputs: PyTorch's convolution and pooling layers take a single sample (`[c, h, w]`
//! for the 2-d layers, `[c, l]` for the 1-d ones) as well as a batch; here the sample becomes a
//! batch of one and the result loses that batch dimension again.

use sinew_tensor::{Result, Tensor};

/// `f(x)` for a batch (or any other rank, which `f` checks), and `f` of a batch of one with the
/// batch dimension removed again when `x` has one dimension fewer than `batched_rank`.
pub(crate) fn batch_of_one(
    x: &Tensor,
    batched_rank: usize,
    f: impl FnOnce(&Tensor) -> Result<Tensor>,
) -> Result<Tensor> {
    if x.rank() + 1 == batched_rank {
        f(&x.unsqueeze(0)?)?.squeeze(0)
    } else {
        f(x)
    }
}

/// [`batch_of_one`] for an op with two results of the same batch (values and indices).
pub(crate) fn batch_of_one_pair(
    x: &Tensor,
    batched_rank: usize,
    f: impl FnOnce(&Tensor) -> Result<(Tensor, Tensor)>,
) -> Result<(Tensor, Tensor)> {
    if x.rank() + 1 == batched_rank {
        let (a, b) = f(&x.unsqueeze(0)?)?;
        Ok((a.squeeze(0)?, b.squeeze(0)?))
    } else {
        f(x)
    }
}
