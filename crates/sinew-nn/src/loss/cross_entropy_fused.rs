//! Cross entropy of logits against class indices through the fused softmax cross-entropy
//! kernels (`Tensor::softmax_xent_rows` and its backward): each row's loss in one pass over the
//! logits, the gradient in one more, with a recorded backward rule, where the op-by-op form
//! (log-softmax, gather, masks, weights, smoothing) launches a dozen kernels each way. Used for
//! f32/f64 logits, and f16/bf16 ones under autocast (read as they are, the loss computed in f32
//! as that of the widened logits, the gradient rounded to their dtype: no cast either way), on
//! backends with those kernels (the CPU and CUDA ones); `None` sends the caller to the op-by-op
//! form, which stays the reference (the tests below hold the two equal, to second order).

use sinew_tensor::{
    DType, Error, Result, Save, SoftmaxXentOptions, Tensor, is_grad_enabled, no_grad,
    xent_stats_dtype,
};

use super::Reduction;
use super::cross_entropy::reduce_weighted;

/// The loss of `[M, C]` logits `logits` against i64 class indices `target` (shaped
/// `rows_shape`, `M` elements) with optional class weights of [`xent_stats_dtype`], reduced
/// (a loss of that dtype: f32 for f16/bf16 logits, which the caller passes only under
/// autocast); `Ok(None)` when the fused kernels do not apply (dtype, device, a weight needing a
/// gradient).
pub(super) fn fused_cross_entropy(
    logits: &Tensor,
    target: &Tensor,
    rows_shape: &[usize],
    weight: Option<&Tensor>,
    options: SoftmaxXentOptions,
    reduction: Reduction,
) -> Result<Option<Tensor>> {
    let applies = logits.dtype().is_float()
        && target.dtype() == DType::I64
        && target.dims() == rows_shape
        && !weight.is_some_and(|w| w.requires_grad() && is_grad_enabled());
    if !applies {
        return Ok(None);
    }
    let t = target.flatten_all()?.detach();
    let w = weight.map(Tensor::detach);
    let (stats, totals) = {
        let _guard = no_grad();
        match logits.detach().softmax_xent_totals(&t, w.as_ref(), options) {
            Ok(s) => s,
            Err(Error::NotImplemented { .. } | Error::UnsupportedDType { .. }) => return Ok(None),
            Err(e) => return Err(e),
        }
    };
    let m = logits.dims()[0];
    if reduction == Reduction::Mean {
        return fused_mean(logits, t, w, (stats, totals), options).map(Some);
    }
    let row = |k: usize| stats.narrow(0, k, 1)?.reshape([m]);
    let (loss, row_weight) = (row(0)?, row(1)?);
    let loss = Tensor::from_op(
        loss,
        "cross_entropy",
        &[logits],
        Save::INPUTS,
        move |ctx, dy| {
            let x = ctx.input(0)?;
            let dx = if is_grad_enabled() {
                // create_graph: the same gradient written with recorded ops.
                differentiable_gradient(&x, &t, w.as_ref(), dy, options)?
            } else {
                x.softmax_xent_rows_backward(&t, w.as_ref(), &stats, dy, options)?
            };
            Ok(vec![Some(dx)])
        },
    );
    reduce_weighted(loss, &row_weight, rows_shape, reduction).map(Some)
}

/// The `mean` reduction of the row losses (`sum loss / sum w_t`, PyTorch's weighted mean), which
/// the forward kernel computed with them (`totals`: the sums and their ratio), recorded as one
/// op of `logits` whose backward hands the mean's gradient and the weights' sum to the backward
/// kernel, which divides them (no `[M]` tensor is built, no other kernel runs).
fn fused_mean(
    logits: &Tensor,
    t: Tensor,
    w: Option<Tensor>,
    (stats, totals): (Tensor, Tensor),
    options: SoftmaxXentOptions,
) -> Result<Tensor> {
    let m = logits.dims()[0];
    let mean = totals.narrow(0, 2, 1)?.reshape(())?;
    Ok(Tensor::from_op(
        mean,
        "cross_entropy",
        &[logits],
        Save::INPUTS,
        move |ctx, dy| {
            let x = ctx.input(0)?;
            let dx = if is_grad_enabled() {
                // create_graph: the same gradient written with recorded ops.
                let denominator = totals.narrow(0, 1, 1)?;
                let row_grad = dy.reshape([1])?.div(&denominator)?.expand([m])?;
                differentiable_gradient(&x, &t, w.as_ref(), &row_grad, options)?
            } else {
                let operands = (&stats, &totals);
                x.softmax_xent_mean_backward(&t, w.as_ref(), operands, dy, options)?
            };
            Ok(vec![Some(dx)])
        },
    ))
}

