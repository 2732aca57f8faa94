//! Fused softmax cross-entropy over the rows of `[M, C]` logits with i64 class targets
//! (`Backend::softmax_xent_forward`, `Backend::softmax_xent_backward`; CPU:
//! `cpu/softmax_xent.rs`, CUDA: `cuda/xent.cu`): the loss of each row in one pass over the
//! logits and its gradient in one more, where the op-by-op form (log-softmax, gather, weights,
//! masks, smoothing) takes a dozen kernels each way. PyTorch's formula, with class weights `w`,
//! `ignore_index` and label smoothing `e`: for a counted row `i` with target `t`,
//!
//! `loss_i = (1 - e) w_t (lse_i - x_it) + e / C * sum_c w_c (lse_i - x_ic)`, and
//! `dloss_i / dx_ic = (1 - e) w_t (p_ic - [c = t]) + e / C * (W p_ic - w_c)`,
//!
//! with `lse_i` the row's log-sum-exp, `p = softmax(x)`, `W = sum_c w_c` (`w = 1` without
//! weights); ignored rows give 0. Not recorded by autograd: `CrossEntropyLoss` records its own
//! backward rule with the second op.
//!
//! f16/bf16 logits are read as they are and their losses computed as those of the logits
//! widened to f32 (exactly: widening rounds nothing): the row statistics, totals, class weights
//! and row gradients are f32 ([`xent_stats_dtype`]), the logits' gradient is rounded from f32 to
//! their dtype. So autocast's f32 loss of f16 logits needs no cast of the logits either way.

use crate::{DType, Error, Layout, Result, Tensor, backend::BackendStorage};

/// The options of the fused softmax cross-entropy (PyTorch's `ignore_index`, `label_smoothing`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SoftmaxXentOptions {
    /// Rows whose target equals this contribute nothing (PyTorch's default is -100).
    pub ignore_index: i64,
    /// `e` in `[0, 1]`: the target mixed with the uniform distribution, `(1 - e) onehot + e / C`.
    pub label_smoothing: f64,
}

/// The dtype of the fused cross-entropy's row statistics, totals, class weights and row
/// gradients for logits of dtype `logits`: f32 for f16/bf16 logits, else the logits' own.
pub fn xent_stats_dtype(logits: DType) -> DType {
    match logits {
        DType::F16 | DType::BF16 => DType::F32,
        other => other,
    }
}

/// The views a backend's softmax cross-entropy reads: logits `[M, C]`, targets i64 `[M]`, and
/// class weights `[C]` of [`xent_stats_dtype`] (all contiguous, possibly at an offset).
#[derive(Clone, Copy)]
pub struct XentOperands<'a> {
    /// The logits `[M, C]`.
    pub logits: (&'a dyn BackendStorage, &'a Layout),
    /// The class indices `[M]`.
    pub target: (&'a dyn BackendStorage, &'a Layout),
    /// The class weights `[C]`, if any.
    pub weight: Option<(&'a dyn BackendStorage, &'a Layout)>,
}

impl std::fmt::Debug for XentOperands<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("XentOperands")
            .field("logits", &self.logits.1.shape())
            .field("target", &self.target.1.shape())
            .field("weight", &self.weight.map(|w| w.1.shape().clone()))
            .finish()
    }
}

impl Tensor {
    /// Checks `self` as `[M, C]` float logits against `target` and `weight`; returns `(M, C)`.
    fn check_xent_operands(
        &self,
        op: &'static str,
        target: &Tensor,
        weight: Option<&Tensor>,
        options: SoftmaxXentOptions,
    ) -> Result<(usize, usize)> {
        self.check_float(op)?;
        let &[m, c] = self.dims() else {
            return Err(Error::invalid(
                op,
                format!("expects [M, C] logits, got {}", self.shape()),
            ));
        };
        self.check_same_device(op, target)?;
        if target.dtype() != DType::I64 || target.dims() != [m] {
            return Err(Error::invalid(
                op,
                format!(
                    "expects i64 targets [{m}], got {} {}",
                    target.dtype(),
                    target.shape()
                ),
            ));
        }
        if let Some(w) = weight {
            self.check_same_device(op, w)?;
            self.check_stats_dtype(op, w)?;
            if w.dims() != [c] {
                return Err(Error::invalid(
                    op,
                    format!("weight must have {c} elements, got shape {}", w.shape()),
                ));
            }
        }
        let e = options.label_smoothing;
        if !(0.0..=1.0).contains(&e) {
            return Err(Error::invalid(
                op,
                format!("label_smoothing must be in [0, 1], got {e}"),
            ));
        }
        let tracked = [Some(self), Some(target), weight]
            .into_iter()
            .flatten()
            .any(Tensor::requires_grad);
        if crate::is_grad_enabled() && tracked {
            return Err(Error::invalid(
                op,
                "is not differentiable: call it under no_grad or on detached tensors",
            ));
        }
        Ok((m, c))
    }

