//! The per-channel arithmetic of batch and layer norm between their full-size passes
//! ([`Tensor::channel_norm`]): from the channel sums (`Tensor::channel_sums`) to the mean, the
//! inverse standard deviation and the `channel_lincomb` coefficients, forward and backward, on
//! f64 `[C]` rows. One kernel on the GPU (`Backend::channel_norm`, `cuda/channel.cu`) where the
//! same formulas as tensor ops (below: the reference, and the default of every backend) launch
//! a dozen kernels of `C` elements. Same values bit for bit: each step is one IEEE f64 operation
//! in the same order.

use crate::{DType, Error, Result, Tensor};

/// Which half of a normalisation [`Tensor::channel_norm`] computes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ChannelNormStep {
    /// Rows `[sums, scale?, shift?]`: `sums` `[2, C]` holds `sum x` and `sum x²` over `count`
    /// values a channel; `scale`, `shift` `[C]` (1 and 0 when absent). Result rows: `k`, `0`,
    /// `b` (so `k x + b` is the normalised, scaled and shifted `x`: `channel_lincomb`'s
    /// coefficients), `mean`, `invstd = 1 / sqrt(var + eps)`, and the biased `var`
    /// (`sum x² / count - mean²`, at least 0).
    Forward {
        /// Values a channel.
        count: f64,
        /// Added to the variance.
        eps: f64,
    },
    /// Rows `[sums, mean, invstd, scale?]`: `sums` `[2, C]` holds `sum dy` and `sum dy x`.
    /// Result rows: `k1`, `k2`, `k3` (`dx = k1 dy + k2 x + k3`), `sum dy (x - mean)`, then the
    /// affine parameters' gradients side by side (one cast takes both): the scale's,
    /// `sum dy (x - mean) * invstd`, and the shift's, `sum dy`.
    Backward {
        /// Values a channel.
        count: f64,
    },
}

impl ChannelNormStep {
    /// The `[C]` rows the step reads after `sums` when `scale` (and, forward, `shift`) are
    /// given.
    fn rows(&self) -> usize {
        match self {
            ChannelNormStep::Forward { .. } => 2,
            ChannelNormStep::Backward { .. } => 3,
        }
    }
}

/// Row `k` of a `[R, C]` tensor, as `[C]`.
fn row(t: &Tensor, k: usize) -> Result<Tensor> {
    let c = t.dims()[1];
    t.narrow(0, k, 1)?.reshape([c])
}

/// Checks the `[C]` rows of `step` after the sums (on `device`, f64 but for an f32 scale or
/// shift, none recorded for autograd) and returns them dense.
pub(crate) fn checked_rows(
    op: &'static str,
    step: ChannelNormStep,
    device: &Tensor,
    c: usize,
    rows: &[&Tensor],
) -> Result<Vec<Tensor>> {
    let need = step.rows();
    let fixed = match step {
        ChannelNormStep::Forward { .. } => 0,
        ChannelNormStep::Backward { .. } => 2,
    };
    if rows.len() < fixed || rows.len() > need {
        return Err(Error::invalid(
            op,
            format!(
                "expects {fixed} to {need} rows after the sums, got {}",
                rows.len()
            ),
        ));
    }
    for (k, t) in rows.iter().enumerate() {
        device.check_same_device(op, t)?;
        let recorded = crate::is_grad_enabled() && t.requires_grad();
        let dtype_ok = t.dtype() == DType::F64 || (k >= fixed && t.dtype() == DType::F32);
        if !dtype_ok || recorded {
            return Err(Error::invalid(
                op,
                "expects f64 operands (the scale and shift may be f32) that do not require grad",
            ));
        }
        if t.dims() != [c] {
            return Err(Error::ShapeMismatch {
                op,
                lhs: crate::Shape::new([c]),
                rhs: t.shape().clone(),
            });
        }
    }
    rows.iter().map(|t| t.contiguous()).collect()
}

