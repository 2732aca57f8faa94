//! Binary arithmetic with broadcasting, comparisons, `where` and masking. CPU kernels:
//! `cpu/elementwise.rs`. Operator sugar (`&a + &b`) is at the bottom and panics on error.

use super::{BinaryOp, CmpOp};
use crate::backend::{Backend, BackendStorage, BoxedStorage};
use crate::{DType, Error, Layout, Result, Shape, Tensor};

impl Tensor {
    /// Runs `f` with the storages of two tensors (one lock when they share storage).
    pub(crate) fn with_two_storages<R>(
        &self,
        other: &Tensor,
        f: impl FnOnce(&dyn BackendStorage, &dyn BackendStorage) -> R,
    ) -> R {
        Tensor::with_storages([self, other], |[a, b]| f(a, b))
    }

    /// Checks device and dtype, and returns the broadcast shape with both operands' views of it.
    fn broadcast_pair(&self, op: &'static str, rhs: &Tensor) -> Result<(Shape, Layout, Layout)> {
        self.check_same_device(op, rhs)?;
        self.check_same_dtype(op, rhs)?;
        let shape = self.shape().broadcast(rhs.shape(), op)?;
        let ll = self.layout().broadcast_to(&shape)?;
        let rl = rhs.layout().broadcast_to(&shape)?;
        Ok((shape, ll, rl))
    }

    fn pair_kernel(
        &self,
        op: &'static str,
        rhs: &Tensor,
        kernel: impl FnOnce(
            &dyn Backend,
            &dyn BackendStorage,
            &Layout,
            &dyn BackendStorage,
            &Layout,
        ) -> Result<BoxedStorage>,
    ) -> Result<Tensor> {
        let backend = self.device().backend();
        if self.shape() == rhs.shape() {
            // Same shape: no broadcast views to build (the fixed cost of small ops).
            self.check_same_device(op, rhs)?;
            self.check_same_dtype(op, rhs)?;
            let (ll, rl) = (self.layout(), rhs.layout());
            let out = self.with_two_storages(rhs, |a, b| kernel(backend, a, ll, b, rl))?;
            return Tensor::from_storage(out, self.shape().clone(), self.device().clone());
        }
        let (shape, ll, rl) = self.broadcast_pair(op, rhs)?;
        let out = self.with_two_storages(rhs, |a, b| kernel(backend, a, &ll, b, &rl))?;
        Tensor::from_storage(out, shape, self.device().clone())
    }

    /// Applies any [`BinaryOp`] with broadcasting.
    pub(crate) fn binary_untracked(&self, op: BinaryOp, rhs: &Tensor) -> Result<Tensor> {
        self.pair_kernel(op.name(), rhs, |b, x, xl, y, yl| b.binary(op, x, xl, y, yl))
    }

    /// `relu(self + rhs)` with broadcasting, one kernel ([`Backend::add_relu`]); float operands
    /// of one dtype.
    pub(crate) fn add_relu_untracked(&self, rhs: &Tensor) -> Result<Tensor> {
        self.pair_kernel("add_relu", rhs, |b, x, xl, y, yl| b.add_relu(x, xl, y, yl))
    }

    /// Applies any [`CmpOp`] with broadcasting, giving a `Bool` tensor.
    pub fn compare(&self, op: CmpOp, rhs: &Tensor) -> Result<Tensor> {
        self.pair_kernel(op.name(), rhs, |b, x, xl, y, yl| {
            b.compare(op, x, xl, y, yl)
        })
    }

    /// Compares with a scalar (converted to this tensor's dtype).
    pub fn compare_scalar(&self, op: CmpOp, value: f64) -> Result<Tensor> {
        let rhs = Tensor::full((), value, self.dtype(), self.device())?;
        self.compare(op, &rhs)
    }

    /// `cond ? on_true : on_false`, with all three broadcast together; `self` is the Bool condition.
    /// PyTorch equivalent: `torch.where(cond, on_true, on_false)`.
    pub(crate) fn where_cond_untracked(
        &self,
        on_true: &Tensor,
        on_false: &Tensor,
    ) -> Result<Tensor> {
        const OP: &str = "where_cond";
        if self.dtype() != DType::Bool {
            return Err(Error::UnsupportedDType {
                op: "where_cond (condition must be bool)",
                dtype: self.dtype(),
            });
        }
        on_true.check_same_dtype(OP, on_false)?;
        self.check_same_device(OP, on_true)?;
        self.check_same_device(OP, on_false)?;
        let shape = self
            .shape()
            .broadcast(on_true.shape(), OP)?
            .broadcast(on_false.shape(), OP)?;
        let (cl, tl, fl) = (
            self.layout().broadcast_to(&shape)?,
            on_true.layout().broadcast_to(&shape)?,
            on_false.layout().broadcast_to(&shape)?,
        );
        let backend = self.device().backend();
        let out = Tensor::with_storages([self, on_true, on_false], |[c, t, f]| {
            backend.where_cond(c, &cl, t, &tl, f, &fl)
        })?;
        Tensor::from_storage(out, shape, self.device().clone())
    }

