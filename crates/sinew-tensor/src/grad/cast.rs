//! dtype and device conversion. Saved: the input dtype or device.

use super::untracked;
use crate::{DType, Device, Error, Result, Save, Tensor};

impl Tensor {
    /// Converts to another float dtype; the gradient is converted back. Mixed precision uses this.
    pub fn to_dtype(&self, dtype: DType) -> Result<Tensor> {
        if !dtype.is_float() && self.requires_grad() {
            return Err(Error::UnsupportedDType {
                op: "to_dtype (a tracked tensor can only become a float)",
                dtype,
            });
        }
        let out = untracked(|| self.to_dtype_untracked(dtype))?;
        // A rule that knew the gradient would be converted back may have returned it in the
        // input's dtype already ([`crate::BackwardCtx::cast_from_dtype`]): then no conversion.
        Ok(Tensor::from_op(
            out,
            crate::autograd::CAST,
            &[self],
            Save::NOTHING,
            |ctx, g| Ok(vec![Some(g.to_dtype(ctx.input_dtype(0))?)]),
        ))
    }

    /// A copy on `device` (the same tensor when already there); the gradient moves back.
    pub fn to_device(&self, device: &Device) -> Result<Tensor> {
        let out = untracked(|| self.to_device_untracked(device))?;
        let from = self.device().clone();
        Ok(Tensor::from_op(
            out,
            "to_device",
            &[self],
            Save::NOTHING,
            move |_, g| Ok(vec![Some(g.to_device(&from)?)]),
        ))
    }
}
