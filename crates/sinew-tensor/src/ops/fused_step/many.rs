//! Fused optimizer steps over several parameters at once ([`Tensor::fused_step_many_`]): the
//! multi-tensor form of [`Tensor::fused_step_`] (PyTorch's `foreach` / `fused` optimizers),
//! one launch for a whole parameter group on the GPU where one a parameter costs a launch
//! each.

use super::FusedStep;
use crate::{DType, Device, Error, Result, Tensor};

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

impl StepOperands<'_> {
    /// An error unless these operands hold as many buffers as `step` updates.
    pub(super) fn check_buffers(&self, step: &FusedStep) -> Result<()> {
        if self.buffers.len() == step.num_buffers() {
            return Ok(());
        }
        Err(Error::invalid(
            step.name(),
            format!(
                "expects {} state buffers, got {}",
                step.num_buffers(),
                self.buffers.len()
            ),
        ))
    }

    /// Whether [`Tensor::fused_step_many_`] (and [`Tensor::fused_step_`]) can run `step` on
    /// these operands: the backend fuses `step` for the parameter's dtype, and every operand
    /// is a dense view of the parameter's shape, dtype and device that autograd does not
    /// record. (A launch may still decline operands that share a storage.)
    pub fn fits(&self, step: &FusedStep) -> bool {
        let (dtype, device) = (self.param.dtype(), self.param.device());
        device.backend().fuses(step, dtype) && self.fit(dtype, device)
    }

    /// Whether every operand is a dense view of the parameter's shape, of `dtype` on
    /// `device`, that autograd does not record (what a fused kernel takes).
    pub(super) fn fit(&self, dtype: DType, device: &Device) -> bool {
        std::iter::once(self.param)
            .chain(self.buffers.iter().copied())
            .chain([self.grad])
            .all(|t| {
                t.shape() == self.param.shape()
                    && t.dtype() == dtype
                    && t.device() == device
                    && t.is_contiguous()
                    && !(crate::is_grad_enabled() && t.requires_grad())
            })
    }
}

/// The first element of a dense view in its storage.
pub(super) fn dense_start(t: &Tensor) -> usize {
    t.layout().contiguous_offset().map_or(0, |(s, _)| s)
}

/// The indices of `items` grouped by `key`: the groups in the order of their first member,
/// each group's indices ascending.
pub(crate) fn groups_by<T, K: PartialEq>(
    items: &[T],
    key: impl Fn(&T) -> K,
) -> Vec<(K, Vec<usize>)> {
    let mut groups: Vec<(K, Vec<usize>)> = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let k = key(item);
        match groups.iter_mut().find(|(g, _)| *g == k) {
            Some((_, members)) => members.push(i),
            None => groups.push((k, vec![i])),
        }
    }
    groups
}

/// Runs `f` on the dense runs of `tensors` (each its storage, read-locked, and its first
/// element there), as a multi-tensor backend method takes them.
pub(crate) fn with_dense_runs<R>(
    tensors: &[&Tensor],
    f: impl FnOnce(&[(&dyn crate::BackendStorage, usize)]) -> R,
) -> R {
    Tensor::with_storage_slice(tensors, |storages| {
        let runs: Vec<(&dyn crate::BackendStorage, usize)> = storages
            .iter()
            .zip(tensors)
            .map(|(s, t)| (*s, dense_start(t)))
            .collect();
        f(&runs)
    })
}

/// Runs `f` on the dense runs of `dsts` (locked for writing) and of `srcs` (for reading), each
/// its storage and its first element there, as a fused backend method takes them, through
/// [`Tensor::write_many`]: `Ok(false)`, with nothing run, when a destination shares its
/// storage with another operand; else whether `f` wrote.
pub(super) fn write_dense_runs(
    dsts: &[&Tensor],
    srcs: &[&Tensor],
    f: impl FnOnce(
        &mut [(&mut dyn crate::BackendStorage, usize)],
        &[(&dyn crate::BackendStorage, usize)],
    ) -> Result<bool>,
) -> Result<bool> {
    Tensor::write_many(dsts, srcs, |storages, sources| {
        let mut written: Vec<(&mut dyn crate::BackendStorage, usize)> = storages
            .iter_mut()
            .zip(dsts)
            .map(|(s, t)| (&mut **s, dense_start(t)))
            .collect();
        let read: Vec<(&dyn crate::BackendStorage, usize)> = sources
            .iter()
            .zip(srcs)
            .map(|(s, t)| (*s, dense_start(t)))
            .collect();
        f(&mut written, &read)
    })
}