impl Tensor {
    /// The per-channel step `step` of a normalisation (see [`ChannelNormStep`] for the rows it
    /// reads and the `[6, C]` f64 rows it returns): `sums` `[2, C]` and `rows` the `[C]` ones,
    /// all on one device and f64, but for `scale` and `shift`, which may be f32 (a layer's
    /// parameters, read exactly as f64: no cast of its own); the absent trailing rows count as
    /// 1 and 0. Not differentiable (batch and layer norm record their own backward rule).
    pub fn channel_norm(step: ChannelNormStep, sums: &Tensor, rows: &[&Tensor]) -> Result<Tensor> {
        const OP: &str = "channel_norm";
        let &[2, c] = sums.dims() else {
            return Err(Error::invalid(
                OP,
                format!("sums must be [2, C], got {}", sums.shape()),
            ));
        };
        if sums.dtype() != DType::F64 || (crate::is_grad_enabled() && sums.requires_grad()) {
            return Err(Error::invalid(
                OP,
                "expects f64 sums that do not require grad",
            ));
        }
        let dense_rows = checked_rows(OP, step, sums, c, rows)?;
        let sums = sums.contiguous()?;
        let refs: Vec<&Tensor> = std::iter::once(&sums).chain(&dense_rows).collect();
        let backend = sums.device().backend();
        let fused = Tensor::with_storage_slice(&refs, |storages| {
            let views: Vec<_> = storages
                .iter()
                .zip(&refs)
                .map(|(s, t)| (*s, t.layout().offset()))
                .collect();
            backend.channel_norm(step, &views, c)
        })?;
        match fused {
            Some(storage) => Tensor::from_storage(storage, [6, c], sums.device().clone()),
            None => {
                // f32 scale and shift rows, widened exactly.
                let wide: Vec<Tensor> = rows
                    .iter()
                    .map(|t| match t.dtype() {
                        DType::F64 => Ok((*t).clone()),
                        _ => t.to_dtype(DType::F64),
                    })
                    .collect::<Result<_>>()?;
                composed(step, &sums, &wide.iter().collect::<Vec<_>>())
            }
        }
    }

    /// `Tensor::channel_norm(step, &self.channel_sums(other)?, rows)`: the per-channel step of
    /// this `[n, C, ...]` tensor's channel sums, in one kernel where the backend has one (the
    /// block that finishes a channel's sums computes its rows; the same bits as the two ops).
    /// Not differentiable.
    pub fn channel_norm_of(
        &self,
        other: Option<&Tensor>,
        step: ChannelNormStep,
        rows: &[&Tensor],
    ) -> Result<Tensor> {
        const OP: &str = "channel_norm_of";
        let c = self.check_channel_operands(OP, other)?;
        let dense_rows = checked_rows(OP, step, self, c, rows)?;
        let mut refs: Vec<&Tensor> = vec![self];
        refs.extend(other);
        refs.extend(&dense_rows);
        let backend = self.device().backend();
        let fused = Tensor::with_storage_slice(&refs, |storages| {
            let (a, rest) = (storages[0], &storages[1..]);
            let b = other.map(|o| (rest[0], o.layout()));
            let skip = usize::from(other.is_some());
            let views: Vec<_> = rest[skip..]
                .iter()
                .zip(&dense_rows)
                .map(|(s, t)| (*s, t.layout().offset()))
                .collect();
            backend.channel_norm_of((a, self.layout()), b, step, &views)
        })?;
        match fused {
            Some(storage) => Tensor::from_storage(storage, [6, c], self.device().clone()),
            None => Tensor::channel_norm(step, &self.channel_sums(other)?, rows),
        }
    }

    /// [`Tensor::channel_norm_of`]'s backward step on the gradient `self` and the input `x`
    /// (`count` values a channel; `rows` as there) and the affine parameters' gradients, rows 4
    /// and 5 of its `[6, C]` result, as `[2, C]` of dtype `params`: one kernel where the
    /// backend has one (CUDA, f32 parameters), else the step and a cast, with the same values.
    /// Not differentiable.
    pub fn channel_norm_grads_of(
        &self,
        x: &Tensor,
        count: f64,
        rows: &[&Tensor],
        params: DType,
    ) -> Result<(Tensor, Tensor)> {
        if let Some(both) = self.grads_kernel(None, x, count, rows, params)? {
            return Ok(both);
        }
        let step = ChannelNormStep::Backward { count };
        let out = self.channel_norm_of(Some(x), step, rows)?;
        let grads = out.narrow(0, 4, 2)?.to_dtype(params)?;
        Ok((out, grads))
    }

