//! [`Parameter`]: a trainable leaf whose value can be replaced while every holder sees the change.

use std::sync::{Arc, RwLock};

use crate::{Result, Tensor};

/// A leaf tensor that requires a gradient, shared by its holders (a module, an optimizer, a
/// checkpoint writer). [`set_value`](Self::set_value) swaps the value (loading weights, moving
/// to another device or dtype) and every clone of the parameter sees the new one; the autograd
/// state (gradient slot, hooks, requires_grad) stays with the parameter.
///
/// ```
/// # use sinew_tensor::{Parameter, Tensor, DType, Device};
/// let w = Parameter::new(Tensor::zeros([2], DType::F32, &Device::cpu())?);
/// let holder = w.clone();
/// w.set_value(Tensor::from_vec(vec![1.0f32, 2.0], [2])?)?;
/// assert_eq!(holder.value().to_vec::<f32>()?, vec![1.0, 2.0]);
/// holder.value().square()?.sum_all()?.backward()?;
/// assert_eq!(w.grad().unwrap().to_vec::<f32>()?, vec![2.0, 4.0]);
/// # Ok::<(), sinew_tensor::Error>(())
/// ```
#[derive(Clone)]
pub struct Parameter {
    cell: Arc<RwLock<Tensor>>,
}

impl Parameter {
    /// A parameter holding `value` (detached from any graph) that requires a gradient.
    pub fn new(value: Tensor) -> Parameter {
        Parameter {
            cell: Arc::new(RwLock::new(value.detach().requires_grad_())),
        }
    }

    /// The current value: a leaf sharing storage and autograd state with the parameter, so
    /// ops on it record and backward accumulates into [`grad`](Self::grad).
    pub fn value(&self) -> Tensor {
        self.cell.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Runs `f` on the current value without cloning its handle (an optimizer's step uses it
    /// to stay allocation-free). The value cannot be replaced while `f` runs: `f` must not call
    /// [`set_value`](Self::set_value).
    pub fn with_value<R>(&self, f: impl FnOnce(&Tensor) -> R) -> R {
        f(&self.cell.read().unwrap_or_else(|e| e.into_inner()))
    }

    /// Replaces the value (any shape, dtype or device). The gradient is kept when the shape,
    /// dtype and device stay the same, and cleared otherwise; hooks and requires_grad stay.
    pub fn set_value(&self, value: Tensor) -> Result<()> {
        let mut slot = self.cell.write().unwrap_or_else(|e| e.into_inner());
        let same_kind = slot.shape() == value.shape()
            && slot.dtype() == value.dtype()
            && slot.device() == value.device();
        if !same_kind {
            slot.zero_grad();
        }
        *slot = value.with_meta(slot.grad_meta.clone());
        Ok(())
    }

    /// The accumulated gradient, if any.
    pub fn grad(&self) -> Option<Tensor> {
        self.value().grad()
    }

    /// Clears the gradient (PyTorch's default `zero_grad(set_to_none=True)`).
    pub fn zero_grad(&self) {
        self.value().zero_grad()
    }

    /// Whether backward computes a gradient for it.
    pub fn requires_grad(&self) -> bool {
        self.with_value(Tensor::requires_grad)
    }

    /// Freezes (`false`) or unfreezes (`true`) the parameter for every holder.
    pub fn set_requires_grad(&self, requires_grad: bool) -> Result<()> {
        self.value().set_requires_grad(requires_grad)
    }

    /// True when both handles are the same parameter.
    pub fn ptr_eq(&self, other: &Parameter) -> bool {
        Arc::ptr_eq(&self.cell, &other.cell)
    }
}

impl std::fmt::Debug for Parameter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Parameter({:?})", self.value())
    }
}
