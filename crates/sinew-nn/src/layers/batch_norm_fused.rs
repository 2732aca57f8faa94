//! Batch normalisation with batch statistics through the per-channel kernels
//! (`Tensor::channel_norm_of`, `Tensor::channel_lincomb`): the statistics in one read of `x`, the
//! output in one pass, and a recorded backward rule that needs one read of `dy` and `x` and one
//! pass for `dx`, where the op-by-op form makes about six full-size passes forward and more
//! backward. Used for float inputs on backends with those kernels (the CPU and CUDA ones; an
//! f16/bf16 input stays in its dtype, its statistics in f64); `None` sends the caller to the
//! op-by-op form. A following ReLU, or a residual's sum and a ReLU, ride in the output pass and
//! in the same node (`norm_node.rs` records it), their mask inside the backward's two passes.

use sinew_tensor::{ChannelNormStep, DType, Error, Result, RunningStats, Tensor, no_grad};

use super::norm_node::{NormDims, ReluOutput, Tail, record_normalisation};

/// Row `k` of a `[R, C]` tensor, as `[C]`.
pub(crate) fn row(t: &Tensor, k: usize) -> Result<Tensor> {
    let c = t.dims()[1];
    t.narrow(0, k, 1)?.reshape([c])
}

/// A scale or shift parameter as `Tensor::channel_norm` reads it (detached): f32 and f64 as
/// they are (no cast kernel), other dtypes cast to f64.
fn param_row(t: Option<&Tensor>) -> Result<Option<Tensor>> {
    t.map(|t| match t.dtype() {
        DType::F32 | DType::F64 => Ok(t.detach()),
        _ => t.detach().to_dtype(DType::F64),
    })
    .transpose()
}

/// Training-mode (batch statistics) batch norm of `x` `[n, C, ...]`, updating `running` (mean,
/// variance, and a batch count to increment) with `momentum` when given, followed by `tail` in
/// the same output pass (a residual of another shape, dtype or device than `x` is added by its
/// own op instead). `Ok(None)` when the input's dtype or device has no per-channel kernels.
pub(crate) fn batch_norm_batch_stats(
    x: &Tensor,
    running: Option<(&Tensor, &Tensor, Option<&Tensor>)>,
    weight: Option<&Tensor>,
    bias: Option<&Tensor>,
    (momentum, eps): (f64, f64),
    tail: Tail<'_>,
) -> Result<Option<Tensor>> {
    if !x.dtype().is_float() {
        return Ok(None);
    }
    if let Tail::AddRelu(residual) = tail
        && (residual.shape() != x.shape()
            || residual.dtype() != x.dtype()
            || residual.device() != x.device())
    {
        let alone = batch_norm_batch_stats(x, running, weight, bias, (momentum, eps), Tail::None)?;
        return alone.map(|y| y.add_relu(residual)).transpose();
    }
    let guard = no_grad();
    let (scale, shift) = (param_row(weight)?, param_row(bias)?);
    // The running statistics' update rides on the statistics' kernel (one launch on the GPU).
    let n = (x.elem_count() / x.dims()[1].max(1)) as f64;
    let running = running.map(|(mean, var, count)| RunningStats {
        mean,
        var,
        count,
        momentum,
        unbias: n / (n - 1.0).max(1.0),
    });
    let Some(stats) = Stats::of(&x.detach(), eps, (scale.as_ref(), shift.as_ref()), running)?
    else {
        return Ok(None);
    };
    let y = match tail {
        Tail::None => stats.normalise(&x.detach())?,
        Tail::Relu => x.detach().channel_lincomb_relu(&stats.coef)?,
        Tail::AddRelu(residual) => x
            .detach()
            .channel_lincomb_add_relu(&residual.detach(), &stats.coef)?,
    };
    drop(guard);
    let bias_dtype = bias.map(Tensor::dtype);
    let fused = move |x: &Tensor, w: Option<&Tensor>, dy: &Tensor, relu: Option<ReluOutput<'_>>| {
        let dy = &dy.to_dtype(x.dtype())?;
        // The weight's and bias's gradients, from the statistics' kernel where their dtypes
        // agree (else cast one by one from f64).
        let dtypes = [w.map(Tensor::dtype), bias_dtype];
        let shared = match dtypes {
            [Some(a), Some(b)] if a == b => Some(a),
            _ => None,
        };
        let scale = param_row(w)?;
        let grads_of = stats.input_gradient((dy, relu), x, scale.as_ref(), shared)?;
        let mut grads = vec![Some(grads_of.dx)];
        for (k, dtype) in dtypes.into_iter().enumerate() {
            if let Some(dtype) = dtype {
                // A no-op where the kernel gave them in that dtype.
                grads.push(Some(row(&grads_of.params, k)?.to_dtype(dtype)?));
            }
        }
        // The residual's: the gradient taken back through the ReLU.
        grads.extend(grads_of.masked.map(Some));
        Ok(grads)
    };
    let inputs = (x, weight, bias);
    Ok(Some(record_normalisation(
        y,
        "batch_norm",
        inputs,
        (eps, tail),
        NormDims::batch_norm,
        fused,
    )))
}

