//! Max pooling keeps the argmax indices and routes the gradient to them (PyTorch's rule);
//! average and 1-d pooling are composites in `ops/pool.rs`.

use super::untracked;
use crate::{Error, Pool2dConfig, Result, Save, Tensor};

impl Tensor {
    /// Max pooling of `[n, c, h, w]`: values and PyTorch-style flat indices. Backward: the
    /// gradient scatter-added at the indices. Saved: the indices.
    pub fn max_pool2d(&self, cfg: Pool2dConfig) -> Result<(Tensor, Tensor)> {
        let (values, indices) = untracked(|| self.max_pool2d_untracked(cfg))?;
        let saved = indices.clone();
        let out = Tensor::from_op(
            values,
            "max_pool2d",
            &[self],
            Save::NOTHING,
            move |ctx, g| {
                let (&[n, c, h, w], &[_, _, oh, ow]) = (ctx.input_shape(0).dims(), g.dims()) else {
                    return Err(Error::invalid("max_pool2d backward", "expects 4-d shapes"));
                };
                let l = oh * ow;
                let zeros = Tensor::zeros([n, c, h * w], g.dtype(), g.device())?;
                let idx = saved.reshape([n, c, l])?;
                Ok(vec![Some(
                    zeros
                        .scatter_add(2, &idx, &g.reshape([n, c, l])?)?
                        .reshape([n, c, h, w])?,
                )])
            },
        );
        Ok((out, indices))
    }
}
