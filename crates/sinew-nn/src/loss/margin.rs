//! Similarity and margin losses: `normalize`, cosine similarity, cosine embedding, hinge
//! embedding and the multi-class hinge (multi-margin) loss.

use sinew_tensor::{DType, Error, Result, Tensor};

use super::{Reduction, in_f32, reduce, same_shape, weight_in_f32};

/// `x / max(||x||_p, eps)`, the `p`-norm taken along `dim` (PyTorch's `F.normalize`, defaults
/// p 2, dim 1, eps 1e-12). `norm` sums f16/bf16 powers in f32, as PyTorch's does.
pub fn normalize(x: &Tensor, p: f64, dim: isize, eps: f64) -> Result<Tensor> {
    x.div(&x.norm(p, &[dim], true)?.maximum_scalar(eps)?)
}

/// `sum(x1 x2) / (max(|x1|, eps) max(|x2|, eps))` along `dim` (PyTorch's `F.cosine_similarity`,
/// default eps 1e-8): the sum of the two [`normalize`]d vectors' products.
pub fn cosine_similarity(x1: &Tensor, x2: &Tensor, dim: isize, eps: f64) -> Result<Tensor> {
    let [x1, x2] = in_f32([x1, x2])?;
    normalize(&x1, 2.0, dim, eps)?
        .mul(&normalize(&x2, 2.0, dim, eps)?)?
        .sum(&[dim], false)
}

/// PyTorch's `nn.CosineSimilarity(dim=1, eps=1e-8)`: [`cosine_similarity`] with its options.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CosineSimilarity {
    /// The dim the vectors lie along (default 1).
    pub dim: isize,
    /// The norms' lower bound (default 1e-8).
    pub eps: f64,
}

impl Default for CosineSimilarity {
    fn default() -> Self {
        CosineSimilarity { dim: 1, eps: 1e-8 }
    }
}

impl CosineSimilarity {
    /// The similarity of `x1` and `x2` (broadcast), `dim` reduced.
    pub fn forward(&self, x1: &Tensor, x2: &Tensor) -> Result<Tensor> {
        cosine_similarity(x1, x2, self.dim, self.eps)
    }
}

/// `1 - cos(x1, x2)` where `y = 1`, `max(0, cos - margin)` where `y = -1`, for `[N, D]` inputs
/// and `[N]` labels (PyTorch's `CosineEmbeddingLoss`, with its 1e-12 in the norms).
pub fn cosine_embedding_loss(
    x1: &Tensor,
    x2: &Tensor,
    y: &Tensor,
    margin: f64,
    reduction: Reduction,
) -> Result<Tensor> {
    same_shape("cosine_embedding_loss", x1, x2)?;
    let [x1, x2] = in_f32([x1, x2])?;
    let dim = x1.rank() as isize - 1;
    let dot = x1.mul(&x2)?.sum(&[dim], false)?;
    let m1 = x1.square()?.sum(&[dim], false)?.add_scalar(1e-12)?;
    let m2 = x2.square()?.sum(&[dim], false)?.add_scalar(1e-12)?;
    let cos = dot.div(&m1.mul(&m2)?.sqrt()?)?;
    // Selected, not multiplied by 0/1 masks: the branch not taken may be inf or NaN.
    let zero = cos.zeros_like()?;
    let pos = y
        .eq_scalar(1.0)?
        .where_cond(&cos.rsub_scalar(1.0)?, &zero)?;
    let neg = y
        .eq_scalar(-1.0)?
        .where_cond(&cos.sub_scalar(margin)?.relu()?, &zero)?;
    reduce(pos.add(&neg)?, reduction)
}

/// `x` where `y = 1`, `max(0, margin - x)` where `y = -1` (PyTorch's `HingeEmbeddingLoss`).
pub fn hinge_embedding_loss(
    input: &Tensor,
    target: &Tensor,
    margin: f64,
    reduction: Reduction,
) -> Result<Tensor> {
    same_shape("hinge_embedding_loss", input, target)?;
    let [input] = in_f32([input])?;
    // Selected, as PyTorch's `where`s: `input = -inf` with `y = 1` is -inf, `inf` with `y = -1`
    // is 0 (a 0/1 mask times the other branch's inf made both NaN).
    let zero = input.zeros_like()?;
    let below = target
        .ne_scalar(1.0)?
        .where_cond(&input.rsub_scalar(margin)?.relu()?, &zero)?;
    let itself = target.ne_scalar(-1.0)?.where_cond(&input, &zero)?;
    reduce(below.add(&itself)?, reduction)
}

/// The multi-class hinge loss (PyTorch's `MultiMarginLoss`): for each sample,
/// `sum_{j != y} w_y max(0, margin - x_y + x_j)^p / C`.
#[derive(Debug, Clone)]
pub struct MultiMarginLoss {
    /// 1 or 2 (default 1).
    pub p: u32,
    /// Default 1.
    pub margin: f64,
    /// Per-class weights `[C]`.
    pub weight: Option<Tensor>,
    /// Reduction (default mean).
    pub reduction: Reduction,
}

impl Default for MultiMarginLoss {
    fn default() -> Self {
        MultiMarginLoss {
            p: 1,
            margin: 1.0,
            weight: None,
            reduction: Reduction::Mean,
        }
    }
}

impl MultiMarginLoss {
    /// The loss of scores `[N, C]` against i64 classes `[N]`.
    pub fn forward(&self, input: &Tensor, target: &Tensor) -> Result<Tensor> {
        if self.p != 1 && self.p != 2 {
            return Err(Error::invalid(
                "multi_margin_loss",
                "only p = 1 and p = 2 are supported",
            ));
        }
        let (&[n, c], true) = (input.dims(), target.dtype() == DType::I64) else {
            return Err(Error::invalid(
                "multi_margin_loss",
                format!(
                    "expects [N, C] scores and i64 targets, got {} and {:?}",
                    input.shape(),
                    target.dtype()
                ),
            ));
        };
        if target.dims() != [n] {
            return Err(Error::invalid(
                "multi_margin_loss",
                format!("target must be [{n}], got {}", target.shape()),
            ));
        }
        let [input] = in_f32([input])?;
        let idx = target.unsqueeze(1)?;
        let x_y = input.gather(1, &idx)?;
        // The target's own term is left out before the hinge, not multiplied by 0 after it:
        // with `x_y = ±inf` it is NaN (`inf - inf`), and so would be its gradient, where
        // PyTorch's loop skips it.
        let z = input.sub(&x_y)?.add_scalar(self.margin)?;
        let others = target.one_hot(c)?.eq_scalar(0.0)?;
        let mut z = others.where_cond(&z, &z.zeros_like()?)?.relu()?;
        if self.p == 2 {
            z = z.square()?;
        }
        if let Some(w) = weight_in_f32(self.weight.as_ref())? {
            z = z.mul(
                &w.to_dtype(input.dtype())?
                    .index_select(0, target)?
                    .unsqueeze(1)?,
            )?;
        }
        reduce(z.sum(&[1], false)?.div_scalar(c as f64)?, self.reduction)
    }
}

/// `multi_margin_loss(input, target)` with the defaults.
pub fn multi_margin_loss(input: &Tensor, target: &Tensor) -> Result<Tensor> {
    MultiMarginLoss::default().forward(input, target)
}