    /// [`Tensor::channel_norm_grads_of`] of `self.relu_grad(mask)` (`mask` of `self`'s shape
    /// and dtype: the output of a ReLU that followed) in one kernel, with the same values;
    /// `Ok(None)` where the backend has no kernel for it (the caller then masks the gradient
    /// once and runs the unmasked ops: see [`Tensor::channel_lincomb_masked`] for the other
    /// half of the input gradient). Not differentiable.
    pub fn channel_norm_grads_masked(
        &self,
        mask: &Tensor,
        x: &Tensor,
        count: f64,
        rows: &[&Tensor],
        params: DType,
    ) -> Result<Option<(Tensor, Tensor)>> {
        self.check_channel_operands("channel_norm_grads_masked", Some(mask))?;
        self.grads_kernel(Some(mask), x, count, rows, params)
    }

    /// [`Backend::channel_norm_grads_of`](crate::Backend::channel_norm_grads_of) on these
    /// operands, after checking them; `None` where the backend has no kernel for them.
    fn grads_kernel(
        &self,
        mask: Option<&Tensor>,
        x: &Tensor,
        count: f64,
        rows: &[&Tensor],
        params: DType,
    ) -> Result<Option<(Tensor, Tensor)>> {
        const OP: &str = "channel_norm_grads_of";
        let c = self.check_channel_operands(OP, Some(x))?;
        let step = ChannelNormStep::Backward { count };
        let dense_rows = checked_rows(OP, step, self, c, rows)?;
        let mut refs: Vec<&Tensor> = vec![self, x];
        refs.extend(mask);
        refs.extend(&dense_rows);
        let backend = self.device().backend();
        let fused = Tensor::with_storage_slice(&refs, |storages| {
            let skip = 2 + usize::from(mask.is_some());
            let views: Vec<_> = storages[skip..]
                .iter()
                .zip(&dense_rows)
                .map(|(s, t)| (*s, t.layout().offset()))
                .collect();
            let (dy, x) = ((storages[0], self.layout()), (storages[1], x.layout()));
            let mask = mask.map(|m| (storages[2], m.layout()));
            backend.channel_norm_grads_of(dy, mask, x, count, &views, params)
        })?;
        let device = self.device();
        match fused {
            Some((out, grads)) if grads.dtype() == params => Ok(Some((
                Tensor::from_storage(out, [6, c], device.clone())?,
                Tensor::from_storage(grads, [2, c], device.clone())?,
            ))),
            Some((_, grads)) => Err(Error::invalid(
                OP,
                format!(
                    "the backend returned {} gradients, not {params}",
                    grads.dtype()
                ),
            )),
            None => Ok(None),
        }
    }
}

/// [`Tensor::channel_norm`] with tensor ops (each an f64 operation per element).
fn composed(step: ChannelNormStep, sums: &Tensor, rows: &[&Tensor]) -> Result<Tensor> {
    let (s0, s1) = (row(sums, 0)?, row(sums, 1)?);
    let out = match step {
        ChannelNormStep::Forward { count, eps } => {
            let mean = s0.div_scalar(count)?;
            let var = s1
                .div_scalar(count)?
                .sub(&mean.square()?)?
                .clamp(0.0, f64::INFINITY)?;
            let invstd = var.add_scalar(eps)?.rsqrt()?;
            let k = match rows.first() {
                Some(scale) => invstd.mul(scale)?,
                None => invstd.clone(),
            };
            let mk = mean.mul(&k)?;
            let b = match rows.get(1) {
                Some(shift) => shift.sub(&mk)?,
                None => mk.rsub_scalar(0.0)?,
            };
            [k.clone(), k.zeros_like()?, b, mean, invstd, var]
        }
        ChannelNormStep::Backward { count } => {
            let (mean, invstd) = (rows[0], rows[1]);
            let sum_dy_xmu = s1.sub(&mean.mul(&s0)?)?;
            let k1 = match rows.get(2) {
                Some(scale) => invstd.mul(scale)?,
                None => invstd.clone(),
            };
            let k2 = k1
                .mul(&invstd.square()?)?
                .mul(&sum_dy_xmu)?
                .div_scalar(-count)?;
            let k3 = k1.mul(&s0)?.div_scalar(-count)?.sub(&k2.mul(mean)?)?;
            let dscale = sum_dy_xmu.mul(invstd)?;
            [k1, k2, k3, sum_dy_xmu, dscale, s0]
        }
    };
    Tensor::stack(&out, 0)
}

