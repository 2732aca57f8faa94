//! Views and reshapes. Saved: nothing but the input's shape (and the view's parameters).

use super::untracked;
use crate::{NewShape, Result, Save, Shape, Tensor};

impl Tensor {
    /// Same elements, new shape (one size may be `-1`: `x.reshape([-1, 784])`); a view when
    /// the strides allow, else a copy. PyTorch equivalent: `reshape`. Backward: reshape the
    /// gradient back.
    pub fn reshape(&self, shape: impl Into<NewShape>) -> Result<Tensor> {
        let shape = shape.into().resolve("reshape", self.elem_count())?;
        let out = untracked(|| self.reshape_untracked(shape))?;
        Ok(Tensor::from_op(
            out,
            "reshape",
            &[self],
            Save::NOTHING,
            |ctx, g| Ok(vec![Some(g.reshape(ctx.input_shape(0).clone())?)]),
        ))
    }

    /// Reorders dims. Backward: the inverse permutation.
    pub fn permute(&self, order: &[usize]) -> Result<Tensor> {
        let out = untracked(|| self.permute_untracked(order))?;
        let mut inverse = vec![0; order.len()];
        for (i, &o) in order.iter().enumerate() {
            inverse[o] = i;
        }
        Ok(Tensor::from_op(
            out,
            crate::autograd::PERMUTE,
            &[self],
            Save::NOTHING,
            move |_, g| Ok(vec![Some(g.permute(&inverse)?)]),
        ))
    }

    /// Entries `start..end` of `dim`, every `step`-th. Backward: the gradient placed back into
    /// zeros ([`Tensor::embed`]).
    pub fn slice(&self, dim: isize, start: usize, end: usize, step: usize) -> Result<Tensor> {
        let out = untracked(|| self.slice_untracked(dim, start, end, step))?;
        let d = self.shape().dim("slice", dim)?;
        let start = start.min(self.dims()[d]);
        Ok(Tensor::from_op(
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

    /// Zeros of `shape` with `self` written at `start, start + step, ...` along `dim`: the
    /// adjoint of [`Tensor::slice`]. Backward: the matching slice of the gradient.
    pub fn embed(&self, shape: Shape, dim: usize, start: usize, step: usize) -> Result<Tensor> {
        let len = *self.dims().get(dim).ok_or_else(|| {
            crate::Error::invalid(
                "embed",
                format!("dim {dim} out of range for {}", self.shape()),
            )
        })?;
        let end = len
            .saturating_sub(1)
            .checked_mul(step)
            .and_then(|span| span.checked_add(start)?.checked_add(1))
            .ok_or_else(|| crate::Error::invalid("embed", "start + (len - 1) * step overflows"))?;
        let out = untracked(|| {
            let out = Tensor::zeros(shape, self.dtype(), self.device())?;
            if len > 0 {
                let window = out.slice(dim as isize, start, end, step)?;
                if window.shape() != self.shape() {
                    return Err(crate::Error::ShapeMismatch {
                        op: "embed",
                        lhs: window.shape().clone(),
                        rhs: self.shape().clone(),
                    });
                }
                window.copy_(self)?;
            }
            Ok(out)
        })?;
        Ok(Tensor::from_op(
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

    /// Broadcasts to `shape` (no copy). Backward: sum back to the input's shape.
    pub fn broadcast_to(&self, shape: impl Into<Shape>) -> Result<Tensor> {
        let out = untracked(|| self.broadcast_to_untracked(shape))?;
        Ok(Tensor::from_op(
            out,
            "broadcast_to",
            &[self],
            Save::NOTHING,
            |ctx, g| Ok(vec![Some(g.sum_to(ctx.input_shape(0))?)]),
        ))
    }

    /// A contiguous copy when needed (the same tensor when already contiguous). Backward:
    /// identity. PyTorch equivalent: `contiguous`.
    pub fn contiguous(&self) -> Result<Tensor> {
        if self.is_contiguous() {
            return Ok(self.clone());
        }
        self.force_contiguous()
    }

    /// Always copies into fresh contiguous storage. Backward: identity. PyTorch: `clone`.
    pub fn force_contiguous(&self) -> Result<Tensor> {
        let out = untracked(|| self.force_contiguous_untracked())?;
        Ok(Tensor::from_op(
            out,
            "contiguous",
            &[self],
            Save::NOTHING,
            |_, g| Ok(vec![Some(g.clone())]),
        ))
    }
}
