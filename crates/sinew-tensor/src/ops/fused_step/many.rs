//! Fused optimizer steps over several parameters at once ([`Tensor::fused_step_many_`]): the
//! multi-tensor form of [`Tensor::fused_step_`] (PyTorch's `foreach` / `fused` optimizers),
//! one launch for a whole parameter group on the GPU where one a parameter costs a launch
//! each.

use super::FusedStep;
use crate::{Error, Result, Tensor};

/// One parameter's operands of a fused step.
#[derive(Clone, Copy)]
pub struct StepOperands<'a> {
    /// The parameter, updated in place.
    pub param: &'a Tensor,
    /// Its state buffers, as [`FusedStep::num_buffers`] lists them, updated in place.
    pub buffers: &'a [&'a Tensor],
    /// Its gradient.
    pub grad: &'a Tensor,
}

impl Tensor {
    /// Runs `step` on every parameter of `operands` (each as [`Tensor::fused_step_`] takes
    /// one), in one kernel a few dozen parameters where the backend has a multi-tensor form
    /// (CUDA), else in one kernel each. Every operand must qualify as `fused_step_` requires,
    /// and all share one dtype and device; `Ok(false)`, with nothing written, otherwise (the
    /// caller then runs the parameters one by one). Gradients may share a storage (batch
    /// norm's weight and bias gradients do). Run it under `no_grad`, as optimizers do.
    pub fn fused_step_many_(step: &FusedStep, operands: &[StepOperands<'_>]) -> Result<bool> {
        let Some(first) = operands.first() else {
            return Ok(true);
        };
        if let Some(bad) = operands
            .iter()
            .find(|o| o.buffers.len() != step.num_buffers())
        {
            return Err(Error::invalid(
                step.name(),
                format!(
                    "expects {} state buffers, got {}",
                    step.num_buffers(),
                    bad.buffers.len()
                ),
            ));
        }
        let (dtype, device) = (first.param.dtype(), first.param.device());
        let fits = |o: &StepOperands<'_>| {
            let fits_param = |t: &Tensor| {
                t.shape() == o.param.shape()
                    && t.dtype() == dtype
                    && t.device() == device
                    && t.is_contiguous()
                    && !(crate::is_grad_enabled() && t.requires_grad())
            };
            std::iter::once(o.param)
                .chain(o.buffers.iter().copied())
                .chain([o.grad])
                .all(fits_param)
        };
        let backend = device.backend();
        if !backend.fuses(step, dtype) || !operands.iter().all(fits) {
            return Ok(false);
        }
        let start = |t: &Tensor| t.layout().contiguous_offset().map_or(0, |(s, _)| s);
        let mut dsts: Vec<&Tensor> = Vec::with_capacity(operands.len() * (1 + step.num_buffers()));
        for o in operands {
            dsts.push(o.param);
            dsts.extend(o.buffers);
        }
        let grads: Vec<&Tensor> = operands.iter().map(|o| o.grad).collect();
        let lens: Vec<usize> = operands.iter().map(|o| o.param.elem_count()).collect();
        Tensor::write_many(&dsts, &grads, |storages, g| {
            let mut views: Vec<(&mut dyn crate::BackendStorage, usize)> = storages
                .iter_mut()
                .zip(&dsts)
                .map(|(s, t)| (&mut **s, start(t)))
                .collect();
            let grad_views: Vec<(&dyn crate::BackendStorage, usize)> =
                g.iter().zip(&grads).map(|(s, t)| (*s, start(t))).collect();
            backend.fused_step_many(step, &mut views, &grad_views, &lens)
        })
    }
}
