//! The recorded graph and the backward pass.
//!
//! Each op result owns a [`Node`]: the op's name, its input `Var`s and its backward closure. The
//! inputs keep their values alive (shared, never copied) for as long as the graph lives. Backward
//! walks the nodes in reverse topological order; without `retain_graph` it drops each node's
//! inputs and closure once used, freeing activations as it goes.

use std::collections::HashMap;
use std::sync::Mutex;

use sinew_tensor::{Error, Result, Tensor};

use crate::Var;
use crate::no_grad::{enable_grad, no_grad};

/// A backward rule: given the context and the gradient of the output, one gradient per input.
pub type BackwardFn = dyn Fn(&BackwardCtx<'_>, &Var) -> Result<Vec<Option<Var>>> + Send + Sync;

/// What a backward rule can read: the op's inputs and its output.
pub struct BackwardCtx<'a> {
    /// The op's inputs, in call order.
    pub inputs: &'a [Var],
    /// The op's output.
    pub output: &'a Var,
}

enum NodeState {
    Live {
        inputs: Vec<Var>,
        backward: Box<BackwardFn>,
    },
    Freed,
}

/// How a recorded op's result was made.
pub(crate) struct Node {
    op: &'static str,
    state: Mutex<NodeState>,
}

impl Node {
    pub(crate) fn new(op: &'static str, inputs: Vec<Var>, backward: Box<BackwardFn>) -> Node {
        Node {
            op,
            state: Mutex::new(NodeState::Live { inputs, backward }),
        }
    }

    pub(crate) fn op(&self) -> &'static str {
        self.op
    }

    fn inputs(&self) -> Result<Vec<Var>> {
        match &*self.state.lock().unwrap_or_else(|e| e.into_inner()) {
            NodeState::Live { inputs, .. } => Ok(inputs.clone()),
            NodeState::Freed => Err(freed(self.op)),
        }
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

/// Every `Var` reachable from `root` through tracked inputs, inputs before their users.
fn topological_order(root: &Var) -> Result<Vec<Var>> {
    let mut order = Vec::new();
    let mut visited = std::collections::HashSet::new();
    // Iterative post-order DFS: (var, children already pushed?).
    let mut stack = vec![(root.clone(), false)];
    while let Some((var, expanded)) = stack.pop() {
        if expanded {
            order.push(var);
            continue;
        }
        if !visited.insert(var.id()) {
            continue;
        }
        stack.push((var.clone(), true));
        if let Some(node) = &var.0.node {
            for input in node.inputs()? {
                if input.requires_grad() && !visited.contains(&input.id()) {
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

/// The backward pass from `root` (see [`Var::backward_with`]).
pub(crate) fn backward(root: &Var, grad: Option<Tensor>, options: BackwardOptions) -> Result<()> {
    if !root.requires_grad() {
        return Err(Error::invalid(
            "backward",
            "the tensor does not require grad and has no graph",
        ));
    }
    let seed = match grad {
        Some(g) => {
            if g.shape() != root.shape() {
                return Err(Error::ShapeMismatch {
                    op: "backward (output gradient)",
                    lhs: root.shape().clone(),
                    rhs: g.shape().clone(),
                });
            }
            g
        }
        None if root.tensor().elem_count() == 1 => root.tensor().ones_like()?,
        None => {
            return Err(Error::invalid(
                "backward",
                format!(
                    "a gradient can only be implied for a scalar output, not shape {}; pass one",
                    root.shape()
                ),
            ));
        }
    };
    let retain = options.retain_graph || options.create_graph;
    let _mode = if options.create_graph {
        enable_grad()
    } else {
        no_grad()
    };
    let order = topological_order(root)?;
    let mut grads: HashMap<u64, Var> = HashMap::new();
    grads.insert(root.id(), Var::constant(seed));
    for var in order.iter().rev() {
        let Some(grad) = grads.remove(&var.id()) else {
            continue;
        };
        let Some(node) = &var.0.node else {
            let total = accumulate(
                var.grad_var(),
                if options.create_graph {
                    grad
                } else {
                    grad.detach()
                },
            )?;
            var.set_grad_var(Some(total));
            continue;
        };
        let mut state = node.state.lock().unwrap_or_else(|e| e.into_inner());
        let taken;
        let (inputs, backward) = match &*state {
            NodeState::Freed => return Err(freed(node.op)),
            NodeState::Live { inputs, backward } if retain => (inputs, backward),
            NodeState::Live { .. } => {
                taken = std::mem::replace(&mut *state, NodeState::Freed);
                let NodeState::Live { inputs, backward } = &taken else {
                    unreachable!()
                };
                (inputs, backward)
            }
        };
        let input_grads = backward(
            &BackwardCtx {
                inputs,
                output: var,
            },
            &grad,
        )?;
        if input_grads.len() != inputs.len() {
            return Err(Error::invalid(
                "backward",
                format!(
                    "rule of `{}` returned {} gradients for {} inputs",
                    node.op,
                    input_grads.len(),
                    inputs.len()
                ),
            ));
        }
        for (input, g) in inputs.iter().zip(input_grads) {
            let Some(g) = g else { continue };
            if !input.requires_grad() {
                continue;
            }
            if g.shape() != input.shape() {
                return Err(Error::ShapeMismatch {
                    op: node.op,
                    lhs: input.shape().clone(),
                    rhs: g.shape().clone(),
                });
            }
            let slot = grads.remove(&input.id());
            grads.insert(input.id(), accumulate(slot, g)?);
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
        let hidden = x.exp().unwrap().mul_scalar(2.0).unwrap();
        let watch = Arc::downgrade(&hidden.0);
        let loss = hidden.sum_all().unwrap();
        drop(hidden);
        // The graph holds the activation once (no copy): alive until backward frees it.
        assert!(watch.upgrade().is_some());
        loss.backward().unwrap();
        assert!(
            watch.upgrade().is_none(),
            "backward kept an activation alive"
        );
    }

    #[test]
    fn the_graph_shares_activation_storage_instead_of_copying() {
        let x = Var::leaf(Tensor::from_vec(vec![1.0f32, 2.0], [2]).unwrap());
        let h = x.tanh().unwrap();
        let y = h.sigmoid().unwrap();
        let node = y.0.node.as_ref().unwrap();
        let inputs = node.inputs().unwrap();
        assert!(inputs[0].tensor().same_storage(h.tensor()));
    }
}
