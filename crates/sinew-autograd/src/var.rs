//! [`Var`]: a tensor that may take part in automatic differentiation.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use sinew_tensor::{DType, Device, Error, Result, Shape, Tensor};

use crate::graph::{BackwardCtx, BackwardFn, Node};
use crate::no_grad::is_grad_enabled;

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

pub(crate) struct VarInner {
    pub(crate) id: u64,
    pub(crate) value: Tensor,
    requires_grad: AtomicBool,
    pub(crate) node: Option<Node>,
    pub(crate) grad: Mutex<Option<Var>>,
}

/// A tensor plus what autograd needs: whether it requires a gradient, the op that made it, and
/// (for leaves) its accumulated gradient. Cloning is cheap and shares all of it.
///
/// Ops on `Var`s record a graph only when an input requires a gradient and recording is on
/// (see [`no_grad`](crate::no_grad)); otherwise they cost the same as the tensor op.
#[derive(Clone)]
pub struct Var(pub(crate) Arc<VarInner>);

impl Var {
    fn make(value: Tensor, requires_grad: bool, node: Option<Node>) -> Var {
        Var(Arc::new(VarInner {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            value,
            requires_grad: AtomicBool::new(requires_grad),
            node,
            grad: Mutex::new(None),
        }))
    }

    /// A leaf that requires a gradient (a parameter). PyTorch: `t.requires_grad_()`.
    pub fn leaf(value: Tensor) -> Var {
        Var::make(value, true, None)
    }

    /// A leaf that does not require a gradient (inputs, targets, constants).
    pub fn constant(value: Tensor) -> Var {
        Var::make(value, false, None)
    }

    /// The result of an op: records `backward` when grad mode is on and an input requires a
    /// gradient, else returns a constant. This is how every differentiable op (and custom fused
    /// ops in other crates) is defined.
    ///
    /// `backward(ctx, grad_out)` returns one gradient per input (`None` for inputs that get none),
    /// each with its input's shape. It is written with `Var` ops so that it can itself be
    /// differentiated (`create_graph`).
    pub fn from_op(
        value: Tensor,
        op: &'static str,
        inputs: &[&Var],
        backward: impl Fn(&BackwardCtx<'_>, &Var) -> Result<Vec<Option<Var>>> + Send + Sync + 'static,
    ) -> Var {
        if is_grad_enabled() && inputs.iter().any(|v| v.requires_grad()) {
            let inputs = inputs.iter().map(|&v| v.clone()).collect();
            let backward: Box<BackwardFn> = Box::new(backward);
            Var::make(value, true, Some(Node::new(op, inputs, backward)))
        } else {
            Var::constant(value)
        }
    }

    /// The value.
    pub fn tensor(&self) -> &Tensor {
        &self.0.value
    }

    /// Unique id of this variable (stable for its lifetime).
    pub fn id(&self) -> u64 {
        self.0.id
    }

    /// Whether gradients flow to or through it.
    pub fn requires_grad(&self) -> bool {
        self.0.requires_grad.load(Ordering::Relaxed)
    }

    /// Turns gradient tracking on or off for a leaf. PyTorch equivalent: `requires_grad_`.
    pub fn set_requires_grad(&self, requires_grad: bool) -> Result<()> {
        if !self.is_leaf() {
            return Err(Error::invalid(
                "requires_grad_",
                "only leaves can change requires_grad; use detach() on the result of an op",
            ));
        }
        self.0.requires_grad.store(requires_grad, Ordering::Relaxed);
        Ok(())
    }

    /// True when no recorded op made it (parameters, inputs, detached values).
    pub fn is_leaf(&self) -> bool {
        self.0.node.is_none()
    }

    /// Name of the op that made it, if any.
    pub fn op_name(&self) -> Option<&'static str> {
        self.0.node.as_ref().map(Node::op)
    }

    /// The accumulated gradient of a leaf (`None` before any backward). PyTorch: `.grad`.
    pub fn grad(&self) -> Option<Tensor> {
        self.grad_var().map(|g| g.tensor().clone())
    }

    /// The accumulated gradient as a `Var` (carries a graph after `create_graph` backward).
    pub fn grad_var(&self) -> Option<Var> {
        self.0
            .grad
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Sets (or clears) the stored gradient.
    pub fn set_grad(&self, grad: Option<Tensor>) {
        *self.0.grad.lock().unwrap_or_else(|e| e.into_inner()) = grad.map(Var::constant);
    }

    pub(crate) fn set_grad_var(&self, grad: Option<Var>) {
        *self.0.grad.lock().unwrap_or_else(|e| e.into_inner()) = grad;
    }

    /// Clears the stored gradient. PyTorch equivalent: `x.grad = None`.
    pub fn zero_grad(&self) {
        self.set_grad(None);
    }

    /// The same value cut off from the graph. PyTorch equivalent: `detach`.
    pub fn detach(&self) -> Var {
        Var::constant(self.0.value.clone())
    }

    /// Shape of the value.
    pub fn shape(&self) -> &Shape {
        self.0.value.shape()
    }

    /// Dimension sizes of the value.
    pub fn dims(&self) -> &[usize] {
        self.0.value.dims()
    }

    /// Number of dims.
    pub fn rank(&self) -> usize {
        self.0.value.rank()
    }

    /// Element type.
    pub fn dtype(&self) -> DType {
        self.0.value.dtype()
    }

    /// Device of the value.
    pub fn device(&self) -> &Device {
        self.0.value.device()
    }

    /// The single value of a one-element variable. PyTorch equivalent: `item()`.
    pub fn item(&self) -> Result<f64> {
        self.0.value.item()
    }

    /// Runs backward from this scalar: gradients accumulate into the leaves' `.grad()` and the
    /// graph is freed. PyTorch equivalent: `loss.backward()`.
    pub fn backward(&self) -> Result<()> {
        crate::graph::backward(self, None, crate::BackwardOptions::default())
    }

    /// Backward with an explicit output gradient and options (`retain_graph`, `create_graph`).
    pub fn backward_with(
        &self,
        grad: Option<Tensor>,
        options: crate::BackwardOptions,
    ) -> Result<()> {
        crate::graph::backward(self, grad, options)
    }
}

impl From<Tensor> for Var {
    fn from(t: Tensor) -> Var {
        Var::constant(t)
    }
}

impl std::fmt::Debug for Var {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Var")
            .field("value", &self.0.value)
            .field("requires_grad", &self.requires_grad())
            .field("op", &self.op_name())
            .finish()
    }
}

impl std::fmt::Display for Var {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0.value)?;
        if let Some(op) = self.op_name() {
            write!(f, " (grad_fn={op})")?;
        } else if self.requires_grad() {
            write!(f, " (requires_grad)")?;
        }
        Ok(())
    }
}
