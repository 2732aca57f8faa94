//! [`Var`]: a tensor that may take part in automatic differentiation.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use sinew_tensor::{DType, Device, Error, Result, Shape, Tensor};

use crate::graph::{BackwardCtx, BackwardFn, Edge, Node, Save};
use crate::no_grad::is_grad_enabled;

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// Autograd's part of a variable, shared by its clones and referenced by the graph (without
/// the value, so the graph keeps only the tensors rules save).
pub(crate) struct Meta {
    pub(crate) id: u64,
    requires_grad: AtomicBool,
    pub(crate) node: Option<Node>,
    pub(crate) grad: Mutex<Option<Var>>,
}

impl Meta {
    pub(crate) fn requires_grad(&self) -> bool {
        self.requires_grad.load(Ordering::Relaxed)
    }
}

/// A tensor plus what autograd needs: whether it requires a gradient, the op that made it, and
/// (for leaves) its accumulated gradient. Cloning is cheap and shares all of it.
///
/// Ops on `Var`s record a graph only when an input requires a gradient and recording is on
/// (see [`no_grad`](crate::no_grad)); otherwise they cost the same as the tensor op.
#[derive(Clone)]
pub struct Var {
    pub(crate) value: Tensor,
    pub(crate) meta: Arc<Meta>,
}

impl Var {
    fn make(value: Tensor, requires_grad: bool, node: Option<Node>) -> Var {
        let meta = Meta {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            requires_grad: AtomicBool::new(requires_grad),
            node,
            grad: Mutex::new(None),
        };
        Var {
            value,
            meta: Arc::new(meta),
        }
    }

    /// The variable with this meta and value (used by the engine to rebuild saved variables).
    pub(crate) fn from_parts(value: Tensor, meta: Arc<Meta>) -> Var {
        Var { value, meta }
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
    /// `save` names the values the rule reads (inputs by position, and/or the output); the graph
    /// keeps only those. `backward(ctx, grad_out)` returns one gradient per input (`None` for
    /// inputs that get none), each with its input's shape. It is written with `Var` ops so that
    /// it can itself be differentiated (`create_graph`).
    pub fn from_op(
        value: Tensor,
        op: &'static str,
        inputs: &[&Var],
        save: Save,
        backward: impl Fn(&BackwardCtx<'_>, &Var) -> Result<Vec<Option<Var>>> + Send + Sync + 'static,
    ) -> Var {
        if is_grad_enabled() && inputs.iter().any(|v| v.requires_grad()) {
            let saved_output = save.keeps_output().then(|| value.clone());
            let edges = inputs
                .iter()
                .enumerate()
                .map(|(i, v)| Edge::new(v, save.keeps_input(i)))
                .collect();
            let backward: Box<BackwardFn> = Box::new(backward);
            Var::make(
                value,
                true,
                Some(Node::new(op, edges, saved_output, backward)),
            )
        } else {
            Var::constant(value)
        }
    }

    /// The value.
    pub fn tensor(&self) -> &Tensor {
        &self.value
    }

    /// Unique id of this variable (stable for its lifetime).
    pub fn id(&self) -> u64 {
        self.meta.id
    }

    /// Whether gradients flow to or through it.
    pub fn requires_grad(&self) -> bool {
        self.meta.requires_grad()
    }

    /// Turns gradient tracking on or off for a leaf. PyTorch equivalent: `requires_grad_`.
    pub fn set_requires_grad(&self, requires_grad: bool) -> Result<()> {
        if !self.is_leaf() {
            return Err(Error::invalid(
                "requires_grad_",
                "only leaves can change requires_grad; use detach() on the result of an op",
            ));
        }
        self.meta
            .requires_grad
            .store(requires_grad, Ordering::Relaxed);
        Ok(())
    }

    /// True when no recorded op made it (parameters, inputs, detached values).
    pub fn is_leaf(&self) -> bool {
        self.meta.node.is_none()
    }

    /// Name of the op that made it, if any.
    pub fn op_name(&self) -> Option<&'static str> {
        self.meta.node.as_ref().map(Node::op)
    }

    /// The accumulated gradient of a leaf (`None` before any backward). PyTorch: `.grad`.
    pub fn grad(&self) -> Option<Tensor> {
        self.grad_var().map(|g| g.tensor().clone())
    }

    /// The accumulated gradient as a `Var` (carries a graph after `create_graph` backward).
    pub fn grad_var(&self) -> Option<Var> {
        self.meta
            .grad
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Sets (or clears) the stored gradient.
    pub fn set_grad(&self, grad: Option<Tensor>) {
        *self.meta.grad.lock().unwrap_or_else(|e| e.into_inner()) = grad.map(Var::constant);
    }

    /// Clears the stored gradient. PyTorch equivalent: `x.grad = None`.
    pub fn zero_grad(&self) {
        self.set_grad(None);
    }

    /// The same value cut off from the graph. PyTorch equivalent: `detach`.
    pub fn detach(&self) -> Var {
        Var::constant(self.value.clone())
    }

    /// Shape of the value.
    pub fn shape(&self) -> &Shape {
        self.value.shape()
    }

    /// Dimension sizes of the value.
    pub fn dims(&self) -> &[usize] {
        self.value.dims()
    }

    /// Number of dims.
    pub fn rank(&self) -> usize {
        self.value.rank()
    }

    /// Element type.
    pub fn dtype(&self) -> DType {
        self.value.dtype()
    }

    /// Device of the value.
    pub fn device(&self) -> &Device {
        self.value.device()
    }

    /// The single value of a one-element variable. PyTorch equivalent: `item()`.
    pub fn item(&self) -> Result<f64> {
        self.value.item()
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
            .field("value", &self.value)
            .field("requires_grad", &self.requires_grad())
            .field("op", &self.op_name())
            .finish()
    }
}

impl std::fmt::Display for Var {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.value)?;
        if let Some(op) = self.op_name() {
            write!(f, " (grad_fn={op})")?;
        } else if self.requires_grad() {
            write!(f, " (requires_grad)")?;
        }
        Ok(())
    }
}
