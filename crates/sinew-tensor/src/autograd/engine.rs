//! The backward pass: walks the recorded nodes in reverse topological order, runs each rule,
//! sums gradients per input (or lets a rule take an input's sum so far and return the total),
//! stores leaf (and retained) gradients and runs leaf hooks. Without
//! `retain_graph` each node's saved tensors and closure are dropped once used.

use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::Arc;

use crate::autograd::graph::freed;
use crate::autograd::meta::Meta;
use crate::autograd::no_grad::{enable_grad, no_grad};
use crate::{BackwardOptions, Error, Result, Tensor};

/// Hashes the ids of metas (distinct counter values) with one multiplication: SipHash's
/// flooding resistance buys nothing for them and was a visible share of a small backward.
#[derive(Default, Clone, Copy)]
pub(crate) struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write_u64(u64::from(b));
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0.rotate_left(5) ^ n).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }
}

/// Maps and sets keyed by meta ids.
type Ids = BuildHasherDefault<IdHasher>;

/// What rules may learn of the backward in progress beyond their own node.
pub(crate) struct Running {
    /// Each meta's gradient so far, by meta id, until the meta's turn (rules may take an
    /// input's sum out, [`crate::BackwardCtx::take_pending_grad`]).
    pub(crate) pending: RefCell<HashMap<u64, Tensor, Ids>>,
    /// How many recorded uses each meta has in the graph being walked, by meta id.
    pub(crate) users: UseCounts,
}

/// How many recorded uses each meta has in a graph, by meta id.
pub(crate) type UseCounts = HashMap<u64, usize, Ids>;

