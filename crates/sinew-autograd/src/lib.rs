//! # sinew-autograd
//!
//! Reverse-mode automatic differentiation over `sinew-tensor`. A [`Var`] wraps a tensor; ops on
//! `Var`s record a graph when an input requires a gradient (and recording is on), and
//! [`Var::backward`] accumulates gradients into the leaves, as in PyTorch.
//!
//! ```
//! use sinew_autograd::Var;
//! use sinew_tensor::Tensor;
//! let x = Var::leaf(Tensor::from_vec(vec![1.0f32, 2.0, 3.0], [3])?);
//! let y = x.square()?.sum_all()?; // y = Σ x²
//! y.backward()?;
//! assert_eq!(x.grad().unwrap().to_vec::<f32>()?, vec![2.0, 4.0, 6.0]);
//! # Ok::<(), sinew_tensor::Error>(())
//! ```
//!
//! Rules are written with `Var` ops, so they run unchanged on any device and can themselves be
//! differentiated (`create_graph`). Ops without a rule do not exist on `Var`: a tracked value
//! can only reach them through [`Var::tensor`], which is visibly outside the graph.

mod grad;
pub mod gradcheck;
mod graph;
mod no_grad;
mod var;

pub use graph::{BackwardCtx, BackwardFn, BackwardOptions, Save};
pub use no_grad::{GradModeGuard, enable_grad, is_grad_enabled, no_grad};
pub use var::Var;
