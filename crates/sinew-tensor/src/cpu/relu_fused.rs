//! ReLU fused with its neighbours, one pass each: its backward `grad * (output > 0)` (the
//! multiplier 1 or 0 in the gradient's dtype, so the values are those of the composed mask, cast
//! and product: a NaN or infinite gradient where the output is not positive still gives NaN, and
//! a negative one `-0`), and a residual connection's `relu(a + b)` (the values of the sum then
//! the unary ReLU: half precision adds in f32 and rounds once, and rounding commutes with ReLU).

use super::{CpuStorage, zip_views};
use crate::{Error, Layout, Result};

/// The error for two storages this file has no kernel for: different dtypes, or not floats.
fn unsupported(op: &'static str, a: &CpuStorage, b: &CpuStorage) -> Error {
    if a.dtype() != b.dtype() {
        Error::DTypeMismatch {
            op,
            lhs: a.dtype(),
            rhs: b.dtype(),
        }
    } else {
        Error::UnsupportedDType {
            op,
            dtype: a.dtype(),
        }
    }
}

/// ReLU as the unary kernel computes it: NaN kept, everything not above zero (-0 too) to +0.
fn relu_f32(x: f32) -> f32 {
    if x > 0.0 || x.is_nan() { x } else { 0.0 }
}

/// [`relu_f32`] in f64.
fn relu_f64(x: f64) -> f64 {
    if x > 0.0 || x.is_nan() { x } else { 0.0 }
}

/// `relu(lhs + rhs)` over two same-shape views of one float dtype.
pub(super) fn add_relu(
    lhs: &CpuStorage,
    ll: &Layout,
    rhs: &CpuStorage,
    rl: &Layout,
) -> Result<CpuStorage> {
    const OP: &str = "add_relu";
    Ok(match (lhs, rhs) {
        (CpuStorage::F32(a), CpuStorage::F32(b)) => {
            CpuStorage::F32(zip_views(OP, a, ll, b, rl, |x: f32, y: f32| {
                relu_f32(x + y)
            })?)
        }
        (CpuStorage::F64(a), CpuStorage::F64(b)) => {
            CpuStorage::F64(zip_views(OP, a, ll, b, rl, |x: f64, y: f64| {
                relu_f64(x + y)
            })?)
        }
        (CpuStorage::F16(a), CpuStorage::F16(b)) => CpuStorage::F16(zip_views(
            OP,
            a,
            ll,
            b,
            rl,
            |x: half::f16, y: half::f16| half::f16::from_f32(relu_f32(x.to_f32() + y.to_f32())),
        )?),
        (CpuStorage::BF16(a), CpuStorage::BF16(b)) => CpuStorage::BF16(zip_views(
            OP,
            a,
            ll,
            b,
            rl,
            |x: half::bf16, y: half::bf16| half::bf16::from_f32(relu_f32(x.to_f32() + y.to_f32())),
        )?),
        (a, b) => return Err(unsupported(OP, a, b)),
    })
}

