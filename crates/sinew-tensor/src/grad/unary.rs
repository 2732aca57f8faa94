//! Elementwise unary ops: forward and derivative side by side.
//!
//! Saved: per op, the input (`x`), the output (`y`), both or nothing (see `saves`).

use super::untracked;
use crate::{BackwardCtx, Result, Save, Tensor, UnaryOp};

/// `φ(x)`, the standard normal density, as a multiplier: `exp(-x²/2) / √(2π)`.
fn normal_pdf(x: &Tensor) -> Result<Tensor> {
    x.square()?
        .mul_scalar(-0.5)?
        .exp()?
        .mul_scalar(1.0 / (2.0 * std::f64::consts::PI).sqrt())
}

/// A constant 0/1 (in `x`'s dtype) from a Bool mask: derivative masks are piecewise constant.
fn mask(m: Tensor, like: &Tensor) -> Result<Tensor> {
    m.to_dtype(like.dtype())
}

/// ReLU's input gradient `y <= 0 ? 0 : g` (PyTorch's `threshold_backward`: a select, so an inf
/// or NaN gradient where the ReLU was inactive gives 0, and a NaN output passes `g`): one fused
/// pass (`Backend::relu_backward`) unless the gradient is itself recorded (double backward) or
/// the operands differ in dtype or shape, where the composed ops run (same values).
pub(crate) fn relu_input_grad(g: &Tensor, y: &Tensor) -> Result<Tensor> {
    let recorded = g.requires_grad() && crate::is_grad_enabled();
    let same = g.dtype() == y.dtype()
        && g.shape() == y.shape()
        && g.check_same_device("relu backward", y).is_ok();
    if recorded || !same {
        let zero = Tensor::zeros((), g.dtype(), g.device())?;
        return y.le_scalar(0.0)?.where_cond(&zero, g);
    }
    let backend = g.device().backend();
    let out = g.with_two_storages(y, |a, b| {
        backend.relu_backward(a, g.layout(), b, y.layout())
    })?;
    Tensor::from_storage(out, g.shape().clone(), g.device().clone())
}

impl Tensor {
    /// ReLU's input gradient for this output gradient, given ReLU's output `y`:
    /// `self * (y > 0)`, in one pass where the backend has it (composed, and differentiable in
    /// `self`, when `self` is recorded). For rules of fused ops that end in a ReLU.
    pub fn relu_grad(&self, y: &Tensor) -> Result<Tensor> {
        relu_input_grad(self, y)
    }
}

/// The values each op's rule reads: the input, the output, both, or neither.
fn saves(op: UnaryOp) -> Save {
    match op {
        UnaryOp::Neg
        | UnaryOp::AddScalar(_)
        | UnaryOp::MulScalar(_)
        | UnaryOp::DivScalar(_)
        | UnaryOp::RSubScalar(_)
        | UnaryOp::Step { .. }
        | UnaryOp::Sign => Save::NOTHING,
        // ReLU reads its output (`y > 0` exactly where `x > 0`), like PyTorch: the output is
        // usually saved by the next layer anyway, so the input (a convolution's or linear
        // layer's output) is freed after the forward pass.
        UnaryOp::Exp
        | UnaryOp::Sqrt
        | UnaryOp::Tanh
        | UnaryOp::Sigmoid
        | UnaryOp::Recip
        | UnaryOp::Relu => Save::OUTPUT,
        UnaryOp::Rsqrt | UnaryOp::RDivScalar(_) => Save::input(0).and_output(),
        _ => Save::input(0),
    }
}

