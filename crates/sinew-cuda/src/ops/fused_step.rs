//! Host side of `cuda/fused_step.cu`: an optimizer step over one parameter in one launch
//! (`Backend::fused_step`, every optimizer of sinew-optim), where sinew-optim's in-place form
//! takes two (SGD with momentum) to fifteen (Adadelta with weight decay and `maximize`) launches, and the loss
//! scaler's unscale of a gradient with its non-finite check in one (`Backend::amp_unscale`).

use sinew_tensor::{BackendStorage, DType, Error, FusedStep, Layout, Result};

use super::{LaunchConfig, count_u32, need};
use crate::device::CudaBackend;
use crate::geometry::Geometry;
use crate::names;
use crate::storage::{CudaStorage, cuda, cuda_mut};

/// Device address of element `start` of `storage`, after checking that `len` elements from
/// there lie inside it and that it holds `dtype` (what the kernel reads and writes).
fn run_at(
    storage: &CudaStorage,
    start: usize,
    len: usize,
    dtype: DType,
    op: &'static str,
) -> Result<u64> {
    let end = start.checked_add(len);
    if storage.dtype_of() != dtype || end.is_none_or(|e| e > storage.elem_count()) {
        return Err(Error::invalid(
            op,
            format!(
                "a {} storage of {} elements cannot hold {len} {dtype} elements from {start}",
                storage.dtype_of(),
                storage.elem_count()
            ),
        ));
    }
    Ok(storage.ptr_at(start))
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
    let op = step.name();
    let loc = dev.location();
    let g = cuda(grad.0, loc)?;
    let dtype = g.dtype_of();
    let Some(kernel) = names::fused_step(step, dtype) else {
        return Ok(false);
    };
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
    let g = run_at(g, grad.1, len, dtype, op)?;
    // The parameter, then its buffers; 0 for a buffer the step does not have.
    let mut ptrs = [0u64; 4];
    for (ptr, (storage, start)) in ptrs.iter_mut().zip(dsts.iter_mut()) {
        *ptr = run_at(cuda_mut(&mut **storage, loc)?, *start, len, dtype, op)?;
    }
    if len == 0 {
        return Ok(true);
    }
    let n = count_u32(op, len)?;
    let cfg = LaunchConfig::elementwise(len);
    let launch = |args: &[*mut std::ffi::c_void]| dev.launch(&kernel, cfg, args);
    match *step {
        FusedStep::Sgd(s) => {
            let flags = u32::from(s.momentum != 0.0)
                | u32::from(s.nesterov) << 1
                | maximize(s.maximize)
                | u32::from(s.first) << 3;
            let [p, buf, ..] = ptrs;
            let (lr, wd, momentum, keep) = (s.lr, s.weight_decay, s.momentum, 1.0 - s.dampening);
            launch(kernel_args![n, p, buf, g, lr, wd, momentum, keep, flags])?;
        }
        FusedStep::Adam(a) => {
            let (b1, b2) = a.betas;
            let t = a.step as f64;
            let (one_minus_b1, one_minus_b2) = (1.0 - b1, 1.0 - b2);
            let flags = u32::from(a.decoupled)
                | lerp_branch(one_minus_b1, 1)
                | maximize(a.maximize)
                | u32::from(a.amsgrad) << 3;
            let shrink = 1.0 - a.lr * a.weight_decay;
            let step_size = a.lr / (1.0 - b1.powf(t));
            let inv_bias2_sqrt = 1.0 / (1.0 - b2.powf(t)).sqrt();
            let [p, m, v, vmax] = ptrs;
            let (wd, eps) = (a.weight_decay, a.eps);
            launch(kernel_args![
                n,
                p,
                m,
                v,
                vmax,
                g,
                shrink,
                wd,
                one_minus_b1,
                b2,
                one_minus_b2,
                step_size,
                inv_bias2_sqrt,
                eps,
                flags
            ])?;
        }
        FusedStep::Adamax(a) => {
            let (b1, b2) = a.betas;
            let one_minus_b1 = 1.0 - b1;
            let flags = lerp_branch(one_minus_b1, 1) | maximize(a.maximize);
            let neg_step_size = -(a.lr / (1.0 - b1.powf(a.step as f64)));
            let [p, m, u, _] = ptrs;
            let (wd, eps) = (a.weight_decay, a.eps);
            launch(kernel_args![
                n,
                p,
                m,
                u,
                g,
                wd,
                one_minus_b1,
                b2,
                eps,
                neg_step_size,
                flags
            ])?;
        }
        FusedStep::Adagrad(a) => {
            let [p, sum, ..] = ptrs;
            let (wd, neg_lr, eps, flags) = (a.weight_decay, -a.lr, a.eps, maximize(a.maximize));
            launch(kernel_args![n, p, sum, g, wd, neg_lr, eps, flags])?;
        }
        FusedStep::Rmsprop(r) => {
            let has_momentum = r.momentum > 0.0;
            let one_minus_alpha = 1.0 - r.alpha;
            let flags = u32::from(has_momentum)
                | u32::from(r.centered) << 1
                | maximize(r.maximize)
                | lerp_branch(one_minus_alpha, 3)
                | u32::from(!r.centered && r.momentum == 0.0) << 4;
            let [p, v, third, fourth] = ptrs;
            let (buf, ga) = match (has_momentum, r.centered) {
                (true, true) => (third, fourth),
                (true, false) => (third, 0),
                (false, true) => (0, third),
                (false, false) => (0, 0),
            };
            let (wd, alpha, eps, neg_lr, momentum) =
                (r.weight_decay, r.alpha, r.eps, -r.lr, r.momentum);
            launch(kernel_args![
                n,
                p,
                v,
                buf,
                ga,
                g,
                wd,
                alpha,
                one_minus_alpha,
                eps,
                neg_lr,
                momentum,
                flags
            ])?;
        }
        FusedStep::Adadelta(a) => {
            let [p, v, u, _] = ptrs;
            let (wd, rho, one_minus_rho, eps) = (a.weight_decay, a.rho, 1.0 - a.rho, a.eps);
            let (neg_lr, flags) = (-a.lr, maximize(a.maximize));
            launch(kernel_args![
                n,
                p,
                v,
                u,
                g,
                wd,
                rho,
                one_minus_rho,
                eps,
                neg_lr,
                flags
            ])?;
        }
        FusedStep::Nadam(a) => {
            let (b1, b2) = a.betas;
            let (one_minus_b1, one_minus_b2) = (1.0 - b1, 1.0 - b2);
            let flags =
                u32::from(a.decoupled) | lerp_branch(one_minus_b1, 1) | maximize(a.maximize);
            // sinew-optim's NAdam rule computes these the same way, in f64.
            let shrink = 1.0 - a.lr * a.weight_decay;
            let inv_bias2 = 1.0 / (1.0 - b2.powf(a.step as f64));
            let grad_coef = -a.lr * (1.0 - a.mu) / (1.0 - a.mu_product);
            let next = a.mu_product * a.mu_next;
            let avg_coef = -a.lr * a.mu_next / (1.0 - next);
            let [p, m, v, _] = ptrs;
            let (wd, eps) = (a.weight_decay, a.eps);
            launch(kernel_args![
                n,
                p,
                m,
                v,
                g,
                shrink,
                wd,
                one_minus_b1,
                b2,
                one_minus_b2,
                inv_bias2,
                eps,
                grad_coef,
                avg_coef,
                flags
            ])?;
        }
        _ => return Ok(false),
    }
    Ok(true)
}

/// The `maximize` bit (4) of every step's flags.
fn maximize(on: bool) -> u32 {
    u32::from(on) << 2
}

/// The bit `bit` set when `lerp_` with weight `w` takes its first branch (`|w| < 0.5`),
/// decided in f64 as the CPU backend decides it.
fn lerp_branch(w: f64, bit: u32) -> u32 {
    u32::from(w.abs() < 0.5) << bit
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
    let kernel = need(names::amp_unscale(dtype), OP, dtype)?;
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
