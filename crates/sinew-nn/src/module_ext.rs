//! [`ModuleExt`]: what every module can do once it lists its state (names, modes, freezing,
//! devices, counting). Implemented for every [`Module`], trait objects included.

use sinew_tensor::{DType, Device, Parameter, Result};

use crate::module::{Buffer, Entry, Mode, Module, Visit};

/// Methods every module has (PyTorch's `nn.Module` methods). Names are dotted paths.
///
/// ```
/// use sinew_nn::{Linear, ModuleExt, Sequential};
///
/// let model = Sequential::new().append(Linear::new(2, 3)?).append(Linear::new(3, 1)?);
/// let names: Vec<String> = model.named_parameters().into_iter().map(|(n, _)| n).collect();
/// assert_eq!(names, ["0.weight", "0.bias", "1.weight", "1.bias"]);
/// // Copy weights between models by name, as `load_state_dict` in PyTorch.
/// let twin = Sequential::new().append(Linear::new(2, 3)?).append(Linear::new(3, 1)?);
/// twin.load_state_dict(&model.state_dict(), true)?;
/// model.eval(); // dropout off, batch norm uses running statistics
/// # Ok::<(), sinew_tensor::Error>(())
/// ```
pub trait ModuleExt: Module {
    /// Every parameter with its name, in registration order. A parameter shared by two
    /// modules is listed once, under its first name (PyTorch's `named_parameters()`).
    fn named_parameters(&self) -> Vec<(String, Parameter)> {
        let mut out: Vec<(String, Parameter)> = Vec::new();
        walk(self.as_module(), |path, entry| {
            if let Entry::Parameter(p) = entry
                && !out.iter().any(|(_, q)| q.ptr_eq(p))
            {
                out.push((path.to_string(), p.clone()));
            }
        });
        out
    }

    /// Every parameter (deduplicated), for an optimizer.
    fn parameters(&self) -> Vec<Parameter> {
        self.named_parameters()
            .into_iter()
            .map(|(_, p)| p)
            .collect()
    }

    /// Every buffer with its name (`bn1.running_mean`, `bn1.num_batches_tracked`, ...).
    fn named_buffers(&self) -> Vec<(String, Buffer)> {
        let mut out = Vec::new();
        walk(self.as_module(), |path, entry| {
            if let Entry::Buffer(b) = entry {
                out.push((path.to_string(), b.clone()));
            }
        });
        out
    }

    /// Every module with its path, the root first (at `""`), then depth first.
    fn named_modules(&self) -> Vec<(String, &dyn Module)> {
        let mut out = Vec::new();
        walk(self.as_module(), |path, entry| {
            if let Entry::Module(m) = entry {
                out.push((path.to_string(), m));
            }
        });
        out
    }

    /// Puts every module in training mode (`train(true)`) or evaluation mode (`train(false)`).
    fn set_training(&self, training: bool) {
        for_each_mode(self.as_module(), |m| m.set_training(training));
    }

    /// Training mode: dropout drops, batch norm uses and updates batch statistics.
    fn train(&self) {
        self.set_training(true)
    }

    /// Evaluation mode: dropout is the identity, batch norm uses its running statistics.
    fn eval(&self) {
        self.set_training(false)
    }

    /// Whether any module below is in training mode (false for a module without mode flags).
    fn is_training(&self) -> bool {
        let mut any = false;
        for_each_mode(self.as_module(), |m| any |= m.is_training());
        any
    }

    /// Stops gradients for every parameter and fixes batch-norm statistics, even when a parent
    /// is later put in training mode (transfer learning: freeze the backbone, train the head).
    fn freeze(&self) -> Result<()> {
        set_frozen(self.as_module(), true)
    }

    /// Undoes [`freeze`](Self::freeze).
    fn unfreeze(&self) -> Result<()> {
        set_frozen(self.as_module(), false)
    }

