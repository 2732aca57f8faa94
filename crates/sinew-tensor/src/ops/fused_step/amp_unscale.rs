//! The loss scaler's unscale of gradients with its non-finite check
//! ([`Tensor::amp_unscale_`], [`Tensor::amp_unscale_many_`]): PyTorch's
//! `torch._amp_foreach_non_finite_check_and_unscale_`, one kernel a gradient or, for dense
//! gradients, one multi-tensor kernel for many.

use super::many::{by_distinct_storage, dense_start, write_dense_runs};
use crate::{DType, Error, Result, Tensor};

impl Tensor {
    /// The loss scaler's unscale of this gradient (PyTorch's
    /// `torch._amp_foreach_non_finite_check_and_unscale_`, one tensor at a time): `self *=
    /// inv_scale` in place, and `found_inf` (one f32 element on the same device) set to 1 if
    /// any element of the result is infinite or NaN, left as it is otherwise. One kernel on the
    /// GPU; no host synchronisation (read `found_inf` once after every gradient).
    pub fn amp_unscale_(&self, inv_scale: f64, found_inf: &Tensor) -> Result<()> {
        const OP: &str = "amp_unscale_";
        self.check_float(OP)?;
        self.check_same_device(OP, found_inf)?;
        check_found_inf(found_inf)?;
        let expanded = self
            .dims()
            .iter()
            .zip(self.layout().strides())
            .any(|(&d, &s)| d > 1 && s == 0);
        let recorded =
            crate::is_grad_enabled() && (self.requires_grad() || found_inf.requires_grad());
        if expanded || recorded {
            return Err(Error::invalid(
                OP,
                "writes its gradient in place: pass a gradient that is not an expanded view, \
                 under no_grad",
            ));
        }
        let backend = self.device().backend();
        let found_at = dense_start(found_inf);
        let wrote = Tensor::write_many(&[self, found_inf], &[], |storages, _| {
            let [grad, found] = storages else {
                unreachable!("two destinations")
            };
            backend.amp_unscale(
                &mut **grad,
                self.layout(),
                (&mut **found, found_at),
                inv_scale,
            )?;
            Ok(true)
        })?;
        if !wrote {
            return Err(Error::invalid(
                OP,
                "found_inf shares the gradient's storage",
            ));
        }
        Ok(())
    }
}

/// `found_inf` must be one contiguous f32 element.
fn check_found_inf(found_inf: &Tensor) -> Result<()> {
    if found_inf.dtype() != DType::F32 || found_inf.elem_count() != 1 || !found_inf.is_contiguous()
    {
        return Err(Error::invalid(
            "amp_unscale_",
            format!(
                "found_inf must be one contiguous f32 element, got {} {}",
                found_inf.dtype(),
                found_inf.shape()
            ),
        ));
    }
    Ok(())
}

impl Tensor {
    /// [`Tensor::amp_unscale_`] of every gradient of `grads`: the dense ones of one device
    /// and dtype in one multi-tensor kernel a few dozen (CUDA; gradients sharing a storage,
    /// such as batch norm's weight and bias gradients, go to separate launches), the others one
    /// by one. `found_inf` is on the gradients' device.
    pub fn amp_unscale_many_(grads: &[&Tensor], inv_scale: f64, found_inf: &Tensor) -> Result<()> {
        let Some(first) = grads.first() else {
            return Ok(());
        };
        first.check_same_device("amp_unscale_", found_inf)?;
        check_found_inf(found_inf)?;
        let backend = first.device().backend();
        let dense = |t: &&Tensor| {
            t.is_contiguous()
                && t.device() == first.device()
                && t.dtype() == first.dtype()
                && matches!(
                    t.dtype(),
                    DType::F32 | DType::F64 | DType::F16 | DType::BF16
                )
                && !(crate::is_grad_enabled() && t.requires_grad())
        };
        let (batch, others): (Vec<&Tensor>, Vec<&Tensor>) = grads.iter().copied().partition(dense);
        for grad in others {
            grad.amp_unscale_(inv_scale, found_inf)?;
        }
        for now in by_distinct_storage(batch) {
            let lens: Vec<usize> = now.iter().map(|t| t.elem_count()).collect();
            let mut dsts = now.clone();
            dsts.push(found_inf);
            let wrote = write_dense_runs(&dsts, &[], |views, _| {
                let ((found, found_at), grads) = views.split_last_mut().expect("found_inf is last");
                backend.amp_unscale_many(grads, &lens, (&mut **found, *found_at), inv_scale)
            })?;
            if !wrote {
                for grad in &now {
                    grad.amp_unscale_(inv_scale, found_inf)?;
                }
            }
        }
        Ok(())
    }
}
