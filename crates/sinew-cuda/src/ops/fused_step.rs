//! Host side of `cuda/fused_step.cu`: an optimizer step over one parameter in one launch
//! (`Backend::fused_step`, every optimizer of sinew-optim), where sinew-optim's in-place form
//! takes two (SGD with momentum) to fifteen (Adadelta with weight decay and `maximize`) launches, and the loss
//! scaler's unscale of a gradient with its non-finite check in one (`Backend::amp_unscale`).

use std::ffi::c_void;

use sinew_tensor::{BackendStorage, DType, Error, FusedStep, Layout, Result};

use super::step_table::{SLOTS, StepTable, TABLE_LEN, elementwise_blocks, run_at};
use super::{LaunchConfig, count_u32, need};
use crate::device::CudaBackend;
use crate::geometry::Geometry;
use crate::names;
use crate::storage::{cuda, cuda_mut};

/// A step kernel's arguments besides the tensors: its f64 scalars in order, its flags, and
/// which of the parameter's buffers (in [`FusedStep::num_buffers`]' order) each of its state
/// slots takes (`None`: a null pointer, a slot the step does not use).
struct StepArgs {
    scalars: [f64; 9],
    count: usize,
    flags: u32,
    slots: [Option<usize>; SLOTS],
    slot_count: usize,
}

impl StepArgs {
    fn new(scalars: &[f64], flags: u32, slots: &[Option<usize>]) -> StepArgs {
        let mut args = StepArgs {
            scalars: [0.0; 9],
            count: scalars.len(),
            flags,
            slots: [None; SLOTS],
            slot_count: slots.len(),
        };
        args.scalars[..scalars.len()].copy_from_slice(scalars);
        args.slots[..slots.len()].copy_from_slice(slots);
        args
    }

    /// The kernel's state-slot pointers for a parameter whose buffers are at `buffers`.
    fn slot_ptrs(&self, buffers: &[u64]) -> [u64; SLOTS] {
        self.slots.map(|slot| slot.map_or(0, |k| buffers[k]))
    }
}

/// The maximize bit (4) of every step's flags.
fn maximize(on: bool) -> u32 {
    u32::from(on) << 2
}

/// The bit `bit` set when `lerp_` with weight `w` takes its first branch (`|w| < 0.5`),
/// decided in f64 as the CPU backend decides it.
fn lerp_branch(w: f64, bit: u32) -> u32 {
    u32::from(w.abs() < 0.5) << bit
}

