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