#[cfg(test)]
mod tests {
    use crate::{ChannelNormStep, DType, Device, Generator, Tensor};

    /// `channel_norm_of` is `channel_norm` of the tensor's sums (the CPU composes the two), and
    /// both check their rows the same way.
    #[test]
    fn norm_of_a_tensor_is_the_norm_of_its_sums() {
        let mut g = Generator::new(8);
        let cpu = Device::cpu();
        let x = g.randn([4, 3, 5], DType::F32, &cpu).unwrap();
        let dy = g.randn([4, 3, 5], DType::F32, &cpu).unwrap();
        let scale = g.randn([3], DType::F32, &cpu).unwrap();
        let forward = ChannelNormStep::Forward {
            count: 20.0,
            eps: 1e-5,
        };
        let fwd = x.channel_norm_of(None, forward, &[&scale]).unwrap();
        let sums = x.channel_sums(None).unwrap();
        let want = Tensor::channel_norm(forward, &sums, &[&scale]).unwrap();
        assert_eq!(fwd.to_vec::<f64>().unwrap(), want.to_vec::<f64>().unwrap());
        let row = |k: usize| fwd.narrow(0, k, 1).unwrap().reshape([3]).unwrap();
        let (mean, invstd) = (row(3), row(4));
        let backward = ChannelNormStep::Backward { count: 20.0 };
        let rows = [&mean, &invstd, &scale];
        let got = dy.channel_norm_of(Some(&x), backward, &rows).unwrap();
        let sums = dy.channel_sums(Some(&x)).unwrap();
        let want = Tensor::channel_norm(backward, &sums, &rows).unwrap();
        assert_eq!(got.to_vec::<f64>().unwrap(), want.to_vec::<f64>().unwrap());
        // Backward needs the mean and invstd rows, in f64.
        assert!(dy.channel_norm_of(Some(&x), backward, &[&mean]).is_err());
        let narrow_mean = mean.to_dtype(DType::F32).unwrap();
        let bad = [&narrow_mean, &invstd];
        assert!(dy.channel_norm_of(Some(&x), backward, &bad).is_err());
        assert!(Tensor::channel_norm(backward, &sums, &bad).is_err());
        let short = Tensor::zeros([2], DType::F64, &cpu).unwrap();
        assert!(x.channel_norm_of(None, forward, &[&short]).is_err());
        // With the parameters' gradients: the same rows, and rows 4 and 5 cast.
        let (rows_again, grads) = dy
            .channel_norm_grads_of(&x, 20.0, &rows, DType::F32)
            .unwrap();
        assert_eq!(
            rows_again.to_vec::<f64>().unwrap(),
            got.to_vec::<f64>().unwrap()
        );
        let cast = got.narrow(0, 4, 2).unwrap().to_dtype(DType::F32).unwrap();
        assert_eq!(grads.dims(), [2, 3]);
        assert_eq!(
            grads.to_vec::<f32>().unwrap(),
            cast.to_vec::<f32>().unwrap()
        );
        assert!(
            dy.channel_norm_grads_of(&x, 20.0, &bad, DType::F32)
                .is_err()
        );
        // The CPU has no masked kernel (its caller masks first), but checks the mask.
        let y = x.relu().unwrap();
        let masked = dy.channel_norm_grads_masked(&y, &x, 20.0, &rows, DType::F32);
        assert!(masked.unwrap().is_none(), "no masked kernel on the CPU");
        let wrong = Tensor::zeros([4, 3, 4], DType::F32, &cpu).unwrap();
        let wrong = dy.channel_norm_grads_masked(&wrong, &x, 20.0, &rows, DType::F32);
        assert!(wrong.is_err(), "a mask of another shape");
    }
}