/// The arguments of `step`'s kernels (`cuda/fused_step.cu` lists them), with the scalars
/// derived on the host as sinew-optim's rules derive them, in f64; `None` for a step without
/// a kernel.
fn step_args(step: &FusedStep) -> Option<StepArgs> {
    Some(match *step {
        FusedStep::Sgd(s) => {
            let flags = u32::from(s.momentum != 0.0)
                | u32::from(s.nesterov) << 1
                | maximize(s.maximize)
                | u32::from(s.first) << 3;
            let buf = (s.momentum != 0.0).then_some(0);
            let scalars = [s.lr, s.weight_decay, s.momentum, 1.0 - s.dampening];
            StepArgs::new(&scalars, flags, &[buf])
        }
        FusedStep::Adam(a) => {
            let (b1, b2) = a.betas;
            let t = a.step as f64;
            let flags = u32::from(a.decoupled)
                | lerp_branch(1.0 - b1, 1)
                | maximize(a.maximize)
                | u32::from(a.amsgrad) << 3;
            let scalars = [
                1.0 - a.lr * a.weight_decay,
                a.weight_decay,
                1.0 - b1,
                b2,
                1.0 - b2,
                a.lr / (1.0 - b1.powf(t)),
                1.0 / (1.0 - b2.powf(t)).sqrt(),
                a.eps,
            ];
            StepArgs::new(&scalars, flags, &[Some(0), Some(1), a.amsgrad.then_some(2)])
        }
        FusedStep::Adamax(a) => {
            let (b1, b2) = a.betas;
            let flags = lerp_branch(1.0 - b1, 1) | maximize(a.maximize);
            let neg_step_size = -(a.lr / (1.0 - b1.powf(a.step as f64)));
            let scalars = [a.weight_decay, 1.0 - b1, b2, a.eps, neg_step_size];
            StepArgs::new(&scalars, flags, &[Some(0), Some(1)])
        }
        FusedStep::Adagrad(a) => {
            let scalars = [a.weight_decay, -a.lr, a.eps];
            StepArgs::new(&scalars, maximize(a.maximize), &[Some(0)])
        }
        FusedStep::Rmsprop(r) => {
            let has_momentum = r.momentum > 0.0;
            let flags = u32::from(has_momentum)
                | u32::from(r.centered) << 1
                | maximize(r.maximize)
                | lerp_branch(1.0 - r.alpha, 3)
                | u32::from(!r.centered && r.momentum == 0.0) << 4;
            let buf = has_momentum.then_some(1);
            let ga = r.centered.then_some(1 + usize::from(has_momentum));
            let scalars = [
                r.weight_decay,
                r.alpha,
                1.0 - r.alpha,
                r.eps,
                -r.lr,
                r.momentum,
            ];
            StepArgs::new(&scalars, flags, &[Some(0), buf, ga])
        }
        FusedStep::Adadelta(a) => {
            let scalars = [a.weight_decay, a.rho, 1.0 - a.rho, a.eps, -a.lr];
            StepArgs::new(&scalars, maximize(a.maximize), &[Some(0), Some(1)])
        }
        FusedStep::Nadam(a) => {
            let (b1, b2) = a.betas;
            let flags = u32::from(a.decoupled) | lerp_branch(1.0 - b1, 1) | maximize(a.maximize);
            // sinew-optim's NAdam rule computes these the same way.
            let next = a.mu_product * a.mu_next;
            let scalars = [
                1.0 - a.lr * a.weight_decay,
                a.weight_decay,
                1.0 - b1,
                b2,
                1.0 - b2,
                1.0 / (1.0 - b2.powf(a.step as f64)),
                a.eps,
                -a.lr * (1.0 - a.mu) / (1.0 - a.mu_product),
                -a.lr * a.mu_next / (1.0 - next),
            ];
            StepArgs::new(&scalars, flags, &[Some(0), Some(1)])
        }
        FusedStep::Radam(a) => {
            let (b1, b2) = a.betas;
            let (coefficient, rectified) = a.update();
            let flags = u32::from(a.decoupled)
                | lerp_branch(1.0 - b1, 1)
                | maximize(a.maximize)
                | u32::from(rectified) << 3;
            let scalars = [
                1.0 - a.lr * a.weight_decay,
                a.weight_decay,
                1.0 - b1,
                b2,
                1.0 - b2,
                -coefficient,
                a.eps,
            ];
            StepArgs::new(&scalars, flags, &[Some(0), Some(1)])
        }
        FusedStep::Rprop(r) => {
            let scalars = [r.etas.0, r.etas.1, r.step_sizes.0, r.step_sizes.1];
            StepArgs::new(&scalars, maximize(r.maximize), &[Some(0), Some(1)])
        }
        FusedStep::Asgd(a) => {
            // sinew-optim's ASGD rule computes these the same way.
            let flags = maximize(a.maximize) | u32::from(a.mu == 1.0) << 3;
            let scalars = [1.0 - a.lambd * a.eta, a.weight_decay, -a.eta, a.mu];
            StepArgs::new(&scalars, flags, &[Some(0)])
        }
        _ => return None,
    })
}

