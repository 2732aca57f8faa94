//! Reductions: sum, mean, prod, max/min (values, and with indices), and composites built on them
//! (var, std, logsumexp, norm). Saved: input and output for prod/max/min; nothing for sum/mean.

use sinew_tensor::{Result, Shape, Tensor};

use crate::{Save, Var};

/// `f(x)` where `x != 0`, and 0 with a zero gradient where `x == 0`: for roots (`f(0) = 0`, with
/// an infinite slope there) whose `∞ · 0` would turn the gradient of a zero norm or a zero
/// deviation into NaN. PyTorch gives those the subgradient 0.
fn zero_safe(x: &Var, f: impl Fn(&Var) -> Result<Var>) -> Result<Var> {
    let zero = x.tensor().eq_scalar(0.0)?;
    let ones = Var::constant(Tensor::ones((), x.dtype(), x.device())?);
    let zeros = Var::constant(Tensor::zeros((), x.dtype(), x.device())?);
    Var::where_cond(&zero, &zeros, &f(&Var::where_cond(&zero, &ones, x)?)?)
}

impl Var {
    /// Broadcasts a reduced gradient (keepdim or not) back over the input's `shape`.
    fn expand_reduced(g: &Var, shape: &Shape, dims: &[usize]) -> Result<Var> {
        let kept: Vec<usize> = shape
            .dims()
            .iter()
            .enumerate()
            .map(|(i, &d)| if dims.contains(&i) { 1 } else { d })
            .collect();
        g.reshape(kept)?.broadcast_to(shape.clone())
    }

    /// Sum over `dims` (empty = all). Backward: the gradient broadcast back.
    pub fn sum(&self, dims: &[isize], keepdim: bool) -> Result<Var> {
        let resolved = self.tensor().resolve_dims("sum", dims)?;
        let out = self.tensor().sum(dims, keepdim)?;
        Ok(Var::from_op(
            out,
            "sum",
            &[self],
            Save::NOTHING,
            move |ctx, g| {
                Ok(vec![Some(Var::expand_reduced(
                    g,
                    ctx.input_shape(0),
                    &resolved,
                )?)])
            },
        ))
    }

    /// Sum of all elements.
    pub fn sum_all(&self) -> Result<Var> {
        self.sum(&[], false)
    }

    /// Mean over `dims` (empty = all).
    pub fn mean(&self, dims: &[isize], keepdim: bool) -> Result<Var> {
        let count = self
            .tensor()
            .reduced_count(&self.tensor().resolve_dims("mean", dims)?);
        self.sum(dims, keepdim)?.div_scalar(count as f64)
    }

    /// Mean of all elements.
    pub fn mean_all(&self) -> Result<Var> {
        self.mean(&[], false)
    }

    /// Product over `dims`. Backward: the product of the other elements (exact with zeros).
    pub fn prod(&self, dims: &[isize], keepdim: bool) -> Result<Var> {
        let resolved = self.tensor().resolve_dims("prod", dims)?;
        let out = self.tensor().prod(dims, keepdim)?;
        Ok(Var::from_op(
            out,
            "prod",
            &[self],
            Save::input(0),
            move |ctx, g| {
                let x = &ctx.input(0)?;
                let xt = x.tensor();
                let is_zero = xt.eq_scalar(0.0)?;
                let ones = xt.ones_like()?;
                let dims: Vec<isize> = resolved.iter().map(|&d| d as isize).collect();
                // Product of the non-zero elements, and how many zeros each slice holds.
                let nonzero = Var::where_cond(&is_zero, &Var::constant(ones), x)?;
                let nz_prod =
                    Var::expand_reduced(&nonzero.prod(&dims, true)?, x.shape(), &resolved)?;
                let zeros = is_zero.to_dtype(xt.dtype())?.sum(&dims, true)?;
                let zeros = zeros.broadcast_to(xt.shape().clone())?;
                let g = Var::expand_reduced(g, x.shape(), &resolved)?;
                // No zero: prod / x. One zero: the zero gets prod(others), the rest 0. More: all 0.
                let one_zero = zeros.eq_scalar(1.0)?;
                let no_zero = zeros.eq_scalar(0.0)?;
                let fill_zero = Var::constant(xt.zeros_like()?);
                let at_zero = Var::where_cond(&one_zero, &nz_prod, &fill_zero)?;
                let elsewhere = Var::where_cond(&no_zero, &nz_prod.div(&nonzero)?, &fill_zero)?;
                Ok(vec![Some(
                    g.mul(&Var::where_cond(&is_zero, &at_zero, &elsewhere)?)?,
                )])
            },
        ))
    }

