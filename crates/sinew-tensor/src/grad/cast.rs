//! dtype and device conversion. Saved: the input dtype or device.

use super::untracked;
use crate::ops::{groups_by, with_dense_runs};
use crate::{DType, Device, Error, Result, Save, Tensor};

/// A tracked tensor can only become a float.
fn check_cast(t: &Tensor, dtype: DType) -> Result<()> {
    if !dtype.is_float() && t.requires_grad() {
        return Err(Error::UnsupportedDType {
            op: "to_dtype (a tracked tensor can only become a float)",
            dtype,
        });
    }
    Ok(())
}

/// `out`, the cast of `input`, recorded: its gradient is converted back to `input`'s dtype.
fn record_cast(input: &Tensor, out: Tensor) -> Tensor {
    // A rule that knew the gradient would be converted back may have returned it in the
    // input's dtype already ([`crate::BackwardCtx::cast_from_dtype`]): then no conversion.
    Tensor::from_op(
        out,
        crate::autograd::CAST,
        &[input],
        Save::NOTHING,
        |ctx, g| Ok(vec![Some(g.to_dtype(ctx.input_dtype(0))?)]),
    )
}

/// The untracked casts of `tensors`: those dense ones of each device and dtype (two or more)
/// in one backend call where it has a multi-tensor kernel, the others one by one.
fn cast_many_untracked(tensors: &[&Tensor], dtype: DType) -> Result<Vec<Tensor>> {
    let mut outs: Vec<Option<Tensor>> = tensors.iter().map(|_| None).collect();
    let batched = |t: &&Tensor| {
        (t.dtype() != dtype && t.is_contiguous()).then(|| (t.device().clone(), t.dtype()))
    };
    for (key, members) in groups_by(tensors, batched) {
        let Some((device, _)) = key.filter(|_| members.len() > 1) else {
            continue;
        };
        let group: Vec<&Tensor> = members.iter().map(|&i| tensors[i]).collect();
        let lens: Vec<usize> = group.iter().map(|t| t.elem_count()).collect();
        let storages = with_dense_runs(&group, |runs| {
            device.backend().cast_many(runs, &lens, dtype)
        })?;
        for (storage, (&i, t)) in storages
            .into_iter()
            .flatten()
            .zip(members.iter().zip(&group))
        {
            outs[i] = Some(Tensor::from_storage(
                storage,
                t.shape().clone(),
                device.clone(),
            )?);
        }
    }
    tensors
        .iter()
        .zip(outs)
        .map(|(t, out)| out.map_or_else(|| t.to_dtype_untracked(dtype), Ok))
        .collect()
}

impl Tensor {
    /// Converts to another float dtype; the gradient is converted back. Mixed precision uses this.
    pub fn to_dtype(&self, dtype: DType) -> Result<Tensor> {
        check_cast(self, dtype)?;
        let out = untracked(|| self.to_dtype_untracked(dtype))?;
        Ok(record_cast(self, out))
    }

    /// [`Tensor::to_dtype`] of every tensor of `tensors`, each recorded as its own cast (with
    /// the same values and gradients): on the GPU the dense f32 tensors of one device become
    /// f16 or bf16 in one multi-tensor kernel a few dozen (autocast's weight casts,
    /// [`crate::autocast::cast_ahead`]); the others are cast one by one.
    pub fn to_dtype_many(tensors: &[&Tensor], dtype: DType) -> Result<Vec<Tensor>> {
        for t in tensors {
            check_cast(t, dtype)?;
        }
        let outs = untracked(|| cast_many_untracked(tensors, dtype))?;
        Ok(outs
            .into_iter()
            .zip(tensors)
            .map(|(out, t)| record_cast(t, out))
            .collect())
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
