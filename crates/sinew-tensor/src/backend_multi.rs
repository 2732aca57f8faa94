//! [`MultiTensorOps`]: the part of the backend interface whose kernels work on many tensors at
//! once or fuse a chain of in-place updates: optimizer steps, the loss scaler's unscale,
//! gradient clipping's norm and scaling, autocast's weight casts. Each method has a default
//! (`false` or `None`: no such kernel), under which its caller runs the same work as separate
//! tensor ops, so a backend implements only what it speeds up (`impl MultiTensorOps for MyBackend
//! {}` takes every default). Every [`crate::Backend`] is one.

use crate::ops::fused_step::{AdafactorStep, AverageStep, FusedStep};
use crate::{BackendStorage, BoxedStorage, DType, Result};

/// Kernels over many tensors, and fused in-place updates; see the module docs.
pub trait MultiTensorOps {
    /// Whether [`MultiTensorOps::fused_step`] has a kernel for `step` on `dtype` tensors (asked
    /// first, so that a backend without one costs its callers no locking). Default: `false`.
    fn fuses(&self, step: &FusedStep, dtype: DType) -> bool {
        let _ = (step, dtype);
        false
    }

    /// One optimizer step in one pass ([`crate::Tensor::fused_step_`]): `dsts` are the
    /// parameter then its state buffers, `grad` the gradient, each a dense run of `len`
    /// elements of one float dtype starting at the given element. Returns `false`, writing
    /// nothing, where the backend has no kernel for the step (the caller then runs it as
    /// separate in-place ops, whose values a kernel must reproduce bit for bit in f32/f64).
    ///
    /// Default: `false` (the CPU's in-place ops already make no temporaries).
    fn fused_step(
        &self,
        step: &FusedStep,
        dsts: &mut [(&mut dyn BackendStorage, usize)],
        grad: (&dyn BackendStorage, usize),
        len: usize,
    ) -> Result<bool> {
        let _ = (step, dsts, grad, len);
        Ok(false)
    }

