//! The recorded graph and the backward pass.
//!
//! Each op result's [`Meta`] owns a [`Node`]: the op's name, one [`Edge`] per input (the input's
//! autograd meta, shape and dtype, plus its value only if the rule saves it), the output value if
//! the rule saves it, and the backward closure. So the graph keeps exactly the tensors rules
//! need, shared (never copied). Backward walks the nodes in reverse topological order; without
//! `retain_graph` it drops each node's saved tensors and closure once used.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use sinew_tensor::{DType, Error, Result, Shape, Tensor};

use crate::Var;
use crate::no_grad::{enable_grad, no_grad};
use crate::var::Meta;

/// A backward rule: given the context and the gradient of the output, one gradient per input.
pub type BackwardFn = dyn Fn(&BackwardCtx<'_>, &Var) -> Result<Vec<Option<Var>>> + Send + Sync;

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

/// The graph's link to one input of an op.
pub(crate) struct Edge {
    meta: Arc<Meta>,
    shape: Shape,
    dtype: DType,
    value: Option<Tensor>,
}

impl Edge {
    pub(crate) fn new(input: &Var, keep_value: bool) -> Edge {
        Edge {
            meta: input.meta.clone(),
            shape: input.shape().clone(),
            dtype: input.dtype(),
            value: keep_value.then(|| input.tensor().clone()),
        }
    }
}

/// What a backward rule can read: the saved inputs and output, and every input's shape.
pub struct BackwardCtx<'a> {
    op: &'static str,
    edges: &'a [Edge],
    output_meta: &'a Arc<Meta>,
    output: Option<&'a Tensor>,
}

impl BackwardCtx<'_> {
    /// Input `i` as a `Var` (its value must have been saved with [`Save`]).
    pub fn input(&self, i: usize) -> Result<Var> {
        let edge = &self.edges[i];
        let value = edge.value.clone().ok_or_else(|| {
            Error::invalid(
                "backward",
                format!(
                    "the rule of `{}` reads input {i}, which it did not save",
                    self.op
                ),
            )
        })?;
        Ok(Var::from_parts(value, edge.meta.clone()))
    }

    /// The op's output as a `Var` (its value must have been saved with [`Save::OUTPUT`]).
    pub fn output(&self) -> Result<Var> {
        let value = self.output.cloned().ok_or_else(|| {
            Error::invalid(
                "backward",
                format!(
                    "the rule of `{}` reads its output, which it did not save",
                    self.op
                ),
            )
        })?;
        Ok(Var::from_parts(value, self.output_meta.clone()))
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
        self.edges[i].meta.requires_grad()
    }
}

struct LiveNode {
    edges: Vec<Edge>,
    output: Option<Tensor>,
    backward: Box<BackwardFn>,
}

/// How a recorded op's result was made.
pub(crate) struct Node {
    op: &'static str,
    state: Mutex<Option<LiveNode>>,
}

impl Node {
    pub(crate) fn new(
        op: &'static str,
        edges: Vec<Edge>,
        output: Option<Tensor>,
        backward: Box<BackwardFn>,
    ) -> Node {
        Node {
            op,
            state: Mutex::new(Some(LiveNode {
                edges,
                output,
                backward,
            })),
        }
    }

    pub(crate) fn op(&self) -> &'static str {
        self.op
    }

    /// The metas of the inputs that need a gradient.
    fn tracked_inputs(&self) -> Result<Vec<Arc<Meta>>> {
        match &*self.state.lock().unwrap_or_else(|e| e.into_inner()) {
            Some(live) => Ok(live
                .edges
                .iter()
                .filter(|e| e.meta.requires_grad())
                .map(|e| e.meta.clone())
                .collect()),
            None => Err(freed(self.op)),
        }
    }

    /// How many tensors the node keeps alive (saved inputs plus saved output).
    #[cfg(test)]
    pub(crate) fn saved_count(&self) -> usize {
        let state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        state.as_ref().map_or(0, |l| {
            l.edges.iter().filter(|e| e.value.is_some()).count() + l.output.is_some() as usize
        })
    }
}

fn freed(op: &'static str) -> Error {
    Error::invalid(
        "backward",
        format!(
            "the graph through `{op}` was already freed by an earlier backward; pass retain_graph: true to the first one"
        ),
    )
}

/// Options of [`Var::backward_with`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BackwardOptions {
    /// Keep the graph so backward can run through it again. PyTorch: `retain_graph=True`.
    pub retain_graph: bool,
    /// Record the backward pass itself, so gradients can be differentiated again (implies
    /// keeping the graph). PyTorch: `create_graph=True`.
    pub create_graph: bool,
}

/// Every meta reachable from `root` through tracked inputs, inputs before their users.
fn topological_order(root: &Arc<Meta>) -> Result<Vec<Arc<Meta>>> {
    let mut order = Vec::new();
    let mut visited = std::collections::HashSet::new();
    // Iterative post-order DFS: (meta, children already pushed?).
    let mut stack = vec![(root.clone(), false)];
    while let Some((meta, expanded)) = stack.pop() {
        if expanded {
            order.push(meta);
            continue;
        }
        if !visited.insert(meta.id) {
            continue;
        }
        stack.push((meta.clone(), true));
        if let Some(node) = &meta.node {
            for input in node.tracked_inputs()? {
                if !visited.contains(&input.id) {
                    stack.push((input, false));
                }
            }
        }
    }
    Ok(order)
}

