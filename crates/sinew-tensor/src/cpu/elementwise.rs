//! CPU kernels of binary arithmetic, comparisons and `where`.

use num_traits::Float;

use super::{CpuStorage, select_views, zip_views};
use crate::ops::{BinaryOp, CmpOp};
use crate::{DType, Error, Layout, Result, StridedOffsets};

/// The formula of a binary op on floats.
pub(super) fn float_op<T: Float>(op: BinaryOp) -> fn(T, T) -> T {
    match op {
        BinaryOp::Add => |a, b| a + b,
        BinaryOp::Sub => |a, b| a - b,
        BinaryOp::Mul => |a, b| a * b,
        BinaryOp::Div => |a, b| a / b,
        BinaryOp::Pow => |a, b| a.powf(b),
        BinaryOp::Maximum => |a, b| {
            if a.is_nan() || b.is_nan() {
                T::nan()
            } else {
                a.max(b)
            }
        },
        BinaryOp::Minimum => |a, b| {
            if a.is_nan() || b.is_nan() {
                T::nan()
            } else {
                a.min(b)
            }
        },
    }
}

/// [`float_op`] over two float views, with the four arithmetic ops as closures the compiler
/// inlines and vectorises (a function pointer would cost a call per element); the values are
/// the same.
fn float_zip<T: Float + Send + Sync + Default + 'static>(
    op: BinaryOp,
    a: &[T],
    ll: &Layout,
    b: &[T],
    rl: &Layout,
) -> Result<Vec<T>> {
    let name = op.name();
    match op {
        BinaryOp::Add => zip_views(name, a, ll, b, rl, |x: T, y: T| x + y),
        BinaryOp::Sub => zip_views(name, a, ll, b, rl, |x: T, y: T| x - y),
        BinaryOp::Mul => zip_views(name, a, ll, b, rl, |x: T, y: T| x * y),
        BinaryOp::Div => zip_views(name, a, ll, b, rl, |x: T, y: T| x / y),
        _ => zip_views(name, a, ll, b, rl, float_op(op)),
    }
}

/// Elementwise `op` of two same-shape views.
pub(super) fn binary(
    op: BinaryOp,
    lhs: &CpuStorage,
    ll: &Layout,
    rhs: &CpuStorage,
    rl: &Layout,
) -> Result<CpuStorage> {
    let name = op.name();
    Ok(match (lhs, rhs) {
        (CpuStorage::F32(a), CpuStorage::F32(b)) => CpuStorage::F32(float_zip(op, a, ll, b, rl)?),
        (CpuStorage::F64(a), CpuStorage::F64(b)) => CpuStorage::F64(float_zip(op, a, ll, b, rl)?),
        (CpuStorage::F16(a), CpuStorage::F16(b)) => {
            let f = float_op::<f32>(op);
            CpuStorage::F16(zip_views(name, a, ll, b, rl, |x, y| {
                half::f16::from_f32(f(x.to_f32(), y.to_f32()))
            })?)
        }
        (CpuStorage::BF16(a), CpuStorage::BF16(b)) => {
            let f = float_op::<f32>(op);
            CpuStorage::BF16(zip_views(name, a, ll, b, rl, |x, y| {
                half::bf16::from_f32(f(x.to_f32(), y.to_f32()))
            })?)
        }
        (CpuStorage::I64(a), CpuStorage::I64(b)) => {
            let f: fn(i64, i64) -> i64 = match op {
                BinaryOp::Add => i64::wrapping_add,
                BinaryOp::Sub => i64::wrapping_sub,
                BinaryOp::Mul => i64::wrapping_mul,
                BinaryOp::Maximum => std::cmp::max,
                BinaryOp::Minimum => std::cmp::min,
                BinaryOp::Div => {
                    if StridedOffsets::starting_at(rl, 0).any(|o| b[o] == 0) {
                        return Err(Error::invalid("div", "integer division by zero"));
                    }
                    i64::wrapping_div
                }
                BinaryOp::Pow => {
                    return Err(Error::UnsupportedDType {
                        op: "pow",
                        dtype: DType::I64,
                    });
                }
            };
            CpuStorage::I64(zip_views(name, a, ll, b, rl, f)?)
        }
        (a, b) if a.dtype() != b.dtype() => {
            return Err(Error::DTypeMismatch {
                op: op.name(),
                lhs: a.dtype(),
                rhs: b.dtype(),
            });
        }
        (a, _) => {
            return Err(Error::UnsupportedDType {
                op: op.name(),
                dtype: a.dtype(),
            });
        }
    })
}

fn cmp<T: PartialOrd>(op: CmpOp) -> fn(T, T) -> bool {
    match op {
        CmpOp::Eq => |a, b| a == b,
        CmpOp::Ne => |a, b| a != b,
        CmpOp::Lt => |a, b| a < b,
        CmpOp::Le => |a, b| a <= b,
        CmpOp::Gt => |a, b| a > b,
        CmpOp::Ge => |a, b| a >= b,
    }
}

/// Elementwise comparison of two same-shape, same-dtype views into bools.
pub(super) fn compare(
    op: CmpOp,
    lhs: &CpuStorage,
    ll: &Layout,
    rhs: &CpuStorage,
    rl: &Layout,
) -> Result<CpuStorage> {
    let name = op.name();
    Ok(CpuStorage::Bool(match (lhs, rhs) {
        (CpuStorage::F32(a), CpuStorage::F32(b)) => zip_views(name, a, ll, b, rl, cmp(op))?,
        (CpuStorage::F64(a), CpuStorage::F64(b)) => zip_views(name, a, ll, b, rl, cmp(op))?,
        (CpuStorage::F16(a), CpuStorage::F16(b)) => zip_views(name, a, ll, b, rl, cmp(op))?,
        (CpuStorage::BF16(a), CpuStorage::BF16(b)) => zip_views(name, a, ll, b, rl, cmp(op))?,
        (CpuStorage::I64(a), CpuStorage::I64(b)) => zip_views(name, a, ll, b, rl, cmp(op))?,
        (CpuStorage::U8(a), CpuStorage::U8(b)) => zip_views(name, a, ll, b, rl, cmp(op))?,
        (CpuStorage::Bool(a), CpuStorage::Bool(b)) => zip_views(name, a, ll, b, rl, cmp(op))?,
        (a, b) => {
            return Err(Error::DTypeMismatch {
                op: op.name(),
                lhs: a.dtype(),
                rhs: b.dtype(),
            });
        }
    }))
}

/// `cond ? on_true : on_false` over three same-shape views.
pub(super) fn where_cond(
    cond: &CpuStorage,
    cl: &Layout,
    on_true: &CpuStorage,
    tl: &Layout,
    on_false: &CpuStorage,
    fl: &Layout,
) -> Result<CpuStorage> {
    let CpuStorage::Bool(c) = cond else {
        return Err(Error::UnsupportedDType {
            op: "where_cond (condition)",
            dtype: cond.dtype(),
        });
    };
    macro_rules! arm {
        ($($v:ident),*) => {
            match (on_true, on_false) {
                $((CpuStorage::$v(t), CpuStorage::$v(f)) => CpuStorage::$v(select_views("where_cond", c, cl, t, tl, f, fl)?),)*
                (t, f) => {
                    return Err(Error::DTypeMismatch { op: "where_cond", lhs: t.dtype(), rhs: f.dtype() })
                }
            }
        };
    }
    Ok(arm!(F32, F64, F16, BF16, I64, U8, Bool))
}
