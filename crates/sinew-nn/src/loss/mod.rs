//! Losses with PyTorch's formulas, options and `reduction` (mean, sum, none). Each family is in
//! its own file; every function has a loss struct with the same options for PyTorch's
//! `nn.CrossEntropyLoss(...)(input, target)` style.

mod classification;
mod cross_entropy;
mod cross_entropy_fused;
mod likelihood;
mod margin;
mod penalty;
mod ranking;
mod regression;

pub use classification::{
    BceLoss, BceWithLogitsLoss, KlDivLoss, binary_cross_entropy, binary_cross_entropy_with_logits,
    kl_div,
};
pub use cross_entropy::{CrossEntropyLoss, NllLoss, cross_entropy, nll_loss};
pub use likelihood::{gaussian_nll_loss, poisson_nll_loss};
pub use margin::{
    CosineSimilarity, MultiMarginLoss, cosine_embedding_loss, cosine_similarity,
    hinge_embedding_loss, multi_margin_loss, normalize,
};
pub use penalty::{l1_penalty, l2_penalty};
pub use ranking::{
    PairwiseDistance, TripletMarginLoss, margin_ranking_loss, multilabel_soft_margin_loss,
    pairwise_distance, soft_margin_loss, triplet_margin_loss,
};
pub use regression::{
    HuberLoss, L1Loss, MseLoss, SmoothL1Loss, huber_loss, l1_loss, mse_loss, smooth_l1_loss,
};

use sinew_tensor::{Error, Result, Tensor};

/// How per-element losses are combined (PyTorch's `reduction=`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Reduction {
    /// The mean (the default).
    #[default]
    Mean,
    /// The sum.
    Sum,
    /// No reduction: one loss per element.
    None,
    /// The sum divided by the batch size (KL divergence's `batchmean`).
    BatchMean,
}

/// Applies `reduction` to per-element losses.
pub(crate) fn reduce(loss: Tensor, reduction: Reduction) -> Result<Tensor> {
    match reduction {
        Reduction::Mean => loss.mean_all(),
        Reduction::Sum => loss.sum_all(),
        Reduction::None => Ok(loss),
        Reduction::BatchMean => {
            let n = loss.dims().first().copied().unwrap_or(1).max(1);
            loss.sum_all()?.div_scalar(n as f64)
        }
    }
}

/// A loss's float inputs under autocast: f16/bf16 ones widened to f32, since losses run in f32
/// (PyTorch's autocast lists every loss as an f32 op); outside a scope, and for other dtypes,
/// unchanged.
pub(crate) fn in_f32<const N: usize>(inputs: [&Tensor; N]) -> Result<[Tensor; N]> {
    let mut out = inputs.map(Tensor::clone);
    for t in &mut out {
        *t = sinew_tensor::autocast::full_precision(t)?;
    }
    Ok(out)
}

/// [`in_f32`] of an optional weight.
pub(crate) fn weight_in_f32(weight: Option<&Tensor>) -> Result<Option<Tensor>> {
    weight
        .map(sinew_tensor::autocast::full_precision)
        .transpose()
}

/// Errors unless `input` and `target` have the same shape.
pub(crate) fn same_shape(op: &'static str, input: &Tensor, target: &Tensor) -> Result<()> {
    if input.shape() != target.shape() {
        return Err(Error::ShapeMismatch {
            op,
            lhs: input.shape().clone(),
            rhs: target.shape().clone(),
        });
    }
    Ok(())
}
