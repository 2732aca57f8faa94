//! [`DistributedDataParallel`]: wraps a module so that every rank trains the same model on its
//! own shard of each batch (PyTorch's `torch.nn.parallel.DistributedDataParallel`).

use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};

use sinew_nn::{Module, ModuleExt, Visit};
use sinew_tensor::{HookHandle, Parameter, Result, Tensor, is_grad_enabled};

use crate::group::ProcessGroup;
use crate::reducer::{Reducer, StepEvent};

/// Settings of [`DistributedDataParallel`] (PyTorch's constructor arguments).
#[derive(Clone, Debug)]
pub struct DdpConfig {
    /// Bucket size in MiB (PyTorch's `bucket_cap_mb`, 25 by default).
    pub bucket_cap_mb: f64,
    /// Copy rank 0's buffers (BatchNorm running statistics) to every rank at each training
    /// forward (PyTorch's `broadcast_buffers=True`). Batch statistics stay local either way.
    pub broadcast_buffers: bool,
}

impl Default for DdpConfig {
    fn default() -> Self {
        DdpConfig {
            bucket_cap_mb: 25.0,
            broadcast_buffers: true,
        }
    }
}

/// A module trained data-parallel: rank 0's parameters and buffers are broadcast at
/// construction; during backward, gradient hooks average the gradients over all ranks in
/// buckets, each bucket's all-reduce running while backward computes the earlier layers. After
/// `loss.backward()` every rank holds the same averaged gradients, so identical optimizer steps
/// keep the replicas identical.
///
/// Its `state_dict` keys are the wrapped module's (PyTorch prefixes them with `module.`), so a
/// checkpoint loads with or without the wrapper.
///
/// ```
/// use sinew_dist::{DistributedDataParallel, init_process_group};
/// use sinew_nn::{Linear, Module, ModuleExt};
/// use sinew_tensor::Tensor;
///
/// let group = init_process_group()?; // the world of one outside mpirun
/// let model = DistributedDataParallel::new(Linear::new(3, 2)?, &group)?;
/// let x = Tensor::ones([4, 3], sinew_tensor::DType::F32, &sinew_tensor::Device::cpu())?;
/// model.forward(&x)?.sum_all()?.backward()?;
/// assert!(model.parameters().iter().all(|p| p.grad().is_some()));
/// # Ok::<(), sinew_tensor::Error>(())
/// ```
pub struct DistributedDataParallel<M: Module> {
    module: M,
    reducer: Arc<Reducer>,
    hooks: Vec<(Parameter, HookHandle)>,
    config: DdpConfig,
}

impl<M: Module> DistributedDataParallel<M> {
    /// Wraps `module` with the default [`DdpConfig`].
    pub fn new(module: M, group: &ProcessGroup) -> Result<Self> {
        Self::with_config(module, group, DdpConfig::default())
    }

    /// Wraps `module`: broadcasts rank 0's state, plans the buckets, registers the hooks.
    pub fn with_config(module: M, group: &ProcessGroup, config: DdpConfig) -> Result<Self> {
        if !(config.bucket_cap_mb.is_finite() && config.bucket_cap_mb > 0.0) {
            return Err(sinew_tensor::Error::invalid(
                "DistributedDataParallel",
                format!(
                    "bucket_cap_mb must be positive, got {}",
                    config.bucket_cap_mb
                ),
            ));
        }
        let params: Vec<(String, Parameter)> = module
            .named_parameters()
            .into_iter()
            .filter(|(_, p)| p.requires_grad())
            .collect();
        check_same_parameters(group, &params)?;
        for (_, p) in module.named_parameters() {
            group.broadcast(&p.value(), 0)?;
        }
        broadcast_float_buffers(&module, group)?;
        let cap = (config.bucket_cap_mb * 1024.0 * 1024.0) as usize;
        let reducer = Arc::new(Reducer::new(group.clone(), params, cap)?);
        let mut hooks = Vec::with_capacity(reducer.slots.len());
        for (i, slot) in reducer.slots.iter().enumerate() {
            let weak: Weak<Reducer> = Arc::downgrade(&reducer);
            let handle =
                slot.param
                    .value()
                    .register_grad_hook(move |grad| match weak.upgrade() {
                        Some(reducer) => reducer.grad_ready(i, grad),
                        None => Ok(()),
                    })?;
            hooks.push((slot.param.clone(), handle));
        }
        Ok(DistributedDataParallel {
            module,
            reducer,
            hooks,
            config,
        })
    }