    /// Replaces elements where `mask` (broadcastable to this shape) is true by `value`.
    /// PyTorch equivalent: `masked_fill`.
    pub fn masked_fill(&self, mask: &Tensor, value: f64) -> Result<Tensor> {
        if mask.shape().broadcast(self.shape(), "masked_fill")? != *self.shape() {
            return Err(Error::ShapeMismatch {
                op: "masked_fill",
                lhs: self.shape().clone(),
                rhs: mask.shape().clone(),
            });
        }
        let fill = Tensor::full((), value, self.dtype(), self.device())?;
        mask.where_cond(&fill, self)
    }
}

macro_rules! binary_methods {
    ($($(#[$doc:meta])* $name:ident => $op:ident;)*) => {
        impl Tensor {
            $(
                $(#[$doc])*
                pub fn $name(&self, rhs: &Tensor) -> Result<Tensor> {
                    self.binary(BinaryOp::$op, rhs)
                }
            )*
        }
    };
}

binary_methods! {
    /// `a + b` with broadcasting. PyTorch equivalent: `torch.add`.
    add => Add;
    /// `a - b` with broadcasting. PyTorch equivalent: `torch.sub`.
    sub => Sub;
    /// `a * b` with broadcasting. PyTorch equivalent: `torch.mul`.
    mul => Mul;
    /// `a / b` with broadcasting: true division, as PyTorch's `torch.div`; integer operands
    /// give an f32 result (`[7, -7] / 2` is `[3.5, -3.5]`; [`Tensor::div_trunc`] truncates).
    div => Div;
    /// `a ^ b` with broadcasting. PyTorch equivalent: `torch.pow`.
    pow => Pow;
    /// Elementwise maximum (NaN propagates). PyTorch equivalent: `torch.maximum`.
    maximum => Maximum;
    /// Elementwise minimum (NaN propagates). PyTorch equivalent: `torch.minimum`.
    minimum => Minimum;
}

impl Tensor {
    /// Integer division rounded toward zero (`[7, -7] / 2` is `[3, -3]`), with broadcasting;
    /// integer operands only, and division by zero is an error. PyTorch equivalent:
    /// `torch.div(a, b, rounding_mode="trunc")`.
    pub fn div_trunc(&self, rhs: &Tensor) -> Result<Tensor> {
        for t in [self, rhs] {
            if t.dtype().is_float() {
                return Err(Error::UnsupportedDType {
                    op: "div_trunc (integer tensors; floats divide with div)",
                    dtype: t.dtype(),
                });
            }
        }
        // Integer tensors never require gradients: nothing to record.
        self.binary_untracked(BinaryOp::Div, rhs)
    }
}

macro_rules! compare_methods {
    ($($(#[$doc:meta])* $name:ident, $scalar:ident => $op:ident;)*) => {
        impl Tensor {
            $(
                $(#[$doc])*
                pub fn $name(&self, rhs: &Tensor) -> Result<Tensor> {
                    self.compare(CmpOp::$op, rhs)
                }

                $(#[$doc])*
                /// (Against a scalar.)
                pub fn $scalar(&self, value: f64) -> Result<Tensor> {
                    self.compare_scalar(CmpOp::$op, value)
                }
            )*
        }
    };
}

compare_methods! {
    /// `a == b` as a Bool tensor.
    eq, eq_scalar => Eq;
    /// `a != b` as a Bool tensor.
    ne, ne_scalar => Ne;
    /// `a < b` as a Bool tensor.
    lt, lt_scalar => Lt;
    /// `a <= b` as a Bool tensor.
    le, le_scalar => Le;
    /// `a > b` as a Bool tensor.
    gt, gt_scalar => Gt;
    /// `a >= b` as a Bool tensor.
    ge, ge_scalar => Ge;
}

macro_rules! operator_sugar {
    ($($trait:ident, $method:ident, $tensor_op:ident, $scalar_op:ident;)*) => {
        $(
            /// Operator sugar; panics with the op's error message on mismatched operands.
            impl std::ops::$trait<&Tensor> for &Tensor {
                type Output = Tensor;
                fn $method(self, rhs: &Tensor) -> Tensor {
                    self.$tensor_op(rhs).unwrap_or_else(|e| panic!("{e}"))
                }
            }

            /// Operator sugar with a scalar; panics on unsupported dtypes.
            impl std::ops::$trait<f64> for &Tensor {
                type Output = Tensor;
                fn $method(self, rhs: f64) -> Tensor {
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
impl std::ops::Neg for &Tensor {
    type Output = Tensor;
    fn neg(self) -> Tensor {
        Tensor::neg(self).unwrap_or_else(|e| panic!("{e}"))
    }
}

#[cfg(test)]
mod tests {
    use crate::{DType, Device, Tensor};

    #[test]
    fn broadcasting_add_matches_pytorch() {
        // torch.arange(6.).reshape(2, 3) + torch.tensor([[10.], [20.]])
        let a = Tensor::arange(0.0, 6.0, 1.0, DType::F32, &Device::cpu())
            .unwrap()
            .reshape([2, 3])
            .unwrap();
        let b = Tensor::from_vec(vec![10.0f32, 20.0], [2, 1]).unwrap();
        assert_eq!(
            (&a + &b).to_vec::<f32>().unwrap(),
            vec![10.0, 11.0, 12.0, 23.0, 24.0, 25.0]
        );
        assert_eq!(a.sub(&b).unwrap().dims(), &[2, 3]);
    }

    #[test]
    fn mismatches_name_the_op_and_both_operands() {
        let a = Tensor::zeros([2, 3], DType::F32, &Device::cpu()).unwrap();
        let b = Tensor::zeros([4], DType::F32, &Device::cpu()).unwrap();
        assert_eq!(
            a.mul(&b).unwrap_err().to_string(),
            "mul: shape mismatch between [2, 3] and [4]"
        );
        let c = Tensor::zeros([2, 3], DType::I64, &Device::cpu()).unwrap();
        assert_eq!(
            a.add(&c).unwrap_err().to_string(),
            "add: dtype mismatch between F32 and I64"
        );
    }

    #[test]
    fn maximum_propagates_nan_and_division_handles_inf() {
        let a = Tensor::from_vec(vec![1.0f32, f32::NAN, 0.0], [3]).unwrap();
        let b = Tensor::from_vec(vec![2.0f32, 0.0, 0.0], [3]).unwrap();
        let m = a.maximum(&b).unwrap().to_vec::<f32>().unwrap();
        assert_eq!(m[0], 2.0);
        assert!(m[1].is_nan());
        let d = Tensor::from_vec(vec![1.0f32, -1.0], [2])
            .unwrap()
            .div(&Tensor::scalar(0.0f32))
            .unwrap();
        assert_eq!(
            d.to_vec::<f32>().unwrap(),
            vec![f32::INFINITY, f32::NEG_INFINITY]
        );
    }

    #[test]
    fn comparisons_and_where() {
        let x = Tensor::from_vec(vec![-1.0f32, 0.5, 2.0], [3]).unwrap();
        let mask = x.gt_scalar(0.0).unwrap();
        assert_eq!(mask.dtype(), DType::Bool);
        assert_eq!(mask.to_vec::<bool>().unwrap(), vec![false, true, true]);
        let y = mask.where_cond(&x, &Tensor::scalar(0.0f32)).unwrap();
        assert_eq!(y.to_vec::<f32>().unwrap(), vec![0.0, 0.5, 2.0]);
        let z = x.masked_fill(&mask, -7.0).unwrap();
        assert_eq!(z.to_vec::<f32>().unwrap(), vec![-1.0, -7.0, -7.0]);
    }

    #[test]
    fn integer_division_by_zero_is_an_error() {
        let a = Tensor::from_vec(vec![7i64, 8], [2]).unwrap();
        let b = Tensor::from_vec(vec![2i64, 0], [2]).unwrap();
        assert!(
            a.div_trunc(&b)
                .unwrap_err()
                .to_string()
                .contains("division by zero")
        );
        let a = Tensor::from_vec(vec![7i64, -7], [2]).unwrap();
        let two = Tensor::scalar(2i64);
        assert_eq!(a.div_trunc(&two).unwrap().to_vec::<i64>().unwrap(), [3, -3]);
        let floats = Tensor::from_vec(vec![7.0f32], [1]).unwrap();
        assert!(floats.div_trunc(&floats).is_err());
    }

    #[test]
    fn integer_true_division_gives_floats_as_pytorch() {
        let a = Tensor::from_vec(vec![7i64, -7, 1], [3]).unwrap();
        let b = Tensor::from_vec(vec![2i64, 2, 0], [3]).unwrap();
        let q = a.div(&b).unwrap();
        assert_eq!(q.dtype(), DType::F32);
        assert_eq!(q.to_vec::<f32>().unwrap(), [3.5, -3.5, f32::INFINITY]);
        let correct = Tensor::from_vec(vec![true, false, true], [3]).unwrap();
        let count = correct.sum_all().unwrap();
        let rate = count.div(&Tensor::scalar(4i64)).unwrap();
        assert_eq!(rate.to_vec::<f32>().unwrap(), [0.5]);
        assert_eq!(
            a.div_scalar(2.0).unwrap().to_vec::<f32>().unwrap(),
            [3.5, -3.5, 0.5]
        );
        assert_eq!(
            a.rdiv_scalar(14.0).unwrap().to_vec::<f32>().unwrap(),
            [2.0, -2.0, 14.0]
        );
    }

    #[test]
    fn an_operand_shared_with_itself() {
        let a = Tensor::from_vec(vec![1.0f32, 2.0, 3.0, 4.0], [2, 2]).unwrap();
        let out = a.mul(&a.t().unwrap()).unwrap();
        assert_eq!(out.to_vec::<f32>().unwrap(), vec![1.0, 6.0, 6.0, 16.0]);
    }
}
