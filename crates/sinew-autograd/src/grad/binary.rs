//! Broadcasting binary ops and `where`: forward and gradients side by side.
//!
//! Gradients are computed at the broadcast shape and summed back to each input's shape.
//! Saved: nothing for add/sub, the inputs for mul/max/min, divisor and output for div.

use sinew_tensor::{BinaryOp, Result, Tensor};

use crate::{BackwardCtx, Save, Var};

/// A 0/1 constant in `like`'s dtype from a Bool mask.
fn indicator(mask: Tensor, like: &Var) -> Result<Var> {
    Ok(Var::constant(mask.to_dtype(like.dtype())?))
}

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
fn grads(op: BinaryOp, ctx: &BackwardCtx<'_>, g: &Var) -> Result<[Option<Var>; 2]> {
    let (need_a, need_b) = (ctx.needs_grad(0), ctx.needs_grad(1));
    let only = |ga: Option<Var>, gb: Option<Var>| [ga.filter(|_| need_a), gb.filter(|_| need_b)];
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
            // d/da a^b = b a^(b-1); d/db a^b = a^b ln a (0 where a == 0, as PyTorch masks it).
            let (a, b, out) = (ctx.input(0)?, ctx.input(1)?, ctx.output()?);
            let da = if need_a {
                Some(g.mul(&b)?.mul(&a.pow(&b.sub_scalar(1.0)?)?)?)
            } else {
                None
            };
            let db = if need_b {
                let nonzero = indicator(a.tensor().ne_scalar(0.0)?, &a)?;
                let safe_a = a.add(&Var::constant(
                    a.tensor().eq_scalar(0.0)?.to_dtype(a.dtype())?,
                ))?;
                Some(g.mul(&out)?.mul(&safe_a.log()?)?.mul(&nonzero)?)
            } else {
                None
            };
            [da, db]
        }
        BinaryOp::Maximum | BinaryOp::Minimum => {
            // PyTorch: the larger (smaller) input gets the gradient; ties split it in half.
            let (a, b) = (ctx.input(0)?, ctx.input(1)?);
            let (at, bt) = (a.tensor(), b.tensor());
            let (a_wins, b_wins) = if op == BinaryOp::Maximum {
                (at.gt(bt)?, at.lt(bt)?)
            } else {
                (at.lt(bt)?, at.gt(bt)?)
            };
            let tie = indicator(at.eq(bt)?, &a)?.mul_scalar(0.5)?;
            let wa = indicator(a_wins, &a)?.add(&tie)?;
            let wb = indicator(b_wins, &a)?.add(&tie)?;
            only(Some(g.mul(&wa)?), Some(g.mul(&wb)?))
        }
    })
}

impl Var {
    /// Any [`BinaryOp`] with broadcasting, differentiable in both inputs.
    pub fn binary(&self, op: BinaryOp, rhs: &Var) -> Result<Var> {
        let out = self.tensor().binary(op, rhs.tensor())?;
        Ok(Var::from_op(
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

    /// `a + b` with broadcasting.
    pub fn add(&self, rhs: &Var) -> Result<Var> {
        self.binary(BinaryOp::Add, rhs)
    }
    /// `a - b` with broadcasting.
    pub fn sub(&self, rhs: &Var) -> Result<Var> {
        self.binary(BinaryOp::Sub, rhs)
    }
    /// `a * b` with broadcasting.
    pub fn mul(&self, rhs: &Var) -> Result<Var> {
        self.binary(BinaryOp::Mul, rhs)
    }
    /// `a / b` with broadcasting.
    pub fn div(&self, rhs: &Var) -> Result<Var> {
        self.binary(BinaryOp::Div, rhs)
    }
    /// `a ^ b` with broadcasting.
    pub fn pow(&self, rhs: &Var) -> Result<Var> {
        self.binary(BinaryOp::Pow, rhs)
    }
    /// Elementwise maximum (ties share the gradient).
    pub fn maximum(&self, rhs: &Var) -> Result<Var> {
        self.binary(BinaryOp::Maximum, rhs)
    }
    /// Elementwise minimum (ties share the gradient).
    pub fn minimum(&self, rhs: &Var) -> Result<Var> {
        self.binary(BinaryOp::Minimum, rhs)
    }

    /// `cond ? on_true : on_false` (Bool `cond` tensor), differentiable in both branches.
    /// PyTorch equivalent: `torch.where`.
    pub fn where_cond(cond: &Tensor, on_true: &Var, on_false: &Var) -> Result<Var> {
        let out = cond.where_cond(on_true.tensor(), on_false.tensor())?;
        let cond = cond.clone();
        Ok(Var::from_op(
            out,
            "where_cond",
            &[on_true, on_false],
            Save::NOTHING,
            move |ctx, g| {
                let zero = Var::constant(Tensor::zeros((), g.dtype(), g.device())?);
                let gt = Var::where_cond(&cond, g, &zero)?.sum_to(ctx.input_shape(0))?;
                let gf = Var::where_cond(&cond, &zero, g)?.sum_to(ctx.input_shape(1))?;
                Ok(vec![Some(gt), Some(gf)])
            },
        ))
    }

    /// Replaces elements where `mask` is true by `value` (no gradient flows there).
    pub fn masked_fill(&self, mask: &Tensor, value: f64) -> Result<Var> {
        let fill = Var::constant(Tensor::full((), value, self.dtype(), self.device())?);
        Var::where_cond(mask, &fill, self)
    }
}

macro_rules! operator_sugar {
    ($($trait:ident, $method:ident, $var_op:ident, $scalar_op:ident;)*) => {
        $(
            /// Operator sugar; panics with the op's error message on mismatched operands.
            impl std::ops::$trait<&Var> for &Var {
                type Output = Var;
                fn $method(self, rhs: &Var) -> Var {
                    self.$var_op(rhs).unwrap_or_else(|e| panic!("{e}"))
                }
            }

            /// Operator sugar with a scalar; panics on unsupported dtypes.
            impl std::ops::$trait<f64> for &Var {
                type Output = Var;
                fn $method(self, rhs: f64) -> Var {
                    self.$scalar_op(rhs).unwrap_or_else(|e| panic!("{e}"))
                }
            }
        )*
    };
}

operator_sugar! {
    Add, add, add, add_scalar;
    Sub, sub, sub, sub_scalar;
    Mul, mul, mul, mul_scalar;
    Div, div, div, div_scalar;
}

/// Operator sugar for negation; panics on unsupported dtypes.
impl std::ops::Neg for &Var {
    type Output = Var;
    fn neg(self) -> Var {
        Var::neg(self).unwrap_or_else(|e| panic!("{e}"))
    }
}