    /// The wrapped module (PyTorch: `ddp.module`).
    pub fn module(&self) -> &M {
        &self.module
    }

    /// The process group.
    pub fn group(&self) -> &ProcessGroup {
        self.reducer.group()
    }

    /// Skips gradient synchronisation until the guard is dropped: gradients accumulate locally,
    /// and the first backward after it averages the accumulated sums (PyTorch: `with
    /// ddp.no_sync():`, for gradient accumulation).
    pub fn no_sync(&self) -> NoSync<'_> {
        self.reducer.no_sync.store(true, Ordering::Relaxed);
        NoSync {
            reducer: &self.reducer,
        }
    }

    /// Completes the step's synchronisation when some parameters received no gradient in
    /// backward (they count as zeros on this rank). A no-op when backward already synchronised
    /// everything, which is the normal case; the trainer calls it after each backward.
    pub fn finish_gradient_sync(&self) -> Result<()> {
        self.reducer.finish()
    }

    /// Parameter names per bucket, in launch order (bucket 0 holds the last layers).
    pub fn buckets(&self) -> Vec<Vec<String>> {
        self.reducer
            .buckets
            .iter()
            .map(|b| {
                b.slots
                    .iter()
                    .map(|&i| self.reducer.slots[i].name.clone())
                    .collect()
            })
            .collect()
    }

    /// The last synchronised step's events, in milliseconds from its forward: gradients
    /// arriving, buckets launched and reduced, the write-back. Shows how much communication
    /// overlapped backward.
    pub fn last_step_timeline(&self) -> Vec<(f64, StepEvent)> {
        self.reducer.timeline()
    }

    /// The settings.
    pub fn config(&self) -> &DdpConfig {
        &self.config
    }
}

/// Guard returned by [`DistributedDataParallel::no_sync`].
#[must_use = "synchronisation resumes when the guard is dropped"]
pub struct NoSync<'a> {
    reducer: &'a Reducer,
}

impl Drop for NoSync<'_> {
    fn drop(&mut self) {
        self.reducer.no_sync.store(false, Ordering::Relaxed);
    }
}

impl<M: Module> Module for DistributedDataParallel<M> {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        if is_grad_enabled() {
            self.reducer.prepare_for_forward()?;
            if self.config.broadcast_buffers && self.group().world_size() > 1 {
                broadcast_float_buffers(&self.module, self.group())?;
            }
        }
        self.module.forward(x)
    }
    fn visit<'a>(&'a self, v: &mut Visit<'a, '_>) {
        self.module.visit(v)
    }
    fn type_name(&self) -> &'static str {
        self.module.type_name()
    }
}

impl<M: Module> Drop for DistributedDataParallel<M> {
    fn drop(&mut self) {
        for (p, handle) in &self.hooks {
            p.value().remove_grad_hook(*handle);
        }
    }
}

/// Rank 0's float buffers (running statistics) on every rank; integer counters are identical
/// on every rank already.
fn broadcast_float_buffers(module: &dyn Module, group: &ProcessGroup) -> Result<()> {
    for (_, b) in module.named_buffers() {
        let value = b.value();
        if value.dtype().is_float() {
            let root = sinew_tensor::with_no_grad(|| value.detach().force_contiguous())?;
            group.broadcast(&root, 0)?;
            b.set_value(root);
        }
    }
    Ok(())
}

/// Every rank must wrap the same parameter list, or the buckets would not line up.
fn check_same_parameters(group: &ProcessGroup, params: &[(String, Parameter)]) -> Result<()> {
    let fingerprint = params.iter().fold(0u64, |h, (name, p)| {
        let mut h = h ^ 0xcbf2_9ce4_8422_2325;
        for byte in name
            .bytes()
            .chain(format!("{:?}", p.value().dims()).bytes())
        {
            h = (h ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3);
        }
        h
    });
    // Compare through max and min of a value exactly representable in f64.
    let v = (fingerprint >> 12) as f64;
    let (mut hi, mut lo) = ([v], [-v]);
    group.all_reduce_f64(&mut hi, crate::ReduceOp::Max)?;
    group.all_reduce_f64(&mut lo, crate::ReduceOp::Max)?;
    if hi[0] != -lo[0] {
        return Err(crate::DistError::Mismatch {
            op: "DistributedDataParallel",
            msg: format!(
                "rank {} wraps a model whose parameter names or shapes differ from another rank's",
                group.rank()
            ),
        }
        .into());
    }
    Ok(())
}
