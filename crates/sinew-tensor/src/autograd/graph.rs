//! The recorded graph: [`Save`] (what a rule keeps), the edges from an op to its inputs, the
//! [`Node`] each recorded result owns, the [`BackwardCtx`] rules read, and [`Tensor::from_op`],
//! through which every differentiable op records itself.
//!
//! An edge holds its input's autograd meta, shape and dtype, plus its value only if the rule
//! saves it (detached, so the graph never forms a cycle through values), with the storage
//! version seen at save time: a saved tensor modified in place afterwards makes backward fail
//! instead of computing a wrong gradient.

use std::sync::{Arc, Mutex};

use crate::autograd::engine::Running;
use crate::autograd::meta::Meta;
use crate::autograd::no_grad::is_grad_enabled;
use crate::{DType, Error, Result, Shape, Tensor};

/// The op name of a dtype conversion ([`Tensor::to_dtype`]).
pub(crate) const CAST: &str = "to_dtype";
/// The op name of a reordering of dims ([`Tensor::permute`], also behind `transpose` and `t`).
pub(crate) const PERMUTE: &str = "permute";

/// A backward rule: given the context and the gradient of the output, one gradient per input.
pub type BackwardFn =
    dyn Fn(&BackwardCtx<'_>, &Tensor) -> Result<Vec<Option<Tensor>>> + Send + Sync;

/// Which values a rule reads in backward: some inputs (by position) and/or the output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Save {
    inputs: u32,
    output: bool,
}

impl Save {
    /// The rule needs no values (only shapes): add, sum, views.
    pub const NOTHING: Save = Save {
        inputs: 0,
        output: false,
    };
    /// The rule reads the output only: exp, sigmoid, softmax.
    pub const OUTPUT: Save = Save {
        inputs: 0,
        output: true,
    };
    /// The rule reads every input: mul, matmul.
    pub const INPUTS: Save = Save {
        inputs: u32::MAX,
        output: false,
    };

    /// The rule reads input `i` only.
    pub const fn input(i: usize) -> Save {
        Save {
            inputs: 1 << i,
            output: false,
        }
    }

    /// Also save input `i`.
    pub const fn and_input(self, i: usize) -> Save {
        Save {
            inputs: self.inputs | 1 << i,
            output: self.output,
        }
    }

    /// Also save the output.
    pub const fn and_output(self) -> Save {
        Save {
            inputs: self.inputs,
            output: true,
        }
    }

    pub(crate) fn keeps_output(&self) -> bool {
        self.output
    }

    pub(crate) fn keeps_input(&self, i: usize) -> bool {
        i < 32 && self.inputs & (1 << i) != 0
    }
}

/// A saved value and the storage version it had when saved.
pub(crate) struct Saved {
    value: Tensor,
    version: u64,
}

impl Saved {
    fn new(t: &Tensor) -> Saved {
        Saved {
            value: t.detach(),
            version: t.version(),
        }
    }

    /// The value, or an error naming the op when it was modified in place since it was saved.
    fn get(&self, op: &'static str, what: &str) -> Result<&Tensor> {
        let now = self.value.version();
        if now != self.version {
            return Err(Error::invalid(
                "backward",
                format!(
                    "{what} of `{op}` (shape {}, {}), saved for the gradient, was modified by an in-place operation (it is at version {now}; it was saved at version {}). Modify a clone, or modify it after backward",
                    self.value.shape(),
                    self.value.dtype(),
                    self.version
                ),
            ));
        }
        Ok(&self.value)
    }
}

/// The graph's link to one input of an op.
pub(crate) struct Edge {
    pub(crate) meta: Option<Arc<Meta>>,
    pub(crate) shape: Shape,
    dtype: DType,
    value: Option<Saved>,
}

impl Edge {
    fn new(input: &Tensor, keep_value: bool) -> Edge {
        Edge {
            meta: input.grad_meta.clone(),
            shape: input.shape().clone(),
            dtype: input.dtype(),
            value: keep_value.then(|| Saved::new(input)),
        }
    }

    /// Whether this input takes a gradient.
    pub(crate) fn tracked(&self) -> Option<&Arc<Meta>> {
        self.meta.as_ref().filter(|m| m.requires_grad())
    }
}

/// What a backward rule can read: the saved inputs and output, every input's shape, and the
/// gradients other users of its inputs have already contributed.
pub struct BackwardCtx<'a> {
    pub(crate) op: &'static str,
    pub(crate) edges: &'a [Edge],
    pub(crate) output_meta: &'a Arc<Meta>,
    pub(crate) output: Option<&'a Saved>,
    running: &'a Running,
}

