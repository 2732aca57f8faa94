//! Elementwise unary ops and scalar arithmetic (`Tensor` methods). CPU kernels: `cpu/unary.rs`.

use super::UnaryOp;
use crate::{DType, Error, Result, Tensor};

impl Tensor {
    /// Applies any [`UnaryOp`] (the entry point autograd and GPU tests use).
    pub(crate) fn unary_untracked(&self, op: UnaryOp) -> Result<Tensor> {
        let ok = self.dtype().is_float() || (self.dtype() == DType::I64 && op.supports_integers());
        if !ok {
            return Err(Error::UnsupportedDType {
                op: op.name(),
                dtype: self.dtype(),
            });
        }
        self.map_storage(self.shape().clone(), |b, s, l| b.unary(op, s, l))
    }
}

macro_rules! unary_methods {
    ($($(#[$doc:meta])* $name:ident => $op:ident;)*) => {
        impl Tensor {
            $(
                $(#[$doc])*
                pub fn $name(&self) -> Result<Tensor> {
                    self.unary(UnaryOp::$op)
                }
            )*
        }
    };
}

unary_methods! {
    /// `-x`. PyTorch equivalent: `torch.neg`.
    neg => Neg;
    /// `|x|`. PyTorch equivalent: `torch.abs`.
    abs => Abs;
    /// `e^x`. PyTorch equivalent: `torch.exp`.
    exp => Exp;
    /// Natural logarithm. PyTorch equivalent: `torch.log`.
    log => Log;
    /// `ln(1 + x)`. PyTorch equivalent: `torch.log1p`.
    log1p => Log1p;
    /// Square root. PyTorch equivalent: `torch.sqrt`.
    sqrt => Sqrt;
    /// `1 / sqrt(x)`. PyTorch equivalent: `torch.rsqrt`.
    rsqrt => Rsqrt;
    /// Sine. PyTorch equivalent: `torch.sin`.
    sin => Sin;
    /// Cosine. PyTorch equivalent: `torch.cos`.
    cos => Cos;
    /// Hyperbolic tangent. PyTorch equivalent: `torch.tanh`.
    tanh => Tanh;
    /// Logistic sigmoid. PyTorch equivalent: `torch.sigmoid`.
    sigmoid => Sigmoid;
    /// `max(x, 0)`. PyTorch equivalent: `torch.relu`.
    relu => Relu;
    /// Exact GELU, `x Φ(x)`. PyTorch equivalent: `F.gelu(x)` (approximate='none').
    gelu => Gelu;
    /// The error function. PyTorch equivalent: `torch.erf`.
    erf => Erf;
    /// -1, 0 or 1. PyTorch equivalent: `torch.sign`.
    sign => Sign;
    /// `1 / x`. PyTorch equivalent: `torch.reciprocal`.
    recip => Recip;
    /// `x * x`. PyTorch equivalent: `torch.square`.
    square => Square;
}

impl Tensor {
    /// `x` where positive, else `slope * x`. PyTorch equivalent: `F.leaky_relu(x, slope)` (default 0.01).
    pub fn leaky_relu(&self, slope: f64) -> Result<Tensor> {
        self.unary(UnaryOp::LeakyRelu(slope))
    }

    /// `x` where positive, else `alpha (e^x - 1)`. PyTorch equivalent: `F.elu(x, alpha)` (default 1).
    pub fn elu(&self, alpha: f64) -> Result<Tensor> {
        self.unary(UnaryOp::Elu(alpha))
    }

    /// `ln(1 + e^(beta x)) / beta`, linear where `beta x > threshold`.
    /// PyTorch equivalent: `F.softplus(x, beta, threshold)` (defaults 1, 20).
    pub fn softplus(&self, beta: f64, threshold: f64) -> Result<Tensor> {
        self.unary(UnaryOp::Softplus { beta, threshold })
    }

    /// Heaviside step with value `at_zero` at 0. PyTorch equivalent: `torch.heaviside(x, at_zero)`.
    pub fn step(&self, at_zero: f64) -> Result<Tensor> {
        self.unary(UnaryOp::Step { at_zero })
    }

    /// Clamps into `[min, max]` (use infinities for one side). PyTorch equivalent: `torch.clamp`.
    /// An i64 tensor stays i64, its bounds rounded inward (`clamp(-1.5, 1.5)` keeps `[-1, 1]`),
    /// where PyTorch promotes it to float for fractional bounds.
    pub fn clamp(&self, min: f64, max: f64) -> Result<Tensor> {
        if min > max {
            return Err(Error::invalid(
                "clamp",
                format!("min {min} is greater than max {max}"),
            ));
        }
        self.unary(UnaryOp::Clamp { min, max })
    }

    /// `x^p` for a scalar exponent. PyTorch equivalent: `torch.pow(x, p)`.
    pub fn powf(&self, p: f64) -> Result<Tensor> {
        self.unary(UnaryOp::Powf(p))
    }

    /// `x + s`.
    pub fn add_scalar(&self, s: f64) -> Result<Tensor> {
        self.unary(UnaryOp::AddScalar(s))
    }

    /// `x - s`.
    pub fn sub_scalar(&self, s: f64) -> Result<Tensor> {
        self.unary(UnaryOp::AddScalar(-s))
    }

    /// `x * s`.
    pub fn mul_scalar(&self, s: f64) -> Result<Tensor> {
        self.unary(UnaryOp::MulScalar(s))
    }

    /// `x / s`; an integer `x` gives f32, as PyTorch's true division.
    pub fn div_scalar(&self, s: f64) -> Result<Tensor> {
        if !self.dtype().is_float() {
            return self.to_dtype(DType::F32)?.div_scalar(s);
        }
        self.unary(UnaryOp::DivScalar(s))
    }

    /// `s - x`. PyTorch equivalent: `torch.rsub(x, s)`.
    pub fn rsub_scalar(&self, s: f64) -> Result<Tensor> {
        self.unary(UnaryOp::RSubScalar(s))
    }

    /// `s / x`; an integer `x` gives f32, as PyTorch's true division.
    pub fn rdiv_scalar(&self, s: f64) -> Result<Tensor> {
        if !self.dtype().is_float() {
            return self.to_dtype(DType::F32)?.rdiv_scalar(s);
        }
        self.unary(UnaryOp::RDivScalar(s))
    }

    /// `max(x, s)` elementwise. PyTorch equivalent: `torch.clamp(x, min=s)` (an i64 tensor: `s`
    /// rounded up, see [`Tensor::clamp`]).
    pub fn maximum_scalar(&self, s: f64) -> Result<Tensor> {
        self.unary(UnaryOp::Clamp {
            min: s,
            max: f64::INFINITY,
        })
    }

    /// `min(x, s)` elementwise. PyTorch equivalent: `torch.clamp(x, max=s)` (an i64 tensor: `s`
    /// rounded down, see [`Tensor::clamp`]).
    pub fn minimum_scalar(&self, s: f64) -> Result<Tensor> {
        self.unary(UnaryOp::Clamp {
            min: f64::NEG_INFINITY,
            max: s,
        })
    }
}

#[cfg(test)]
// Expected values are PyTorch's printed digits (more than f32 holds, some close to ln 2).
#[allow(clippy::excessive_precision, clippy::approx_constant)]
mod tests {
    use crate::{DType, Tensor};

    fn t(v: &[f32]) -> Tensor {
        Tensor::from_slice(v, [v.len()]).unwrap()
    }

    fn close(a: &[f32], b: &[f32]) {
        assert_eq!(a.len(), b.len());
        for (i, (x, y)) in a.iter().zip(b).enumerate() {
            let ok =
                (x.is_nan() && y.is_nan()) || x == y || (x - y).abs() <= 1e-6 * (1.0 + y.abs());
            assert!(ok, "element {i}: {x} vs {y}");
        }
    }

    #[test]
    fn activations_match_pytorch() {
        // torch.tensor([-2., -0.5, 0., 0.5, 3.]) through each function:
        let x = t(&[-2.0, -0.5, 0.0, 0.5, 3.0]);
        // torch.sigmoid(x)
        close(
            &x.sigmoid().unwrap().to_vec::<f32>().unwrap(),
            &[0.11920292, 0.37754068, 0.5, 0.62245935, 0.95257413],
        );
        // F.gelu(x)
        close(
            &x.gelu().unwrap().to_vec::<f32>().unwrap(),
            &[-0.04550026, -0.15426877, 0.0, 0.34573123, 2.9959502],
        );
        // F.elu(x)
        close(
            &x.elu(1.0).unwrap().to_vec::<f32>().unwrap(),
            &[-0.86466473, -0.39346933, 0.0, 0.5, 3.0],
        );
        // F.softplus(x)
        close(
            &x.softplus(1.0, 20.0).unwrap().to_vec::<f32>().unwrap(),
            &[0.12692805, 0.47407699, 0.69314718, 0.97407699, 3.04858732],
        );
        // F.leaky_relu(x, 0.1)
        close(
            &x.leaky_relu(0.1).unwrap().to_vec::<f32>().unwrap(),
            &[-0.2, -0.05, 0.0, 0.5, 3.0],
        );
        // torch.heaviside(x, torch.tensor(0.5))
        close(
            &x.step(0.5).unwrap().to_vec::<f32>().unwrap(),
            &[0.0, 0.0, 0.5, 1.0, 1.0],
        );
        // torch.tanh(x)
        close(
            &x.tanh().unwrap().to_vec::<f32>().unwrap(),
            &[-0.96402758, -0.46211716, 0.0, 0.46211716, 0.99505475],
        );
    }

    #[test]
    fn special_values_propagate() {
        let x = t(&[f32::NAN, f32::INFINITY, f32::NEG_INFINITY, 0.0]);
        close(
            &x.relu().unwrap().to_vec::<f32>().unwrap(),
            &[f32::NAN, f32::INFINITY, 0.0, 0.0],
        );
        close(
            &x.sign().unwrap().to_vec::<f32>().unwrap(),
            &[f32::NAN, 1.0, -1.0, 0.0],
        );
        close(
            &x.sigmoid().unwrap().to_vec::<f32>().unwrap(),
            &[f32::NAN, 1.0, 0.0, 0.5],
        );
        close(
            &x.clamp(-1.0, 1.0).unwrap().to_vec::<f32>().unwrap(),
            &[f32::NAN, 1.0, -1.0, 0.0],
        );
        close(
            &x.log().unwrap().to_vec::<f32>().unwrap(),
            &[f32::NAN, f32::INFINITY, f32::NAN, f32::NEG_INFINITY],
        );
    }

    #[test]
    fn non_contiguous_input_gives_row_major_output() {
        let m = Tensor::from_vec(vec![1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0], [2, 3]).unwrap();
        let out = m.t().unwrap().mul_scalar(10.0).unwrap();
        assert_eq!(out.dims(), &[3, 2]);
        assert_eq!(
            out.to_vec::<f32>().unwrap(),
            vec![10.0, 40.0, 20.0, 50.0, 30.0, 60.0]
        );
    }

    #[test]
    fn half_precision_goes_through_f32() {
        let x = t(&[0.5, 1.0, 2.0]).to_dtype(DType::F16).unwrap();
        let y = x
            .exp()
            .unwrap()
            .to_dtype(DType::F32)
            .unwrap()
            .to_vec::<f32>()
            .unwrap();
        for (a, b) in y.iter().zip([0.5f32.exp(), 1f32.exp(), 2f32.exp()]) {
            assert!((a - b).abs() / b < 1e-3, "{a} vs {b}");
        }
        let x = t(&[0.5]).to_dtype(DType::BF16).unwrap();
        assert_eq!(x.sqrt().unwrap().dtype(), DType::BF16);
    }

    #[test]
    fn integer_support_is_explicit() {
        let x = Tensor::from_vec(vec![-3i64, 0, 4], [3]).unwrap();
        assert_eq!(x.abs().unwrap().to_vec::<i64>().unwrap(), vec![3, 0, 4]);
        assert_eq!(
            x.add_scalar(2.0).unwrap().to_vec::<i64>().unwrap(),
            vec![-1, 2, 6]
        );
        let err = x.exp().unwrap_err();
        assert_eq!(err.to_string(), "exp: unsupported dtype I64");
        assert!(x.add_scalar(0.5).is_err());
    }

    #[test]
    fn empty_and_scalar_tensors() {
        let e = Tensor::from_vec(Vec::<f32>::new(), [0, 3]).unwrap();
        assert_eq!(e.exp().unwrap().dims(), &[0, 3]);
        let s = Tensor::scalar(4.0f64);
        assert_eq!(s.sqrt().unwrap().to_scalar::<f64>().unwrap(), 2.0);
    }
}
