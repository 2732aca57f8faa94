//! Gradients of autocast's casts written in f32 by the kernels that make them: where an op's
//! f16/bf16 input is the cast of an f32 tensor whose gradient may come back in f32
//! ([`crate::BackwardCtx::cast_from_dtype`]), the rule writes that gradient's f16 values as f32
//! itself, and the cast's own conversion goes. Products use the GEMM's rounding store
//! (`grad/matmul.rs`); bias gradients the sums here.

use crate::{BackwardCtx, DType, ReduceOp, Result, Shape, Tensor, is_grad_enabled};

/// `Some(F32)` where input `i` of the op is an f16/bf16 cast of an f32 tensor whose gradient the
/// rule may return in f32 (holding the f16/bf16 values), else `None`.
pub(crate) fn f32_gradient(ctx: &BackwardCtx<'_>, i: usize) -> Option<DType> {
    let half = matches!(ctx.input_dtype(i), DType::F16 | DType::BF16);
    ctx.cast_from_dtype(i)
        .filter(|&from| half && from == DType::F32)
}

impl Tensor {
    /// The sum over `dims` (sorted, unique; removed from the shape; empty = all, as
    /// [`Tensor::sum`]), converted to `wide` where given: the values of `sum` then
    /// `to_dtype(wide)`, in one kernel for an f16/bf16 tensor written as f32 with grad mode off
    /// where the backend has it ([`crate::Backend::reduce_widened`]).
    pub(crate) fn sum_as(&self, dims: &[usize], wide: Option<DType>) -> Result<Tensor> {
        let all: Vec<usize> = (0..self.rank()).collect();
        let dims = if dims.is_empty() { &all[..] } else { dims };
        let signed: Vec<isize> = dims.iter().map(|&d| d as isize).collect();
        let Some(wide) = wide.filter(|&d| d != self.dtype()) else {
            return self.sum(&signed, false);
        };
        let direct = wide == DType::F32
            && matches!(self.dtype(), DType::F16 | DType::BF16)
            && !is_grad_enabled();
        if direct {
            let backend = self.device().backend();
            let out =
                self.with_storage(|s, l| backend.reduce_widened(ReduceOp::Sum, s, l, dims))?;
            if let Some(out) = out {
                let shape = self.reduced_shape(dims, false);
                return Tensor::from_storage(out, shape, self.device().clone());
            }
        }
        self.sum(&signed, false)?.to_dtype(wide)
    }

    /// [`Tensor::sum_to`] converted to `wide` where given, as [`Tensor::sum_as`].
    pub(crate) fn sum_to_as(&self, shape: &Shape, wide: Option<DType>) -> Result<Tensor> {
        let Some(wide) = wide else {
            return self.sum_to(shape);
        };
        let dims = self.sum_to_dims(shape)?;
        if self.shape() == shape || dims.is_empty() {
            // Nothing to sum (or shapes `sum_to` refuses): its result, converted.
            return self.sum_to(shape)?.to_dtype(wide);
        }
        self.sum_as(&dims, Some(wide))?.reshape(shape.clone())
    }
}
