//! Convolution: the unfold/fold pair is differentiable (each is the other's backward), and
//! conv1d/conv2d are composed from unfold, reshape and matmul, so they need no rule of their own.

use sinew_tensor::{Conv1dConfig, Conv2dConfig, Result, Unfold2d};

use crate::{Save, Var};

impl Var {
    /// im2col. Backward: fold (col2im) of the gradient. Saved: the window spec.
    pub fn unfold2d(&self, spec: &Unfold2d) -> Result<Var> {
        let out = self.tensor().unfold2d(spec)?;
        let spec = *spec;
        Ok(Var::from_op(
            out,
            "unfold2d",
            &[self],
            Save::NOTHING,
            move |_, g| Ok(vec![Some(g.fold2d(&spec)?)]),
        ))
    }

    /// col2im. Backward: unfold of the gradient. Saved: the window spec.
    pub fn fold2d(&self, spec: &Unfold2d) -> Result<Var> {
        let out = self.tensor().fold2d(spec)?;
        let spec = Unfold2d {
            pad_value: 0.0,
            ..*spec
        };
        Ok(Var::from_op(
            out,
            "fold2d",
            &[self],
            Save::NOTHING,
            move |_, g| Ok(vec![Some(g.unfold2d(&spec)?)]),
        ))
    }

    /// 2-d convolution of `[n, c, h, w]` by `[o, c/groups, kh, kw]` (+ bias `[o]`).
    /// PyTorch equivalent: `F.conv2d`.
    pub fn conv2d(&self, weight: &Var, bias: Option<&Var>, cfg: Conv2dConfig) -> Result<Var> {
        let spec = self
            .tensor()
            .conv2d_spec(weight.tensor(), bias.map(Var::tensor), cfg)?;
        let (g, o) = (cfg.groups, weight.dims()[0]);
        let (oh, ow) = spec.out_hw();
        let taps = spec.c / g * spec.kernel.0 * spec.kernel.1;
        let cols = self.unfold2d(&spec)?.reshape([spec.n, g, taps, oh * ow])?;
        let out = weight
            .reshape([g, o / g, taps])?
            .matmul(&cols)?
            .reshape([spec.n, o, oh, ow])?;
        match bias {
            None => Ok(out),
            Some(b) => out.add(&b.reshape([1, o, 1, 1])?),
        }
    }

    /// 1-d convolution of `[n, c, l]` by `[o, c/groups, k]`. PyTorch equivalent: `F.conv1d`.
    pub fn conv1d(&self, weight: &Var, bias: Option<&Var>, cfg: Conv1dConfig) -> Result<Var> {
        cfg.check_ranks(self.shape(), weight.shape())?;
        self.unsqueeze(2)?
            .conv2d(&weight.unsqueeze(2)?, bias, cfg.as_2d())?
            .squeeze(2)
    }
}
