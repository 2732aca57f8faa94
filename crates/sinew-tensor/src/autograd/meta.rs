//! Autograd's part of a tensor: whether it requires a gradient, the op that made it, its
//! accumulated gradient and its gradient hooks. Shared by a tensor's clones (not by its views).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use crate::autograd::graph::Node;
use crate::{Result, Tensor};

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// A function run with a leaf's gradient right after it has been accumulated (see
/// [`Tensor::register_grad_hook`]).
pub type GradHook = dyn Fn(&Tensor) -> Result<()> + Send + Sync;

/// Identifies a registered hook so it can be removed again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct HookHandle(u64);

/// What autograd keeps per tracked tensor. The graph references metas, never values, so it
/// holds only the tensors rules chose to save.
pub(crate) struct Meta {
    pub(crate) id: u64,
    requires_grad: AtomicBool,
    /// Store the incoming gradient of a non-leaf too (PyTorch `retain_grad`).
    retains_grad: AtomicBool,
    pub(crate) node: Option<Node>,
    pub(crate) grad: Mutex<Option<Tensor>>,
    hooks: Mutex<Vec<(HookHandle, Arc<GradHook>)>>,
}

impl Meta {
    pub(crate) fn new(requires_grad: bool, node: Option<Node>) -> Arc<Meta> {
        Arc::new(Meta {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            requires_grad: AtomicBool::new(requires_grad),
            retains_grad: AtomicBool::new(false),
            node,
            grad: Mutex::new(None),
            hooks: Mutex::new(Vec::new()),
        })
    }

    pub(crate) fn requires_grad(&self) -> bool {
        self.requires_grad.load(Ordering::Relaxed)
    }

    /// Whether backward stores this tensor's gradient in its `grad` slot (leaves always do).
    pub(crate) fn keeps_grad(&self) -> bool {
        self.node.is_none() || self.retains_grad.load(Ordering::Relaxed)
    }

    /// The registered hooks, cloned out so they run without the lock held.
    pub(crate) fn hooks(&self) -> Vec<Arc<GradHook>> {
        let hooks = self.hooks.lock().unwrap_or_else(|e| e.into_inner());
        hooks.iter().map(|(_, h)| h.clone()).collect()
    }
}

impl Drop for Meta {
    /// Frees the graph behind this tensor iteratively: a chain of 100k ops dropped without
    /// backward must not recurse once per op (which overflows the stack).
    fn drop(&mut self) {
        let Some(node) = self.node.as_mut() else {
            return;
        };
        let mut pending = node.take_input_metas();
        while let Some(meta) = pending.pop() {
            if let Ok(mut meta) = Arc::try_unwrap(meta)
                && let Some(node) = meta.node.as_mut()
            {
                pending.extend(node.take_input_metas());
            }
            // `meta` drops here with its node emptied: no recursion.
        }
    }
}

impl Tensor {
    /// This tensor as a leaf that requires a gradient (a parameter). A tensor that already
    /// requires a gradient is returned unchanged. PyTorch: `t.requires_grad_()`.
    ///
    /// ```
    /// # use sinew_tensor::Tensor;
    /// let w = Tensor::from_vec(vec![1.0f32, 2.0], [2])?.requires_grad_();
    /// w.square()?.sum_all()?.backward()?;
    /// assert_eq!(w.grad().unwrap().to_vec::<f32>()?, vec![2.0, 4.0]);
    /// # Ok::<(), sinew_tensor::Error>(())
    /// ```
    pub fn requires_grad_(mut self) -> Tensor {
        match &self.grad_meta {
            Some(meta) if meta.requires_grad() => {}
            Some(meta) if meta.node.is_none() => meta.requires_grad.store(true, Ordering::Relaxed),
            _ => self.grad_meta = Some(Meta::new(true, None)),
        }
        self
    }

