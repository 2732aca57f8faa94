//! Convolution: the unfold/fold pair is differentiable (each is the other's backward), and
//! conv1d/conv2d are composed from unfold, reshape and matmul, so they need no rule of their own.

use super::untracked;
use crate::{Result, Save, Tensor, Unfold2d};

impl Tensor {
    /// im2col. Backward: fold (col2im) of the gradient. Saved: the window spec.
    pub fn unfold2d(&self, spec: &Unfold2d) -> Result<Tensor> {
        let out = untracked(|| self.unfold2d_untracked(spec))?;
        let spec = *spec;
        Ok(Tensor::from_op(
            out,
            "unfold2d",
            &[self],
            Save::NOTHING,
            move |_, g| Ok(vec![Some(g.fold2d(&spec)?)]),
        ))
    }

    /// im2col into wide columns `[c*kh*kw, n*oh*ow]` (used by `conv2d`). Backward: the wide
    /// fold of the gradient. Saved: the window spec.
    pub(crate) fn unfold2d_wide(&self, spec: &Unfold2d) -> Result<Tensor> {
        let out = untracked(|| self.unfold2d_wide_untracked(spec))?;
        let spec = *spec;
        Ok(Tensor::from_op(
            out,
            "unfold2d_wide",
            &[self],
            Save::NOTHING,
            move |_, g| Ok(vec![Some(g.fold2d_wide(&spec)?)]),
        ))
    }

    /// col2im from wide columns (used by `conv2d`'s backward). Backward: the wide unfold of
    /// the gradient. Saved: the window spec.
    pub(crate) fn fold2d_wide(&self, spec: &Unfold2d) -> Result<Tensor> {
        let out = untracked(|| self.fold2d_wide_untracked(spec))?;
        let spec = Unfold2d {
            pad_value: 0.0,
            ..*spec
        };
        Ok(Tensor::from_op(
            out,
            "fold2d_wide",
            &[self],
            Save::NOTHING,
            move |_, g| Ok(vec![Some(g.unfold2d_wide(&spec)?)]),
        ))
    }

    /// col2im. Backward: unfold of the gradient. Saved: the window spec.
    pub fn fold2d(&self, spec: &Unfold2d) -> Result<Tensor> {
        let out = untracked(|| self.fold2d_untracked(spec))?;
        let spec = Unfold2d {
            pad_value: 0.0,
            ..*spec
        };
        Ok(Tensor::from_op(
            out,
            "fold2d",
            &[self],
            Save::NOTHING,
            move |_, g| Ok(vec![Some(g.unfold2d(&spec)?)]),
        ))
    }
}
