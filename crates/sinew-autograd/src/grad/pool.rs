//! Pooling. Max pooling keeps the argmax indices and routes the gradient to them (PyTorch's
//! rule); average pooling is composed from unfold, sum and division.

use sinew_tensor::ops::pool::window_counts;
use sinew_tensor::{Error, Pool2dConfig, Result, Tensor};

use crate::{Save, Var};

impl Var {
    /// Max pooling of `[n, c, h, w]`: values and PyTorch-style flat indices. Backward: the
    /// gradient scatter-added at the indices. Saved: the indices.
    pub fn max_pool2d(&self, cfg: Pool2dConfig) -> Result<(Var, Tensor)> {
        let (values, indices) = self.tensor().max_pool2d(cfg)?;
        let saved = indices.clone();
        let out = Var::from_op(
            values,
            "max_pool2d",
            &[self],
            Save::NOTHING,
            move |ctx, g| {
                let &[n, c, h, w] = ctx.input_shape(0).dims() else {
                    unreachable!("checked by the forward")
                };
                let l = g.tensor().elem_count() / (n * c);
                let zeros = Var::constant(Tensor::zeros([n, c, h * w], g.dtype(), g.device())?);
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

    /// Average pooling of `[n, c, h, w]`, composed. PyTorch equivalent: `F.avg_pool2d`.
    pub fn avg_pool2d(&self, cfg: Pool2dConfig) -> Result<Var> {
        if cfg.dilation != (1, 1) {
            return Err(Error::invalid(
                "avg_pool2d",
                "average pooling has no dilation",
            ));
        }
        let spec = cfg.spec("avg_pool2d", self.tensor(), 0.0)?;
        let (kh, kw) = spec.kernel;
        let (oh, ow) = spec.out_hw();
        let sums = self
            .unfold2d(&spec)?
            .reshape([spec.n, spec.c, kh * kw, oh * ow])?
            .sum(&[2], false)?;
        let out = if cfg.count_include_pad {
            sums.div_scalar((kh * kw) as f64)?
        } else {
            // Divide by the number of real inputs under each window (a constant).
            let counts = window_counts(&spec, self.dtype(), self.device())?;
            sums.div(&Var::constant(counts))?
        };
        out.reshape([spec.n, spec.c, oh, ow])
    }

    /// Max pooling of `[n, c, l]`. PyTorch equivalent: `F.max_pool1d`.
    pub fn max_pool1d(
        &self,
        kernel: usize,
        stride: Option<usize>,
        padding: usize,
    ) -> Result<(Var, Tensor)> {
        let cfg = Pool2dConfig::for_1d(kernel, stride, padding);
        let (v, i) = self.unsqueeze(2)?.max_pool2d(cfg)?;
        Ok((v.squeeze(2)?, i.squeeze(2)?))
    }

    /// Average pooling of `[n, c, l]`. PyTorch equivalent: `F.avg_pool1d`.
    pub fn avg_pool1d(&self, kernel: usize, stride: Option<usize>, padding: usize) -> Result<Var> {
        let cfg = Pool2dConfig::for_1d(kernel, stride, padding);
        self.unsqueeze(2)?.avg_pool2d(cfg)?.squeeze(2)
    }
}