    /// Checks that `t` (weights, statistics, gradients) has the [`xent_stats_dtype`] of the
    /// logits `self`.
    fn check_stats_dtype(&self, op: &'static str, t: &Tensor) -> Result<()> {
        let want = xent_stats_dtype(self.dtype());
        if t.dtype() != want {
            return Err(Error::DTypeMismatch {
                op,
                lhs: want,
                rhs: t.dtype(),
            });
        }
        Ok(())
    }

    /// Runs `f` on the contiguous storages of the logits, targets and weights, and of up to
    /// three more tensors (`extra`, handed to `f` as contiguous views in order; an absent one
    /// as `None`).
    fn with_xent_operands<R>(
        &self,
        target: &Tensor,
        weight: Option<&Tensor>,
        extra: [Option<&Tensor>; 3],
        f: impl FnOnce(XentOperands<'_>, [Option<(&dyn BackendStorage, &Layout)>; 3]) -> Result<R>,
    ) -> Result<R> {
        let x = self.contiguous()?;
        let t = target.contiguous()?;
        let w = weight.map(Tensor::contiguous).transpose()?;
        // A broadcast extra (a mean's gradient, one value for every row) is read as it is.
        let dense_or_broadcast = |e: &Tensor| match e.layout().strides() {
            [0] => Ok(e.clone()),
            _ => e.contiguous(),
        };
        let [e0, e1, e2] = extra.map(|e| e.map(dense_or_broadcast).transpose());
        let extra = [e0?, e1?, e2?];
        // Absent operands are stood in for by the logits (a storage shared is locked once).
        let pick = |o: &Option<Tensor>| -> Tensor { o.clone().unwrap_or_else(|| x.clone()) };
        let all = [
            x.clone(),
            t,
            pick(&w),
            pick(&extra[0]),
            pick(&extra[1]),
            pick(&extra[2]),
        ];
        let refs = [&all[0], &all[1], &all[2], &all[3], &all[4], &all[5]];
        Tensor::with_storages(refs, |s| {
            let view = |k: usize| (s[k], all[k].layout());
            f(
                XentOperands {
                    logits: view(0),
                    target: view(1),
                    weight: w.is_some().then(|| view(2)),
                },
                std::array::from_fn(|k| extra[k].is_some().then(|| view(3 + k))),
            )
        })
    }

    /// Fused softmax cross-entropy of the rows of `[M, C]` logits `self` against i64 class
    /// indices `target` `[M]`, with optional class weights `[C]` (of [`xent_stats_dtype`]): a
    /// `[4, M]` tensor of [`xent_stats_dtype`] (`self`'s dtype, f32 for f16/bf16) holding
    /// each row's loss, its weight (`w_t`, 0 for ignored rows: the divisor of the `mean`
    /// reduction), and for the backward its log-sum-exp in two
    /// parts, `lse = shift + log_sum` (`shift` the row's maximum, 0 when that is not finite;
    /// kept apart so that the rounding of a large `lse` to f32 does not reach the gradient).
    /// Sums run in f64. A target outside `[0, C)` that is not `ignore_index` is an
    /// `IndexOutOfBounds` error (on the GPU, reported at the next synchronisation). Not
    /// differentiable.
    pub fn softmax_xent_rows(
        &self,
        target: &Tensor,
        weight: Option<&Tensor>,
        options: SoftmaxXentOptions,
    ) -> Result<Tensor> {
        Ok(self.softmax_xent_totals(target, weight, options)?.0)
    }

    /// [`Tensor::softmax_xent_rows`] and, from the same kernel, a `[3]` tensor of the totals:
    /// the sum of the row losses, the sum of the row weights, and their ratio, the `mean`
    /// reduction (PyTorch's weighted mean; NaN when no row counts). The sums run in f64 over
    /// the rows' stored values and are rounded once. Not differentiable.
    pub fn softmax_xent_totals(
        &self,
        target: &Tensor,
        weight: Option<&Tensor>,
        options: SoftmaxXentOptions,
    ) -> Result<(Tensor, Tensor)> {
        const OP: &str = "softmax_xent_rows";
        let (m, _) = self.check_xent_operands(OP, target, weight, options)?;
        let backend = self.device().backend();
        let storage = self.with_xent_operands(target, weight, [None; 3], |ops, _| {
            backend.softmax_xent_forward(ops, options)
        })?;
        let rows = 4 * m;
        if storage.len() != rows + 3 {
            return Err(Error::invalid(
                OP,
                format!(
                    "the backend returned {} elements, not {}",
                    storage.len(),
                    rows + 3
                ),
            ));
        }
        let all = Tensor::from_storage(storage, [rows + 3], self.device().clone())?;
        Ok((
            all.narrow(0, 0, rows)?.reshape([4, m])?,
            all.narrow(0, rows, 3)?,
        ))
    }

    /// The gradient of [`Tensor::softmax_xent_rows`]'s row losses with respect to the logits
    /// `self`, given the `[4, M]` `stats` it returned and the gradient `grad` `[M]` of each
    /// row's loss (one value broadcast to every row, as a mean's gradient is, is read without a
    /// copy), both of [`xent_stats_dtype`]: `[M, C]` of `self`'s dtype. Not differentiable.
    pub fn softmax_xent_rows_backward(
        &self,
        target: &Tensor,
        weight: Option<&Tensor>,
        stats: &Tensor,
        grad: &Tensor,
        options: SoftmaxXentOptions,
    ) -> Result<Tensor> {
        self.xent_backward(target, weight, stats, grad, None, options)
    }

    /// The gradient of the `mean` reduction [`Tensor::softmax_xent_totals`] returned (its
    /// `totals`, with the rows `stats`) with respect to the logits `self`, for the gradient
    /// `grad` of the mean (one element): every row's gradient is `grad / sum of the row
    /// weights`, divided in [`xent_stats_dtype`], in the same kernel as the rest. Not
    /// differentiable.
    pub fn softmax_xent_mean_backward(
        &self,
        target: &Tensor,
        weight: Option<&Tensor>,
        (stats, totals): (&Tensor, &Tensor),
        grad: &Tensor,
        options: SoftmaxXentOptions,
    ) -> Result<Tensor> {
        const OP: &str = "softmax_xent_mean_backward";
        if grad.elem_count() != 1 || totals.dims() != [3] {
            return Err(Error::invalid(
                OP,
                format!(
                    "expects one gradient and [3] totals, got {} and {}",
                    grad.shape(),
                    totals.shape()
                ),
            ));
        }
        self.check_stats_dtype(OP, totals)?;
        self.check_same_device(OP, totals)?;
        let m = self.dims().first().copied().unwrap_or(0);
        let row_grad = grad.reshape([1])?.expand([m])?;
        let divisor = totals.narrow(0, 1, 1)?;
        self.xent_backward(target, weight, stats, &row_grad, Some(&divisor), options)
    }

    /// The backward kernel for row gradients `grad`, divided by `divisor` when given.
    fn xent_backward(
        &self,
        target: &Tensor,
        weight: Option<&Tensor>,
        stats: &Tensor,
        grad: &Tensor,
        divisor: Option<&Tensor>,
        options: SoftmaxXentOptions,
    ) -> Result<Tensor> {
        const OP: &str = "softmax_xent_rows_backward";
        let (m, c) = self.check_xent_operands(OP, target, weight, options)?;
        for (what, t, dims) in [("stats", stats, vec![4, m]), ("grad", grad, vec![m])] {
            self.check_same_device(OP, t)?;
            self.check_stats_dtype(OP, t)?;
            if t.dims() != dims.as_slice() {
                return Err(Error::invalid(
                    OP,
                    format!("{what} must be {dims:?}, got {}", t.shape()),
                ));
            }
        }
        let backend = self.device().backend();
        let extra = [Some(stats), Some(grad), divisor];
        let storage = self.with_xent_operands(target, weight, extra, |ops, [s, g, d]| {
            let (Some(s), Some(g)) = (s, g) else {
                unreachable!("stats and grad are given")
            };
            backend.softmax_xent_backward(ops, s, g, d, options)
        })?;
        Tensor::from_storage(storage, [m, c], self.device().clone())
    }
}
