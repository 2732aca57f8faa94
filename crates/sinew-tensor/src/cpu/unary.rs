//! CPU kernels of the elementwise unary ops: each op's formula in one place.

use num_traits::Float;

use super::{CpuStorage, map_view, through_f32};
use crate::ops::UnaryOp;
use crate::{Error, Layout, Result};

/// Applies `op` to every element of a view.
pub(super) fn unary(op: UnaryOp, src: &CpuStorage, layout: &Layout) -> Result<CpuStorage> {
    if let Some(out) = through_f32(op.name(), src, layout, |s, l| unary(op, s, l)) {
        return out;
    }
    Ok(match src {
        CpuStorage::F32(v) => CpuStorage::F32(unary_float(op, v, layout)?),
        CpuStorage::F64(v) => CpuStorage::F64(unary_float(op, v, layout)?),
        CpuStorage::I64(v) => CpuStorage::I64(unary_int(op, v, layout)?),
        other => {
            return Err(Error::UnsupportedDType {
                op: op.name(),
                dtype: other.dtype(),
            });
        }
    })
}

/// The standard normal CDF, `Φ(x) = (1 + erf(x / √2)) / 2`.
pub(crate) fn normal_cdf(x: f64) -> f64 {
    0.5 * (1.0 + libm::erf(x * std::f64::consts::FRAC_1_SQRT_2))
}

fn unary_float<T: Float + Send + Sync + Default>(
    op: UnaryOp,
    v: &[T],
    l: &Layout,
) -> Result<Vec<T>> {
    let name = op.name();
    let c = |x: f64| T::from(x).expect("float constant");
    let (zero, one) = (T::zero(), T::one());
    match op {
        UnaryOp::Neg => map_view(name, v, l, |x| -x),
        UnaryOp::Abs => map_view(name, v, l, |x| x.abs()),
        UnaryOp::Exp => map_view(name, v, l, |x| x.exp()),
        UnaryOp::Log => map_view(name, v, l, |x| x.ln()),
        UnaryOp::Log1p => map_view(name, v, l, |x| x.ln_1p()),
        UnaryOp::Sqrt => map_view(name, v, l, |x| x.sqrt()),
        UnaryOp::Rsqrt => map_view(name, v, l, |x| one / x.sqrt()),
        UnaryOp::Sin => map_view(name, v, l, |x| x.sin()),
        UnaryOp::Cos => map_view(name, v, l, |x| x.cos()),
        UnaryOp::Tanh => map_view(name, v, l, |x| x.tanh()),
        UnaryOp::Sigmoid => map_view(name, v, l, |x| {
            if x >= zero {
                one / (one + (-x).exp())
            } else {
                let e = x.exp();
                e / (one + e)
            }
        }),
        // NaN stays NaN, as in PyTorch.
        UnaryOp::Relu => map_view(
            name,
            v,
            l,
            |x| if x > zero || x.is_nan() { x } else { zero },
        ),
        UnaryOp::LeakyRelu(slope) => {
            let slope = c(slope);
            map_view(name, v, l, |x| if x > zero { x } else { x * slope })
        }
        UnaryOp::Elu(alpha) => {
            let alpha = c(alpha);
            map_view(
                name,
                v,
                l,
                |x| if x > zero { x } else { alpha * x.exp_m1() },
            )
        }
        UnaryOp::Gelu => map_view(name, v, l, |x| {
            let xf = x.to_f64().unwrap_or(f64::NAN);
            c(xf * super::unary::normal_cdf(xf))
        }),
        UnaryOp::Erf => map_view(name, v, l, |x| c(libm::erf(x.to_f64().unwrap_or(f64::NAN)))),
        UnaryOp::Softplus { beta, threshold } => {
            let (b, t) = (c(beta), c(threshold));
            map_view(name, v, l, |x| {
                if x * b > t {
                    x
                } else {
                    (x * b).exp().ln_1p() / b
                }
            })
        }
        UnaryOp::Step { at_zero } => {
            let at_zero = c(at_zero);
            map_view(name, v, l, |x| {
                if x > zero {
                    one
                } else if x < zero {
                    zero
                } else if x == zero {
                    at_zero
                } else {
                    x
                }
            })
        }
        UnaryOp::Sign => map_view(name, v, l, |x| {
            if x > zero {
                one
            } else if x < zero {
                -one
            } else {
                x * zero
            }
        }),
        UnaryOp::Clamp { min, max } => {
            let (lo, hi) = (c(min), c(max));
            map_view(
                name,
                v,
                l,
                |x| if x.is_nan() { x } else { x.max(lo).min(hi) },
            )
        }
        UnaryOp::Powf(p) => {
            let p = c(p);
            map_view(name, v, l, |x| x.powf(p))
        }
        UnaryOp::Recip => map_view(name, v, l, |x| one / x),
        UnaryOp::Square => map_view(name, v, l, |x| x * x),
        UnaryOp::AddScalar(s) => {
            let s = c(s);
            map_view(name, v, l, |x| x + s)
        }
        UnaryOp::MulScalar(s) => {
            let s = c(s);
            map_view(name, v, l, |x| x * s)
        }
        UnaryOp::DivScalar(s) => {
            let s = c(s);
            map_view(name, v, l, |x| x / s)
        }
        UnaryOp::RSubScalar(s) => {
            let s = c(s);
            map_view(name, v, l, |x| s - x)
        }
        UnaryOp::RDivScalar(s) => {
            let s = c(s);
            map_view(name, v, l, |x| s / x)
        }
    }
}

fn unary_int(op: UnaryOp, v: &[i64], l: &Layout) -> Result<Vec<i64>> {
    let name = op.name();
    let int = |x: f64, what: &str| {
        if x.fract() != 0.0 {
            Err(Error::invalid(
                op.name(),
                format!("{what} {x} is not an integer for an i64 tensor"),
            ))
        } else {
            Ok(x as i64)
        }
    };
    match op {
        UnaryOp::Neg => map_view(name, v, l, |x| x.wrapping_neg()),
        UnaryOp::Abs => map_view(name, v, l, |x| x.wrapping_abs()),
        UnaryOp::Sign => map_view(name, v, l, i64::signum),
        UnaryOp::Relu => map_view(name, v, l, |x| x.max(0)),
        UnaryOp::Square => map_view(name, v, l, |x| x.wrapping_mul(x)),
        UnaryOp::Clamp { min, max } => {
            let (lo, hi) = (
                min.ceil().max(i64::MIN as f64) as i64,
                max.floor().min(i64::MAX as f64) as i64,
            );
            map_view(name, v, l, |x| x.max(lo).min(hi))
        }
        UnaryOp::AddScalar(s) => {
            let s = int(s, "scalar")?;
            map_view(name, v, l, |x| x.wrapping_add(s))
        }
        UnaryOp::MulScalar(s) => {
            let s = int(s, "scalar")?;
            map_view(name, v, l, |x| x.wrapping_mul(s))
        }
        UnaryOp::RSubScalar(s) => {
            let s = int(s, "scalar")?;
            map_view(name, v, l, |x| s.wrapping_sub(x))
        }
        _ => Err(Error::UnsupportedDType {
            op: op.name(),
            dtype: crate::DType::I64,
        }),
    }
}
