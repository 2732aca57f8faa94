//! Statistics: variance, standard deviation, log-sum-exp and vector norms, composed from the
//! reductions of `reduce.rs`. f16/bf16 inputs are computed in f32 and rounded once at the end,
//! as PyTorch accumulates them in float: an f16 sum of squares overflows long before the
//! variance or the norm does.

use crate::{DType, Error, Result, Tensor};

/// `f(x)` where `x != 0`, and 0 with a zero gradient where `x == 0`: for roots (`f(0) = 0`,
/// with an infinite slope there) whose `inf * 0` would turn the gradient of a zero norm or a
/// zero deviation into NaN. PyTorch gives those the subgradient 0.
fn zero_safe(x: &Tensor, f: impl Fn(&Tensor) -> Result<Tensor>) -> Result<Tensor> {
    let zero = x.eq_scalar(0.0)?;
    let ones = Tensor::ones((), x.dtype(), x.device())?;
    let zeros = Tensor::zeros((), x.dtype(), x.device())?;
    zero.where_cond(&zeros, &f(&zero.where_cond(&ones, x)?)?)
}

impl Tensor {
    /// `f` of `self` in f32, rounded back to `self`'s dtype, for an f16/bf16 tensor outside
    /// autocast (under autocast the reductions widen to f32 themselves and the result stays
    /// f32); `None` for other dtypes.
    fn in_f32(&self, f: impl FnOnce(&Tensor) -> Result<Tensor>) -> Option<Result<Tensor>> {
        let half = matches!(self.dtype(), DType::F16 | DType::BF16);
        if !half || crate::autocast::is_autocast_enabled() {
            return None;
        }
        Some(
            self.to_dtype(DType::F32)
                .and_then(|wide| f(&wide))
                .and_then(|out| out.to_dtype(self.dtype())),
        )
    }

    /// Variance over `dims` with `correction` (1 = unbiased, PyTorch's default).
    /// PyTorch equivalent: `torch.var(x, dims, correction=c, keepdim)`.
    pub fn var(&self, dims: &[isize], correction: usize, keepdim: bool) -> Result<Tensor> {
        self.check_float("var")?;
        if let Some(out) = self.in_f32(|x| x.var(dims, correction, keepdim)) {
            return out;
        }
        let count = self.reduced_count(&self.resolve_dims("var", dims)?);
        let centered = self.sub(&self.mean(dims, true)?)?;
        let denom = count.saturating_sub(correction) as f64;
        centered.square()?.sum(dims, keepdim)?.div_scalar(denom)
    }

    /// Standard deviation: the square root of [`Tensor::var`] (gradient 0 where it is 0, as
    /// PyTorch).
    pub fn std(&self, dims: &[isize], correction: usize, keepdim: bool) -> Result<Tensor> {
        if let Some(out) = self.in_f32(|x| x.std(dims, correction, keepdim)) {
            return out;
        }
        zero_safe(&self.var(dims, correction, keepdim)?, Tensor::sqrt)
    }

    /// `log(sum(exp(x)))` over `dims`, computed stably. PyTorch equivalent: `torch.logsumexp`.
    pub fn logsumexp(&self, dims: &[isize], keepdim: bool) -> Result<Tensor> {
        self.check_float("logsumexp")?;
        let resolved = self.resolve_dims("logsumexp", dims)?;
        if self.reduced_count(&resolved) == 0 {
            // The log of an empty sum: -inf everywhere. PyTorch: torch.zeros(2, 0).logsumexp(1) = [-inf, -inf]
            return Tensor::full(
                self.reduced_shape(&resolved, keepdim),
                f64::NEG_INFINITY,
                self.dtype(),
                self.device(),
            );
        }
        // The shift is a constant (the gradient is the softmax either way).
        let max = self.detach().max(dims, true)?;
        // Infinite maxima (all -inf rows, or +inf) are not subtracted, as in PyTorch.
        let finite = max.abs()?.lt_scalar(f64::INFINITY)?;
        let shift =
            finite.where_cond(&max, &Tensor::full((), 0.0, self.dtype(), self.device())?)?;
        let out = self
            .sub(&shift)?
            .exp()?
            .sum(dims, true)?
            .log()?
            .add(&shift)?;
        if keepdim {
            Ok(out)
        } else {
            out.reshape(self.reduced_shape(&resolved, false))
        }
    }

