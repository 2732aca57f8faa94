//! Broadcasting binary ops and `where`: forward and gradients side by side.
//!
//! Gradients are computed at the broadcast shape and summed back to each input's shape.
//! Saved: nothing for add/sub, the inputs for mul/max/min, divisor and output for div, the
//! output for `add_relu` (a sum and ReLU in one node).

use super::untracked;
use crate::{BackwardCtx, BinaryOp, DType, Result, Save, Tensor};

/// The values each op's rule reads.
fn saves(op: BinaryOp) -> Save {
    match op {
        BinaryOp::Add | BinaryOp::Sub => Save::NOTHING,
        BinaryOp::Mul | BinaryOp::Maximum | BinaryOp::Minimum => Save::INPUTS,
        BinaryOp::Div => Save::input(1).and_output(),
        BinaryOp::Pow => Save::INPUTS.and_output(),
    }
}

/// Gradients of `op(a, b)` at the broadcast shape, for the inputs that need one.
fn grads(op: BinaryOp, ctx: &BackwardCtx<'_>, g: &Tensor) -> Result<[Option<Tensor>; 2]> {
    let (need_a, need_b) = (ctx.needs_grad(0), ctx.needs_grad(1));
    let only =
        |ga: Option<Tensor>, gb: Option<Tensor>| [ga.filter(|_| need_a), gb.filter(|_| need_b)];
    Ok(match op {
        BinaryOp::Add => only(Some(g.clone()), Some(g.clone())),
        BinaryOp::Sub => [
            need_a.then(|| g.clone()),
            if need_b { Some(g.neg()?) } else { None },
        ],
        BinaryOp::Mul => {
            let (a, b) = (ctx.input(0)?, ctx.input(1)?);
            [
                if need_a { Some(g.mul(&b)?) } else { None },
                if need_b { Some(g.mul(&a)?) } else { None },
            ]
        }
        BinaryOp::Div => {
            let (b, out) = (ctx.input(1)?, ctx.output()?);
            [
                if need_a { Some(g.div(&b)?) } else { None },
                if need_b {
                    Some(g.mul(&out)?.div(&b)?.neg()?)
                } else {
                    None
                },
            ]
        }
        BinaryOp::Pow => {
            // d/da a^b = b a^(b-1), 0 where b == 0; d/db a^b = a^b ln a, 0 where a == 0 and
            // b >= 0 (PyTorch's `pow_backward_self` / `_exponent`). Selected, not masked by a
            // product: 0^0's `0 * 0^-1` and 0^-1's `inf * -inf` are NaN and -inf there.
            let (a, b, out) = (ctx.input(0)?, ctx.input(1)?, ctx.output()?);
            let da = if need_a {
                let da = g.mul(&b)?.mul(&a.pow(&b.sub_scalar(1.0)?)?)?;
                Some(b.eq_scalar(0.0)?.where_cond(&da.zeros_like()?, &da)?)
            } else {
                None
            };
            let db = if need_b {
                let db = g.mul(&out)?.mul(&a.log()?)?;
                let zero = db.zeros_like()?;
                let when_a_is_zero = b.ge_scalar(0.0)?.where_cond(&zero, &db)?;
                Some(a.eq_scalar(0.0)?.where_cond(&when_a_is_zero, &db)?)
            } else {
                None
            };
            [da, db]
        }
        BinaryOp::Maximum | BinaryOp::Minimum => {
            // PyTorch's selects: `where(a == b, g / 2, g)` with 0 where the input lost, so ties
            // split the gradient, a NaN on either side gives both the whole of it, and an
            // inf or NaN gradient reaches no losing input.
            let (a, b) = (ctx.input(0)?, ctx.input(1)?);
            let (a_loses, b_loses) = if op == BinaryOp::Maximum {
                (a.lt(&b)?, a.gt(&b)?)
            } else {
                (a.gt(&b)?, a.lt(&b)?)
            };
            let shared = a.eq(&b)?.where_cond(&g.mul_scalar(0.5)?, g)?;
            let zero = Tensor::zeros((), shared.dtype(), shared.device())?;
            let da = a_loses.where_cond(&zero, &shared)?;
            let db = b_loses.where_cond(&zero, &shared)?;
            only(Some(da), Some(db))
        }
    })
}

