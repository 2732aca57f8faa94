//! User-defined ops: [`CustomOp`] (out of place, any number of inputs) and [`CustomInplaceOp`]
//! (writes into a tensor), applied with [`Tensor::apply_op`] and [`Tensor::apply_inplace_op`];
//! [`Tensor::with_storage_mut`] for a source-less in-place kernel written as a closure.
//!
//! One trait per kind for every arity (Candle's `CustomOp1/2/3` and `InplaceOp1/2` in one
//! family): each has a CPU forward over host storages and an optional per-backend forward that a
//! GPU crate implements by downcasting [`Backend::as_any`] to its backend and the storages'
//! [`BackendStorage::as_any`] to its storage type. Both traits only have provided methods beyond
//! `name` and `cpu_fwd`, so methods such as a `backward` hook can be added later with a default
//! body without breaking implementors.

use crate::backend::{Backend, BackendStorage, BoxedStorage};
use crate::cpu::CpuStorage;
use crate::{DeviceLocation, Error, Layout, Result, Shape, Tensor};

/// An out-of-place op defined outside the crate: inputs are views, the output is a fresh
/// contiguous storage plus its shape.
pub trait CustomOp: Send + Sync {
    /// The op's name (in error messages).
    fn name(&self) -> &'static str;

    /// The forward pass on host memory: one `(storage, layout)` view per input, in order.
    fn cpu_fwd(&self, inputs: &[(&CpuStorage, &Layout)]) -> Result<(CpuStorage, Shape)>;

    /// The forward pass on another backend (`backend` is the inputs' device). Default:
    /// [`Error::NotImplemented`] naming the op and the device.
    fn device_fwd(
        &self,
        backend: &dyn Backend,
        inputs: &[(&dyn BackendStorage, &Layout)],
    ) -> Result<(BoxedStorage, Shape)> {
        let _ = inputs;
        Err(Error::NotImplemented {
            op: self.name(),
            device: backend.location(),
        })
    }

    /// The backward rule used by [`Tensor::apply_op_tracked`]: one gradient per input (`None`
    /// for inputs that get none, each of its input's shape) from the inputs, the output and the
    /// output's gradient, written with tensor ops (so it runs on any device and can itself be
    /// differentiated). Default: the op is not differentiable (an error naming it).
    fn backward(
        &self,
        inputs: &[Tensor],
        output: &Tensor,
        grad: &Tensor,
    ) -> Result<Vec<Option<Tensor>>> {
        let _ = (inputs, output, grad);
        Err(Error::invalid(
            self.name(),
            "this custom op has no backward rule (implement CustomOp::backward)",
        ))
    }
}

/// An in-place op defined outside the crate: updates the destination view from source views.
/// Runs under the same write path as the built-in in-place ops (expanded destinations refused,
/// version counter bumped, sources sharing the destination's storage copied first).
pub trait CustomInplaceOp: Send + Sync {
    /// The op's name (in error messages).
    fn name(&self) -> &'static str;

    /// Updates `dst`'s view `dst_layout` on host memory from the source views.
    fn cpu_fwd(
        &self,
        dst: &mut CpuStorage,
        dst_layout: &Layout,
        srcs: &[(&CpuStorage, &Layout)],
    ) -> Result<()>;

    /// The same on another backend. Default: [`Error::NotImplemented`] naming the op and device.
    fn device_fwd(
        &self,
        backend: &dyn Backend,
        dst: &mut dyn BackendStorage,
        dst_layout: &Layout,
        srcs: &[(&dyn BackendStorage, &Layout)],
    ) -> Result<()> {
        let _ = (dst, dst_layout, srcs);
        Err(Error::NotImplemented {
            op: self.name(),
            device: backend.location(),
        })
    }
}

/// The host storage behind a CPU device's storage, or `None` on other backends.
fn host(storage: &dyn BackendStorage) -> Option<&CpuStorage> {
    storage.as_any().downcast_ref::<CpuStorage>()
}

/// All inputs as host views when the device is the CPU and every storage is host memory.
fn host_views<'a>(
    location: DeviceLocation,
    views: &[(&'a dyn BackendStorage, &'a Layout)],
) -> Option<Vec<(&'a CpuStorage, &'a Layout)>> {
    if location != DeviceLocation::Cpu {
        return None;
    }
    views
        .iter()
        .map(|&(s, l)| host(s).map(|h| (h, l)))
        .collect()
}