    /// Turns gradient tracking on or off for a leaf made by [`requires_grad_`](Self::requires_grad_)
    /// (every clone sees it). PyTorch: `t.requires_grad_(flag)` on a leaf.
    pub fn set_requires_grad(&self, requires_grad: bool) -> Result<()> {
        match &self.grad_meta {
            Some(meta) if meta.node.is_none() => {
                meta.requires_grad.store(requires_grad, Ordering::Relaxed);
                Ok(())
            }
            Some(_) => Err(crate::Error::invalid(
                "set_requires_grad",
                "only leaves can change requires_grad; use detach() on the result of an op",
            )),
            None if !requires_grad => Ok(()),
            None => Err(crate::Error::invalid(
                "set_requires_grad",
                "this tensor has no autograd state; use `t.requires_grad_()`, which returns the tracked tensor",
            )),
        }
    }

    /// Whether gradients flow to or through it. PyTorch: `t.requires_grad`.
    pub fn requires_grad(&self) -> bool {
        self.grad_meta.as_ref().is_some_and(|m| m.requires_grad())
    }

    /// True when no recorded op made it (parameters, inputs, constants, detached values).
    pub fn is_leaf(&self) -> bool {
        self.grad_meta.as_ref().is_none_or(|m| m.node.is_none())
    }

