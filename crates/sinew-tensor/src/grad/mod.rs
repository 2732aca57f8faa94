//! The differentiable primitives: each public method here runs the op's untracked forward
//! (`ops/` or `tensor.rs`, `*_untracked`) and records its backward rule with
//! [`Tensor::from_op`]. One file per op family, mirroring `src/ops/`; each rule says what it
//! saves. Composites (mean, logsumexp, ...) live in `ops/` and are differentiable by
//! being built from these.

mod binary;
mod cast;
mod conv;
mod conv2d;
mod conv2d_chunks;
mod conv_transpose2d;
mod index;
mod matmul;
mod pool;
mod reduce;
mod softmax;
mod unary;
mod view;
mod widened;

pub(crate) use matmul::record_matmul_epilogue;

use crate::{Result, Shape, Tensor, no_grad};

/// Runs an op's untracked forward with recording off, so helper ops inside it record nothing.
pub(crate) fn untracked<R>(forward: impl FnOnce() -> Result<R>) -> Result<R> {
    let _guard = no_grad();
    forward()
}

impl Tensor {
    /// Sums a broadcast gradient back to `shape` (leading dims and size-1 dims).
    pub fn sum_to(&self, shape: &Shape) -> Result<Tensor> {
        if self.shape() == shape {
            return Ok(self.clone());
        }
        let dims: Vec<isize> = self
            .sum_to_dims(shape)?
            .into_iter()
            .map(|d| d as isize)
            .collect();
        self.sum(&dims, true)?.reshape(shape.clone())
    }

    /// The dims [`Tensor::sum_to`] sums: the leading ones and those that are 1 in `shape`.
    fn sum_to_dims(&self, shape: &Shape) -> Result<Vec<usize>> {
        let lead =
            self.rank()
                .checked_sub(shape.rank())
                .ok_or_else(|| crate::Error::ShapeMismatch {
                    op: "sum_to",
                    lhs: self.shape().clone(),
                    rhs: shape.clone(),
                })?;
        Ok((0..self.rank())
            .filter(|&i| i < lead || (shape.dims()[i - lead] == 1 && self.dims()[i] != 1))
            .collect())
    }
}