impl BackwardCtx<'_> {
    /// Input `i` (its value must have been saved with [`Save`]), still linked to the graph.
    pub fn input(&self, i: usize) -> Result<Tensor> {
        let edge = &self.edges[i];
        let saved = edge.value.as_ref().ok_or_else(|| {
            Error::invalid(
                "backward",
                format!(
                    "the rule of `{}` reads input {i}, which it did not save",
                    self.op
                ),
            )
        })?;
        Ok(saved
            .get(self.op, &format!("input {i}"))?
            .with_meta(edge.meta.clone()))
    }

    /// The op's output (its value must have been saved with [`Save::OUTPUT`]).
    pub fn output(&self) -> Result<Tensor> {
        let saved = self.output.ok_or_else(|| {
            Error::invalid(
                "backward",
                format!(
                    "the rule of `{}` reads its output, which it did not save",
                    self.op
                ),
            )
        })?;
        Ok(saved
            .get(self.op, "the output")?
            .with_meta(Some(self.output_meta.clone())))
    }

    /// Shape of input `i` (always available).
    pub fn input_shape(&self, i: usize) -> &Shape {
        &self.edges[i].shape
    }

    /// dtype of input `i` (always available).
    pub fn input_dtype(&self, i: usize) -> DType {
        self.edges[i].dtype
    }

    /// Whether input `i` needs a gradient (rules may skip the work for the others).
    pub fn needs_grad(&self, i: usize) -> bool {
        self.edges[i].tracked().is_some()
    }

    /// The gradient of input `i` summed so far from its other users, taken out of backward's
    /// running sum: the rule then owes the total, its own gradient for input `i` added to this
    /// one (`pending + own`, the sum backward would have made), so a kernel can write the sum
    /// in its epilogue instead of backward adding the two in a pass of their own (a residual
    /// block's input: its shortcut's gradient and its first convolution's). `None` when no
    /// other user has contributed yet or the input takes no gradient.
    pub fn take_pending_grad(&self, i: usize) -> Option<Tensor> {
        let input = self.edges[i].tracked()?;
        self.running.pending.borrow_mut().remove(&input.id)
    }

    /// The dtype input `i` was cast from, where the rule may return input `i`'s gradient in
    /// that dtype, holding its values rounded to input `i`'s dtype (so that the kernel making
    /// the gradient writes the cast's result, autocast's f32 weight gradient, and the cast's
    /// rule passes it on unchanged): when input `i` is the result of `to_dtype` from a wider
    /// float (every value of input `i`'s dtype exact in it), or a `permute` of such a result (a
    /// linear layer's cast weight, transposed; the view's rule permutes a gradient of any
    /// dtype), and each tensor on that path has this one use and does not retain its gradient
    /// (nothing else sees the gradient's dtype; hooks run on leaves only), and no graph of the
    /// backward is recorded. `None` otherwise; the gradient in input `i`'s dtype is always right.
    pub fn cast_from_dtype(&self, i: usize) -> Option<DType> {
        let edge = &self.edges[i];
        if is_grad_enabled() {
            return None;
        }
        let mut input = edge.tracked()?.clone();
        let view = self.sole_use_node(&input)?;
        if view.op() == PERMUTE {
            let source = view.tracked_input(0)?;
            input = source;
        }
        let node = self.sole_use_node(&input)?;
        if node.op() != CAST {
            return None;
        }
        let from = node.input_dtype(0)?;
        let exact = from.is_float()
            && edge.dtype.is_float()
            && from.size_in_bytes() > edge.dtype.size_in_bytes();
        exact.then_some(from)
    }

    /// The op that made `input`, when its gradient comes from one use and is not retained
    /// (only that op's rule sees it).
    fn sole_use_node<'m>(&self, input: &'m Meta) -> Option<&'m Node> {
        let only_use = self.running.users.get(&input.id) == Some(&1);
        if !only_use || input.keeps_grad() {
            return None;
        }
        input.node.as_ref()
    }
}

pub(crate) struct LiveNode {
    pub(crate) edges: Vec<Edge>,
    output: Option<Saved>,
    pub(crate) backward: Box<BackwardFn>,
}

