//! Broadcasting binary ops and `where`: forward and gradients side by side.
//!
//! Gradients are computed at the broadcast shape and summed back to each input's shape.
//! Saved: the inputs (and the output for div/pow); nothing else.

use sinew_tensor::{BinaryOp, Result, Tensor};

use crate::Var;

/// A 0/1 constant in `like`'s dtype from a Bool mask.
fn indicator(mask: Tensor, like: &Var) -> Result<Var> {
    Ok(Var::constant(mask.to_dtype(like.dtype())?))
}

/// Gradients of `op(a, b)` at the broadcast shape.
fn grads(op: BinaryOp, a: &Var, b: &Var, out: &Var, g: &Var) -> Result<(Var, Var)> {
    Ok(match op {
        BinaryOp::Add => (g.clone(), g.clone()),
        BinaryOp::Sub => (g.clone(), g.neg()?),
        BinaryOp::Mul => (g.mul(b)?, g.mul(a)?),
        BinaryOp::Div => (g.div(b)?, g.mul(out)?.div(b)?.neg()?),
        BinaryOp::Pow => {
            // d/da a^b = b a^(b-1); d/db a^b = a^b ln a (0 where a == 0, as PyTorch masks it).
            let da = g.mul(b)?.mul(&a.pow(&b.sub_scalar(1.0)?)?)?;
            let nonzero = indicator(a.tensor().ne_scalar(0.0)?, a)?;
            let safe_a = a.add(&Var::constant(
                a.tensor().eq_scalar(0.0)?.to_dtype(a.dtype())?,
            ))?;
            let db = g.mul(out)?.mul(&safe_a.log()?)?.mul(&nonzero)?;
            (da, db)
        }
        BinaryOp::Maximum | BinaryOp::Minimum => {
            // PyTorch: the larger (smaller) input gets the gradient; ties split it in half.
            let (at, bt) = (a.tensor(), b.tensor());
            let a_wins = if op == BinaryOp::Maximum {
                at.gt(bt)?
            } else {
                at.lt(bt)?
            };
            let b_wins = if op == BinaryOp::Maximum {
                at.lt(bt)?
            } else {
                at.gt(bt)?
            };
            let tie = indicator(at.eq(bt)?, a)?.mul_scalar(0.5)?;
            let wa = indicator(a_wins, a)?.add(&tie)?;
            let wb = indicator(b_wins, a)?.add(&tie)?;
            (g.mul(&wa)?, g.mul(&wb)?)
        }
    })
}

impl Var {
    /// Any [`BinaryOp`] with broadcasting, differentiable in both inputs.
    pub fn binary(&self, op: BinaryOp, rhs: &Var) -> Result<Var> {
        let out = self.tensor().binary(op, rhs.tensor())?;
        Ok(Var::from_op(out, op.name(), &[self, rhs], move |ctx, g| {
            let (a, b) = (&ctx.inputs[0], &ctx.inputs[1]);
            let (ga, gb) = grads(op, a, b, ctx.output, g)?;
            Ok(vec![
                if a.requires_grad() {
                    Some(ga.sum_to(a.shape())?)
                } else {
                    None
                },
                if b.requires_grad() {
                    Some(gb.sum_to(b.shape())?)
                } else {
                    None
                },
            ])
        }))
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
            move |ctx, g| {
                let zero = Var::constant(Tensor::zeros((), g.dtype(), g.device())?);
                let (t, f) = (&ctx.inputs[0], &ctx.inputs[1]);
                let gt = Var::where_cond(&cond, g, &zero)?.sum_to(t.shape())?;
                let gf = Var::where_cond(&cond, &zero, g)?.sum_to(f.shape())?;
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
