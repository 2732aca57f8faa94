//! One optimizer step over a parameter group ([`Optim`](crate::Optim)'s `step`): each
//! parameter's state is created on its first step and its host scalars advanced, then it is
//! updated. On a device with fused step kernels (the GPU) the group's parameters are gathered
//! and stepped in one multi-tensor launch per distinct step (`Tensor::fused_step_many_`,
//! PyTorch's `foreach` form), falling back to one kernel a parameter (`Tensor::fused_step_`)
//! and then to the rule's in-place ops; elsewhere (the CPU) each parameter runs the rule's
//! in-place ops at once, with no allocation.
//!
//! Given the loss scaler's flag ([`crate::Optimizer::step_unless`]), the multi-tensor launches
//! are queued to write nothing when it is set, and what cannot be (the per-parameter kernels,
//! the in-place ops) runs after the host reads the flag.

use std::collections::BTreeMap;

use sinew_tensor::{DeferredScalar, FusedStep, Result, StepOperands, Tensor};

use crate::skip::skipped;

use crate::optimizer::{ParamGroup, Slot, UpdateRule};
use crate::state::ParamState;

/// A parameter's saved state and its scratch tensors (made on the first unfused update).
pub(crate) struct Entry {
    /// Step count, buffers, scalars.
    pub(crate) state: ParamState,
    /// Tensors shaped like the parameter for the rule's in-place ops (not saved).
    pub(crate) scratch: Vec<Tensor>,
}

/// A parameter whose fused step waits for its group's multi-tensor launch.
struct Pending {
    step: FusedStep,
    name: String,
    value: Tensor,
    grad: Tensor,
    buffers: Vec<Tensor>,
}

/// Steps every parameter of `group` that requires and has a gradient, unless `skip` is set.
pub(crate) fn step_group<R: UpdateRule>(
    state: &mut BTreeMap<String, Entry>,
    group: &ParamGroup<R::Config>,
    skip: Option<&DeferredScalar>,
) -> Result<()> {
    let config = &group.config;
    let mut pending: Vec<Pending> = Vec::new();
    for p in &group.params {
        // Borrow the value and the gradient: no handle clones, no allocation on the CPU.
        p.param.with_value(|value| {
            if !value.requires_grad() {
                return Ok(());
            }
            value.with_grad(|grad| {
                let Some(grad) = grad else { return Ok(()) };
                let e = entry::<R>(state, &p.name, value, config)?;
                e.state.step += 1;
                R::advance(config, e.state.step, &mut e.state.scalars);
                match gather::<R>(config, e, &p.name, value, grad) {
                    Some(waiting) => {
                        pending.push(waiting);
                        Ok(())
                    }
                    None if skipped(skip)? => Ok(()),
                    None => update::<R>(config, e, value, grad),
                }
            })
        })?;
    }
    run_pending::<R>(state, config, pending, skip)
}

/// The state of parameter `name`, created (zeroed buffers) on its first step.
fn entry<'m, R: UpdateRule>(
    state: &'m mut BTreeMap<String, Entry>,
    name: &str,
    value: &Tensor,
    config: &R::Config,
) -> Result<&'m mut Entry> {
    if !state.contains_key(name) {
        let mut buffers = Vec::new();
        for (n, fill) in R::buffers(config) {
            let Some(dims) = R::buffer_dims(config, n, value.dims()) else {
                continue;
            };
            let zeros = Tensor::zeros(dims, value.dtype(), value.device())?;
            buffers.push((n.to_string(), zeros.add_scalar(fill)?));
        }
        state.insert(
            name.to_string(),
            Entry {
                state: ParamState {
                    step: 0,
                    buffers,
                    scalars: BTreeMap::new(),
                },
                scratch: Vec::new(),
            },
        );
    }
    Ok(state.get_mut(name).expect("inserted above"))
}

