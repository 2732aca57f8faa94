//! Max pooling keeps the argmax indices and routes the gradient to them (PyTorch's rule);
//! average pooling runs the backend's direct kernels where it has them (its backward spreads
//! each window's gradient over its taps) and is otherwise a composite (`ops/pool.rs`), as is
//! 1-d pooling.

use super::untracked;
use crate::ops::pool::window_counts;
use crate::{Error, Pool2dConfig, Result, Save, Shape, Tensor, Unfold2d};

impl Tensor {
    /// Max pooling of `[n, c, h, w]`: values and PyTorch-style flat indices. Backward: the
    /// gradient added at the indices ([`crate::Backend::max_pool2d_backward`]), which are
    /// checked again only if they were written to since (the returned indices share their
    /// storage: their version counter tells). Saved: the indices and the window.
    pub fn max_pool2d(&self, cfg: Pool2dConfig) -> Result<(Tensor, Tensor)> {
        let (values, indices) = untracked(|| self.max_pool2d_untracked(cfg))?;
        if !self.requires_grad() {
            return Ok((values, indices));
        }
        let spec = cfg.spec("max_pool2d", self, f64::NEG_INFINITY)?;
        let (saved, version) = (indices.clone(), indices.version());
        let out = Tensor::from_op(values, "max_pool2d", &[self], Save::NOTHING, move |_, g| {
            let trusted = saved.version() == version;
            Ok(vec![Some(g.max_pool2d_backward(&saved, &spec, trusted)?)])
        });
        Ok((out, indices))
    }

    /// Max pooling's input gradient from the output gradient `self`, differentiable: its own
    /// backward gathers the incoming gradient at the same indices.
    fn max_pool2d_backward(
        &self,
        indices: &Tensor,
        spec: &Unfold2d,
        trusted: bool,
    ) -> Result<Tensor> {
        let out = untracked(|| self.max_pool2d_backward_untracked(indices, spec, trusted))?;
        let (idx, plane) = (indices.clone(), spec.h * spec.w);
        Ok(Tensor::from_op(
            out,
            "max_pool2d_backward",
            &[self],
            Save::NOTHING,
            move |_, gg| {
                let &[n, c, oh, ow] = idx.dims() else {
                    return Err(Error::invalid(
                        "max_pool2d double backward",
                        "expects 4-d indices",
                    ));
                };
                let rows = idx.reshape([n, c, oh * ow])?;
                let gg = gg.reshape([n, c, plane])?;
                Ok(vec![Some(gg.gather(2, &rows)?.reshape([n, c, oh, ow])?)])
            },
        ))
    }

    /// Average pooling of `[n, c, h, w]`. PyTorch equivalent: `F.avg_pool2d`. The backend's
    /// direct kernel ([`crate::Backend::avg_pool2d`]) where it has one, with the backward
    /// `avg_pool2d_backward`; else composed from unfold2d, a sum and a division.
    /// Saved: the window.
    pub fn avg_pool2d(&self, cfg: Pool2dConfig) -> Result<Tensor> {
        let spec = self.avg_pool2d_spec(cfg)?;
        let include = cfg.count_include_pad;
        let Some(out) = untracked(|| self.avg_pool2d_direct(&spec, include))? else {
            return self.avg_pool2d_composed(cfg);
        };
        if !self.requires_grad() {
            return Ok(out);
        }
        Ok(Tensor::from_op(
            out,
            "avg_pool2d",
            &[self],
            Save::NOTHING,
            move |_, g| Ok(vec![Some(g.avg_pool2d_backward(&spec, include)?)]),
        ))
    }

    /// Average pooling's input gradient from the output gradient `self`, differentiable (a
    /// linear map whose own backward is the average pooling of the incoming gradient).
    fn avg_pool2d_backward(&self, spec: &Unfold2d, include: bool) -> Result<Tensor> {
        let out = untracked(|| self.avg_pool2d_backward_untracked(spec, include))?;
        let cfg = Pool2dConfig {
            kernel: spec.kernel,
            stride: Some(spec.stride),
            padding: spec.padding,
            dilation: (1, 1),
            count_include_pad: include,
        };
        Ok(Tensor::from_op(
            out,
            "avg_pool2d_backward",
            &[self],
            Save::NOTHING,
            move |_, gg| Ok(vec![Some(gg.avg_pool2d(cfg)?)]),
        ))
    }

    /// The backend's direct average-pooling backward, or: each window's gradient divided by
    /// its count, spread over the window's taps as columns and summed back by `fold2d`.
    fn avg_pool2d_backward_untracked(&self, spec: &Unfold2d, include: bool) -> Result<Tensor> {
        const OP: &str = "avg_pool2d backward";
        let (oh, ow) = spec.check(OP)?;
        let (n, c, l) = (spec.n, spec.c, oh * ow);
        let expected = Shape::new([n, c, oh, ow]);
        if self.shape() != &expected {
            return Err(Error::ShapeMismatch {
                op: OP,
                lhs: self.shape().clone(),
                rhs: expected,
            });
        }
        let device = self.device();
        let backend = device.backend();
        let direct =
            self.with_storage(|s, lay| backend.avg_pool2d_backward(s, lay, spec, include))?;
        if let Some(out) = direct {
            return Tensor::from_storage(out, [n, c, spec.h, spec.w], device.clone());
        }
        let taps = spec.kernel.0 * spec.kernel.1;
        let rows = self.reshape([n, c, l])?;
        let scaled = if include {
            rows.div_scalar(taps as f64)?
        } else {
            rows.div(&window_counts(spec, self.dtype(), device)?)?
        };
        let zero_pad = Unfold2d {
            pad_value: 0.0,
            ..*spec
        };
        scaled
            .reshape([n, c, 1, l])?
            .expand([n, c, taps, l])?
            .contiguous()?
            .reshape([n, c * taps, l])?
            .fold2d(&zero_pad)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{DType, Device, Generator};

    #[test]
    fn avg_pool_backward_fallback_equals_the_composite_gradient() {
        // The backward used when a backend pools directly but has no backward kernel, against
        // autograd through the composed forward (unfold, sum, divide): padding, overlapping
        // windows and both divisors.
        let cpu = Device::cpu();
        let mut rng = Generator::new(3);
        let x = rng
            .uniform([2, 3, 7, 6], -1.0, 1.0, DType::F64, &cpu)
            .unwrap();
        for include in [true, false] {
            let cfg = Pool2dConfig {
                kernel: (3, 2),
                stride: Some((2, 1)),
                padding: (1, 1),
                dilation: (1, 1),
                count_include_pad: include,
            };
            let leaf = x.detach().requires_grad_();
            let y = leaf.avg_pool2d_composed(cfg).unwrap();
            let g = rng
                .uniform(y.dims().to_vec(), -1.0, 1.0, DType::F64, &cpu)
                .unwrap();
            y.mul(&g).unwrap().sum_all().unwrap().backward().unwrap();
            let spec = x.avg_pool2d_spec(cfg).unwrap();
            let fallback = g.avg_pool2d_backward_untracked(&spec, include).unwrap();
            let (a, b) = (
                leaf.grad().unwrap().to_vec::<f64>().unwrap(),
                fallback.to_vec::<f64>().unwrap(),
            );
            let worst = a
                .iter()
                .zip(&b)
                .map(|(p, q)| (p - q).abs())
                .fold(0.0, f64::max);
            assert!(
                worst < 1e-14,
                "count_include_pad {include}: differs by {worst}"
            );
        }
    }
}