/// Per-channel statistics of a normalisation over `[n, C, ...]` (channel = the group of values
/// normalised together: a channel for batch norm, a row for layer norm), f64 `[C]`, and the
/// coefficients of its output.
pub(crate) struct Stats {
    /// The mean of each channel.
    pub(crate) mean: Tensor,
    /// `1 / sqrt(var + eps)` of each channel (biased variance).
    pub(crate) invstd: Tensor,
    /// Values per channel.
    pub(crate) count: f64,
    /// `channel_lincomb`'s `[3, C]` coefficients of `(x - mean) * invstd * scale + shift`.
    coef: Tensor,
}

/// What [`Stats::input_gradient`] returns.
pub(crate) struct InputGradient {
    /// The input's gradient.
    pub(crate) dx: Tensor,
    /// `[2, C]` (f64, or the dtype asked for): the scale's gradient,
    /// `sum(dy * (x - mean)) * invstd` per channel, then the shift's, `sum(dy)`.
    pub(crate) params: Tensor,
    /// With a ReLU that had a residual added before it: `dy` taken back through the ReLU (the
    /// residual's gradient).
    pub(crate) masked: Option<Tensor>,
}

impl Stats {
    /// The statistics of `x` (detached, a float) and the coefficients of its normalisation
    /// with `scale` and `shift` (f32 or f64 `[C]`; 1 and 0 when absent) from one read of `x`
    /// (`Tensor::channel_norm_of`: one kernel on the GPU), updating batch norm's `running`
    /// statistics from them when given (in the same kernel: `Tensor::channel_norm_updating`);
    /// `Ok(None)` when its backend has no per-channel kernels.
    pub(crate) fn of(
        x: &Tensor,
        eps: f64,
        (scale, shift): (Option<&Tensor>, Option<&Tensor>),
        running: Option<RunningStats<'_>>,
    ) -> Result<Option<Stats>> {
        let c = x.dims()[1];
        let count = (x.elem_count() / c.max(1)) as f64;
        let ones;
        let rows: Vec<&Tensor> = match (scale, shift) {
            (Some(w), Some(b)) => vec![w, b],
            (Some(w), None) => vec![w],
            (None, Some(b)) => {
                ones = b.ones_like()?;
                vec![&ones, b]
            }
            (None, None) => vec![],
        };
        let step = ChannelNormStep::Forward { count, eps };
        let out = match running {
            Some(running) => x.channel_norm_updating(step, &rows, running),
            None => x.channel_norm_of(None, step, &rows),
        };
        let out = match out {
            Ok(out) => out,
            Err(Error::NotImplemented { .. } | Error::UnsupportedDType { .. }) => return Ok(None),
            Err(e) => return Err(e),
        };
        let stats = Stats {
            mean: row(&out, 3)?,
            invstd: row(&out, 4)?,
            count,
            coef: out.narrow(0, 0, 3)?,
        };
        Ok(Some(stats))
    }

    /// `(x - mean) * invstd * scale + shift` per channel, in one pass.
    pub(crate) fn normalise(&self, x: &Tensor) -> Result<Tensor> {
        x.channel_lincomb(None, &self.coef)
    }