    /// The p-norm over `dims`: `p = 2` Euclidean, `1` Manhattan, `f64::INFINITY` max-abs,
    /// `f64::NEG_INFINITY` min-abs, `0` the count of non-zero elements.
    /// As in PyTorch, a zero norm (and for `p < 1` a zero element) gets the gradient 0, not
    /// NaN. PyTorch equivalent: `torch.linalg.vector_norm(x, p, dims, keepdim)`.
    pub fn norm(&self, p: f64, dims: &[isize], keepdim: bool) -> Result<Tensor> {
        self.check_float("norm")?;
        if let Some(out) = self.in_f32(|x| x.norm(p, dims, keepdim)) {
            return out;
        }
        let a = self.abs()?;
        if p == f64::INFINITY {
            a.max(dims, keepdim)
        } else if p == f64::NEG_INFINITY {
            a.min(dims, keepdim)
        } else if p == 0.0 {
            // The count of non-zero elements (PyTorch's `ord=0`); not differentiable (PyTorch:
            // a zero gradient).
            a.detach()
                .ne_scalar(0.0)?
                .to_dtype(self.dtype())?
                .sum(dims, keepdim)
        } else if p == 1.0 {
            a.sum(dims, keepdim)
        } else if p == 2.0 {
            zero_safe(&a.square()?.sum(dims, keepdim)?, Tensor::sqrt)
        } else if p > 0.0 {
            let powered = if p < 1.0 {
                zero_safe(&a, |a| a.powf(p))?
            } else {
                a.powf(p)?
            };
            zero_safe(&powered.sum(dims, keepdim)?, |s| s.powf(1.0 / p))
        } else {
            Err(Error::invalid(
                "norm",
                format!("p must be 0, positive or -inf, got {p}"),
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::{DType, Device, Tensor};

    #[test]
    fn variance_with_correction() {
        // torch.var(torch.tensor([1., 2., 3., 4.])) = 1.6667; correction=0 -> 1.25
        let x = Tensor::from_vec(vec![1.0f64, 2.0, 3.0, 4.0], [4]).unwrap();
        assert!(
            (x.var(&[], 1, false).unwrap().to_scalar::<f64>().unwrap() - 5.0 / 3.0).abs() < 1e-12
        );
        assert!((x.var(&[], 0, false).unwrap().to_scalar::<f64>().unwrap() - 1.25).abs() < 1e-12);
        assert!(
            (x.std(&[], 1, false).unwrap().to_scalar::<f64>().unwrap() - (5.0f64 / 3.0).sqrt())
                .abs()
                < 1e-12
        );
    }

    #[test]
    fn norms() {
        let x = Tensor::from_vec(vec![3.0f32, -4.0], [2]).unwrap();
        assert_eq!(
            x.norm(2.0, &[], false).unwrap().to_scalar::<f32>().unwrap(),
            5.0
        );
        assert_eq!(
            x.norm(1.0, &[], false).unwrap().to_scalar::<f32>().unwrap(),
            7.0
        );
        assert_eq!(
            x.norm(f64::INFINITY, &[], false)
                .unwrap()
                .to_scalar::<f32>()
                .unwrap(),
            4.0
        );
    }

    #[test]
    fn half_precision_statistics_are_computed_in_f32_as_in_pytorch() {
        // x = torch.tensor([200., -200., 200., -200.], dtype=torch.half)
        // x.var() == 53344, x.std() == 231, torch.linalg.vector_norm(x) == 400 (the f16 sum of
        // squares, 160000, is inf); torch.full((1000,), 10., dtype=torch.half).norm() == 316.25
        let x = Tensor::from_vec(vec![200.0f32, -200.0, 200.0, -200.0], [4])
            .unwrap()
            .to_dtype(DType::F16)
            .unwrap();
        let value = |t: Tensor| {
            assert_eq!(t.dtype(), DType::F16);
            t.to_vec_f64().unwrap()[0]
        };
        assert_eq!(value(x.var(&[], 1, false).unwrap()), 53344.0);
        assert_eq!(value(x.std(&[], 1, false).unwrap()), 231.0);
        assert_eq!(value(x.norm(2.0, &[], false).unwrap()), 400.0);
        let tens = Tensor::full([1000], 10.0, DType::F16, &Device::cpu()).unwrap();
        assert_eq!(value(tens.norm(2.0, &[], false).unwrap()), 316.25);
    }

    #[test]
    fn zero_and_minus_infinity_norms() {
        // torch.linalg.vector_norm(torch.tensor([0., 2., 0., -3.]), 0) == 2; (..., -inf) == 0
        let x = Tensor::from_vec(vec![0.0f32, 2.0, 0.0, -3.0], [4]).unwrap();
        let norm = |p: f64| x.norm(p, &[], false).unwrap().to_scalar::<f32>().unwrap();
        assert_eq!(norm(0.0), 2.0);
        assert_eq!(norm(f64::NEG_INFINITY), 0.0);
        let y = Tensor::from_vec(vec![-5.0f32, 2.0], [2]).unwrap();
        let min_abs = y.norm(f64::NEG_INFINITY, &[], false).unwrap();
        assert_eq!(min_abs.to_scalar::<f32>().unwrap(), 2.0);
        assert!(x.norm(-1.0, &[], false).is_err());
    }
}
