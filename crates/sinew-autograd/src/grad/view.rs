//! Views and reshapes. Saved: nothing but the input's shape (and the view's parameters).

use sinew_tensor::{Result, Shape, Tensor};

use crate::{Save, Var};

impl Var {
    /// Same elements, new shape. Backward: reshape the gradient back.
    pub fn reshape(&self, shape: impl Into<Shape>) -> Result<Var> {
        let out = self.tensor().reshape(shape)?;
        Ok(Var::from_op(
            out,
            "reshape",
            &[self],
            Save::NOTHING,
            |ctx, g| Ok(vec![Some(g.reshape(ctx.input_shape(0).clone())?)]),
        ))
    }

    /// Reorders dims. Backward: the inverse permutation.
    pub fn permute(&self, order: &[usize]) -> Result<Var> {
        let out = self.tensor().permute(order)?;
        let mut inverse = vec![0; order.len()];
        for (i, &o) in order.iter().enumerate() {
            inverse[o] = i;
        }
        Ok(Var::from_op(
            out,
            "permute",
            &[self],
            Save::NOTHING,
            move |_, g| Ok(vec![Some(g.permute(&inverse)?)]),
        ))
    }

    /// Swaps two dims.
    pub fn transpose(&self, dim0: isize, dim1: isize) -> Result<Var> {
        let out = self.tensor().transpose(dim0, dim1)?;
        Ok(Var::from_op(
            out,
            "transpose",
            &[self],
            Save::NOTHING,
            move |_, g| Ok(vec![Some(g.transpose(dim0, dim1)?)]),
        ))
    }

    /// Transpose of the last two dims.
    pub fn t(&self) -> Result<Var> {
        self.transpose(-2, -1)
    }

    /// Entries `start..end` of `dim`, every `step`-th. Backward: the gradient placed back into
    /// zeros ([`Var::embed`]).
    pub fn slice(&self, dim: isize, start: usize, end: usize, step: usize) -> Result<Var> {
        let out = self.tensor().slice(dim, start, end, step)?;
        let d = self.shape().dim("slice", dim)?;
        let start = start.min(self.dims()[d]);
        Ok(Var::from_op(
            out,
            "slice",
            &[self],
            Save::NOTHING,
            move |ctx, g| {
                Ok(vec![Some(g.embed(
                    ctx.input_shape(0).clone(),
                    d,
                    start,
                    step,
                )?)])
            },
        ))
    }

    /// `len` entries of `dim` from `start`.
    pub fn narrow(&self, dim: isize, start: usize, len: usize) -> Result<Var> {
        self.slice(dim, start, start + len, 1)
    }

    /// Zeros of `shape` with `self` written at `start, start + step, ...` along `dim`: the
    /// adjoint of [`Var::slice`]. Backward: the matching slice of the gradient.
    pub fn embed(&self, shape: Shape, dim: usize, start: usize, step: usize) -> Result<Var> {
        let out = Tensor::zeros(shape, self.dtype(), self.device())?;
        let len = self.dims()[dim];
        let end = start + len.saturating_sub(1) * step + 1;
        if len > 0 {
            out.slice(dim as isize, start, end, step)?
                .copy_(self.tensor())?;
        }
        Ok(Var::from_op(
            out,
            "embed",
            &[self],
            Save::NOTHING,
            move |_, g| {
                Ok(vec![Some(g.slice(
                    dim as isize,
                    start,
                    if len == 0 { start } else { end },
                    step,
                )?)])
            },
        ))
    }

    /// Removes `dim` if it has size 1.
    pub fn squeeze(&self, dim: isize) -> Result<Var> {
        let shape = self.tensor().squeeze(dim)?.shape().clone();
        self.reshape(shape)
    }

    /// Inserts a size-1 dim.
    pub fn unsqueeze(&self, dim: isize) -> Result<Var> {
        let shape = self.tensor().unsqueeze(dim)?.shape().clone();
        self.reshape(shape)
    }

    /// Merges dims `start..=end`.
    pub fn flatten(&self, start: isize, end: isize) -> Result<Var> {
        let shape = self.tensor().flatten(start, end)?.shape().clone();
        self.reshape(shape)
    }

    /// Broadcasts to `shape` (no copy). Backward: sum back to the input's shape.
    pub fn broadcast_to(&self, shape: impl Into<Shape>) -> Result<Var> {
        let out = self.tensor().broadcast_to(shape)?;
        Ok(Var::from_op(
            out,
            "broadcast_to",
            &[self],
            Save::NOTHING,
            |ctx, g| Ok(vec![Some(g.sum_to(ctx.input_shape(0))?)]),
        ))
    }

    /// A contiguous copy when needed. Backward: identity.
    pub fn contiguous(&self) -> Result<Var> {
        let out = self.tensor().contiguous()?;
        Ok(Var::from_op(
            out,
            "contiguous",
            &[self],
            Save::NOTHING,
            |_, g| Ok(vec![Some(g.clone())]),
        ))
    }
}
