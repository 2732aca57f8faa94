//! Host side of `cuda/fused_step.cu`: an optimizer step over one parameter in one launch
//! (`Backend::fused_step`), where sinew-optim's in-place form takes two (SGD with momentum) to
//! seven (SGD with weight decay and Nesterov momentum at its first step) launches, and the loss
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
    let g_ptr = run_at(g, grad.1, len, dtype, op)?;
    let mut ptrs = [0u64; 3];
    for (ptr, (storage, start)) in ptrs.iter_mut().zip(dsts.iter_mut()) {
        *ptr = run_at(cuda_mut(&mut **storage, loc)?, *start, len, dtype, op)?;
    }
    if len == 0 {
        return Ok(true);
    }
    let n = count_u32(op, len)?;
    let cfg = LaunchConfig::elementwise(len);
    match step {
        FusedStep::Sgd(s) => {
            let flags = u32::from(s.momentum != 0.0)
                | u32::from(s.nesterov) << 1
                | u32::from(s.maximize) << 2
                | u32::from(s.first) << 3;
            let [p, buf, _] = ptrs;
            let (lr, wd, momentum, keep) = (s.lr, s.weight_decay, s.momentum, 1.0 - s.dampening);
            dev.launch(
                &kernel,
                cfg,
                kernel_args![n, p, buf, g_ptr, lr, wd, momentum, keep, flags],
            )?;
        }
        FusedStep::Adam(a) => {
            let (b1, b2) = a.betas;
            let t = a.step as f64;
            let one_minus_b1 = 1.0 - b1;
            let flags = u32::from(a.decoupled)
                | u32::from(one_minus_b1.abs() < 0.5) << 1
                | u32::from(a.maximize) << 2;
            let step_size = a.lr / (1.0 - b1.powf(t));
            let inv_bias2_sqrt = 1.0 / (1.0 - b2.powf(t)).sqrt();
            let [p, m, v] = ptrs;
            let (lr, wd, one_minus_b2, eps) = (a.lr, a.weight_decay, 1.0 - b2, a.eps);
            dev.launch(
                &kernel,
                cfg,
                kernel_args![
                    n,
                    p,
                    m,
                    v,
                    g_ptr,
                    lr,
                    wd,
                    one_minus_b1,
                    b2,
                    one_minus_b2,
                    step_size,
                    inv_bias2_sqrt,
                    eps,
                    flags
                ],
            )?;
        }
        _ => return Ok(false),
    }
    Ok(true)
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
