//! The backward pass: walks the recorded nodes in reverse topological order, runs each rule,
//! sums gradients per input, stores leaf (and retained) gradients and runs leaf hooks. Without
//! `retain_graph` each node's saved tensors and closure are dropped once used.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use crate::autograd::graph::freed;
use crate::autograd::meta::Meta;
use crate::autograd::no_grad::{enable_grad, no_grad};
use crate::{BackwardOptions, Error, Result, Tensor};

/// Every meta reachable from `root` through tracked inputs, inputs before their users.
fn topological_order(root: &Arc<Meta>) -> Result<Vec<Arc<Meta>>> {
    let mut order = Vec::new();
    let mut visited = HashSet::new();
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

fn accumulate(slot: Option<Tensor>, grad: Tensor) -> Result<Tensor> {
    match slot {
        None => Ok(grad),
        Some(prev) => prev.add(&grad),
    }
}

/// The gradient backward starts from: the one given (same shape, dtype and device as the
/// output), or ones for a one-element output.
fn seed_gradient(root: &Tensor, grad: Option<Tensor>) -> Result<Tensor> {
    match grad {
        Some(g) if g.shape() != root.shape() => Err(Error::ShapeMismatch {
            op: "backward (output gradient)",
            lhs: root.shape().clone(),
            rhs: g.shape().clone(),
        }),
        Some(g) if g.dtype() != root.dtype() => Err(Error::DTypeMismatch {
            op: "backward (output gradient)",
            lhs: root.dtype(),
            rhs: g.dtype(),
        }),
        Some(g) if g.device() != root.device() => Err(Error::DeviceMismatch {
            op: "backward (output gradient)",
            lhs: root.device().location(),
            rhs: g.device().location(),
        }),
        Some(g) => Ok(g.detach()),
        None if root.elem_count() == 1 => root.detach().ones_like(),
        None => Err(Error::invalid(
            "backward",
            format!(
                "a gradient can only be implied for a scalar output, not shape {}; pass one",
                root.shape()
            ),
        )),
    }
}

/// Adds `grad` into the `grad` slot of a leaf or a tensor that retains its gradient.
fn store(meta: &Arc<Meta>, grad: &Tensor, create_graph: bool) -> Result<()> {
    let grad = if create_graph {
        grad.clone()
    } else {
        grad.detach()
    };
    let mut slot = meta.grad.lock().unwrap_or_else(|e| e.into_inner());
    *slot = Some(accumulate(slot.take(), grad)?);
    Ok(())
}

/// The backward pass from `root` (see [`Tensor::backward_with`]).
pub(crate) fn backward(
    root: &Tensor,
    grad: Option<Tensor>,
    options: BackwardOptions,
) -> Result<()> {
    let Some(root_meta) = root.grad_meta.as_ref().filter(|m| m.requires_grad()) else {
        return Err(Error::invalid(
            "backward",
            "the tensor does not require grad and has no graph",
        ));
    };
    let seed = seed_gradient(root, grad)?;
    let retain = options.retain_graph || options.create_graph;
    let _mode = if options.create_graph {
        enable_grad()
    } else {
        no_grad()
    };
    let order = topological_order(root_meta)?;
    let mut grads: HashMap<u64, Tensor> = HashMap::new();
    grads.insert(root_meta.id, seed);
    for meta in order.iter().rev() {
        let Some(grad) = grads.remove(&meta.id) else {
            continue;
        };
        if meta.keeps_grad() {
            store(meta, &grad, options.create_graph)?;
        }
        let Some(node) = &meta.node else {
            for hook in meta.hooks() {
                let stored = meta.grad.lock().unwrap_or_else(|e| e.into_inner()).clone();
                if let Some(stored) = stored {
                    hook(&stored)?;
                }
            }
            continue;
        };
        let mut state = node.state.lock().unwrap_or_else(|e| e.into_inner());
        let taken = if retain { None } else { state.take() };
        let live = match (&taken, &*state) {
            (Some(live), _) | (None, Some(live)) => live,
            (None, None) => return Err(freed(node.op())),
        };
        let ctx = live.ctx(node.op(), meta);
        let input_grads = (live.backward)(&ctx, &grad)?;
        if input_grads.len() != live.edges.len() {
            return Err(Error::invalid(
                "backward",
                format!(
                    "the rule of `{}` returned {} gradients for {} inputs",
                    node.op(),
                    input_grads.len(),
                    live.edges.len()
                ),
            ));
        }
        for (edge, g) in live.edges.iter().zip(input_grads) {
            let (Some(g), Some(input)) = (g, edge.tracked()) else {
                continue;
            };
            if g.shape() != &edge.shape {
                return Err(Error::ShapeMismatch {
                    op: node.op(),
                    lhs: edge.shape.clone(),
                    rhs: g.shape().clone(),
                });
            }
            let slot = grads.remove(&input.id);
            grads.insert(input.id, accumulate(slot, g)?);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use crate::Tensor;

    fn leaf(v: &[f32]) -> Tensor {
        Tensor::from_vec(v.to_vec(), [v.len()])
            .unwrap()
            .requires_grad_()
    }

    #[test]
    fn backward_frees_the_activations_it_no_longer_needs() {
        let x = leaf(&[1.0, 2.0]);
        let hidden = x.exp().unwrap().mul(&x).unwrap();
        let watch = Arc::downgrade(hidden.grad_meta.as_ref().unwrap());
        let loss = hidden.sum_all().unwrap();
        drop(hidden);
        // The graph links the activation's meta until backward frees the graph.
        assert!(watch.upgrade().is_some());
        loss.backward().unwrap();
        assert!(watch.upgrade().is_none(), "backward kept the graph alive");
    }

    #[test]
    fn nodes_keep_only_what_their_rule_reads() {
        let x = leaf(&[1.0, 2.0]);
        let b = leaf(&[0.5, 0.5]);
        let node = |t: &Tensor| {
            let meta = t.grad_meta.as_ref().unwrap();
            meta.node.as_ref().unwrap().saved_count()
        };
        assert_eq!(node(&x.add(&b).unwrap()), 0); // add: nothing
        assert_eq!(node(&x.exp().unwrap()), 1); // exp: its output
        assert_eq!(node(&x.log().unwrap()), 1); // log: its input
        assert_eq!(node(&x.mul(&b).unwrap()), 2); // mul: both inputs
        assert_eq!(node(&x.sum_all().unwrap()), 0); // sum: shapes only
        assert_eq!(node(&x.reshape([2, 1]).unwrap()), 0);
    }

    #[test]
    fn saved_values_share_storage_with_the_activation() {
        let x = leaf(&[1.0, 2.0]);
        let h = x.tanh().unwrap();
        let y = h.log().unwrap();
        let meta = y.grad_meta.as_ref().unwrap();
        let saved = meta.node.as_ref().unwrap().saved_input(0).unwrap();
        assert!(saved.same_storage(&h));
    }
}
