//! The piecewise activations (PyTorch's `Hardtanh`, `ReLU6`, `Hardsigmoid`, `Hardswish`,
//! `Softshrink`, `Hardshrink`, `Threshold`): modules and functional forms. Each is one autograd
//! node whose backward is PyTorch's: at a kink it takes the side PyTorch's kernel takes, and it
//! selects rather than multiplies, so an inf or NaN gradient where the slope is 0 gives 0.
//! The rules are tensor ops, so they differentiate again (`create_graph`).

use sinew_tensor::{Error, Result, Save, Tensor, with_no_grad};

use crate::{Module, summary};

/// `value` (computed without a graph) recorded as an elementwise function of `x` whose input
/// gradient is `rule(x, grad)`.
fn piecewise(
    x: &Tensor,
    op: &'static str,
    value: impl FnOnce(&Tensor) -> Result<Tensor>,
    rule: impl Fn(&Tensor, &Tensor) -> Result<Tensor> + Send + Sync + 'static,
) -> Result<Tensor> {
    if !x.dtype().is_float() {
        return Err(Error::invalid(
            op,
            format!("expects a float tensor, got {:?}", x.dtype()),
        ));
    }
    let y = with_no_grad(|| value(x))?;
    Ok(Tensor::from_op(
        y,
        op,
        &[x],
        Save::input(0),
        move |ctx, g| Ok(vec![Some(rule(&ctx.input(0)?, g)?)]),
    ))
}

/// `cond ? 0 : on_false`, broadcasting a zero of `on_false`'s dtype.
fn zero_where(cond: &Tensor, on_false: &Tensor) -> Result<Tensor> {
    let zero = Tensor::zeros((), on_false.dtype(), on_false.device())?;
    cond.where_cond(&zero, on_false)
}

/// `x` clamped into `[min_val, max_val]`; the gradient passes strictly inside (0 at the
/// bounds), NaN inputs pass it. PyTorch: `F.hardtanh`.
pub fn hardtanh(x: &Tensor, min_val: f64, max_val: f64) -> Result<Tensor> {
    if min_val > max_val {
        return Err(Error::invalid(
            "hardtanh",
            format!("min_val {min_val} is greater than max_val {max_val}"),
        ));
    }
    piecewise(
        x,
        "hardtanh",
        |x| x.clamp(min_val, max_val),
        move |x, g| {
            zero_where(
                &x.le_scalar(min_val)?,
                &zero_where(&x.ge_scalar(max_val)?, g)?,
            )
        },
    )
}

/// `min(max(x, 0), 6)`. PyTorch: `F.relu6` (a [`hardtanh`] from 0 to 6).
pub fn relu6(x: &Tensor) -> Result<Tensor> {
    hardtanh(x, 0.0, 6.0)
}

/// `min(max(x + 3, 0), 6) / 6`; slope 1/6 strictly between -3 and 3, else 0 (NaN too).
/// PyTorch: `F.hardsigmoid`.
pub fn hardsigmoid(x: &Tensor) -> Result<Tensor> {
    piecewise(
        x,
        "hardsigmoid",
        |x| x.add_scalar(3.0)?.clamp(0.0, 6.0)?.div_scalar(6.0),
        |x, g| {
            let zero = Tensor::zeros((), g.dtype(), g.device())?;
            x.abs()?
                .lt_scalar(3.0)?
                .where_cond(&g.mul_scalar(1.0 / 6.0)?, &zero)
        },
    )
}

/// `x * min(max(x + 3, 0), 6) / 6`; slope 0 up to -3, `x / 3 + 1/2` up to 3 (exclusive),
/// then 1 (PyTorch 2.15's sides at the kinks; NaN takes slope 1). PyTorch: `F.hardswish`.
pub fn hardswish(x: &Tensor) -> Result<Tensor> {
    piecewise(
        x,
        "hardswish",
        |x| x.mul(&x.add_scalar(3.0)?.clamp(0.0, 6.0)?)?.div_scalar(6.0),
        |x, g| {
            let ramp = g.mul(&x.div_scalar(3.0)?.add_scalar(0.5)?)?;
            let above = x.lt_scalar(3.0)?.where_cond(&ramp, g)?;
            zero_where(&x.le_scalar(-3.0)?, &above)
        },
    )
}

