//! Cross entropy over logits (class indices or probabilities; label smoothing, `ignore_index`,
//! class weights; `[N, C]` or `[N, C, d...]`) and the negative log likelihood it builds on.
//! The formulas, including how `mean` is normalised with weights and smoothing, are PyTorch's
//! (`cross_entropy_loss_label_smoothing` in ATen).

use sinew_tensor::{DType, Error, Result, SoftmaxXentOptions, Tensor, xent_stats_dtype};

use super::cross_entropy_fused::fused_cross_entropy;
use super::{Reduction, reduce};

/// `[N, C, d...]` (or `[C]`) -> `[M, C]` with the class dim last, and the shape of one loss per
/// row (`[N, d...]`, or `[]` for an unbatched input).
fn class_rows(input: &Tensor) -> Result<(Tensor, Vec<usize>)> {
    match input.rank() {
        0 => Err(Error::invalid(
            "cross_entropy",
            "input must have a class dim",
        )),
        1 => Ok((input.unsqueeze(0)?, vec![])),
        2 => Ok((input.clone(), vec![input.dims()[0]])),
        r => {
            let mut order: Vec<usize> = vec![0];
            order.extend(2..r);
            order.push(1);
            let mut rows_shape = input.dims().to_vec();
            let c = rows_shape.remove(1);
            let m = input.elem_count() / c.max(1);
            Ok((input.permute(&order)?.reshape([m, c])?, rows_shape))
        }
    }
}

/// Per-row negative log likelihood of index targets, weighted and with ignored rows zeroed,
/// plus each row's weight (0 when ignored).
fn picked_nll(
    logp: &Tensor,
    target: &Tensor,
    rows_shape: &[usize],
    weight: Option<&Tensor>,
    ignore_index: i64,
) -> Result<(Tensor, Tensor)> {
    if target.dtype() != DType::I64 || target.dims() != rows_shape {
        return Err(Error::invalid(
            "nll_loss",
            format!(
                "expects i64 class indices of shape {rows_shape:?}, got {:?} of shape {}",
                target.dtype(),
                target.shape()
            ),
        ));
    }
    let c = logp.dims()[1];
    if let Some(w) = weight
        && w.dims() != [c]
    {
        return Err(Error::invalid(
            "nll_loss",
            format!("weight must have {c} elements, got shape {}", w.shape()),
        ));
    }
    let t = target.flatten_all()?;
    let valid = t.ne_scalar(ignore_index as f64)?;
    let safe = valid.where_cond(&t, &t.zeros_like()?)?;
    let picked = logp.gather(1, &safe.unsqueeze(1)?)?.squeeze(1)?;
    let valid_f = valid.to_dtype(logp.dtype())?;
    let row_weight = match weight {
        Some(w) => w
            .to_dtype(logp.dtype())?
            .index_select(0, &safe)?
            .mul(&valid_f)?,
        None => valid_f,
    };
    Ok((picked.neg()?.mul(&row_weight)?, row_weight))
}

/// Reduces per-row losses: `mean` divides by the total weight of the rows that count.
pub(super) fn reduce_weighted(
    loss: Tensor,
    row_weight: &Tensor,
    rows_shape: &[usize],
    reduction: Reduction,
) -> Result<Tensor> {
    match reduction {
        Reduction::Mean => loss.sum_all()?.div(&row_weight.sum_all()?),
        Reduction::None => loss.reshape(rows_shape.to_vec()),
        other => reduce(loss, other),
    }
}

/// Negative log likelihood of log-probabilities `[N, C, d...]` at i64 targets `[N, d...]`
/// (PyTorch's `nn.NLLLoss`).
#[derive(Debug, Clone)]
pub struct NllLoss {
    /// Per-class weights `[C]`.
    pub weight: Option<Tensor>,
    /// Targets equal to this contribute nothing (default -100).
    pub ignore_index: i64,
    /// Reduction (default mean, normalised by the weights of counted targets).
    pub reduction: Reduction,
}

impl Default for NllLoss {
    fn default() -> Self {
        NllLoss {
            weight: None,
            ignore_index: -100,
            reduction: Reduction::Mean,
        }
    }
}

impl NllLoss {
    /// The loss of `input` (log-probabilities) against `target`.
    pub fn forward(&self, input: &Tensor, target: &Tensor) -> Result<Tensor> {
        let [input] = super::in_f32([input])?;
        let (logp, rows_shape) = class_rows(&input)?;
        let (loss, w) = picked_nll(
            &logp,
            target,
            &rows_shape,
            self.weight.as_ref(),
            self.ignore_index,
        )?;
        reduce_weighted(loss, &w, &rows_shape, self.reduction)
    }
}

/// `nll_loss(input, target)` with the defaults.
pub fn nll_loss(input: &Tensor, target: &Tensor) -> Result<Tensor> {
    NllLoss::default().forward(input, target)
}

/// Cross entropy of logits (PyTorch's `nn.CrossEntropyLoss`): targets are i64 class indices
/// `[N, d...]` or probabilities shaped like the input.
#[derive(Debug, Clone)]
pub struct CrossEntropyLoss {
    /// Per-class weights `[C]`.
    pub weight: Option<Tensor>,
    /// Index targets equal to this contribute nothing (default -100).
    pub ignore_index: i64,
    /// Reduction (default mean).
    pub reduction: Reduction,
    /// Mixes the target with the uniform distribution: `(1 - e) target + e / C` (default 0).
    pub label_smoothing: f64,
}

impl Default for CrossEntropyLoss {
    fn default() -> Self {
        CrossEntropyLoss {
            weight: None,
            ignore_index: -100,
            reduction: Reduction::Mean,
            label_smoothing: 0.0,
        }
    }
}