fn accumulate(slot: Option<Var>, grad: Var) -> Result<Var> {
    match slot {
        None => Ok(grad),
        Some(prev) => prev.add(&grad),
    }
}

fn seed_gradient(root: &Var, grad: Option<Tensor>) -> Result<Tensor> {
    match grad {
        Some(g) if g.shape() != root.shape() => Err(Error::ShapeMismatch {
            op: "backward (output gradient)",
            lhs: root.shape().clone(),
            rhs: g.shape().clone(),
        }),
        Some(g) => Ok(g),
        None if root.tensor().elem_count() == 1 => root.tensor().ones_like(),
        None => Err(Error::invalid(
            "backward",
            format!(
                "a gradient can only be implied for a scalar output, not shape {}; pass one",
                root.shape()
            ),
        )),
    }
}

/// The backward pass from `root` (see [`Var::backward_with`]).
pub(crate) fn backward(root: &Var, grad: Option<Tensor>, options: BackwardOptions) -> Result<()> {
    if !root.requires_grad() {
        return Err(Error::invalid(
            "backward",
            "the tensor does not require grad and has no graph",
        ));
    }
    let seed = seed_gradient(root, grad)?;
    let retain = options.retain_graph || options.create_graph;
    let _mode = if options.create_graph {
        enable_grad()
    } else {
        no_grad()
    };
    let order = topological_order(&root.meta)?;
    let mut grads: HashMap<u64, Var> = HashMap::new();
    grads.insert(root.meta.id, Var::constant(seed));
    for meta in order.iter().rev() {
        let Some(grad) = grads.remove(&meta.id) else {
            continue;
        };
        let Some(node) = &meta.node else {
            let mut slot = meta.grad.lock().unwrap_or_else(|e| e.into_inner());
            let grad = if options.create_graph {
                grad
            } else {
                grad.detach()
            };
            *slot = Some(accumulate(slot.take(), grad)?);
            continue;
        };
        let mut state = node.state.lock().unwrap_or_else(|e| e.into_inner());
        let taken = if retain { None } else { state.take() };
        let live = match (&taken, &*state) {
            (Some(live), _) | (None, Some(live)) => live,
            (None, None) => return Err(freed(node.op)),
        };
        let ctx = BackwardCtx {
            op: node.op,
            edges: &live.edges,
            output_meta: meta,
            output: live.output.as_ref(),
        };
        let input_grads = (live.backward)(&ctx, &grad)?;
        if input_grads.len() != live.edges.len() {
            return Err(Error::invalid(
                "backward",
                format!(
                    "the rule of `{}` returned {} gradients for {} inputs",
                    node.op,
                    input_grads.len(),
                    live.edges.len()
                ),
            ));
        }
        for (edge, g) in live.edges.iter().zip(input_grads) {
            let Some(g) = g else { continue };
            if !edge.meta.requires_grad() {
                continue;
            }
            if g.shape() != &edge.shape {
                return Err(Error::ShapeMismatch {
                    op: node.op,
                    lhs: edge.shape.clone(),
                    rhs: g.shape().clone(),
                });
            }
            let slot = grads.remove(&edge.meta.id);
            grads.insert(edge.meta.id, accumulate(slot, g)?);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use sinew_tensor::Tensor;

    use crate::Var;

    #[test]
    fn backward_frees_the_activations_it_no_longer_needs() {
        let x = Var::leaf(Tensor::from_vec(vec![1.0f32, 2.0], [2]).unwrap());
        let hidden = x.exp().unwrap().mul(&x).unwrap();
        let watch = Arc::downgrade(&hidden.meta);
        let loss = hidden.sum_all().unwrap();
        drop(hidden);
        // The graph links the activation's meta until backward frees the graph.
        assert!(watch.upgrade().is_some());
        loss.backward().unwrap();
        assert!(watch.upgrade().is_none(), "backward kept the graph alive");
    }

    #[test]
    fn nodes_keep_only_what_their_rule_reads() {
        let x = Var::leaf(Tensor::from_vec(vec![1.0f32, 2.0], [2]).unwrap());
        let b = Var::leaf(Tensor::from_vec(vec![0.5f32, 0.5], [2]).unwrap());
        let node = |v: &Var| v.meta.node.as_ref().unwrap().saved_count();
        assert_eq!(node(&x.add(&b).unwrap()), 0); // add: nothing
        assert_eq!(node(&x.exp().unwrap()), 1); // exp: its output
        assert_eq!(node(&x.log().unwrap()), 1); // log: its input
        assert_eq!(node(&x.mul(&b).unwrap()), 2); // mul: both inputs
        assert_eq!(node(&x.sum_all().unwrap()), 0); // sum: shapes only
        assert_eq!(node(&x.reshape([2, 1]).unwrap()), 0);
    }

    #[test]
    fn saved_values_share_storage_with_the_activation() {
        let x = Var::leaf(Tensor::from_vec(vec![1.0f32, 2.0], [2]).unwrap());
        let h = x.tanh().unwrap();
        let y = h.log().unwrap();
        let node = y.meta.node.as_ref().unwrap();
        let state = node.state.lock().unwrap();
        let saved = state.as_ref().unwrap().edges[0].value.as_ref().unwrap();
        assert!(saved.same_storage(h.tensor()));
    }
}