/// ReLU's input gradient over two same-shape views of one float dtype: 0 where the output is
/// `<= 0`, else the gradient as it is (PyTorch's `threshold_backward`: a select, so an inf or
/// NaN gradient at an inactive position gives 0, and a NaN output passes the gradient).
pub(super) fn relu_backward(
    grad: &CpuStorage,
    gl: &Layout,
    output: &CpuStorage,
    ol: &Layout,
) -> Result<CpuStorage> {
    const OP: &str = "relu backward";
    Ok(match (grad, output) {
        (CpuStorage::F32(g), CpuStorage::F32(y)) => CpuStorage::F32(zip_views(
            OP,
            g,
            gl,
            y,
            ol,
            |g: f32, y: f32| {
                if y <= 0.0 { 0.0 } else { g }
            },
        )?),
        (CpuStorage::F64(g), CpuStorage::F64(y)) => CpuStorage::F64(zip_views(
            OP,
            g,
            gl,
            y,
            ol,
            |g: f64, y: f64| {
                if y <= 0.0 { 0.0 } else { g }
            },
        )?),
        (CpuStorage::F16(g), CpuStorage::F16(y)) => {
            CpuStorage::F16(zip_views(OP, g, gl, y, ol, |g, y: half::f16| {
                if y.to_f32() <= 0.0 {
                    half::f16::ZERO
                } else {
                    g
                }
            })?)
        }
        (CpuStorage::BF16(g), CpuStorage::BF16(y)) => {
            CpuStorage::BF16(zip_views(OP, g, gl, y, ol, |g, y: half::bf16| {
                if y.to_f32() <= 0.0 {
                    half::bf16::ZERO
                } else {
                    g
                }
            })?)
        }
        (g, y) => return Err(unsupported(OP, g, y)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{DType, Shape, Tensor};

    /// The composed rule it replaces: `where(output <= 0, 0, grad)`.
    fn composed(g: &Tensor, y: &Tensor) -> Vec<f32> {
        let zero = Tensor::zeros((), g.dtype(), g.device()).unwrap();
        let inactive = y.le_scalar(0.0).unwrap();
        inactive
            .where_cond(&zero, g)
            .unwrap()
            .to_vec::<f32>()
            .unwrap()
    }

    /// PyTorch's `threshold_backward`: an inf, NaN or negative gradient where the output is
    /// `<= 0` gives +0, a NaN output passes the gradient, a positive one passes it too.
    #[test]
    fn inactive_positions_give_zero_whatever_the_gradient() {
        let g = [f32::INFINITY, f32::NAN, -2.0, 3.0, f32::NEG_INFINITY, 5.0];
        let y = [0.0f32, -0.0, 0.0, f32::NAN, 1.0, 2.0];
        let l = Layout::contiguous(Shape::new([6]));
        let out = relu_backward(
            &CpuStorage::F32(g.to_vec()),
            &l,
            &CpuStorage::F32(y.to_vec()),
            &l,
        );
        let CpuStorage::F32(got) = out.unwrap() else {
            panic!("dtype")
        };
        let bits: Vec<u32> = got.iter().map(|v| v.to_bits()).collect();
        let want = [0.0f32, 0.0, 0.0, 3.0, f32::NEG_INFINITY, 5.0].map(f32::to_bits);
        assert_eq!(bits, want);
    }

    #[test]
    fn matches_the_composed_rule_bit_for_bit() {
        // Odd length, signed zeros, NaN and infinities in both operands.
        let special = [
            0.0f32,
            -0.0,
            f32::NAN,
            f32::INFINITY,
            f32::NEG_INFINITY,
            1.5,
            -2.5,
        ];
        let n = 37;
        let g: Vec<f32> = (0..n).map(|i| special[i % 7] * (1.0 + i as f32)).collect();
        let y: Vec<f32> = (0..n).map(|i| special[(i / 7 + i) % 7]).collect();
        let (gt, yt) = (
            Tensor::from_vec(g.clone(), [n]).unwrap(),
            Tensor::from_vec(y.clone(), [n]).unwrap(),
        );
        let l = Layout::contiguous(Shape::new([n]));
        let CpuStorage::F32(got) = relu_backward(
            &CpuStorage::F32(g.clone()),
            &l,
            &CpuStorage::F32(y.clone()),
            &l,
        )
        .unwrap() else {
            panic!("dtype")
        };
        let want = composed(&gt, &yt);
        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&got), bits(&want));
        // A transposed (strided) gradient view.
        let (r, c) = (3, 5);
        let g2: Vec<f32> = (0..r * c).map(|i| i as f32 - 7.0).collect();
        let y2: Vec<f32> = (0..r * c).map(|i| 3.0 - i as f32).collect();
        let gt2 = Tensor::from_vec(g2.clone(), [c, r]).unwrap().t().unwrap();
        let yt2 = Tensor::from_vec(y2.clone(), [r, c]).unwrap();
        let gl2 = gt2.layout().clone();
        let yl2 = Layout::contiguous(Shape::new([r, c]));
        let CpuStorage::F32(got2) =
            relu_backward(&CpuStorage::F32(g2), &gl2, &CpuStorage::F32(y2), &yl2).unwrap()
        else {
            panic!("dtype")
        };
        assert_eq!(bits(&got2), bits(&composed(&gt2, &yt2)));
    }

    #[test]
    fn add_relu_has_the_values_of_add_then_relu() {
        // Specials, signed zeros and exact cancellations, broadcast along both dims.
        let special = [
            0.0,
            -0.0,
            f64::NAN,
            f64::INFINITY,
            f64::NEG_INFINITY,
            1.5,
            -2.5,
        ];
        let a: Vec<f64> = (0..35)
            .map(|i| special[i % 7] * (1.0 + (i % 3) as f64))
            .collect();
        let b: Vec<f64> = (0..5).map(|i| -special[(i + 5) % 7] - 0.25).collect();
        for dtype in [DType::F32, DType::F64, DType::F16, DType::BF16] {
            let a = Tensor::from_vec(a.clone(), [7, 5])
                .unwrap()
                .to_dtype(dtype)
                .unwrap();
            let row = Tensor::from_vec(b.clone(), [5])
                .unwrap()
                .to_dtype(dtype)
                .unwrap();
            for (lhs, rhs) in [
                (&a, &row),
                (&a, &a.neg().unwrap()),
                (&a.t().unwrap(), &a.t().unwrap()),
            ] {
                let want = lhs.add(rhs).unwrap().relu().unwrap().to_vec_f64().unwrap();
                let got = lhs.add_relu(rhs).unwrap().to_vec_f64().unwrap();
                for (w, g) in want.iter().zip(&got) {
                    let same = w.to_bits() == g.to_bits() || (w.is_nan() && g.is_nan());
                    assert!(same, "{dtype}: {g} != {w}");
                }
                assert!(got.iter().any(|v| v.is_nan()) && got.contains(&0.0));
            }
        }
    }

    #[test]
    fn mismatched_or_integer_dtypes_are_errors() {
        let l = Layout::contiguous(Shape::new([1]));
        let f = CpuStorage::F32(vec![1.0]);
        assert!(relu_backward(&f, &l, &CpuStorage::F64(vec![1.0]), &l).is_err());
        let i = CpuStorage::I64(vec![1]);
        assert!(relu_backward(&i, &l, &i, &l).is_err());
    }
}
