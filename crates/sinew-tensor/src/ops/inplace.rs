//! In-place updates (`add_`, `axpy_`, `addcmul_`, `clamp_`, `fill_`, ...): the optimizer's
//! building blocks. CPU kernels: `cpu/inplace.rs`.
//!
//! Each method checks its operands, then writes through `Tensor::write_with` (which refuses
//! expanded destinations and bumps the version counter) via one private helper,
//! `Tensor::inplace`. Sources broadcast to the destination's shape; the destination never
//! broadcasts. A source sharing the destination's storage (`x.add_(&x)`) is copied first.
//! With same-shape operands on the CPU nothing is allocated.

use std::borrow::Cow;

use crate::backend::InplaceOp;
use crate::ops::{BinaryOp, UnaryOp};
use crate::{DType, Error, Layout, Result, Tensor};

impl Tensor {
    /// `self += other` (broadcast to `self`'s shape). PyTorch equivalent: `self.add_(other)`.
    pub fn add_(&self, other: &Tensor) -> Result<()> {
        self.inplace("add_", InplaceOp::Binary(BinaryOp::Add), [other])
    }

    /// `self -= other` (broadcast). PyTorch equivalent: `self.sub_(other)`.
    pub fn sub_(&self, other: &Tensor) -> Result<()> {
        self.inplace("sub_", InplaceOp::Binary(BinaryOp::Sub), [other])
    }

    /// `self *= other` (broadcast). PyTorch equivalent: `self.mul_(other)`.
    pub fn mul_(&self, other: &Tensor) -> Result<()> {
        self.inplace("mul_", InplaceOp::Binary(BinaryOp::Mul), [other])
    }

    /// `self /= other` (broadcast), float tensors: true division of an integer tensor has a
    /// float result, which PyTorch refuses in place too ([`Tensor::div_trunc_`] truncates).
    /// PyTorch equivalent: `self.div_(other)`.
    pub fn div_(&self, other: &Tensor) -> Result<()> {
        if !self.dtype().is_float() {
            return Err(Error::UnsupportedDType {
                op: "div_ (true division; div_trunc_ divides integers in place)",
                dtype: self.dtype(),
            });
        }
        self.inplace("div_", InplaceOp::Binary(BinaryOp::Div), [other])
    }

    /// `self = self / other` rounded toward zero (broadcast), integer tensors; division by zero
    /// is an error and nothing is written. PyTorch equivalent:
    /// `self.div_(other, rounding_mode="trunc")`.
    pub fn div_trunc_(&self, other: &Tensor) -> Result<()> {
        if self.dtype().is_float() {
            return Err(Error::UnsupportedDType {
                op: "div_trunc_ (integer tensors; floats divide with div_)",
                dtype: self.dtype(),
            });
        }
        self.inplace("div_trunc_", InplaceOp::Binary(BinaryOp::Div), [other])
    }

    /// `self = max(self, other)` elementwise (broadcast; NaN propagates). PyTorch equivalent:
    /// `torch.maximum(self, other, out=self)`. Used by AMSGrad and Adamax.
    pub fn maximum_(&self, other: &Tensor) -> Result<()> {
        self.inplace("maximum_", InplaceOp::Binary(BinaryOp::Maximum), [other])
    }

    /// `self += s` (an integer `s` for i64 tensors). PyTorch equivalent: `self.add_(s)`.
    pub fn add_scalar_(&self, s: f64) -> Result<()> {
        self.inplace("add_scalar_", InplaceOp::Unary(UnaryOp::AddScalar(s)), [])
    }

    /// `self *= s` (an integer `s` for i64 tensors). PyTorch equivalent: `self.mul_(s)`.
    pub fn mul_scalar_(&self, s: f64) -> Result<()> {
        self.inplace("mul_scalar_", InplaceOp::Unary(UnaryOp::MulScalar(s)), [])
    }

    /// `self += alpha * x` (broadcast). PyTorch equivalent: `self.add_(x, alpha=alpha)`.
    pub fn axpy_(&self, alpha: f64, x: &Tensor) -> Result<()> {
        self.inplace("axpy_", InplaceOp::Axpy(alpha), [x])
    }

    /// `self += value * t1 * t2` (both broadcast). PyTorch equivalent:
    /// `self.addcmul_(t1, t2, value=value)`.
    pub fn addcmul_(&self, value: f64, t1: &Tensor, t2: &Tensor) -> Result<()> {
        self.inplace("addcmul_", InplaceOp::Addcmul(value), [t1, t2])
    }

    /// `self += value * t1 / t2` (both broadcast; floats only). PyTorch equivalent:
    /// `self.addcdiv_(t1, t2, value=value)`.
    pub fn addcdiv_(&self, value: f64, t1: &Tensor, t2: &Tensor) -> Result<()> {
        self.check_float("addcdiv_")?;
        self.inplace("addcdiv_", InplaceOp::Addcdiv(value), [t1, t2])
    }

    /// `self += weight * (end - self)` (floats only; exact at weight 0 and 1).
    /// PyTorch equivalent: `self.lerp_(end, weight)`.
    pub fn lerp_(&self, end: &Tensor, weight: f64) -> Result<()> {
        self.check_float("lerp_")?;
        self.inplace("lerp_", InplaceOp::Lerp(weight), [end])
    }

    /// `self = scale * self + alpha * x` (broadcast; floats) in one pass: SGD's momentum
    /// buffer. Equals `mul_scalar_(scale)` then `axpy_(alpha, x)` bit for bit in f32 and f64.
    pub fn mul_axpy_(&self, scale: f64, alpha: f64, x: &Tensor) -> Result<()> {
        self.check_float("mul_axpy_")?;
        self.inplace("mul_axpy_", InplaceOp::MulAxpy { scale, alpha }, [x])
    }

