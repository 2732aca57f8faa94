//! The [`Module`] trait and the walk over a module tree that names every parameter, buffer and
//! child the way PyTorch does (`features.0.weight`, `layer1.0.bn1.running_mean`).
//!
//! A module is a plain struct. It lists its state in [`Module::visit`], one line per item:
//!
//! ```
//! use sinew_nn::{Linear, Module, Visit};
//! use sinew_tensor::{Result, Tensor};
//!
//! struct TwoLayer { fc1: Linear, fc2: Linear }
//!
//! impl Module for TwoLayer {
//!     fn forward(&self, x: &Tensor) -> Result<Tensor> {
//!         self.fc2.forward(&self.fc1.forward(x)?.relu()?)
//!     }
//!     fn visit<'a>(&'a self, v: &mut Visit<'a, '_>) {
//!         v.child("fc1", &self.fc1);
//!         v.child("fc2", &self.fc2);
//!     }
//! }
//! # use sinew_nn::ModuleExt;
//! let net = TwoLayer { fc1: Linear::new(4, 8)?, fc2: Linear::new(8, 2)? };
//! let names: Vec<String> = net.named_parameters().into_iter().map(|(n, _)| n).collect();
//! assert_eq!(names, ["fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"]);
//! # Ok::<(), sinew_tensor::Error>(())
//! ```
//!
//! There is no side map: every name is the path of fields that leads to the item, so what
//! `state_dict()` saves, `load_state_dict()` restores and an optimizer keys its state by are
//! the same names, and a buffer (BatchNorm's running statistics) is found like a parameter.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};

use sinew_tensor::{Parameter, Result, Tensor};

/// A layer or a network: a forward function plus the state it lists in [`visit`](Self::visit).
///
/// Everything else (names, `state_dict`, `train`/`eval`, `freeze`, moving to a device, counting
/// parameters) comes from [`ModuleExt`](crate::ModuleExt), implemented for every module.
pub trait Module: Send + Sync {
    /// Applies the module. Modules that behave differently in training (dropout, batch norm)
    /// read their [`Mode`].
    fn forward(&self, x: &Tensor) -> Result<Tensor>;

    /// Lists the module's parameters, buffers, mode flag and children, in PyTorch's
    /// registration order. The default lists nothing (a stateless layer such as ReLU).
    fn visit<'a>(&'a self, v: &mut Visit<'a, '_>) {
        let _ = v;
    }

    /// The type's short name (`Conv2d`), shown by `summary()`.
    fn type_name(&self) -> &'static str {
        short_type_name(std::any::type_name::<Self>())
    }

    /// The forward followed by ReLU, `self.forward(x)?.relu()`. A layer with a fused form
    /// overrides it with the same values in fewer passes ([`Linear`](crate::Linear) and
    /// [`Conv2d`](crate::Conv2d): ReLU in their kernel's epilogue; [`BatchNorm`](crate::BatchNorm):
    /// in its output pass);
    /// [`Sequential`](crate::Sequential) calls it for a layer followed by [`ReLU`](crate::ReLU).
    fn forward_relu(&self, x: &Tensor) -> Result<Tensor> {
        self.forward(x)?.relu()
    }

    /// Whether the module is a plain [`ReLU`](crate::ReLU), which
    /// [`Sequential`](crate::Sequential) folds into the layer before it (default false).
    fn is_relu(&self) -> bool {
        false
    }
}

/// `a::b::Conv2d<T>` -> `Conv2d`.
fn short_type_name(full: &'static str) -> &'static str {
    let base = full.split('<').next().unwrap_or(full);
    base.rsplit("::").next().unwrap_or(base)
}

impl<M: Module + ?Sized> Module for Box<M> {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        (**self).forward(x)
    }
    fn visit<'a>(&'a self, v: &mut Visit<'a, '_>) {
        (**self).visit(v)
    }
    fn type_name(&self) -> &'static str {
        (**self).type_name()
    }
    fn forward_relu(&self, x: &Tensor) -> Result<Tensor> {
        (**self).forward_relu(x)
    }
    fn is_relu(&self) -> bool {
        (**self).is_relu()
    }
}

/// A non-trainable tensor that belongs to a module's state (BatchNorm's running statistics).
/// Like [`Parameter`], clones share the value, so a module updates it during `forward(&self)`
/// and `load_state_dict` replaces it for every holder.
#[derive(Clone)]
pub struct Buffer {
    cell: Arc<RwLock<Tensor>>,
}

impl Buffer {
    /// A buffer holding `value` (detached).
    pub fn new(value: Tensor) -> Buffer {
        Buffer {
            cell: Arc::new(RwLock::new(value.detach())),
        }
    }