/// The input gradient `g * d op(x) / dx`, built from `x`, `y = op(x)` and `g` (see [`saves`]).
fn input_grad(op: UnaryOp, ctx: &BackwardCtx<'_>, g: &Tensor) -> Result<Tensor> {
    // Linear and piecewise-constant ops need no values.
    match op {
        UnaryOp::Neg | UnaryOp::RSubScalar(_) => return g.neg(),
        UnaryOp::AddScalar(_) => return Ok(g.clone()),
        UnaryOp::MulScalar(s) => return g.mul_scalar(s),
        UnaryOp::DivScalar(s) => return g.div_scalar(s),
        UnaryOp::Step { .. } | UnaryOp::Sign => return g.zeros_like(),
        // x^0 is 1 everywhere, also at 0 (where `0 * 0^-1` would be NaN), as PyTorch's.
        UnaryOp::Powf(0.0) => return g.zeros_like(),
        _ => {}
    }
    let save = saves(op);
    let x = if save == Save::OUTPUT {
        None
    } else {
        Some(ctx.input(0)?)
    };
    let y = if save == Save::input(0) {
        None
    } else {
        Some(ctx.output()?)
    };
    let (x, y) = (x.as_ref(), y.as_ref());
    let x = || x.expect("saved input");
    let y = || y.expect("saved output");
    let derivative = match op {
        UnaryOp::Abs => x().sign()?,
        UnaryOp::Exp => y().clone(),
        UnaryOp::Log => x().recip()?,
        UnaryOp::Log1p => x().add_scalar(1.0)?.recip()?,
        UnaryOp::Sqrt => y().recip()?.mul_scalar(0.5)?,
        UnaryOp::Rsqrt => y().div(x())?.mul_scalar(-0.5)?,
        UnaryOp::Sin => x().cos()?,
        UnaryOp::Cos => x().sin()?.neg()?,
        UnaryOp::Tanh => y().square()?.rsub_scalar(1.0)?,
        UnaryOp::Sigmoid => y().mul(&y().rsub_scalar(1.0)?)?,
        // PyTorch: relu'(0) = 0, leaky_relu'(0) = slope, elu'(0) = alpha.
        UnaryOp::Relu => return relu_input_grad(g, y()),
        UnaryOp::LeakyRelu(slope) => {
            let pos = x().gt_scalar(0.0)?;
            pos.where_cond(&x().full_like(1.0)?, &x().full_like(slope)?)?
        }
        // Selected: a 0/1 mask times `alpha e^x` was NaN at x = inf.
        UnaryOp::Elu(alpha) => x()
            .gt_scalar(0.0)?
            .where_cond(&x().ones_like()?, &x().exp()?.mul_scalar(alpha)?)?,
        UnaryOp::Gelu => {
            let cdf = x()
                .mul_scalar(std::f64::consts::FRAC_1_SQRT_2)?
                .erf()?
                .add_scalar(1.0)?
                .mul_scalar(0.5)?;
            cdf.add(&x().mul(&normal_pdf(x())?)?)?
        }
        UnaryOp::Erf => x()
            .square()?
            .neg()?
            .exp()?
            .mul_scalar(2.0 / std::f64::consts::PI.sqrt())?,
        UnaryOp::Softplus { beta, threshold } => {
            let linear = mask(x().mul_scalar(beta)?.gt_scalar(threshold)?, x())?;
            let curve = mask(x().mul_scalar(beta)?.le_scalar(threshold)?, x())?;
            linear.add(&curve.mul(&x().mul_scalar(beta)?.sigmoid()?)?)?
        }
        // The gradient passes where min <= x <= max (PyTorch 2018-2025; newest PyTorch gives 0
        // exactly at a bound, the minimum-norm subgradient).
        UnaryOp::Clamp { min, max } => {
            mask(x().ge_scalar(min)?, x())?.mul(&mask(x().le_scalar(max)?, x())?)?
        }
        UnaryOp::Powf(p) => x().powf(p - 1.0)?.mul_scalar(p)?,
        UnaryOp::Recip => y().square()?.neg()?,
        UnaryOp::Square => x().mul_scalar(2.0)?,
        UnaryOp::RDivScalar(_) => y().div(x())?.neg()?,
        UnaryOp::Neg
        | UnaryOp::AddScalar(_)
        | UnaryOp::MulScalar(_)
        | UnaryOp::DivScalar(_)
        | UnaryOp::RSubScalar(_)
        | UnaryOp::Step { .. }
        | UnaryOp::Sign => unreachable!("handled above"),
    };
    g.mul(&derivative)
}

/// The ops autocast runs in f32 (PyTorch's fp32 list: range or accuracy suffers in half;
/// `square` is PyTorch's `pow(x, 2)`, on the list, and squares overflow f16 from 256 up;
/// `rdiv_scalar` is its `__rdiv__`).
fn runs_in_f32_under_autocast(op: UnaryOp) -> bool {
    matches!(
        op,
        UnaryOp::Exp
            | UnaryOp::Log
            | UnaryOp::Log1p
            | UnaryOp::Rsqrt
            | UnaryOp::Recip
            | UnaryOp::Powf(_)
            | UnaryOp::Square
            | UnaryOp::RDivScalar(_)
            | UnaryOp::Softplus { .. }
    )
}

impl Tensor {
    /// Any [`UnaryOp`], differentiable. Backward reads the input and/or output (see `saves`).
    pub fn unary(&self, op: UnaryOp) -> Result<Tensor> {
        if runs_in_f32_under_autocast(op)
            && let Some(x) = crate::autocast::widened(self)?
        {
            return x.unary(op);
        }
        let y = untracked(|| self.unary_untracked(op))?;
        Ok(Tensor::from_op(
            y,
            op.name(),
            &[self],
            saves(op),
            move |ctx, g| Ok(vec![Some(input_grad(op, ctx, g)?)]),
        ))
    }
}