    /// `self = scale * self + value * t1 * t2` (broadcast; floats) in one pass: Adam's and
    /// RMSprop's squared-gradient average. Equals `mul_scalar_(scale)` then
    /// `addcmul_(value, t1, t2)` bit for bit in f32 and f64.
    pub fn mul_addcmul_(&self, scale: f64, value: f64, t1: &Tensor, t2: &Tensor) -> Result<()> {
        self.check_float("mul_addcmul_")?;
        self.inplace(
            "mul_addcmul_",
            InplaceOp::MulAddcmul { scale, value },
            [t1, t2],
        )
    }

    /// `self += value * t1 / (sqrt(t2) * scale + eps)` (broadcast; floats) in one pass and
    /// without a denominator buffer: the parameter step of Adam (`scale = 1 / sqrt(1 -
    /// beta2^t)`), RMSprop and Adagrad (`scale = 1`). Equals building the denominator with
    /// `sqrt`, `mul_scalar_`, `add_scalar_` and then `addcdiv_` bit for bit in f32 and f64.
    pub fn addcdiv_sqrt_(
        &self,
        value: f64,
        t1: &Tensor,
        t2: &Tensor,
        scale: f64,
        eps: f64,
    ) -> Result<()> {
        self.check_float("addcdiv_sqrt_")?;
        let op = InplaceOp::AddcdivSqrt { value, scale, eps };
        self.inplace("addcdiv_sqrt_", op, [t1, t2])
    }

    /// `self = max(scale * self, |x| + eps)` (broadcast; floats) in one pass: Adamax's
    /// infinity-norm buffer. Equals `mul_scalar_(scale)` then `maximum_` with `|x| + eps` bit
    /// for bit in f32 and f64 (NaN when either side is NaN).
    pub fn mul_max_abs_(&self, scale: f64, eps: f64, x: &Tensor) -> Result<()> {
        self.check_float("mul_max_abs_")?;
        self.inplace("mul_max_abs_", InplaceOp::MulMaxAbs { scale, eps }, [x])
    }

    /// Clamps into `[min, max]` in place (NaN stays NaN). PyTorch equivalent:
    /// `self.clamp_(min, max)`.
    pub fn clamp_(&self, min: f64, max: f64) -> Result<()> {
        if min > max || min.is_nan() || max.is_nan() {
            return Err(Error::invalid(
                "clamp_",
                format!("min {min} must not be greater than max {max}"),
            ));
        }
        self.inplace("clamp_", InplaceOp::Unary(UnaryOp::Clamp { min, max }), [])
    }

    /// Applies any elementwise unary op in place (`relu`, `sqrt`, ...). PyTorch equivalent:
    /// `self.relu_()`, `self.sqrt_()`, ...
    pub fn unary_(&self, op: UnaryOp) -> Result<()> {
        self.inplace(op.name(), InplaceOp::Unary(op), [])
    }

    /// Sets every element to `value` (any dtype). PyTorch equivalent: `self.fill_(value)`.
    pub fn fill_(&self, value: f64) -> Result<()> {
        self.inplace("fill_", InplaceOp::Fill(value), [])
    }

    /// Sets every element to zero. PyTorch equivalent: `self.zero_()`.
    pub fn zero_(&self) -> Result<()> {
        self.fill_(0.0)
    }

    /// The one path of every in-place op above: source checks (device, dtype, broadcast to
    /// `self`'s shape), aliasing sources copied, then the backend's `inplace` under
    /// [`Tensor::write_with`].
    fn inplace<const N: usize>(
        &self,
        op_name: &'static str,
        op: InplaceOp,
        srcs: [&Tensor; N],
    ) -> Result<()> {
        let arithmetic = matches!(
            self.dtype(),
            DType::F32 | DType::F64 | DType::F16 | DType::BF16 | DType::I64
        );
        if !arithmetic && !matches!(op, InplaceOp::Fill(_)) {
            return Err(Error::UnsupportedDType {
                op: op_name,
                dtype: self.dtype(),
            });
        }
        for src in srcs {
            self.check_same_device(op_name, src)?;
            self.check_same_dtype(op_name, src)?;
            let fits = src.rank() <= self.rank()
                && src
                    .dims()
                    .iter()
                    .rev()
                    .zip(self.dims().iter().rev())
                    .all(|(&s, &d)| s == d || s == 1);
            if !fits {
                return Err(Error::ShapeMismatch {
                    op: op_name,
                    lhs: self.shape().clone(),
                    rhs: src.shape().clone(),
                });
            }
        }
        // `x.add_(&x)`-style aliasing: read from a copy.
        let mut copies: [Option<Tensor>; N] = std::array::from_fn(|_| None);
        for (copy, src) in copies.iter_mut().zip(srcs) {
            if src.same_storage(self) {
                *copy = Some(src.force_contiguous()?);
            }
        }
        let srcs: [&Tensor; N] = std::array::from_fn(|i| copies[i].as_ref().unwrap_or(srcs[i]));
        let mut layouts: [Cow<'_, Layout>; N] =
            std::array::from_fn(|i| Cow::Borrowed(srcs[i].layout()));
        for (layout, src) in layouts.iter_mut().zip(srcs) {
            if src.shape() != self.shape() {
                *layout = Cow::Owned(src.layout().broadcast_to(self.shape())?);
            }
        }
        let backend = self.device().backend();
        self.write_with(srcs, |dst, dst_layout, storages| {
            let views: [(&dyn crate::BackendStorage, &Layout); N] =
                std::array::from_fn(|i| (storages[i], &*layouts[i]));
            backend.inplace(op, dst, dst_layout, &views)
        })
    }
}