impl LiveNode {
    pub(crate) fn ctx<'a>(
        &'a self,
        op: &'static str,
        output_meta: &'a Arc<Meta>,
        running: &'a Running,
    ) -> BackwardCtx<'a> {
        BackwardCtx {
            op,
            edges: &self.edges,
            output_meta,
            output: self.output.as_ref(),
            running,
        }
    }
}

/// How a recorded op's result was made.
pub(crate) struct Node {
    op: &'static str,
    pub(crate) state: Mutex<Option<LiveNode>>,
}

impl Node {
    pub(crate) fn op(&self) -> &'static str {
        self.op
    }

    /// The meta of input `i` when it takes a gradient (`None` once the node is freed).
    pub(crate) fn tracked_input(&self, i: usize) -> Option<Arc<Meta>> {
        let state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        state.as_ref()?.edges.get(i)?.tracked().cloned()
    }

    /// The dtype of input `i` (`None` once the node is freed).
    pub(crate) fn input_dtype(&self, i: usize) -> Option<DType> {
        let state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        state.as_ref()?.edges.get(i).map(|e| e.dtype)
    }

    /// The metas of the inputs that need a gradient.
    pub(crate) fn tracked_inputs(&self) -> Result<Vec<Arc<Meta>>> {
        match &*self.state.lock().unwrap_or_else(|e| e.into_inner()) {
            Some(live) => Ok(live
                .edges
                .iter()
                .filter_map(|e| e.tracked().cloned())
                .collect()),
            None => Err(freed(self.op)),
        }
    }

    /// Empties the node, handing over its inputs' metas (for the iterative drop of a graph).
    pub(crate) fn take_input_metas(&mut self) -> Vec<Arc<Meta>> {
        let state = self.state.get_mut().unwrap_or_else(|e| e.into_inner());
        state
            .take()
            .map(|live| live.edges.into_iter().filter_map(|e| e.meta).collect())
            .unwrap_or_default()
    }

    /// How many tensors the node keeps alive (saved inputs plus saved output).
    #[cfg(test)]
    pub(crate) fn saved_count(&self) -> usize {
        let state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        state.as_ref().map_or(0, |l| {
            l.edges.iter().filter(|e| e.value.is_some()).count() + l.output.is_some() as usize
        })
    }

    /// The saved value of input `i` (tests check it shares storage with the activation).
    #[cfg(test)]
    pub(crate) fn saved_input(&self, i: usize) -> Option<Tensor> {
        let state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        state.as_ref()?.edges[i]
            .value
            .as_ref()
            .map(|s| s.value.clone())
    }
}

pub(crate) fn freed(op: &'static str) -> Error {
    Error::invalid(
        "backward",
        format!(
            "the graph through `{op}` was already freed by an earlier backward; pass retain_graph: true to the first one"
        ),
    )
}

impl Tensor {
    /// The result of an op: records `backward` when grad mode is on and an input requires a
    /// gradient, else returns `value` untracked. Every differentiable op is defined this way,
    /// and other crates define fused ops the same way.
    ///
    /// `save` names the values the rule reads (inputs by position, and/or the output); the
    /// graph keeps only those. `backward(ctx, grad_out)` returns one gradient per input (`None`
    /// for inputs that get none), each with its input's shape. It is written with tensor ops
    /// so that it can itself be differentiated (`create_graph`).
    pub fn from_op(
        value: Tensor,
        op: &'static str,
        inputs: &[&Tensor],
        save: Save,
        backward: impl Fn(&BackwardCtx<'_>, &Tensor) -> Result<Vec<Option<Tensor>>>
        + Send
        + Sync
        + 'static,
    ) -> Tensor {
        if !(is_grad_enabled() && inputs.iter().any(|t| t.requires_grad())) {
            return value;
        }
        let output = save.keeps_output().then(|| Saved::new(&value));
        let edges = inputs
            .iter()
            .enumerate()
            .map(|(i, t)| Edge::new(t, save.keeps_input(i)))
            .collect();
        let node = Node {
            op,
            state: Mutex::new(Some(LiveNode {
                edges,
                output,
                backward: Box::new(backward),
            })),
        };
        let mut value = value;
        value.grad_meta = Some(Meta::new(true, Some(node)));
        value
    }
}

/// Options of [`Tensor::backward_with`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BackwardOptions {
    /// Keep the graph so backward can run through it again. PyTorch: `retain_graph=True`.
    pub retain_graph: bool,
    /// Record the backward pass itself, so gradients can be differentiated again (implies
    /// keeping the graph). PyTorch: `create_graph=True`.
    pub create_graph: bool,
}
