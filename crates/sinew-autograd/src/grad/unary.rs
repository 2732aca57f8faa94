//! Elementwise unary ops: forward and derivative side by side.
//!
//! Saved: per op, the input (`x`), the output (`y`), both or nothing (see `saves`).

use sinew_tensor::{Result, Tensor, UnaryOp};

use crate::{BackwardCtx, Save, Var};

/// `φ(x)`, the standard normal density, as a multiplier: `exp(-x²/2) / √(2π)`.
fn normal_pdf(x: &Var) -> Result<Var> {
    x.square()?
        .mul_scalar(-0.5)?
        .exp()?
        .mul_scalar(1.0 / (2.0 * std::f64::consts::PI).sqrt())
}

/// A constant 0/1 (in `x`'s dtype) from a Bool mask: derivative masks are piecewise constant.
fn mask(m: Tensor, like: &Var) -> Result<Var> {
    Ok(Var::constant(m.to_dtype(like.dtype())?))
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
        UnaryOp::Exp | UnaryOp::Sqrt | UnaryOp::Tanh | UnaryOp::Sigmoid | UnaryOp::Recip => {
            Save::OUTPUT
        }
        UnaryOp::Rsqrt | UnaryOp::RDivScalar(_) => Save::input(0).and_output(),
        _ => Save::input(0),
    }
}

/// The input gradient `g * d op(x) / dx`, built from `x`, `y = op(x)` and `g` (see [`saves`]).
fn input_grad(op: UnaryOp, ctx: &BackwardCtx<'_>, g: &Var) -> Result<Var> {
    // Linear and piecewise-constant ops need no values.
    match op {
        UnaryOp::Neg | UnaryOp::RSubScalar(_) => return g.neg(),
        UnaryOp::AddScalar(_) => return Ok(g.clone()),
        UnaryOp::MulScalar(s) => return g.mul_scalar(s),
        UnaryOp::DivScalar(s) => return g.div_scalar(s),
        UnaryOp::Step { .. } | UnaryOp::Sign => return Ok(Var::constant(g.tensor().zeros_like()?)),
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
    let t = || x().tensor();
    let derivative = match op {
        UnaryOp::Abs => Var::constant(t().sign()?),
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
        UnaryOp::Relu => mask(t().gt_scalar(0.0)?, x())?,
        UnaryOp::LeakyRelu(slope) => {
            let pos = t().gt_scalar(0.0)?;
            Var::constant(pos.where_cond(&t().full_like(1.0)?, &t().full_like(slope)?)?)
        }
        UnaryOp::Elu(alpha) => {
            let pos = mask(t().gt_scalar(0.0)?, x())?;
            let neg = mask(t().le_scalar(0.0)?, x())?;
            pos.add(&neg.mul(&x().exp()?.mul_scalar(alpha)?)?)?
        }
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
            let linear = mask(t().mul_scalar(beta)?.gt_scalar(threshold)?, x())?;
            let curve = mask(t().mul_scalar(beta)?.le_scalar(threshold)?, x())?;
            linear.add(&curve.mul(&x().mul_scalar(beta)?.sigmoid()?)?)?
        }
        // The gradient passes where min <= x <= max (PyTorch 2018-2025; newest PyTorch gives 0
        // exactly at a bound, the minimum-norm subgradient).
        UnaryOp::Clamp { min, max } => {
            mask(t().ge_scalar(min)?, x())?.mul(&mask(t().le_scalar(max)?, x())?)?
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

impl Var {
    /// Any [`UnaryOp`], differentiable. Backward reads the input and/or output.
    pub fn unary(&self, op: UnaryOp) -> Result<Var> {
        let y = self.tensor().unary(op)?;
        Ok(Var::from_op(
            y,
            op.name(),
            &[self],
            saves(op),
            move |ctx, g| Ok(vec![Some(input_grad(op, ctx, g)?)]),
        ))
    }
}

macro_rules! unary_methods {
    ($($(#[$doc:meta])* $name:ident => $op:ident;)*) => {
        impl Var {
            $(
                $(#[$doc])*
                pub fn $name(&self) -> Result<Var> {
                    self.unary(UnaryOp::$op)
                }
            )*
        }
    };
}

unary_methods! {
    /// `-x`.
    neg => Neg;
    /// `|x|` (gradient `sign(x)`, 0 at 0).
    abs => Abs;
    /// `e^x`.
    exp => Exp;
    /// Natural log.
    log => Log;
    /// `ln(1 + x)`.
    log1p => Log1p;
    /// Square root.
    sqrt => Sqrt;
    /// `1 / sqrt(x)`.
    rsqrt => Rsqrt;
    /// Sine.
    sin => Sin;
    /// Cosine.
    cos => Cos;
    /// Hyperbolic tangent.
    tanh => Tanh;
    /// Logistic sigmoid.
    sigmoid => Sigmoid;
    /// `max(x, 0)` (gradient 0 at 0, as PyTorch).
    relu => Relu;
    /// Exact GELU.
    gelu => Gelu;
    /// The error function.
    erf => Erf;
    /// -1, 0 or 1 (gradient 0).
    sign => Sign;
    /// `1 / x`.
    recip => Recip;
    /// `x²`.
    square => Square;
}

impl Var {
    /// Leaky ReLU with negative `slope`.
    pub fn leaky_relu(&self, slope: f64) -> Result<Var> {
        self.unary(UnaryOp::LeakyRelu(slope))
    }
    /// ELU with `alpha`.
    pub fn elu(&self, alpha: f64) -> Result<Var> {
        self.unary(UnaryOp::Elu(alpha))
    }
    /// Softplus with `beta` and `threshold` (PyTorch defaults 1, 20).
    pub fn softplus(&self, beta: f64, threshold: f64) -> Result<Var> {
        self.unary(UnaryOp::Softplus { beta, threshold })
    }
    /// Heaviside step (gradient 0).
    pub fn step(&self, at_zero: f64) -> Result<Var> {
        self.unary(UnaryOp::Step { at_zero })
    }
    /// Clamp into `[min, max]`.
    pub fn clamp(&self, min: f64, max: f64) -> Result<Var> {
        self.tensor().clamp(min, max)?; // validates the bounds
        self.unary(UnaryOp::Clamp { min, max })
    }
    /// `x^p`.
    pub fn powf(&self, p: f64) -> Result<Var> {
        self.unary(UnaryOp::Powf(p))
    }
    /// `x + s`.
    pub fn add_scalar(&self, s: f64) -> Result<Var> {
        self.unary(UnaryOp::AddScalar(s))
    }
    /// `x - s`.
    pub fn sub_scalar(&self, s: f64) -> Result<Var> {
        self.unary(UnaryOp::AddScalar(-s))
    }
    /// `x * s`.
    pub fn mul_scalar(&self, s: f64) -> Result<Var> {
        self.unary(UnaryOp::MulScalar(s))
    }
    /// `x / s`.
    pub fn div_scalar(&self, s: f64) -> Result<Var> {
        self.unary(UnaryOp::DivScalar(s))
    }
    /// `s - x`.
    pub fn rsub_scalar(&self, s: f64) -> Result<Var> {
        self.unary(UnaryOp::RSubScalar(s))
    }
    /// `s / x`.
    pub fn rdiv_scalar(&self, s: f64) -> Result<Var> {
        self.unary(UnaryOp::RDivScalar(s))
    }
}
