//! Softmax and log-softmax along a dim. Saved: the output only.

use super::untracked;
use crate::{Result, Save, Tensor};

impl Tensor {
    /// Softmax along `dim`. Backward: `y * (g - sum(g * y))`.
    pub fn softmax(&self, dim: isize) -> Result<Tensor> {
        if let Some(x) = crate::autocast::widened(self)? {
            return x.softmax(dim);
        }
        let out = untracked(|| self.softmax_untracked(dim))?;
        Ok(Tensor::from_op(
            out,
            "softmax",
            &[self],
            Save::OUTPUT,
            move |ctx, g| {
                let y = &ctx.output()?;
                let dot = g.mul(y)?.sum(&[dim], true)?;
                Ok(vec![Some(y.mul(&g.sub(&dot)?)?)])
            },
        ))
    }

    /// Log-softmax along `dim`. Backward: `g - exp(y) * sum(g)`.
    pub fn log_softmax(&self, dim: isize) -> Result<Tensor> {
        if let Some(x) = crate::autocast::widened(self)? {
            return x.log_softmax(dim);
        }
        let out = untracked(|| self.log_softmax_untracked(dim))?;
        Ok(Tensor::from_op(
            out,
            "log_softmax",
            &[self],
            Save::OUTPUT,
            move |ctx, g| {
                let total = g.sum(&[dim], true)?;
                Ok(vec![Some(g.sub(&ctx.output()?.exp()?.mul(&total)?)?)])
            },
        ))
    }
}