impl CrossEntropyLoss {
    /// PyTorch's defaults.
    pub fn new() -> Self {
        CrossEntropyLoss::default()
    }

    /// With label smoothing `e` in `[0, 1]`.
    pub fn label_smoothing(mut self, e: f64) -> Self {
        self.label_smoothing = e;
        self
    }

    /// With a reduction.
    pub fn reduction(mut self, reduction: Reduction) -> Self {
        self.reduction = reduction;
        self
    }

    /// With class weights.
    pub fn weight(mut self, weight: Tensor) -> Self {
        self.weight = Some(weight);
        self
    }

    /// With an ignore index.
    pub fn ignore_index(mut self, index: i64) -> Self {
        self.ignore_index = index;
        self
    }

    /// The loss of `input` (logits, class dim 1) against `target`.
    pub fn forward(&self, input: &Tensor, target: &Tensor) -> Result<Tensor> {
        self.forward_with(input, target, true)
    }

    /// The class weights, if any, in `dtype`.
    fn weight_as(&self, dtype: DType) -> Result<Option<Tensor>> {
        self.weight.as_ref().map(|w| w.to_dtype(dtype)).transpose()
    }

    /// The loss, through the fused softmax cross-entropy kernels when `try_fused` and they
    /// apply (index targets; f32/f64 logits, or f16/bf16 ones under autocast), else op by op.
    pub(super) fn forward_with(
        &self,
        input: &Tensor,
        target: &Tensor,
        try_fused: bool,
    ) -> Result<Tensor> {
        let e = self.label_smoothing;
        if !(0.0..=1.0).contains(&e) {
            return Err(Error::invalid(
                "cross_entropy",
                format!("label_smoothing must be in [0, 1], got {e}"),
            ));
        }
        let (logits, rows_shape) = class_rows(input)?;
        let fused = |logits: &Tensor| -> Result<Option<Tensor>> {
            if !try_fused || target.dtype().is_float() {
                return Ok(None);
            }
            let options = SoftmaxXentOptions {
                ignore_index: self.ignore_index,
                label_smoothing: e,
            };
            let weight = self.weight_as(xent_stats_dtype(logits.dtype()))?;
            let w = weight.as_ref();
            fused_cross_entropy(logits, target, &rows_shape, w, options, self.reduction)
        };
        // Losses run in f32 under autocast: the fused kernels read f16/bf16 logits as they are
        // and compute in f32 (an f32 loss); a backend without their half kernels gets them
        // widened, as does the op-by-op form. Outside autocast, half logits take the op-by-op
        // form in their own dtype, as in PyTorch.
        let half = matches!(logits.dtype(), DType::F16 | DType::BF16);
        let autocast = sinew_tensor::autocast::autocast_dtype().is_some();
        if (!half || autocast)
            && let Some(loss) = fused(&logits)?
        {
            return Ok(loss);
        }
        let logits = sinew_tensor::autocast::full_precision(&logits)?;
        if half
            && autocast
            && let Some(loss) = fused(&logits)?
        {
            return Ok(loss);
        }
        let weight = self.weight_as(logits.dtype())?;
        let logp = logits.log_softmax(1)?;
        let c = logp.dims()[1];
        if target.dtype().is_float() {
            return self.probability_targets(input, target, &logp, &rows_shape, weight.as_ref());
        }
        let (nll, row_weight) = picked_nll(
            &logp,
            target,
            &rows_shape,
            weight.as_ref(),
            self.ignore_index,
        )?;
        let nll = reduce_weighted(nll, &row_weight, &rows_shape, self.reduction)?;
        if e == 0.0 {
            return Ok(nll);
        }
        // -sum_c w_c logp_c per row, ignored rows zeroed.
        let weighted = match &weight {
            Some(w) => logp.mul(w)?,
            None => logp.clone(),
        };
        let valid = target
            .flatten_all()?
            .ne_scalar(self.ignore_index as f64)?
            .to_dtype(logp.dtype())?;
        let smooth = weighted.sum(&[1], false)?.neg()?.mul(&valid)?;
        let smooth = match self.reduction {
            Reduction::Mean => smooth.sum_all()?.div(&row_weight.sum_all()?)?,
            Reduction::None => smooth.reshape(rows_shape.clone())?,
            other => reduce(smooth, other)?,
        };
        nll.mul_scalar(1.0 - e)?
            .add(&smooth.mul_scalar(e / c as f64)?)
    }

    /// Targets given as class probabilities (same shape as the input).
    fn probability_targets(
        &self,
        input: &Tensor,
        target: &Tensor,
        logp: &Tensor,
        rows_shape: &[usize],
        weight: Option<&Tensor>,
    ) -> Result<Tensor> {
        if target.shape() != input.shape() {
            return Err(Error::ShapeMismatch {
                op: "cross_entropy (probability targets)",
                lhs: input.shape().clone(),
                rhs: target.shape().clone(),
            });
        }
        let (probs, _) = class_rows(target)?;
        let c = logp.dims()[1];
        let e = self.label_smoothing;
        let probs = if e > 0.0 {
            probs.mul_scalar(1.0 - e)?.add_scalar(e / c as f64)?
        } else {
            probs
        };
        let mut terms = logp.mul(&probs.to_dtype(logp.dtype())?)?;
        if let Some(w) = weight {
            terms = terms.mul(w)?;
        }
        let loss = terms.sum(&[1], false)?.neg()?;
        match self.reduction {
            Reduction::None => loss.reshape(rows_shape.to_vec()),
            other => reduce(loss, other),
        }
    }
}

/// `cross_entropy(logits, target)` with PyTorch's defaults.
pub fn cross_entropy(input: &Tensor, target: &Tensor) -> Result<Tensor> {
    CrossEntropyLoss::default().forward(input, target)
}
