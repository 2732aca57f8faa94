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
        CpuStorage::F32(v) => match super::unary_f32::unary(op, v, layout) {
            Some(out) => CpuStorage::F32(out?),
            None => CpuStorage::F32(unary_float(op, ViewMap(op.name(), v, layout))?),
        },
        CpuStorage::F64(v) => CpuStorage::F64(unary_float(op, ViewMap(op.name(), v, layout))?),
        CpuStorage::I64(v) => CpuStorage::I64(unary_int(op, ViewMap(op.name(), v, layout))??),
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

/// Where a unary formula is applied: into a new vector read from a view ([`ViewMap`]), or in
/// place (`cpu/inplace.rs`). Each op's formula stays written once, in [`unary_float`] and
/// [`unary_int`].
pub(super) trait MapWith<T> {
    /// What applying a formula produces.
    type Out;
    /// Applies `f` to every element.
    fn map<F: Fn(T) -> T + Sync + Send>(self, f: F) -> Self::Out;
}

/// A view read into a new row-major vector (allocated fallibly; errors name the op).
pub(super) struct ViewMap<'a, T>(&'static str, &'a [T], &'a Layout);

impl<T: Copy + Send + Sync + Default + 'static> MapWith<T> for ViewMap<'_, T> {
    type Out = Result<Vec<T>>;
    fn map<F: Fn(T) -> T + Sync + Send>(self, f: F) -> Result<Vec<T>> {
        map_view(self.0, self.1, self.2, f)
    }
}

/// Applies the formula of `op` through `m`.
pub(super) fn unary_float<T: Float + Send + Sync + Default, M: MapWith<T>>(
    op: UnaryOp,
    m: M,
) -> M::Out {
    let c = |x: f64| T::from(x).expect("float constant");
    let (zero, one) = (T::zero(), T::one());
    match op {
        UnaryOp::Neg => m.map(|x| -x),
        UnaryOp::Abs => m.map(|x| x.abs()),
        UnaryOp::Exp => m.map(|x| x.exp()),
        UnaryOp::Log => m.map(|x| x.ln()),
        UnaryOp::Log1p => m.map(|x| x.ln_1p()),
        UnaryOp::Sqrt => m.map(|x| x.sqrt()),
        UnaryOp::Rsqrt => m.map(|x| one / x.sqrt()),
        UnaryOp::Sin => m.map(|x| x.sin()),
        UnaryOp::Cos => m.map(|x| x.cos()),
        UnaryOp::Tanh => m.map(|x| x.tanh()),
        UnaryOp::Sigmoid => m.map(|x| {
            if x >= zero {
                one / (one + (-x).exp())
            } else {
                let e = x.exp();
                e / (one + e)
            }
        }),
        // NaN stays NaN, as in PyTorch.
        UnaryOp::Relu => m.map(|x| if x > zero || x.is_nan() { x } else { zero }),
        UnaryOp::LeakyRelu(slope) => {
            let slope = c(slope);
            m.map(|x| if x > zero { x } else { x * slope })
        }
        UnaryOp::Elu(alpha) => {
            let alpha = c(alpha);
            m.map(|x| if x > zero { x } else { alpha * x.exp_m1() })
        }
        UnaryOp::Gelu => m.map(|x| {
            let xf = x.to_f64().unwrap_or(f64::NAN);
            c(xf * super::unary::normal_cdf(xf))
        }),
        UnaryOp::Erf => m.map(|x| c(libm::erf(x.to_f64().unwrap_or(f64::NAN)))),
        UnaryOp::Softplus { beta, threshold } => {
            let (b, t) = (c(beta), c(threshold));
            m.map(|x| {
                if x * b > t {
                    x
                } else {
                    (x * b).exp().ln_1p() / b
                }
            })
        }
        UnaryOp::Step { at_zero } => {
            let at_zero = c(at_zero);
            m.map(|x| {
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
        UnaryOp::Sign => m.map(|x| {
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
            m.map(|x| if x.is_nan() { x } else { x.max(lo).min(hi) })
        }
        UnaryOp::Powf(p) => {
            let p = c(p);
            m.map(|x| x.powf(p))
        }
        UnaryOp::Recip => m.map(|x| one / x),
        UnaryOp::Square => m.map(|x| x * x),
        UnaryOp::AddScalar(s) => {
            let s = c(s);
            m.map(|x| x + s)
        }
        UnaryOp::MulScalar(s) => {
            let s = c(s);
            m.map(|x| x * s)
        }
        UnaryOp::DivScalar(s) => {
            let s = c(s);
            m.map(|x| x / s)
        }
        UnaryOp::RSubScalar(s) => {
            let s = c(s);
            m.map(|x| s - x)
        }
        UnaryOp::RDivScalar(s) => {
            let s = c(s);
            m.map(|x| s / x)
        }
    }
}

/// Applies the i64 formula of `op` through `m` (an error for float-only ops and non-integer scalars).
pub(super) fn unary_int<M: MapWith<i64>>(op: UnaryOp, m: M) -> Result<M::Out> {
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
    Ok(match op {
        UnaryOp::Neg => m.map(|x| x.wrapping_neg()),
        UnaryOp::Abs => m.map(|x| x.wrapping_abs()),
        UnaryOp::Sign => m.map(i64::signum),
        UnaryOp::Relu => m.map(|x| x.max(0)),
        UnaryOp::Square => m.map(|x| x.wrapping_mul(x)),
        UnaryOp::Clamp { min, max } => {
            let (lo, hi) = (
                min.ceil().max(i64::MIN as f64) as i64,
                max.floor().min(i64::MAX as f64) as i64,
            );
            m.map(|x| x.max(lo).min(hi))
        }
        UnaryOp::AddScalar(s) => {
            let s = int(s, "scalar")?;
            m.map(|x| x.wrapping_add(s))
        }
        UnaryOp::MulScalar(s) => {
            let s = int(s, "scalar")?;
            m.map(|x| x.wrapping_mul(s))
        }
        UnaryOp::RSubScalar(s) => {
            let s = int(s, "scalar")?;
            m.map(|x| s.wrapping_sub(x))
        }
        _ => {
            return Err(Error::UnsupportedDType {
                op: op.name(),
                dtype: crate::DType::I64,
            });
        }
    })
}
