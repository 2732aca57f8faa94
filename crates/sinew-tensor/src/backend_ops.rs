//! What [`Backend`](crate::Backend) methods receive: storages ([`BackendStorage`], a block of
//! device memory of one dtype) and, besides them and layouts, descriptors: a matrix product's
//! sizes and epilogue ([`MatmulSpec`]), an in-place update ([`InplaceOp`]), a scatter's
//! combining rule ([`ScatterMode`]) and the running statistics a batch-norm step updates
//! ([`RunningStorages`]); and [`check_operand_pair`] for backends validating the views they are
//! handed.

use std::any::Any;

use crate::ops::{BinaryOp, UnaryOp};
use crate::{DType, Error, Layout, Result};

/// A block of device memory holding elements of one dtype.
pub trait BackendStorage: Send + Sync + std::fmt::Debug + Any {
    /// Element type.
    fn dtype(&self) -> DType;
    /// Number of elements.
    fn len(&self) -> usize;
    /// True when it holds no elements.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Upcast for the owning backend to downcast to its concrete type.
    fn as_any(&self) -> &dyn Any;
    /// Mutable upcast for in-place kernels.
    fn as_any_mut(&mut self) -> &mut dyn Any;
}

/// An owned storage of any backend.
pub type BoxedStorage = Box<dyn BackendStorage>;

/// What [`Backend::channel_lincomb_masked`](crate::Backend::channel_lincomb_masked) returns:
/// the map, and the masked first operand when asked for.
pub type MaskedLincomb = (BoxedStorage, Option<BoxedStorage>);

/// Sizes of a (batched) matrix product `[batch.., m, k] @ [batch.., k, n]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MatmulDims {
    /// Number of matrices in the batch (product of the broadcast batch dims).
    pub batch: usize,
    /// Rows of the left operand and the output.
    pub m: usize,
    /// Columns of the right operand and the output.
    pub n: usize,
    /// Shared inner dimension.
    pub k: usize,
}

/// An activation fused into a GEMM epilogue.
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub enum Activation {
    /// `max(x, 0)`.
    Relu,
}

/// What [`Backend::matmul`](crate::Backend::matmul) computes: sizes, the output dtype and an
/// optional epilogue (`act(a @ b + bias)`). Grows without breaking callers (`#[non_exhaustive]`;
/// build it with [`MatmulSpec::new`] and the `with_*` methods).
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct MatmulSpec<'a> {
    /// Sizes of the product.
    pub dims: MatmulDims,
    /// Dtype of the output; `None` = the operands' dtype (e.g. `Some(F32)` for an f16 GEMM
    /// accumulating into f32).
    pub out_dtype: Option<DType>,
    /// A bias `[n]` of the output dtype (broadcast over rows) added to each row.
    pub bias: Option<(&'a dyn BackendStorage, &'a Layout)>,
    /// An activation applied after the bias.
    pub activation: Option<Activation>,
    /// With an output dtype wider than the operands' (f16/bf16 writing f32): each value is
    /// rounded to the operands' dtype last, so the output holds exactly what the same product
    /// in the operands' dtype, converted, would (a gradient whose cast back to f32 is folded
    /// into the product). No effect when the output is the operands' dtype.
    pub round_to_operands: bool,
}

impl<'a> MatmulSpec<'a> {
    /// A plain product of these sizes: operands' dtype, no epilogue.
    pub fn new(dims: MatmulDims) -> Self {
        MatmulSpec {
            dims,
            out_dtype: None,
            bias: None,
            activation: None,
            round_to_operands: false,
        }
    }

    /// The same spec writing `dtype`.
    pub fn with_out_dtype(mut self, dtype: DType) -> Self {
        self.out_dtype = Some(dtype);
        self
    }

    /// The same spec adding `bias` to every output row.
    pub fn with_bias(mut self, bias: &'a dyn BackendStorage, layout: &'a Layout) -> Self {
        self.bias = Some((bias, layout));
        self
    }

    /// The same spec applying `activation` last.
    pub fn with_activation(mut self, activation: Activation) -> Self {
        self.activation = Some(activation);
        self
    }

    /// The same spec rounding each value to the operands' dtype before writing a wider output
    /// ([`MatmulSpec::round_to_operands`]).
    pub fn with_rounding_to_operands(mut self) -> Self {
        self.round_to_operands = true;
        self
    }

    /// True when the spec is a plain product (no dtype change, no epilogue).
    pub fn is_plain(&self) -> bool {
        self.out_dtype.is_none() && self.bias.is_none() && self.activation.is_none()
    }
}