impl Tensor {
    /// Applies a differentiable custom op: the forward as [`Tensor::apply_op`], recorded with
    /// the op's [`CustomOp::backward`] when an input requires a gradient (the inputs and the
    /// output are saved for it).
    pub fn apply_op_tracked(
        inputs: &[&Tensor],
        op: std::sync::Arc<dyn CustomOp>,
    ) -> Result<Tensor> {
        let value = crate::grad::untracked(|| Tensor::apply_op(inputs, op.as_ref()))?;
        let n = inputs.len();
        Ok(Tensor::from_op(
            value,
            op.name(),
            inputs,
            crate::Save::INPUTS.and_output(),
            move |ctx, g| {
                let saved = (0..n).map(|i| ctx.input(i)).collect::<Result<Vec<_>>>()?;
                let grads = op.backward(&saved, &ctx.output()?, g)?;
                if grads.len() != n {
                    return Err(Error::invalid(
                        op.name(),
                        format!("backward returned {} gradients for {n} inputs", grads.len()),
                    ));
                }
                Ok(grads)
            },
        ))
    }

    /// Applies a custom op to `inputs` (at least one; all on one device) and wraps its output.
    /// The output's element count must match the returned shape. Not recorded: with inputs
    /// that require a gradient (and recording on) this is an error; use
    /// [`Tensor::apply_op_tracked`].
    pub fn apply_op(inputs: &[&Tensor], op: &dyn CustomOp) -> Result<Tensor> {
        if crate::is_grad_enabled() && inputs.iter().any(|t| t.requires_grad()) {
            return Err(Error::invalid(
                op.name(),
                "inputs require grad but apply_op does not record; use Tensor::apply_op_tracked",
            ));
        }
        let Some(first) = inputs.first() else {
            return Err(Error::invalid(
                op.name(),
                "a custom op needs at least one input",
            ));
        };
        for t in &inputs[1..] {
            first.check_same_device(op.name(), t)?;
        }
        let device = first.device().clone();
        let backend = device.backend();
        let (storage, shape) = Tensor::with_storage_slice(inputs, |storages| {
            let views: Vec<(&dyn BackendStorage, &Layout)> = storages
                .iter()
                .zip(inputs)
                .map(|(&s, t)| (s, t.layout()))
                .collect();
            match host_views(backend.location(), &views) {
                Some(host) => op
                    .cpu_fwd(&host)
                    .map(|(s, shape)| (Box::new(s) as BoxedStorage, shape)),
                None => op.device_fwd(backend, &views),
            }
        })?;
        if storage.len() != shape.elem_count() {
            return Err(Error::ElementCount {
                op: op.name(),
                len: storage.len(),
                shape,
            });
        }
        Tensor::from_storage(storage, shape, device)
    }

    /// Write access to this tensor's storage for an in-place kernel that needs no sources and
    /// is not worth a [`CustomInplaceOp`] (a collective that reduces a buffer where it lives):
    /// `f(storage, layout)` runs on the in-place write path (expanded views and leaves that
    /// require a gradient refused, the version counter bumped afterwards). `f` must stay inside
    /// `layout`'s view of the storage.
    pub fn with_storage_mut<R>(
        &self,
        f: impl FnOnce(&mut dyn BackendStorage, &Layout) -> Result<R>,
    ) -> Result<R> {
        self.write_with([], |dst, layout, []| f(dst, layout))
    }

    /// Applies a custom in-place op to this tensor with `srcs` (same device) through the
    /// in-place write path (see [`CustomInplaceOp`]).
    pub fn apply_inplace_op(&self, srcs: &[&Tensor], op: &dyn CustomInplaceOp) -> Result<()> {
        for t in srcs {
            self.check_same_device(op.name(), t)?;
        }
        let copies: Vec<Tensor> = srcs
            .iter()
            .map(|t| {
                if t.same_storage(self) {
                    t.force_contiguous()
                } else {
                    Ok((*t).clone())
                }
            })
            .collect::<Result<_>>()?;
        let refs: Vec<&Tensor> = copies.iter().collect();
        let backend = self.device().backend();
        self.write_with_slice(&refs, |dst, dst_layout, storages| {
            let views: Vec<(&dyn BackendStorage, &Layout)> = storages
                .iter()
                .zip(&refs)
                .map(|(&s, t)| (s, t.layout()))
                .collect();
            let host_srcs = host_views(backend.location(), &views);
            let is_host = dst.as_any().is::<CpuStorage>();
            match host_srcs {
                Some(host_srcs) if is_host => {
                    let dst = dst
                        .as_any_mut()
                        .downcast_mut::<CpuStorage>()
                        .expect("checked to be host memory");
                    op.cpu_fwd(dst, dst_layout, &host_srcs)
                }
                _ => op.device_fwd(backend, dst, dst_layout, &views),
            }
        })
    }
}