/// `dy_i * ((1 - e) w_t (p_ic - [c = t]) + e / C (W p_ic - w_c))` for counted rows (0 for
/// ignored ones), written with differentiable tensor ops of `x` (f16/bf16 logits widened to
/// f32 for it, the result rounded back).
fn differentiable_gradient(
    logits: &Tensor,
    t: &Tensor,
    w: Option<&Tensor>,
    dy: &Tensor,
    options: SoftmaxXentOptions,
) -> Result<Tensor> {
    let wide = xent_stats_dtype(logits.dtype());
    let x = &if wide == logits.dtype() {
        logits.clone()
    } else {
        logits.to_dtype(wide)?
    };
    let c = x.dims()[1];
    let e = options.label_smoothing;
    let p = x.softmax(1)?;
    let valid = t.ne_scalar(options.ignore_index as f64)?;
    let safe = valid.where_cond(t, &t.zeros_like()?)?;
    let onehot = safe.one_hot(c)?.to_dtype(x.dtype())?;
    let mut row_scale = dy.mul(&valid.to_dtype(x.dtype())?)?;
    let hard_scale = match w {
        Some(w) => row_scale.mul(&w.index_select(0, &safe)?)?,
        None => row_scale.clone(),
    };
    let mut grad = p
        .sub(&onehot)?
        .mul(&hard_scale.mul_scalar(1.0 - e)?.unsqueeze(1)?)?;
    if e > 0.0 {
        let soft = match w {
            Some(w) => p.mul(&w.sum_all()?)?.sub(&w.reshape([1, c])?)?,
            None => p.mul_scalar(c as f64)?.sub_scalar(1.0)?,
        };
        row_scale = row_scale.mul_scalar(e / c as f64)?;
        grad = grad.add(&soft.mul(&row_scale.unsqueeze(1)?)?)?;
    }
    if wide == logits.dtype() {
        Ok(grad)
    } else {
        grad.to_dtype(logits.dtype())
    }
}

#[cfg(test)]
mod tests {
    use sinew_tensor::{DType, Device, Generator, Result, Tensor};

    use crate::fused_testing::Orders;
    use crate::loss::{CrossEntropyLoss, Reduction};

    /// The loss of `x0` (a fresh leaf) to second order, fused or op by op.
    fn run(loss: &CrossEntropyLoss, x0: &Tensor, t: &Tensor, fused: bool) -> Result<Orders> {
        let x = x0.clone().requires_grad_();
        Orders::of(|| loss.forward_with(&x, t, fused), None, &[&x])
    }

    /// Every option and reduction, on `[N, C]` and `[N, C, d]` logits with ignored targets:
    /// the fused loss and its first and second gradients equal the op-by-op ones.
    #[test]
    fn fused_loss_and_gradients_match_the_op_by_op_form() -> Result<()> {
        let mut g = Generator::new(5);
        let cpu = Device::cpu();
        let weight = g.rand([4], DType::F64, &cpu)?.add_scalar(0.5)?;
        let cases = [
            (vec![6, 4], vec![0i64, 3, -100, 2, 1, 3], vec![6]),
            (vec![2, 4, 3], vec![1, 0, 3, -100, 2, 2], vec![2, 3]),
        ];
        for (shape, targets, target_shape) in cases {
            let x0 = g.randn(shape, DType::F64, &cpu)?.mul_scalar(2.0)?;
            let t = Tensor::from_vec(targets, target_shape)?;
            if x0.rank() == 2 {
                // The fused kernels do apply here (f64 on the CPU), so the two paths differ.
                let options = sinew_tensor::SoftmaxXentOptions {
                    ignore_index: -100,
                    label_smoothing: 0.0,
                };
                let rows = t.dims().to_vec();
                let fused =
                    super::fused_cross_entropy(&x0, &t, &rows, None, options, Reduction::Sum)?;
                assert!(fused.is_some());
            }
            for reduction in [Reduction::Mean, Reduction::Sum, Reduction::None] {
                for (weighted, e) in [(false, 0.0), (true, 0.0), (false, 0.1), (true, 0.25)] {
                    let mut loss = CrossEntropyLoss::new()
                        .reduction(reduction)
                        .label_smoothing(e);
                    if weighted {
                        loss = loss.weight(weight.clone());
                    }
                    let what = format!("{reduction:?} weighted={weighted} e={e}");
                    run(&loss, &x0, &t, true)?.assert_close(
                        &run(&loss, &x0, &t, false)?,
                        1e-10,
                        &what,
                    );
                }
            }
        }
        Ok(())
    }

