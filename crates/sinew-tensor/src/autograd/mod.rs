//! Reverse-mode automatic differentiation, built into [`Tensor`](crate::Tensor).
//!
//! A tensor made with [`requires_grad_`](crate::Tensor::requires_grad_) is a leaf that requires
//! a gradient; every differentiable op records its result's `Node` when an input
//! requires a gradient and recording is on ([`no_grad`] turns it off), and
//! [`backward`](crate::Tensor::backward) accumulates gradients into the leaves, as in PyTorch.
//! Untracked tensors carry no autograd state and pay one branch per op.
//!
//! The rules live in `src/grad/` (one file per op family, beside `src/ops/`), written with
//! tensor ops so that they run on any device and can themselves be differentiated.

#[cfg(test)]
mod cast_from_dtype_tests;
mod engine;
mod graph;
mod meta;
mod no_grad;
mod parameter;

pub use graph::{BackwardCtx, BackwardFn, BackwardOptions, Save};
pub(crate) use graph::{CAST, PERMUTE};
pub(crate) use meta::Meta;
pub use meta::{GradHook, HookHandle};
pub use no_grad::{GradModeGuard, enable_grad, is_grad_enabled, no_grad, with_no_grad};
pub use parameter::Parameter;
