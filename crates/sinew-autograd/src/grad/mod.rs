//! Differentiable ops on [`Var`], one file per op family (mirroring `sinew-tensor/src/ops/`).
//! Each op's forward and backward rule sit side by side; each rule says what it keeps.

mod binary;
mod cast;
mod conv;
mod index;
mod matmul;
mod pool;
mod reduce;
mod softmax;
mod unary;
mod view;

use sinew_tensor::{Result, Shape};

use crate::Var;

impl Var {
    /// Sums a broadcast gradient back to `shape` (leading dims and size-1 dims).
    pub fn sum_to(&self, shape: &Shape) -> Result<Var> {
        if self.shape() == shape {
            return Ok(self.clone());
        }
        let lead = self.rank() - shape.rank();
        let dims: Vec<isize> = (0..self.rank())
            .filter(|&i| i < lead || (shape.dims()[i - lead] == 1 && self.dims()[i] != 1))
            .map(|i| i as isize)
            .collect();
        self.sum(&dims, true)?.reshape(shape.clone())
    }
}