/// Every meta reachable from `root` through tracked inputs, inputs before their users.
fn topological_order(root: &Arc<Meta>) -> Result<Vec<Arc<Meta>>> {
    let mut order = Vec::new();
    let mut visited: HashSet<u64, Ids> = HashSet::default();
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

/// The order backward visits metas in: each meta once all its users are done (so its gradient
/// is complete), choosing among those the leaves first and then the most recently created node,
/// as PyTorch's engine does. Backward then reaches each layer's parameters right after that
/// layer's gradient rule, so their hooks (the data-parallel all-reduce) start while the earlier
/// layers are still to compute, instead of all at the end.
/// Also returns how many uses each meta has (its users' edges to it).
fn backward_order(metas: Vec<Arc<Meta>>) -> Result<(Vec<Arc<Meta>>, UseCounts)> {
    use std::collections::BinaryHeap;
    let index: HashMap<u64, usize, Ids> =
        metas.iter().enumerate().map(|(i, m)| (m.id, i)).collect();
    // Inputs of each meta (as indices), and how many users each meta still waits for.
    let mut inputs: Vec<Vec<usize>> = Vec::with_capacity(metas.len());
    let mut waiting = vec![0usize; metas.len()];
    for meta in &metas {
        let ins: Vec<usize> = match &meta.node {
            Some(node) => node
                .tracked_inputs()?
                .iter()
                .filter_map(|m| index.get(&m.id).copied())
                .collect(),
            None => Vec::new(),
        };
        for &i in &ins {
            waiting[i] += 1;
        }
        inputs.push(ins);
    }
    let users = metas
        .iter()
        .zip(&waiting)
        .map(|(m, &n)| (m.id, n))
        .collect();
    let priority = |i: usize| (metas[i].node.is_none(), metas[i].id, i);
    let mut ready: BinaryHeap<(bool, u64, usize)> = (0..metas.len())
        .filter(|&i| waiting[i] == 0)
        .map(priority)
        .collect();
    let mut order = Vec::with_capacity(metas.len());
    while let Some((_, _, i)) = ready.pop() {
        order.push(metas[i].clone());
        for &input in &inputs[i] {
            waiting[input] -= 1;
            if waiting[input] == 0 {
                ready.push(priority(input));
            }
        }
    }
    Ok((order, users))
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
///
/// A first gradient is kept as it is only when it is contiguous and the engine holds the only
/// handle to its storage; otherwise (a rule passed one gradient to two inputs, as `a + b` does,
/// the caller gave the output gradient, or it is an expanded view of the seed) the slot gets a
/// contiguous copy, as PyTorch's `AccumulateGrad` does. So each stored gradient owns its
/// memory: updating one in place (unscaling, clipping, an optimizer) never changes another
/// gradient or a caller's tensor.
fn store(meta: &Arc<Meta>, grad: &Tensor, create_graph: bool) -> Result<()> {
    let mut slot = meta.grad.lock().unwrap_or_else(|e| e.into_inner());
    let total = match slot.take() {
        // Under `create_graph` the sum is recorded; otherwise the scope is `no_grad`.
        Some(prev) => prev.add(grad)?,
        None if grad.is_contiguous() && grad.owns_storage_alone() => grad.clone(),
        None => grad.force_contiguous()?,
    };
    *slot = Some(if create_graph { total } else { total.detach() });
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
    // Gradient rules work in the dtypes their forward saw, whatever the caller's scope.
    let _autocast = crate::autocast::autocast_off();
    let (order, users) = backward_order(topological_order(root_meta)?)?;
    let running = Running {
        pending: RefCell::default(),
        users,
    };
    let grads = &running.pending;
    grads.borrow_mut().insert(root_meta.id, seed);
    for meta in &order {
        let Some(grad) = grads.borrow_mut().remove(&meta.id) else {
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
        let ctx = live.ctx(node.op(), meta, &running);
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
            let mut grads = grads.borrow_mut();
            let total = match grads.remove(&input.id) {
                None => g,
                Some(prev) => prev.add(&g)?,
            };
            grads.insert(input.id, total);
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
    fn a_leaf_hook_runs_right_after_its_last_user() {
        use std::sync::Mutex;
        // Two layers: y = tanh(x * w1) * w2. Backward reaches w2 before computing tanh's
        // gradient, so w2's hook must run before the first layer's leaf w1 has a gradient.
        let x = leaf(&[0.5, -1.0]);
        let (w1, w2) = (leaf(&[1.0, 2.0]), leaf(&[3.0, 4.0]));
        let log = Arc::new(Mutex::new(Vec::new()));
        let (l1, l2) = (log.clone(), log.clone());
        let w1_seen = w1.clone();
        w2.register_grad_hook(move |_| {
            l2.lock().unwrap().push(("w2", w1_seen.grad().is_some()));
            Ok(())
        })
        .unwrap();
        w1.register_grad_hook(move |_| {
            l1.lock().unwrap().push(("w1", true));
            Ok(())
        })
        .unwrap();
        let y = x.mul(&w1).unwrap().tanh().unwrap().mul(&w2).unwrap();
        y.sum_all().unwrap().backward().unwrap();
        assert_eq!(*log.lock().unwrap(), vec![("w2", false), ("w1", true)]);
        // Gradients are unchanged by the order: d/dw2 = tanh(x * w1).
        let g2 = w2.grad().unwrap().to_vec::<f32>().unwrap();
        assert!((g2[0] - 0.5f32.tanh()).abs() < 1e-6 && (g2[1] - (-2.0f32).tanh()).abs() < 1e-6);
    }

    #[test]
    fn a_rule_that_takes_the_pending_gradient_returns_the_total() {
        use crate::Save;
        use std::sync::Mutex;
        // y = identity(x) by a rule that takes x's pending gradient; loss = sum(3 * y) +
        // sum(x²). x² is recorded last, so backward runs its rule first: the identity's rule
        // finds 2x pending and returns 2x + 3.
        let x = leaf(&[1.0, 2.0]);
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        let y = Tensor::from_op(
            x.detach(),
            "identity",
            &[&x],
            Save::NOTHING,
            move |ctx, g| {
                let pending = ctx.take_pending_grad(0);
                log.lock()
                    .unwrap()
                    .push(pending.as_ref().map(|p| p.to_vec::<f32>().unwrap()));
                // Taken once: a second take finds nothing.
                assert!(ctx.take_pending_grad(0).is_none());
                Ok(vec![Some(match pending {
                    Some(p) => p.add(g)?,
                    None => g.clone(),
                })])
            },
        );
        let scaled = y.mul_scalar(3.0).unwrap().sum_all().unwrap();
        let loss = scaled.add(&x.square().unwrap().sum_all().unwrap()).unwrap();
        loss.backward().unwrap();
        assert_eq!(*seen.lock().unwrap(), vec![Some(vec![2.0, 4.0])]);
        assert_eq!(x.grad().unwrap().to_vec::<f32>().unwrap(), vec![5.0, 7.0]);
        // With no other user of x, nothing is pending.
        let x = leaf(&[1.0, 2.0]);
        let log = seen.clone();
        let y = Tensor::from_op(
            x.detach(),
            "identity",
            &[&x],
            Save::NOTHING,
            move |ctx, g| {
                log.lock()
                    .unwrap()
                    .push(ctx.take_pending_grad(0).map(|_| vec![]));
                Ok(vec![Some(g.clone())])
            },
        );
        y.sum_all().unwrap().backward().unwrap();
        assert_eq!(seen.lock().unwrap().last(), Some(&None));
        assert_eq!(x.grad().unwrap().to_vec::<f32>().unwrap(), vec![1.0, 1.0]);
    }

    #[test]
    fn stored_gradients_own_their_memory() {
        // `a + b` passes one gradient to both leaves: each stores its own, so scaling one in
        // place (as clipping or unscaling does) leaves the other as it was.
        let (a, b) = (leaf(&[1.0, 2.0]), leaf(&[3.0, 4.0]));
        a.add(&b)
            .unwrap()
            .square()
            .unwrap()
            .sum_all()
            .unwrap()
            .backward()
            .unwrap();
        let (ga, gb) = (a.grad().unwrap(), b.grad().unwrap());
        assert!(!ga.same_storage(&gb));
        ga.mul_scalar_(0.5).unwrap();
        assert_eq!(a.grad().unwrap().to_vec::<f32>().unwrap(), vec![4.0, 6.0]);
        assert_eq!(b.grad().unwrap().to_vec::<f32>().unwrap(), vec![8.0, 12.0]);
        // The caller's output gradient is copied, not stored.
        let x = leaf(&[1.0, 2.0]);
        let seed = Tensor::from_vec(vec![5.0f32, 7.0], [2]).unwrap();
        x.backward_with(Some(seed.clone()), crate::BackwardOptions::default())
            .unwrap();
        x.grad().unwrap().mul_scalar_(2.0).unwrap();
        assert_eq!(seed.to_vec::<f32>().unwrap(), vec![5.0, 7.0]);
        assert_eq!(x.grad().unwrap().to_vec::<f32>().unwrap(), vec![10.0, 14.0]);
    }

    #[test]
    fn an_expanded_gradient_is_stored_contiguous() {
        // `sum`'s gradient is the seed broadcast (stride 0); the stored one can be written.
        let w = leaf(&[1.0, 2.0, 3.0]);
        w.sum_all().unwrap().backward().unwrap();
        let g = w.grad().unwrap();
        assert!(g.is_contiguous());
        g.mul_scalar_(3.0).unwrap();
        assert_eq!(w.grad().unwrap().to_vec::<f32>().unwrap(), vec![3.0; 3]);
        // A second backward adds into it.
        w.sum_all().unwrap().backward().unwrap();
        assert_eq!(w.grad().unwrap().to_vec::<f32>().unwrap(), vec![4.0; 3]);
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