/// Checks the parameter's operands, `1 + num_buffers` destinations and its gradient, as
/// dense runs of `len` elements of the gradient's dtype; their device addresses, the
/// parameter's first.
fn operand_ptrs(
    dev: &CudaBackend,
    step: &FusedStep,
    dsts: &mut [(&mut dyn BackendStorage, usize)],
    grad: (&dyn BackendStorage, usize),
    len: usize,
) -> Result<([u64; 1 + SLOTS], u64, DType)> {
    let op = step.name();
    let loc = dev.location();
    let g = cuda(grad.0, loc)?;
    let dtype = g.dtype_of();
    if dsts.len() != 1 + step.num_buffers() {
        return Err(Error::invalid(
            op,
            format!(
                "{} tensors for a step that updates {}",
                dsts.len(),
                1 + step.num_buffers()
            ),
        ));
    }
    let g_ptr = run_at(g, grad.1, len, dtype, op)?;
    let mut ptrs = [0u64; 1 + SLOTS];
    for (ptr, (storage, start)) in ptrs.iter_mut().zip(dsts.iter_mut()) {
        *ptr = run_at(cuda_mut(&mut **storage, loc)?, *start, len, dtype, op)?;
    }
    Ok((ptrs, g_ptr, dtype))
}

/// Runs `step` over dense runs of `len` elements: `dsts` the parameter and its buffers (as
/// [`FusedStep::num_buffers`] counts them), `grad` the gradient. `false` for a step without a
/// kernel here.
pub(crate) fn fused_step(
    dev: &CudaBackend,
    step: &FusedStep,
    dsts: &mut [(&mut dyn BackendStorage, usize)],
    grad: (&dyn BackendStorage, usize),
    len: usize,
) -> Result<bool> {
    let Some(args) = step_args(step) else {
        return Ok(false);
    };
    let (ptrs, g, dtype) = operand_ptrs(dev, step, dsts, grad, len)?;
    let Some(kernel) = names::fused_step(step, dtype, false) else {
        return Ok(false);
    };
    if len == 0 {
        return Ok(true);
    }
    let n = count_u32(step.name(), len)?;
    let slots = args.slot_ptrs(&ptrs[1..]);
    // The kernel's parameters in order: n, p, its state slots, g, the scalars, the flags.
    let mut params: Vec<*mut c_void> = vec![ptr_to(&n), ptr_to(&ptrs[0])];
    params.extend(slots[..args.slot_count].iter().map(ptr_to));
    params.push(ptr_to(&g));
    params.extend(args.scalars[..args.count].iter().map(ptr_to));
    params.push(ptr_to(&args.flags));
    dev.launch(&kernel, LaunchConfig::elementwise(len), &params)?;
    Ok(true)
}

/// Runs `step` over several parameters, each as [`fused_step`] takes one (`dsts` holds
/// `1 + num_buffers` destinations per parameter, in order), in one launch per
/// [`TABLE_LEN`] parameters, each writing nothing if the f32 element `skip` is set when it
/// runs. `false`, with nothing written, for a step without a kernel here.
pub(crate) fn fused_step_many(
    dev: &CudaBackend,
    step: &FusedStep,
    dsts: &mut [(&mut dyn BackendStorage, usize)],
    grads: &[(&dyn BackendStorage, usize)],
    lens: &[usize],
    skip: Option<(&dyn BackendStorage, usize)>,
) -> Result<bool> {
    let Some(args) = step_args(step) else {
        return Ok(false);
    };
    let skip_ptr = match skip {
        Some((flag, at)) => run_at(cuda(flag, dev.location())?, at, 1, DType::F32, step.name())?,
        None => 0,
    };
    let per = 1 + step.num_buffers();
    if dsts.len() != per * grads.len() || lens.len() != grads.len() {
        return Err(Error::invalid(
            step.name(),
            format!(
                "{} destinations, {} gradients and {} lengths",
                dsts.len(),
                grads.len(),
                lens.len()
            ),
        ));
    }
    // Every operand checked before the first launch, so that an error writes nothing.
    let mut operands = Vec::with_capacity(grads.len());
    for ((dsts, &grad), &len) in dsts.chunks_mut(per).zip(grads).zip(lens) {
        operands.push((operand_ptrs(dev, step, dsts, grad, len)?, len));
    }
    let Some(&((_, _, dtype), _)) = operands.first() else {
        return Ok(true);
    };
    if operands.iter().any(|((_, _, d), _)| *d != dtype) {
        return Err(Error::invalid(
            step.name(),
            "parameters of different dtypes",
        ));
    }
    let Some(kernel) = names::fused_step(step, dtype, true) else {
        return Ok(false);
    };
    for chunk in operands.chunks(TABLE_LEN) {
        let mut table = StepTable::empty();
        table.skip = skip_ptr;
        for (j, &((ptrs, g, _), len)) in chunk.iter().enumerate() {
            for (slot, ptr) in table.slots.iter_mut().zip(args.slot_ptrs(&ptrs[1..])) {
                slot[j] = ptr;
            }
            table.push(step.name(), (ptrs[0], g, len), elementwise_blocks(len))?;
        }
        let mut params: Vec<*mut c_void> = vec![ptr_to(&table)];
        params.extend(args.scalars[..args.count].iter().map(ptr_to));
        params.push(ptr_to(&args.flags));
        dev.launch(&kernel, table.config(), &params)?;
    }
    Ok(true)
}