/// The parameter's fused step, to run with its group's, when the rule has one and the
/// parameter's device has a kernel for it (never on the CPU, so nothing is allocated there).
fn gather<R: UpdateRule>(
    config: &R::Config,
    e: &Entry,
    name: &str,
    value: &Tensor,
    grad: &Tensor,
) -> Option<Pending> {
    let (step, names) = R::fused(config, e.state.step, &e.state.scalars)?;
    if !value.device().backend().fuses(&step, value.dtype()) {
        return None;
    }
    let buffer = |wanted: &&str| {
        let found = e.state.buffers.iter().find(|(n, _)| n == wanted);
        found.map(|(_, t)| t.clone())
    };
    Some(Pending {
        step,
        name: name.to_string(),
        value: value.clone(),
        grad: grad.clone(),
        buffers: names.iter().map(buffer).collect::<Option<_>>()?,
    })
}

/// The rule's in-place update of one parameter (its scratch tensors made on first use).
fn update<R: UpdateRule>(
    config: &R::Config,
    e: &mut Entry,
    value: &Tensor,
    grad: &Tensor,
) -> Result<()> {
    let wanted = R::scratch(config);
    if e.scratch.len() < wanted {
        e.scratch = (0..wanted)
            .map(|_| value.zeros_like())
            .collect::<Result<_>>()?;
    }
    let slot = Slot {
        step: e.state.step,
        buffers: &e.state.buffers,
        scalars: &e.state.scalars,
        scratch: &e.scratch,
    };
    R::update(config, value, grad, slot)
}

/// Runs the gathered steps: those sharing a step (hyper-parameters and step count), dtype and
/// device whose operands a fused kernel takes in one `fused_step_many_` (skipped on the device
/// when `skip` is set); the others, and all of them where that launch cannot run, each
/// parameter's fused kernel or, failing that, the rule's update (unless `skip` is set, read on
/// the host).
fn run_pending<R: UpdateRule>(
    state: &mut BTreeMap<String, Entry>,
    config: &R::Config,
    pending: Vec<Pending>,
    skip: Option<&DeferredScalar>,
) -> Result<()> {
    let mut rest = pending;
    while !rest.is_empty() {
        let mut queue = std::mem::take(&mut rest).into_iter();
        let head = queue.next().expect("not empty");
        let alike = |q: &Pending| {
            q.step == head.step
                && q.value.dtype() == head.value.dtype()
                && q.value.device() == head.value.device()
        };
        let (mut batch, others): (Vec<Pending>, Vec<Pending>) = queue.partition(alike);
        rest = others;
        batch.insert(0, head);
        let buffers: Vec<Vec<&Tensor>> = batch.iter().map(|q| q.buffers.iter().collect()).collect();
        let operands: Vec<StepOperands<'_>> = batch
            .iter()
            .zip(&buffers)
            .map(|(q, b)| StepOperands {
                param: &q.value,
                buffers: b,
                grad: &q.grad,
            })
            .collect();
        // The parameters a fused kernel takes go together; one that it cannot (a strided
        // gradient) does not hold the others back.
        let step = &batch[0].step;
        let fits: Vec<bool> = operands.iter().map(|o| o.fits(step)).collect();
        let fitting: Vec<StepOperands<'_>> = (operands.iter().zip(&fits))
            .filter_map(|(o, &fits)| fits.then_some(*o))
            .collect();
        let flag = skip.map(DeferredScalar::tensor);
        let together = !fitting.is_empty() && Tensor::fused_step_many_(step, &fitting, flag)?;
        for ((q, b), &fits) in batch.iter().zip(&buffers).zip(&fits) {
            if (together && fits) || skipped(skip)? {
                continue;
            }
            if !q.value.fused_step_(&q.step, b, &q.grad)? {
                let e = state
                    .get_mut(&q.name)
                    .expect("every gathered parameter has its state");
                update::<R>(config, e, &q.value, &q.grad)?;
            }
        }
    }
    Ok(())
}
