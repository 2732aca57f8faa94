//! Max pooling keeps the argmax indices and routes the gradient to them (PyTorch's rule);
//! average and 1-d pooling are composites in `ops/pool.rs`.

use super::untracked;
use crate::{Error, Pool2dConfig, Result, Save, Tensor, Unfold2d};

impl Tensor {
    /// Max pooling of `[n, c, h, w]`: values and PyTorch-style flat indices. Backward: the
    /// gradient added at the indices ([`crate::Backend::max_pool2d_backward`]). Saved: the
    /// indices and the window.
    pub fn max_pool2d(&self, cfg: Pool2dConfig) -> Result<(Tensor, Tensor)> {
        let (values, indices) = untracked(|| self.max_pool2d_untracked(cfg))?;
        if !self.requires_grad() {
            return Ok((values, indices));
        }
        let spec = cfg.spec("max_pool2d", self, f64::NEG_INFINITY)?;
        let saved = indices.clone();
        let out = Tensor::from_op(values, "max_pool2d", &[self], Save::NOTHING, move |_, g| {
            Ok(vec![Some(g.max_pool2d_backward(&saved, &spec)?)])
        });
        Ok((out, indices))
    }

    /// Max pooling's input gradient from the output gradient `self`, differentiable: its own
    /// backward gathers the incoming gradient at the same indices.
    fn max_pool2d_backward(&self, indices: &Tensor, spec: &Unfold2d) -> Result<Tensor> {
        let out = untracked(|| self.max_pool2d_backward_untracked(indices, spec))?;
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
}