/// `batch` split into launches whose tensors each have a storage of their own: each storage's
/// first tensor in the first launch, its second in the next, and so on (batch norm's weight and
/// bias gradients share one).
pub(super) fn by_distinct_storage(mut batch: Vec<&Tensor>) -> Vec<Vec<&Tensor>> {
    let mut launches = Vec::new();
    while !batch.is_empty() {
        let mut now: Vec<&Tensor> = Vec::new();
        let mut later: Vec<&Tensor> = Vec::new();
        for t in batch {
            if now.iter().any(|u| u.same_storage(t)) {
                later.push(t);
            } else {
                now.push(t);
            }
        }
        launches.push(now);
        batch = later;
    }
    launches
}

impl Tensor {
    /// Runs `step` on every parameter of `operands` (each as [`Tensor::fused_step_`] takes
    /// one), in one kernel a few dozen parameters where the backend has a multi-tensor form
    /// (CUDA), else in one kernel each. Every operand must qualify as `fused_step_` requires,
    /// and all share one dtype and device; `Ok(false)`, with nothing written, otherwise (the
    /// caller then runs the parameters one by one). Gradients may share a storage (batch
    /// norm's weight and bias gradients do). Run it under `no_grad`, as optimizers do.
    ///
    /// With `skip`, a one-element f32 tensor on the same device, the step is queued to do
    /// nothing if `skip` is non-zero when it runs (the loss scaler's inf/NaN flag, decided on
    /// the device with no wait for the host); `Ok(false)` where the backend cannot (the CPU).
    pub fn fused_step_many_(
        step: &FusedStep,
        operands: &[StepOperands<'_>],
        skip: Option<&Tensor>,
    ) -> Result<bool> {
        let Some(first) = operands.first() else {
            return Ok(true);
        };
        if let Some(flag) = skip {
            let fits = flag.dtype() == DType::F32
                && flag.elem_count() == 1
                && flag.device() == first.param.device();
            if !fits {
                return Err(Error::invalid(
                    step.name(),
                    format!(
                        "the skip flag must be one f32 element on {}, got {} {} on {}",
                        first.param.device(),
                        flag.dtype(),
                        flag.shape(),
                        flag.device()
                    ),
                ));
            }
        }
        for o in operands {
            o.check_buffers(step)?;
        }
        let (dtype, device) = (first.param.dtype(), first.param.device());
        let backend = device.backend();
        if !backend.fuses(step, dtype) || !operands.iter().all(|o| o.fit(dtype, device)) {
            return Ok(false);
        }
        let mut dsts: Vec<&Tensor> = Vec::with_capacity(operands.len() * (1 + step.num_buffers()));
        for o in operands {
            dsts.push(o.param);
            dsts.extend(o.buffers);
        }
        let mut grads: Vec<&Tensor> = operands.iter().map(|o| o.grad).collect();
        let lens: Vec<usize> = operands.iter().map(|o| o.param.elem_count()).collect();
        // The flag is read as one more source, after the gradients.
        grads.extend(skip);
        write_dense_runs(&dsts, &grads, |views, grad_views| {
            let (grad_views, skip) = match skip {
                Some(_) => {
                    let (flag, grads) = grad_views.split_last().expect("the flag is last");
                    (grads, Some(*flag))
                }
                None => (grad_views, None),
            };
            backend.fused_step_many(step, views, grad_views, &lens, skip)
        })
    }
}
