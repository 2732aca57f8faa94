//! # sinew-autograd
//!
//! Gradient checking for Sinew. Autograd itself is built into `sinew_tensor::Tensor` (a tensor
//! made with `requires_grad_()` records the ops applied to it; `backward()` fills the leaves'
//! `grad()`); this crate re-exports that interface and adds [`gradcheck`]: finite-difference
//! checks of every differentiable op, which `cargo xtask gradcheck` runs.
//!
//! ```
//! use sinew_tensor::Tensor;
//! let x = Tensor::from_vec(vec![1.0f32, 2.0, 3.0], [3])?.requires_grad_();
//! let y = x.square()?.sum_all()?; // y = Σ x²
//! y.backward()?;
//! assert_eq!(x.grad().unwrap().to_vec::<f32>()?, vec![2.0, 4.0, 6.0]);
//! # Ok::<(), sinew_tensor::Error>(())
//! ```
//!
//! The per-op proptest cases (`gradcheck::cases`) are behind the `testing` feature, so a user
//! of the facade does not compile proptest.

pub mod gradcheck;

pub use sinew_tensor::autograd::*;