    /// Turns gradients on or off for every parameter (PyTorch's `requires_grad_`).
    fn requires_grad_(&self, requires_grad: bool) -> Result<()> {
        for p in self.parameters() {
            p.set_requires_grad(requires_grad)?;
        }
        Ok(())
    }

    /// Clears every parameter's gradient.
    fn zero_grad(&self) {
        for p in self.parameters() {
            p.zero_grad();
        }
    }

    /// The number of parameter elements (shared parameters counted once).
    fn num_parameters(&self) -> usize {
        self.parameters()
            .iter()
            .map(|p| p.value().elem_count())
            .sum()
    }

    /// The number of elements of parameters that require a gradient.
    fn num_trainable_parameters(&self) -> usize {
        self.parameters()
            .iter()
            .filter(|p| p.requires_grad())
            .map(|p| p.value().elem_count())
            .sum()
    }

    /// Moves every parameter and buffer to `device` (PyTorch's `model.to(device)`).
    fn to_device(&self, device: &Device) -> Result<()> {
        for p in self.parameters() {
            p.set_value(p.value().detach().to_device(device)?)?;
        }
        for (_, b) in self.named_buffers() {
            b.set_value(b.value().to_device(device)?);
        }
        Ok(())
    }

    /// Converts every floating-point parameter and buffer to `dtype` (integer buffers such as
    /// `num_batches_tracked` stay, as in PyTorch's `model.to(dtype)`).
    fn to_dtype(&self, dtype: DType) -> Result<()> {
        for p in self.parameters() {
            let v = p.value();
            if v.dtype().is_float() {
                p.set_value(v.detach().to_dtype(dtype)?)?;
            }
        }
        for (_, b) in self.named_buffers() {
            let v = b.value();
            if v.dtype().is_float() {
                b.set_value(v.to_dtype(dtype)?);
            }
        }
        Ok(())
    }

    /// Every parameter and buffer by name (PyTorch's `state_dict()`), detached.
    fn state_dict(&self) -> crate::StateDict {
        crate::state_dict::state_dict(self.as_module())
    }

    /// Loads a state dict (see [`crate::state_dict::load_state_dict`]): `strict` makes any
    /// missing, unexpected or shape-mismatched key an error, and loads nothing.
    fn load_state_dict(&self, sd: &crate::StateDict, strict: bool) -> Result<crate::LoadReport> {
        crate::state_dict::load_state_dict(self.as_module(), sd, strict)
    }

    /// A Keras-style table of the layers, output shapes and parameter counts for an input of
    /// `input_shape`.
    fn summary(&self, input_shape: impl Into<sinew_tensor::Shape>) -> Result<crate::Summary>
    where
        Self: Sized,
    {
        crate::summary::summary(self.as_module(), input_shape)
    }

    /// `self` as a trait object (implemented by the blanket impl).
    fn as_module(&self) -> &dyn Module;
}

impl<M: Module> ModuleExt for M {
    fn as_module(&self) -> &dyn Module {
        self
    }
}

impl ModuleExt for dyn Module + '_ {
    fn as_module(&self) -> &dyn Module {
        self
    }
}

/// Runs `f` on every item below `root`, with its path.
pub fn walk<'a>(root: &'a dyn Module, mut f: impl FnMut(&str, Entry<'a>)) {
    Visit::walk(root, &mut f);
}

fn for_each_mode(root: &dyn Module, mut f: impl FnMut(&Mode)) {
    walk(root, |_, entry| {
        if let Entry::Mode(m) = entry {
            f(m);
        }
    });
}

fn set_frozen(root: &dyn Module, frozen: bool) -> Result<()> {
    for_each_mode(root, |m| m.set_frozen(frozen));
    let mut result = Ok(());
    walk(root, |_, entry| {
        if let Entry::Parameter(p) = entry
            && result.is_ok()
        {
            result = p.set_requires_grad(!frozen);
        }
    });
    result
}