/// A kernel parameter: the address of its value.
fn ptr_to<T>(value: &T) -> *mut c_void {
    value as *const T as *mut c_void
}

/// `grad *= inv_scale` over a view, and `found` (an f32 element) set to 1 if a result is not
/// finite.
pub(crate) fn amp_unscale(
    dev: &CudaBackend,
    grad: &mut dyn BackendStorage,
    layout: &Layout,
    found: (&mut dyn BackendStorage, usize),
    inv_scale: f64,
) -> Result<()> {
    const OP: &str = "amp_unscale_";
    let loc = dev.location();
    let grad = cuda_mut(grad, loc)?;
    let dtype = grad.dtype_of();
    let kernel = need(names::amp_unscale(dtype, false), OP, dtype)?;
    let found_ptr = run_at(cuda_mut(found.0, loc)?, found.1, 1, DType::F32, OP)?;
    let n = layout.elem_count();
    if n == 0 {
        return Ok(());
    }
    let g = Geometry::new(OP, &[layout])?;
    let (count, ptr) = (count_u32(OP, n)?, grad.device_ptr());
    dev.launch(
        &kernel,
        LaunchConfig::elementwise(n),
        kernel_args![count, g, ptr, found_ptr, inv_scale],
    )
}

/// `grad *= inv_scale` over dense gradients of one dtype (`grads[i]` a run of `lens[i]`
/// elements), in one launch per [`TABLE_LEN`], and `found` (an f32 element) set to 1 if a
/// result is not finite. `false` for a dtype without a kernel.
pub(crate) fn amp_unscale_many(
    dev: &CudaBackend,
    grads: &mut [(&mut dyn BackendStorage, usize)],
    lens: &[usize],
    found: (&mut dyn BackendStorage, usize),
    inv_scale: f64,
) -> Result<bool> {
    const OP: &str = "amp_unscale_";
    let loc = dev.location();
    let found_ptr = run_at(cuda_mut(found.0, loc)?, found.1, 1, DType::F32, OP)?;
    if grads.len() != lens.len() {
        return Err(Error::invalid(OP, "one length a gradient"));
    }
    let mut runs = Vec::with_capacity(grads.len());
    let mut dtype = None;
    for ((storage, start), &len) in grads.iter_mut().zip(lens) {
        let storage = cuda_mut(&mut **storage, loc)?;
        let d = *dtype.get_or_insert(storage.dtype_of());
        runs.push((run_at(storage, *start, len, d, OP)?, len));
    }
    let Some(dtype) = dtype else {
        return Ok(true);
    };
    let Some(kernel) = names::amp_unscale(dtype, true) else {
        return Ok(false);
    };
    for chunk in runs.chunks(TABLE_LEN) {
        let mut table = StepTable::empty();
        for &(ptr, len) in chunk {
            table.push(OP, (ptr, 0, len), elementwise_blocks(len))?;
        }
        dev.launch(
            &kernel,
            table.config(),
            kernel_args![table, found_ptr, inv_scale],
        )?;
    }
    Ok(true)
}