/// An in-place update of a destination view by [`Backend::inplace`](crate::Backend::inplace).
/// Sources are views with the destination's shape (broadcast sources have stride 0) and dtype.
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub enum InplaceOp {
    /// `dst = dst op src[0]`.
    Binary(BinaryOp),
    /// `dst = op(dst)` (e.g. clamp, scalar add/mul).
    Unary(UnaryOp),
    /// `dst += alpha * src[0]` (PyTorch `add_(x, alpha=a)`).
    Axpy(f64),
    /// `dst += value * src[0] * src[1]`.
    Addcmul(f64),
    /// `dst += value * src[0] / src[1]`.
    Addcdiv(f64),
    /// `dst += weight * (src[0] - dst)`.
    Lerp(f64),
    /// `dst = value` everywhere.
    Fill(f64),
    /// `dst = scale * dst + alpha * src[0]`: SGD's momentum buffer in one pass (the rounding of
    /// `mul_(scale)` then `add_(src, alpha)` in f32/f64).
    MulAxpy {
        /// Factor on the destination.
        scale: f64,
        /// Factor on the source.
        alpha: f64,
    },
    /// `dst = scale * dst + value * src[0] * src[1]`: the squared-gradient averages of Adam
    /// and RMSprop in one pass (the rounding of `mul_(scale)` then `addcmul_`).
    MulAddcmul {
        /// Factor on the destination.
        scale: f64,
        /// Factor on the product.
        value: f64,
    },
    /// `dst += value * src[0] / (sqrt(src[1]) * scale + eps)`: the parameter step of Adam,
    /// RMSprop and Adagrad in one pass, without a denominator buffer (the rounding of
    /// `sqrt`, `mul_(scale)`, `add_(eps)` then `addcdiv_`).
    AddcdivSqrt {
        /// Factor on the quotient (the negative step size).
        value: f64,
        /// Factor on the square root (Adam: `1 / sqrt(1 - beta2^t)`).
        scale: f64,
        /// Added to the scaled square root.
        eps: f64,
    },
    /// `dst = max(scale * dst, |src[0]| + eps)`: Adamax's infinity-norm buffer in one pass
    /// (the rounding of `mul_(scale)`, `abs`, `add_(eps)` then `maximum_`; NaN if either side
    /// is NaN).
    MulMaxAbs {
        /// Factor on the destination (Adamax: `beta2`).
        scale: f64,
        /// Added to the source's magnitude.
        eps: f64,
    },
}

impl InplaceOp {
    /// How many source views the op reads.
    pub fn num_sources(&self) -> usize {
        match self {
            InplaceOp::Unary(_) | InplaceOp::Fill(_) => 0,
            InplaceOp::Binary(_)
            | InplaceOp::Axpy(_)
            | InplaceOp::Lerp(_)
            | InplaceOp::MulAxpy { .. }
            | InplaceOp::MulMaxAbs { .. } => 1,
            InplaceOp::Addcmul(_)
            | InplaceOp::Addcdiv(_)
            | InplaceOp::MulAddcmul { .. }
            | InplaceOp::AddcdivSqrt { .. } => 2,
        }
    }
}

/// How [`Backend::scatter`](crate::Backend::scatter) combines values that land on the same slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScatterMode {
    /// Later writes replace earlier ones (PyTorch `scatter`).
    Replace,
    /// Values are summed into the base (PyTorch `scatter_add`).
    Add,
}

/// Batch norm's running statistics as [`Backend::channel_norm_updating`](crate::Backend::channel_norm_updating) writes them.
pub struct RunningStorages<'s> {
    /// The running mean's and variance's buffers (one float dtype), each a dense run of `C`
    /// elements from the given element.
    pub running: [(&'s mut dyn BackendStorage, usize); 2],
    /// An i64 element to increment (batch norm's `num_batches_tracked`), if any.
    pub count: Option<(&'s mut dyn BackendStorage, usize)>,
    /// The update's momentum and the variance's unbiasing factor, `n / (n - 1)` for `n` values
    /// a channel.
    pub scalars: (f64, f64),
}

/// Checks that the second operand `b` of a backend primitive has the dtype and dims of the
/// first, `a` (for backends validating the views they are handed).
pub fn check_operand_pair(
    op: &'static str,
    a: (DType, &Layout),
    b: (DType, &Layout),
) -> Result<()> {
    if a.0 != b.0 {
        return Err(Error::DTypeMismatch {
            op,
            lhs: a.0,
            rhs: b.0,
        });
    }
    if a.1.dims() != b.1.dims() {
        return Err(Error::ShapeMismatch {
            op,
            lhs: a.1.shape().clone(),
            rhs: b.1.shape().clone(),
        });
    }
    Ok(())
}