    /// Name of the op that made it, if it was recorded. PyTorch: `t.grad_fn`.
    pub fn op_name(&self) -> Option<&'static str> {
        self.grad_meta.as_ref()?.node.as_ref().map(Node::op)
    }

    /// Identity of the autograd state shared by this tensor's clones (`None` when untracked).
    pub fn grad_id(&self) -> Option<u64> {
        self.grad_meta.as_ref().map(|m| m.id)
    }

    /// The accumulated gradient (`None` before any backward). PyTorch: `t.grad`.
    pub fn grad(&self) -> Option<Tensor> {
        let meta = self.grad_meta.as_ref()?;
        meta.grad.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Runs `f` on the stored gradient without cloning its handle (the gradient's lock is held
    /// while `f` runs: `f` must not set this tensor's gradient).
    pub fn with_grad<R>(&self, f: impl FnOnce(Option<&Tensor>) -> R) -> R {
        match self.grad_meta.as_ref() {
            None => f(None),
            Some(meta) => f(meta.grad.lock().unwrap_or_else(|e| e.into_inner()).as_ref()),
        }
    }

    /// Sets (or clears) the stored gradient. PyTorch: `t.grad = g`. As there, the gradient
    /// must have this tensor's shape, dtype and device (an error names the difference), and it
    /// is stored as it is: a view of another tensor's memory stays one.
    pub fn set_grad(&self, grad: Option<Tensor>) -> Result<()> {
        const OP: &str = "set_grad";
        let Some(meta) = &self.grad_meta else {
            return Err(crate::Error::invalid(
                OP,
                "the tensor does not require grad",
            ));
        };
        if let Some(g) = &grad {
            if g.shape() != self.shape() {
                return Err(crate::Error::ShapeMismatch {
                    op: OP,
                    lhs: self.shape().clone(),
                    rhs: g.shape().clone(),
                });
            }
            self.check_same_dtype(OP, g)?;
            self.check_same_device(OP, g)?;
        }
        *meta.grad.lock().unwrap_or_else(|e| e.into_inner()) = grad;
        Ok(())
    }

    /// Clears the stored gradient. PyTorch: `t.grad = None`.
    pub fn zero_grad(&self) {
        if let Some(meta) = &self.grad_meta {
            *meta.grad.lock().unwrap_or_else(|e| e.into_inner()) = None;
        }
    }

    /// The same values cut off from the graph (shares storage). PyTorch: `t.detach()`.
    pub fn detach(&self) -> Tensor {
        let mut t = self.clone();
        t.grad_meta = None;
        t
    }

    /// Keeps this non-leaf's gradient after backward (leaves always keep theirs), e.g. the
    /// gradient of an input image for a saliency map. PyTorch: `t.retain_grad()`.
    pub fn retain_grad(&self) -> Result<()> {
        match &self.grad_meta {
            Some(meta) if meta.requires_grad() => {
                meta.retains_grad.store(true, Ordering::Relaxed);
                Ok(())
            }
            _ => Err(crate::Error::invalid(
                "retain_grad",
                "the tensor does not require grad",
            )),
        }
    }

    /// Runs `hook` with this leaf's gradient each time backward has accumulated into it (the
    /// data-parallel all-reduce and per-parameter optimizer steps hang off this). PyTorch:
    /// `register_post_accumulate_grad_hook`.
    pub fn register_grad_hook(
        &self,
        hook: impl Fn(&Tensor) -> Result<()> + Send + Sync + 'static,
    ) -> Result<HookHandle> {
        match &self.grad_meta {
            Some(meta) if meta.requires_grad() && meta.node.is_none() => {
                let handle = HookHandle(NEXT_ID.fetch_add(1, Ordering::Relaxed));
                let mut hooks = meta.hooks.lock().unwrap_or_else(|e| e.into_inner());
                hooks.push((handle, Arc::new(hook)));
                Ok(handle)
            }
            _ => Err(crate::Error::invalid(
                "register_grad_hook",
                "gradient hooks run on leaves that require grad (parameters)",
            )),
        }
    }

    /// Removes a hook; returns whether it was registered on this tensor.
    pub fn remove_grad_hook(&self, handle: HookHandle) -> bool {
        let Some(meta) = &self.grad_meta else {
            return false;
        };
        let mut hooks = meta.hooks.lock().unwrap_or_else(|e| e.into_inner());
        let before = hooks.len();
        hooks.retain(|(h, _)| *h != handle);
        hooks.len() != before
    }

    /// Runs backward from this scalar: gradients accumulate into the leaves' [`grad`](Self::grad)
    /// and the graph is freed. PyTorch: `loss.backward()`.
    pub fn backward(&self) -> Result<()> {
        crate::autograd::engine::backward(self, None, crate::BackwardOptions::default())
    }

    /// Backward with an explicit output gradient and options (`retain_graph`, `create_graph`).
    pub fn backward_with(
        &self,
        grad: Option<Tensor>,
        options: crate::BackwardOptions,
    ) -> Result<()> {
        crate::autograd::engine::backward(self, grad, options)
    }

    /// The same value carrying `meta` (the engine rebuilds saved tensors this way).
    pub(crate) fn with_meta(&self, meta: Option<Arc<Meta>>) -> Tensor {
        let mut t = self.clone();
        t.grad_meta = meta;
        t
    }
}

#[cfg(test)]
mod tests {
    use crate::{DType, Error, Tensor};

    #[test]
    fn a_set_gradient_must_match_the_tensor() {
        let w = Tensor::from_vec(vec![1.0f32, 2.0], [2])
            .unwrap()
            .requires_grad_();
        let err = w
            .set_grad(Some(Tensor::from_vec(vec![1.0f32; 3], [3]).unwrap()))
            .unwrap_err();
        assert!(
            matches!(err, Error::ShapeMismatch { op: "set_grad", .. }),
            "{err}"
        );
        let err = w
            .set_grad(Some(Tensor::from_vec(vec![1.0f64, 2.0], [2]).unwrap()))
            .unwrap_err();
        assert!(
            matches!(
                err,
                Error::DTypeMismatch {
                    rhs: DType::F64,
                    ..
                }
            ),
            "{err}"
        );
        // Nothing was stored by the refused calls; a matching gradient is.
        assert!(w.grad().is_none());
        w.set_grad(Some(Tensor::from_vec(vec![3.0f32, 4.0], [2]).unwrap()))
            .unwrap();
        assert_eq!(w.grad().unwrap().to_vec::<f32>().unwrap(), vec![3.0, 4.0]);
        let untracked = Tensor::from_vec(vec![1.0f32], [1]).unwrap();
        assert!(untracked.set_grad(None).is_err());
    }
}