/// `|x| <= lambd`, the dead zone of the shrink functions (false for NaN).
fn dead_zone(x: &Tensor, lambd: f64) -> Result<Tensor> {
    x.abs()?.le_scalar(lambd)
}

/// The shrink functions' gradient: 0 in the dead zone `[-lambd, lambd]`, else passed.
fn shrink_rule(lambd: f64) -> impl Fn(&Tensor, &Tensor) -> Result<Tensor> + Send + Sync {
    move |x, g| zero_where(&dead_zone(x, lambd)?, g)
}

/// Checks a shrink threshold (PyTorch: "lambda must be greater or equal to 0").
fn check_lambd(op: &'static str, lambd: f64) -> Result<()> {
    if lambd >= 0.0 {
        Ok(())
    } else {
        Err(Error::invalid(
            op,
            format!("lambd must be at least 0, got {lambd}"),
        ))
    }
}

/// `x - lambd` above `lambd`, `x + lambd` below `-lambd`, else 0 (NaN stays NaN).
/// PyTorch: `F.softshrink`.
pub fn softshrink(x: &Tensor, lambd: f64) -> Result<Tensor> {
    check_lambd("softshrink", lambd)?;
    piecewise(
        x,
        "softshrink",
        |x| {
            // `x * 0` in the dead zone keeps NaN, as PyTorch's kernel does.
            let low = x
                .lt_scalar(-lambd)?
                .where_cond(&x.add_scalar(lambd)?, &x.mul_scalar(0.0)?)?;
            x.gt_scalar(lambd)?.where_cond(&x.sub_scalar(lambd)?, &low)
        },
        shrink_rule(lambd),
    )
}

/// `x` outside `[-lambd, lambd]`, else 0. PyTorch: `F.hardshrink`.
pub fn hardshrink(x: &Tensor, lambd: f64) -> Result<Tensor> {
    check_lambd("hardshrink", lambd)?;
    piecewise(
        x,
        "hardshrink",
        |x| zero_where(&dead_zone(x, lambd)?, x),
        shrink_rule(lambd),
    )
}

/// `x` above `threshold`, else `value`; the gradient is 0 at and below the threshold.
/// PyTorch: `F.threshold`.
pub fn threshold(x: &Tensor, threshold: f64, value: f64) -> Result<Tensor> {
    piecewise(
        x,
        "threshold",
        |x| {
            let fill = Tensor::full((), value, x.dtype(), x.device())?;
            x.le_scalar(threshold)?.where_cond(&fill, x)
        },
        move |x, g| zero_where(&x.le_scalar(threshold)?, g),
    )
}

activation_modules! {
    /// [`hardtanh`] (default bounds -1 and 1).
    Hardtanh {
        /// Lower bound.
        min_val: f64 = -1.0,
        /// Upper bound.
        max_val: f64 = 1.0
    } => |s, x| hardtanh(x, s.min_val, s.max_val);
    /// [`softshrink`] (default `lambd` 0.5).
    Softshrink {
        /// Half-width of the dead zone.
        lambd: f64 = 0.5
    } => |s, x| softshrink(x, s.lambd);
    /// [`hardshrink`] (default `lambd` 0.5).
    Hardshrink {
        /// Half-width of the dead zone.
        lambd: f64 = 0.5
    } => |s, x| hardshrink(x, s.lambd);
}

plain_activation! {
    /// [`relu6`].
    ReLU6 => |x| relu6(x);
    /// [`hardsigmoid`].
    Hardsigmoid => |x| hardsigmoid(x);
    /// [`hardswish`].
    Hardswish => |x| hardswish(x);
}

/// [`threshold`] as a module (PyTorch's `nn.Threshold(threshold, value)`, which has no
/// defaults).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Threshold {
    /// Inputs at or below it are replaced.
    pub threshold: f64,
    /// What replaces them.
    pub value: f64,
}

impl Module for Threshold {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let y = threshold(x, self.threshold, self.value)?;
        summary::note(self, &y);
        Ok(y)
    }
}