    /// The gradient of `x` for the gradient `dy` of `(x - mean) * invstd * scale` (statistics
    /// of `x` itself; `scale` f32 or f64 `[C]`, 1 when absent), in one read of `dy` and `x`
    /// (`Tensor::channel_norm_of`) and one pass; with the per-channel sums the affine
    /// parameters' gradients need, in dtype `params` when given (from the same kernel:
    /// `Tensor::channel_norm_grads_of`), else as f64. With a ReLU's output (of `dy`'s shape and
    /// dtype), `dy` is the gradient of that output, taken back through the ReLU inside both
    /// kernels where the backend has them (`Tensor::channel_norm_grads_masked`,
    /// `Tensor::channel_lincomb_masked`; the second also writes that masked gradient when a
    /// residual needs it, `Tensor::relu_grad_channel_lincomb`), else in a pass of its own first.
    pub(crate) fn input_gradient(
        &self,
        (dy, relu): (&Tensor, Option<ReluOutput<'_>>),
        x: &Tensor,
        scale: Option<&Tensor>,
        params: Option<DType>,
    ) -> Result<InputGradient> {
        let mut rows = vec![&self.mean, &self.invstd];
        rows.extend(scale);
        if let (Some(relu), Some(dtype)) = (relu, params)
            && let Some((out, params)) =
                dy.channel_norm_grads_masked(relu.output, x, self.count, &rows, dtype)?
        {
            let (y, coef) = (relu.output, &out.narrow(0, 0, 3)?);
            let (dx, masked) = if relu.residual {
                let (masked, dx) = dy.relu_grad_channel_lincomb(y, Some(x), coef)?;
                (dx, Some(masked))
            } else {
                (dy.channel_lincomb_masked(y, Some(x), coef)?, None)
            };
            return Ok(InputGradient { dx, params, masked });
        }
        let masked = relu.map(|r| dy.relu_grad(r.output)).transpose()?;
        let dy = masked.as_ref().unwrap_or(dy);
        let (out, params) = match params {
            Some(dtype) => dy.channel_norm_grads_of(x, self.count, &rows, dtype)?,
            None => {
                let step = ChannelNormStep::Backward { count: self.count };
                let out = dy.channel_norm_of(Some(x), step, &rows)?;
                let params = out.narrow(0, 4, 2)?;
                (out, params)
            }
        };
        Ok(InputGradient {
            dx: dy.channel_lincomb(Some(x), &out.narrow(0, 0, 3)?)?,
            params,
            masked: masked.filter(|_| relu.is_some_and(|r| r.residual)),
        })
    }
}

#[cfg(test)]
mod tests {
    use sinew_tensor::{DType, Device, Generator, Result, Tensor};

    use super::batch_norm_batch_stats;
    use crate::fused_testing::Orders;
    use crate::layers::norm_node::Tail;

    /// Batch norm with batch statistics written op by op (the reference).
    fn reference(x: &Tensor, w: &Tensor, b: &Tensor) -> Result<Tensor> {
        let dims = [0isize, 2];
        let mean = x.mean(&dims, true)?;
        let xmu = x.sub(&mean)?;
        let invstd = xmu.square()?.mean(&dims, true)?.add_scalar(1e-5)?.rsqrt()?;
        let c = w.elem_count();
        xmu.mul(&invstd)?
            .mul(&w.reshape([1, c, 1])?)?
            .add(&b.reshape([1, c, 1])?)
    }

    /// Output, first gradients and (through create_graph) second gradients of `x` agree with
    /// the op-by-op form.
    #[test]
    fn first_and_second_order_gradients_match_the_op_by_op_form() -> Result<()> {
        let mut g = Generator::new(9);
        let cpu = Device::cpu();
        let x0 = g
            .randn([4, 3, 5], DType::F64, &cpu)?
            .mul_scalar(3.0)?
            .add_scalar(1.0)?;
        let w0 = g.randn([3], DType::F64, &cpu)?;
        let b0 = g.randn([3], DType::F64, &cpu)?;
        let probe = g.randn([4, 3, 5], DType::F64, &cpu)?;
        let run = |fused: bool| -> Result<Orders> {
            let (x, w, b) = (
                x0.clone().requires_grad_(),
                w0.clone().requires_grad_(),
                b0.clone().requires_grad_(),
            );
            let forward = || -> Result<Tensor> {
                if fused {
                    Ok(batch_norm_batch_stats(
                        &x,
                        None,
                        Some(&w),
                        Some(&b),
                        (0.1, 1e-5),
                        Tail::None,
                    )?
                    .expect("f64 on the CPU has per-channel kernels"))
                } else {
                    reference(&x, &w, &b)
                }
            };
            Orders::of(forward, Some(&probe), &[&x, &w, &b])
        };
        run(true)?.assert_close(&run(false)?, 1e-9, "batch norm");
        Ok(())
    }
}