    fn extreme(&self, max: bool, dims: &[isize], keepdim: bool) -> Result<Var> {
        let resolved = self.tensor().resolve_dims("max", dims)?;
        let out = if max {
            self.tensor().max(dims, keepdim)?
        } else {
            self.tensor().min(dims, keepdim)?
        };
        Ok(Var::from_op(
            out,
            if max { "max" } else { "min" },
            &[self],
            Save::input(0).and_output(),
            move |ctx, g| {
                // PyTorch (amax/amin): the gradient is shared evenly between tied extremes.
                let x = &ctx.input(0)?;
                let y = Var::expand_reduced(&ctx.output()?.detach(), x.shape(), &resolved)?;
                let hits = x.tensor().eq(y.tensor())?.to_dtype(x.dtype())?;
                let dims: Vec<isize> = resolved.iter().map(|&d| d as isize).collect();
                let count = hits.sum(&dims, true)?;
                let share = Var::constant(hits.div(&count)?);
                Ok(vec![Some(
                    Var::expand_reduced(g, x.shape(), &resolved)?.mul(&share)?,
                )])
            },
        ))
    }

    /// Largest value over `dims` (ties share the gradient). PyTorch equivalent: `amax`.
    pub fn max(&self, dims: &[isize], keepdim: bool) -> Result<Var> {
        self.extreme(true, dims, keepdim)
    }

    /// Smallest value over `dims` (ties share the gradient). PyTorch equivalent: `amin`.
    pub fn min(&self, dims: &[isize], keepdim: bool) -> Result<Var> {
        self.extreme(false, dims, keepdim)
    }

    /// Largest values along `dim` and their i64 indices; the gradient goes to the index only.
    /// PyTorch equivalent: `torch.max(x, dim)`.
    pub fn max_dim(&self, dim: isize, keepdim: bool) -> Result<(Var, Tensor)> {
        let idx = self.tensor().argmax(dim, true)?;
        let values = self.gather(dim, &idx)?;
        let values = if keepdim {
            values
        } else {
            values.squeeze(dim)?
        };
        Ok((values, if keepdim { idx } else { idx.squeeze(dim)? }))
    }

    /// Smallest values along `dim` and their indices. PyTorch equivalent: `torch.min(x, dim)`.
    pub fn min_dim(&self, dim: isize, keepdim: bool) -> Result<(Var, Tensor)> {
        let idx = self.tensor().argmin(dim, true)?;
        let values = self.gather(dim, &idx)?;
        let values = if keepdim {
            values
        } else {
            values.squeeze(dim)?
        };
        Ok((values, if keepdim { idx } else { idx.squeeze(dim)? }))
    }

    /// Index of the largest value along `dim` (not differentiable).
    pub fn argmax(&self, dim: isize, keepdim: bool) -> Result<Tensor> {
        self.tensor().argmax(dim, keepdim)
    }

    /// Variance with `correction` (1 = unbiased), composed from differentiable ops.
    pub fn var(&self, dims: &[isize], correction: usize, keepdim: bool) -> Result<Var> {
        let count = self
            .tensor()
            .reduced_count(&self.tensor().resolve_dims("var", dims)?);
        let centered = self.sub(&self.mean(dims, true)?)?;
        centered
            .square()?
            .sum(dims, keepdim)?
            .div_scalar(count.saturating_sub(correction) as f64)
    }

    /// Standard deviation with `correction` (gradient 0 where it is 0, as PyTorch).
    pub fn std(&self, dims: &[isize], correction: usize, keepdim: bool) -> Result<Var> {
        zero_safe(&self.var(dims, correction, keepdim)?, Var::sqrt)
    }

    /// Stable `log(sum(exp(x)))` over `dims`; the shift is a constant, so the gradient is softmax.
    pub fn logsumexp(&self, dims: &[isize], keepdim: bool) -> Result<Var> {
        let max = self.tensor().max(dims, true)?;
        let finite = max.abs()?.lt_scalar(f64::INFINITY)?;
        let shift = Var::constant(finite.where_cond(&max, &max.zeros_like()?)?);
        let out = self
            .sub(&shift)?
            .exp()?
            .sum(dims, true)?
            .log()?
            .add(&shift)?;
        if keepdim {
            Ok(out)
        } else {
            let resolved = self.tensor().resolve_dims("logsumexp", dims)?;
            out.reshape(self.tensor().reduced_shape(&resolved, false))
        }
    }

    /// p-norm over `dims` (`p` = 1, 2, infinity or any positive value), composed. As in
    /// PyTorch (`torch.linalg.vector_norm`), a zero norm, and for `p < 1` a zero element, gets
    /// the gradient 0 instead of NaN.
    pub fn norm(&self, p: f64, dims: &[isize], keepdim: bool) -> Result<Var> {
        let a = self.abs()?;
        if p == f64::INFINITY {
            a.max(dims, keepdim)
        } else if p == 1.0 {
            a.sum(dims, keepdim)
        } else if p == 2.0 {
            zero_safe(&a.square()?.sum(dims, keepdim)?, Var::sqrt)
        } else {
            let powered = if p < 1.0 {
                zero_safe(&a, |a| a.powf(p))?
            } else {
                a.powf(p)?
            };
            zero_safe(&powered.sum(dims, keepdim)?, |s| s.powf(1.0 / p))
        }
    }
}