    /// The values of a float tensor, widened to f32 (exactly, from f16/bf16).
    fn values(t: &Tensor) -> Result<Vec<f32>> {
        t.to_dtype(DType::F32)?.to_vec::<f32>()
    }

    /// Under autocast, f16/bf16 logits go to the fused kernels as they are: the loss is f32,
    /// equal bit for bit to the loss of the widened logits, and their gradient is the widened
    /// logits' gradient rounded to their dtype; the recorded gradient (create_graph) agrees
    /// and differentiates again.
    #[test]
    fn autocast_half_logits_take_the_fused_kernels() -> Result<()> {
        let mut g = Generator::new(8);
        let cpu = Device::cpu();
        let t = Tensor::from_vec(vec![0i64, 1, 2, -100, 4, 0, 1, 2], [8])?;
        let weight = g.rand([5], DType::F32, &cpu)?.add_scalar(0.5)?;
        for dtype in [DType::F16, DType::BF16] {
            let x0 = g
                .randn([8, 5], DType::F32, &cpu)?
                .mul_scalar(3.0)?
                .to_dtype(dtype)?;
            for reduction in [Reduction::Mean, Reduction::Sum, Reduction::None] {
                let what = format!("{dtype} {reduction:?}");
                let loss = CrossEntropyLoss::new()
                    .reduction(reduction)
                    .label_smoothing(0.1)
                    .weight(weight.clone());
                let half = x0.clone().requires_grad_();
                let got = sinew_tensor::with_autocast(dtype, || loss.forward(&half, &t))?;
                let wide = x0.to_dtype(DType::F32)?.requires_grad_();
                let want = loss.forward(&wide, &t)?;
                assert_eq!(got.dtype(), DType::F32, "{what}");
                assert_eq!(values(&got)?, values(&want)?, "{what}: loss");
                if reduction == Reduction::Mean {
                    assert_eq!(got.op_name(), Some("cross_entropy"), "{what}: fused");
                }
                got.sum_all()?.backward()?;
                want.sum_all()?.backward()?;
                let grad = half.grad().expect("a gradient");
                assert_eq!(grad.dtype(), dtype, "{what}");
                let rounded = wide.grad().expect("a gradient").to_dtype(dtype)?;
                assert_eq!(values(&grad)?, values(&rounded)?, "{what}: gradient");

                half.zero_grad();
                let options = sinew_tensor::BackwardOptions {
                    create_graph: true,
                    ..Default::default()
                };
                let y = sinew_tensor::with_autocast(dtype, || loss.forward(&half, &t))?;
                y.sum_all()?.backward_with(None, options)?;
                let recorded = half.grad().expect("a gradient");
                assert_eq!(recorded.dtype(), dtype, "{what}");
                for (a, b) in values(&recorded)?.iter().zip(values(&grad)?) {
                    assert!(
                        (a - b).abs() <= 2e-2 * (1.0 + b.abs()),
                        "{what}: {a} vs {b}"
                    );
                }
                half.zero_grad();
                recorded
                    .to_dtype(DType::F32)?
                    .square()?
                    .sum_all()?
                    .backward()?;
                let second = values(&half.grad().expect("a second-order gradient"))?;
                assert!(second.iter().any(|v| *v != 0.0), "{what}: second order");
            }
        }
        Ok(())
    }

    /// An out-of-range class index is the same error on both paths.
    #[test]
    fn a_bad_target_is_an_index_error() -> Result<()> {
        let x = Tensor::zeros([2, 3], DType::F32, &Device::cpu())?;
        let t = Tensor::from_vec(vec![0i64, 7], [2])?;
        let err = CrossEntropyLoss::new().forward(&x, &t).unwrap_err();
        assert!(
            matches!(err, sinew_tensor::Error::IndexOutOfBounds { index: 7, .. }),
            "{err}"
        );
        Ok(())
    }
}
