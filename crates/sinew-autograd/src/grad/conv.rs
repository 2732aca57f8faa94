//! Convolution: the unfold/fold pair is differentiable (each is the other's backward), and
//! conv1d/conv2d are composed from unfold, reshape and matmul, so they need no rule of their own.

use sinew_tensor::{Conv1dConfig, Conv2dConfig, Error, Result, Unfold2d};

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
        const OP: &str = "conv2d";
        let &[o, cg, kh, kw] = weight.dims() else {
            return Err(Error::invalid(
                OP,
                format!(
                    "weight must be [out, in/groups, kh, kw], got {}",
                    weight.shape()
                ),
            ));
        };
        let spec =
            self.tensor()
                .unfold_spec(OP, (kh, kw), cfg.stride, cfg.padding, cfg.dilation, 0.0)?;
        let g = cfg.groups;
        if g == 0 || spec.c % g != 0 || o % g != 0 || cg * g != spec.c {
            return Err(Error::ShapeMismatch {
                op: OP,
                lhs: self.shape().clone(),
                rhs: weight.shape().clone(),
            });
        }
        let (oh, ow) = spec.out_hw();
        let cols = self
            .unfold2d(&spec)?
            .reshape([spec.n, g, cg * kh * kw, oh * ow])?;
        let out = weight
            .reshape([g, o / g, cg * kh * kw])?
            .matmul(&cols)?
            .reshape([spec.n, o, oh, ow])?;
        match bias {
            None => Ok(out),
            Some(b) => {
                if b.dims() != [o] {
                    return Err(Error::ShapeMismatch {
                        op: "conv2d (bias)",
                        lhs: weight.shape().clone(),
                        rhs: b.shape().clone(),
                    });
                }
                out.add(&b.reshape([1, o, 1, 1])?)
            }
        }
    }

    /// 1-d convolution of `[n, c, l]` by `[o, c/groups, k]`. PyTorch equivalent: `F.conv1d`.
    pub fn conv1d(&self, weight: &Var, bias: Option<&Var>, cfg: Conv1dConfig) -> Result<Var> {
        if self.rank() != 3 || weight.rank() != 3 {
            return Err(Error::ShapeMismatch {
                op: "conv1d",
                lhs: self.shape().clone(),
                rhs: weight.shape().clone(),
            });
        }
        let cfg2 = Conv2dConfig {
            stride: (1, cfg.stride),
            padding: (0, cfg.padding),
            dilation: (1, cfg.dilation),
            groups: cfg.groups,
        };
        self.unsqueeze(2)?
            .conv2d(&weight.unsqueeze(2)?, bias, cfg2)?
            .squeeze(2)
    }
}