    /// The current value.
    pub fn value(&self) -> Tensor {
        self.cell.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Replaces the value (detached).
    pub fn set_value(&self, value: Tensor) {
        *self.cell.write().unwrap_or_else(|e| e.into_inner()) = value.detach();
    }

    /// Whether `self` and `other` are the same buffer (clones of one another).
    pub fn ptr_eq(&self, other: &Buffer) -> bool {
        Arc::ptr_eq(&self.cell, &other.cell)
    }
}

/// The training flag of a module whose forward depends on it (PyTorch's `module.training`),
/// plus the freeze flag that keeps BatchNorm's statistics fixed while the rest trains and the
/// flag that makes them a plain average of the batches seen (for `update_bn`).
/// New modules are in training mode, as in PyTorch.
#[derive(Debug)]
pub struct Mode {
    training: AtomicBool,
    frozen: AtomicBool,
    cumulative: AtomicBool,
}

impl Default for Mode {
    fn default() -> Self {
        Mode {
            training: AtomicBool::new(true),
            frozen: AtomicBool::new(false),
            cumulative: AtomicBool::new(false),
        }
    }
}

impl Mode {
    /// Training mode, not frozen.
    pub fn new() -> Mode {
        Mode::default()
    }

    /// Whether `train()` (true) or `eval()` (false) was called last.
    pub fn is_training(&self) -> bool {
        self.training.load(Ordering::Relaxed)
    }

    /// Whether the module was frozen with `freeze()`.
    pub fn is_frozen(&self) -> bool {
        self.frozen.load(Ordering::Relaxed)
    }

    /// Training and not frozen: whether statistics (BatchNorm) should be updated.
    pub fn updates_statistics(&self) -> bool {
        self.is_training() && !self.is_frozen()
    }

    /// Sets the training flag.
    pub fn set_training(&self, training: bool) {
        self.training.store(training, Ordering::Relaxed)
    }

    /// Sets the freeze flag.
    pub fn set_frozen(&self, frozen: bool) {
        self.frozen.store(frozen, Ordering::Relaxed)
    }

    /// Whether batch norm's running statistics are the average of all batches since their
    /// reset, whatever the layer's momentum (PyTorch's `momentum=None`, which `update_bn` sets
    /// for its pass).
    pub fn is_cumulative(&self) -> bool {
        self.cumulative.load(Ordering::Relaxed)
    }

    /// Sets the cumulative-average flag (see [`Mode::is_cumulative`]).
    pub fn set_cumulative(&self, cumulative: bool) {
        self.cumulative.store(cumulative, Ordering::Relaxed)
    }
}

/// One item met on the walk over a module tree (see [`Visit`]).
pub enum Entry<'a> {
    /// A module, at its path (the root has the empty path).
    Module(&'a dyn Module),
    /// A trainable parameter.
    Parameter(&'a Parameter),
    /// A buffer.
    Buffer(&'a Buffer),
    /// A mode flag (its path is the owning module's).
    Mode(&'a Mode),
}

/// The walk over a module tree: a module's [`Module::visit`] calls one method per item, and the
/// walk hands each item, with its dotted path, to a callback.
pub struct Visit<'a, 'f> {
    prefix: String,
    callback: &'f mut dyn FnMut(&str, Entry<'a>),
}

impl<'a, 'f> Visit<'a, 'f> {
    /// Walks `root` (reported at the empty path) and everything below it.
    pub fn walk(root: &'a dyn Module, callback: &'f mut dyn FnMut(&str, Entry<'a>)) {
        let mut visit = Visit {
            prefix: String::new(),
            callback,
        };
        (visit.callback)("", Entry::Module(root));
        root.visit(&mut visit);
    }

    fn path(&self, name: &str) -> String {
        if self.prefix.is_empty() {
            name.to_string()
        } else {
            format!("{}.{name}", self.prefix)
        }
    }

    /// A parameter called `name`.
    pub fn parameter(&mut self, name: &str, parameter: &'a Parameter) {
        let path = self.path(name);
        (self.callback)(&path, Entry::Parameter(parameter));
    }

    /// A parameter that may be absent (a bias turned off); absent ones are skipped, as PyTorch
    /// registers `None` and leaves it out of `state_dict`.
    pub fn optional_parameter(&mut self, name: &str, parameter: &'a Option<Parameter>) {
        if let Some(p) = parameter {
            self.parameter(name, p);
        }
    }

    /// A buffer called `name`.
    pub fn buffer(&mut self, name: &str, buffer: &'a Buffer) {
        let path = self.path(name);
        (self.callback)(&path, Entry::Buffer(buffer));
    }

    /// The module's mode flag.
    pub fn mode(&mut self, mode: &'a Mode) {
        let path = self.prefix.clone();
        (self.callback)(&path, Entry::Mode(mode));
    }

    /// A child module called `name` (a `Sequential` names its children `0`, `1`, ...).
    pub fn child(&mut self, name: &str, child: &'a dyn Module) {
        let saved = self.prefix.len();
        let path = self.path(name);
        (self.callback)(&path, Entry::Module(child));
        self.prefix = path;
        child.visit(self);
        self.prefix.truncate(saved);
    }
}
