//! Ranking and metric-learning losses: margin ranking, triplet margin (with
//! `pairwise_distance`), and the logistic soft margin losses.

use sinew_tensor::{Error, Result, Tensor};

use super::{Reduction, in_f32, reduce, same_shape, weight_in_f32};

/// `max(0, -y (x1 - x2) + margin)` for labels `y` of 1 (x1 should rank higher) or -1.
/// PyTorch: `F.margin_ranking_loss`.
pub fn margin_ranking_loss(
    x1: &Tensor,
    x2: &Tensor,
    y: &Tensor,
    margin: f64,
    reduction: Reduction,
) -> Result<Tensor> {
    same_shape("margin_ranking_loss", x1, x2)?;
    same_shape("margin_ranking_loss", x1, y)?;
    let [x1, x2, y] = in_f32([x1, x2, y])?;
    let loss = y.neg()?.mul(&x1.sub(&x2)?)?.add_scalar(margin)?.relu()?;
    reduce(loss, reduction)
}

/// `||x1 - x2 + eps||_p` over the last dim (PyTorch's `F.pairwise_distance`, default p 2 and
/// eps 1e-6).
pub fn pairwise_distance(x1: &Tensor, x2: &Tensor, p: f64, eps: f64) -> Result<Tensor> {
    let [x1, x2] = in_f32([x1, x2])?;
    let last = x1.rank().max(x2.rank()) as isize - 1;
    if last < 0 {
        return Err(Error::invalid(
            "pairwise_distance",
            "expects inputs of at least one dim",
        ));
    }
    x1.sub(&x2)?.add_scalar(eps)?.norm(p, &[last], false)
}

/// PyTorch's `nn.PairwiseDistance(p=2.0, eps=1e-6, keepdim=False)`: [`pairwise_distance`]
/// with its options.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PairwiseDistance {
    /// The norm's order (default 2).
    pub p: f64,
    /// Added to the differences (default 1e-6).
    pub eps: f64,
    /// Keep the reduced last dim with size 1 (default false).
    pub keepdim: bool,
}

impl Default for PairwiseDistance {
    fn default() -> Self {
        PairwiseDistance {
            p: 2.0,
            eps: 1e-6,
            keepdim: false,
        }
    }
}

impl PairwiseDistance {
    /// The distances of `x1` and `x2` (broadcast) over the last dim.
    pub fn forward(&self, x1: &Tensor, x2: &Tensor) -> Result<Tensor> {
        let d = pairwise_distance(x1, x2, self.p, self.eps)?;
        if self.keepdim { d.unsqueeze(-1) } else { Ok(d) }
    }
}

/// Options of [`triplet_margin_loss`], with PyTorch's defaults.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TripletMarginLoss {
    /// Default 1.
    pub margin: f64,
    /// The norm of the distance (default 2).
    pub p: f64,
    /// Added to the differences (default 1e-6).
    pub eps: f64,
    /// Use the positive-negative distance where it is smaller (default false).
    pub swap: bool,
    /// Reduction (default mean).
    pub reduction: Reduction,
}

impl Default for TripletMarginLoss {
    fn default() -> Self {
        TripletMarginLoss {
            margin: 1.0,
            p: 2.0,
            eps: 1e-6,
            swap: false,
            reduction: Reduction::Mean,
        }
    }
}

impl TripletMarginLoss {
    /// `max(0, d(a, p) - d(a, n) + margin)` for `[N, D]` (or `[D]`) anchors, positives and
    /// negatives, `d` the [`pairwise_distance`].
    pub fn forward(&self, anchor: &Tensor, positive: &Tensor, negative: &Tensor) -> Result<Tensor> {
        const OP: &str = "triplet_margin_loss";
        same_shape(OP, anchor, positive)?;
        same_shape(OP, anchor, negative)?;
        if self.p.is_nan() || self.p <= 0.0 {
            return Err(Error::invalid(
                OP,
                format!("p must be positive, got {}", self.p),
            ));
        }
        let d_ap = pairwise_distance(anchor, positive, self.p, self.eps)?;
        let mut d_an = pairwise_distance(anchor, negative, self.p, self.eps)?;
        if self.swap {
            let d_pn = pairwise_distance(positive, negative, self.p, self.eps)?;
            d_an = d_an.minimum(&d_pn)?;
        }
        let loss = d_ap.sub(&d_an)?.add_scalar(self.margin)?.relu()?;
        reduce(loss, self.reduction)
    }
}

/// [`TripletMarginLoss`] with margin, `p` and reduction, eps 1e-6 and no swap. PyTorch:
/// `F.triplet_margin_loss`.
pub fn triplet_margin_loss(
    anchor: &Tensor,
    positive: &Tensor,
    negative: &Tensor,
    margin: f64,
    p: f64,
    reduction: Reduction,
) -> Result<Tensor> {
    TripletMarginLoss {
        margin,
        p,
        reduction,
        ..Default::default()
    }
    .forward(anchor, positive, negative)
}

/// `log(1 + exp(-y x))` for labels `y` of 1 or -1. PyTorch: `F.soft_margin_loss`.
pub fn soft_margin_loss(input: &Tensor, target: &Tensor, reduction: Reduction) -> Result<Tensor> {
    same_shape("soft_margin_loss", input, target)?;
    let [input, target] = in_f32([input, target])?;
    let loss = target.mul(&input)?.neg()?.softplus(1.0, 20.0)?;
    reduce(loss, reduction)
}

/// `-(y log sigmoid(x) + (1 - y) log sigmoid(-x))`, weighted per class, averaged over the
/// classes (the last dim) of each `[N, C]` sample; `reduction` then combines the samples.
/// PyTorch: `F.multilabel_soft_margin_loss`.
pub fn multilabel_soft_margin_loss(
    input: &Tensor,
    target: &Tensor,
    weight: Option<&Tensor>,
    reduction: Reduction,
) -> Result<Tensor> {
    const OP: &str = "multilabel_soft_margin_loss";
    same_shape(OP, input, target)?;
    let classes = input.rank().checked_sub(1).map(|d| (d, input.dims()[d]));
    let Some((class_dim, c)) = classes.filter(|&(_, c)| c > 0) else {
        return Err(Error::invalid(
            OP,
            format!("expects [N, C] scores with C > 0, got {}", input.shape()),
        ));
    };
    let [input, target] = in_f32([input, target])?;
    // log sigmoid(x) = -softplus(-x), finite for every x.
    let log_p = input.neg()?.softplus(1.0, 20.0)?.neg()?;
    let log_q = input.softplus(1.0, 20.0)?.neg()?;
    let mut loss = target
        .mul(&log_p)?
        .add(&target.rsub_scalar(1.0)?.mul(&log_q)?)?
        .neg()?;
    if let Some(w) = weight_in_f32(weight)? {
        loss = loss.mul(&w)?;
    }
    let per_sample = loss
        .sum(&[class_dim as isize], false)?
        .div_scalar(c as f64)?;
    reduce(per_sample, reduction)
}