impl Tensor {
    /// Any [`BinaryOp`] with broadcasting, differentiable in both inputs.
    /// Float operands of different dtypes are promoted to the wider one first (PyTorch's type
    /// promotion; f16 with bf16 gives f32), the casts recorded so each gradient keeps its
    /// input's dtype.
    pub fn binary(&self, op: BinaryOp, rhs: &Tensor) -> Result<Tensor> {
        if op == BinaryOp::Div && !self.dtype().is_float() && !rhs.dtype().is_float() {
            // PyTorch's true division: integer operands divide as f32, its default float
            // dtype (`torch.tensor([7]) / 2` is 3.5); [`Tensor::div_trunc`] keeps integers.
            let (a, b) = (self.to_dtype(DType::F32)?, rhs.to_dtype(DType::F32)?);
            return a.binary(op, &b);
        }
        if self.dtype() != rhs.dtype()
            && let Some(common) = crate::autocast::promote_floats(self.dtype(), rhs.dtype())
        {
            let widen = |t: &Tensor| {
                if t.dtype() == common {
                    Ok(t.clone())
                } else {
                    t.to_dtype(common)
                }
            };
            return widen(self)?.binary(op, &widen(rhs)?);
        }
        let out = untracked(|| self.binary_untracked(op, rhs))?;
        Ok(Tensor::from_op(
            out,
            op.name(),
            &[self, rhs],
            saves(op),
            move |ctx, g| {
                let [ga, gb] = grads(op, ctx, g)?;
                Ok(vec![
                    ga.map(|ga| ga.sum_to(ctx.input_shape(0))).transpose()?,
                    gb.map(|gb| gb.sum_to(ctx.input_shape(1))).transpose()?,
                ])
            },
        ))
    }

    /// `relu(self + rhs)` with broadcasting: a residual connection's sum and ReLU (ResNet's
    /// blocks) in one pass where the backend has it ([`crate::Backend::add_relu`]), with the
    /// values and gradients of `self.add(rhs)?.relu()` (PyTorch: `torch.relu(a + b)`). Recorded
    /// as one node that saves only its output (the sum is never kept); the backward is ReLU's,
    /// `g * (out > 0)`, summed to each input's shape. Operands of different dtypes, or not
    /// floats, take the two ops.
    pub fn add_relu(&self, rhs: &Tensor) -> Result<Tensor> {
        if self.dtype() != rhs.dtype() || !self.dtype().is_float() {
            return self.add(rhs)?.relu();
        }
        let out = untracked(|| self.add_relu_untracked(rhs))?;
        Ok(Tensor::from_op(
            out,
            "add_relu",
            &[self, rhs],
            Save::OUTPUT,
            |ctx, g| {
                let g = super::unary::relu_input_grad(g, &ctx.output()?)?;
                let to = |i: usize| {
                    let need = ctx.needs_grad(i);
                    need.then(|| g.sum_to(ctx.input_shape(i))).transpose()
                };
                Ok(vec![to(0)?, to(1)?])
            },
        ))
    }

    /// `cond ? on_true : on_false` with broadcasting; `self` is the Bool condition. Gradients
    /// flow to both branches (zero where not picked). PyTorch: `torch.where(cond, a, b)`.
    pub fn where_cond(&self, on_true: &Tensor, on_false: &Tensor) -> Result<Tensor> {
        let out = untracked(|| self.where_cond_untracked(on_true, on_false))?;
        let cond = self.detach();
        Ok(Tensor::from_op(
            out,
            "where_cond",
            &[on_true, on_false],
            Save::NOTHING,
            move |ctx, g| {
                let zero = Tensor::zeros((), g.dtype(), g.device())?;
                let gt = cond.where_cond(g, &zero)?.sum_to(ctx.input_shape(0))?;
                let gf = cond.where_cond(&zero, g)?.sum_to(ctx.input_shape(1))?;
                Ok(vec![Some(gt), Some(gf)])
            },
        ))
    }
}