    /// [`MultiTensorOps::fused_step`] over several parameters ([`crate::Tensor::fused_step_many_`]):
    /// `dsts` holds each parameter's `1 + step.num_buffers()` destinations in turn, `grads` and
    /// `lens` its gradient and length, all of one dtype. With `skip` (an f32 element), the
    /// kernels leave every operand untouched when it is non-zero as they run (the loss
    /// scaler's inf/NaN flag, never read by the host). Returns `false`, writing nothing, where
    /// the backend has no kernel for the step (or none that takes `skip`).
    ///
    /// Default: without `skip`, [`MultiTensorOps::fused_step`] for each parameter in turn (whose
    /// answer depends on the step and the dtype only, so a `false` comes at the first); with
    /// it, `false`.
    fn fused_step_many(
        &self,
        step: &FusedStep,
        dsts: &mut [(&mut dyn BackendStorage, usize)],
        grads: &[(&dyn BackendStorage, usize)],
        lens: &[usize],
        skip: Option<(&dyn BackendStorage, usize)>,
    ) -> Result<bool> {
        if skip.is_some() {
            return Ok(false);
        }
        let per = 1 + step.num_buffers();
        for ((dsts, &grad), &len) in dsts.chunks_mut(per).zip(grads).zip(lens) {
            if !self.fused_step(step, dsts, grad, len)? {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// Whether [`MultiTensorOps::fused_adafactor`] has kernels for `dtype` tensors (asked
    /// first, so that a backend without them costs its callers no locking). Default: `false`.
    fn fuses_adafactor(&self, dtype: DType) -> bool {
        let _ = dtype;
        false
    }

    /// Adafactor's step on one parameter without reading anything back to the host
    /// ([`crate::Tensor::fused_adafactor_`]): `dsts` are the parameter then its buffers
    /// (`row_var` and `col_var` when factored, else `variance`), `grad` the gradient, each a
    /// dense run of one float dtype from the given element; `dims` is the parameter as
    /// `[batch, rows, cols]` (factored: `batch * rows` row entries, `batch * cols` column
    /// entries; else `[1, 1, n]`). Returns `false`, writing nothing, where the backend has no
    /// kernels for it (the caller then runs the step as tensor ops).
    ///
    /// Default: `false`.
    fn fused_adafactor(
        &self,
        step: &AdafactorStep,
        dsts: &mut [(&mut dyn BackendStorage, usize)],
        grad: (&dyn BackendStorage, usize),
        dims: [usize; 3],
    ) -> Result<bool> {
        let _ = (step, dsts, grad, dims);
        Ok(false)
    }

    /// Whether [`MultiTensorOps::average_many`] has a kernel for `dtype` tensors (asked
    /// first, so that a backend without one costs its callers no locking). Default: `false`.
    fn fuses_average(&self, dtype: DType) -> bool {
        let _ = dtype;
        false
    }

    /// Weight averaging's update over several pairs ([`crate::Tensor::average_many_`]):
    /// `avgs[i]` <- `step` of `avgs[i]` and `xs[i]`, each a dense run of `lens[i]` elements of
    /// one float dtype from the given element, the averages in storages of their own, with the
    /// tensor ops' values bit for bit. Returns `false`, writing nothing, where the backend has
    /// no multi-tensor kernel (the caller then runs the tensor ops).
    ///
    /// Default: `false`.
    fn average_many(
        &self,
        avgs: &mut [(&mut dyn BackendStorage, usize)],
        xs: &[(&dyn BackendStorage, usize)],
        lens: &[usize],
        step: AverageStep,
    ) -> Result<bool> {
        let _ = (avgs, xs, lens, step);
        Ok(false)
    }

    /// [`crate::Backend::amp_unscale`] over several dense gradients at once
    /// ([`crate::Tensor::amp_unscale_many_`]): `grads` each a dense run of `lens[i]` elements
    /// of one float dtype from the given element, in distinct storages. Returns `false`,
    /// writing nothing, where the backend has no multi-tensor kernel (the caller then unscales
    /// them one by one).
    ///
    /// Default: `false`.
    fn amp_unscale_many(
        &self,
        grads: &mut [(&mut dyn BackendStorage, usize)],
        lens: &[usize],
        found: (&mut dyn BackendStorage, usize),
        inv_scale: f64,
    ) -> Result<bool> {
        let _ = (grads, lens, found, inv_scale);
        Ok(false)
    }

    /// `Σ |x|^p` over every element of several dense runs of one float dtype (`runs[i]` holds
    /// `lens[i]` elements from the given element), the largest `|x|` for `p = ∞` (NaN wins),
    /// computed in f64 ([`crate::Tensor::pow_sum_many`]): one f64 element, or `None` where the
    /// backend has no multi-tensor kernel (the caller then reduces each tensor with its ops).
    ///
    /// Default: `None`.
    fn pow_sum_many(
        &self,
        runs: &[(&dyn BackendStorage, usize)],
        lens: &[usize],
        p: f64,
    ) -> Result<Option<BoxedStorage>> {
        let _ = (runs, lens, p);
        Ok(None)
    }

    /// `x *= factor` in place over several dense runs of one float dtype, in distinct
    /// storages, `factor` one element of that dtype ([`crate::Tensor::mul_many_`]; the
    /// in-place `mul_`'s values). Returns `false`, writing nothing, where the backend has no
    /// multi-tensor kernel.
    ///
    /// Default: `false`.
    fn mul_many(
        &self,
        runs: &mut [(&mut dyn BackendStorage, usize)],
        lens: &[usize],
        factor: (&dyn BackendStorage, usize),
    ) -> Result<bool> {
        let _ = (runs, lens, factor);
        Ok(false)
    }

    /// Dense runs of one dtype (`srcs[i]` holds `lens[i]` elements from the given element)
    /// converted to `dtype`, each into a new contiguous storage, with [`crate::Backend::cast`]'s values
    /// ([`crate::Tensor::to_dtype_many`]: autocast's weight casts in one launch). `None` where
    /// the backend has no multi-tensor kernel for the pair (the caller then casts each).
    ///
    /// Default: `None`.
    fn cast_many(
        &self,
        srcs: &[(&dyn BackendStorage, usize)],
        lens: &[usize],
        dtype: DType,
    ) -> Result<Option<Vec<BoxedStorage>>> {
        let _ = (srcs, lens, dtype);
        Ok(None)
    }
}
