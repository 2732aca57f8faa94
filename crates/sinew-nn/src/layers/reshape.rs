//! Shape layers: `Flatten` and `Unflatten` (padding is in `padding.rs`).

use sinew_tensor::{Error, Result, Tensor};

use crate::{Module, summary};

/// Flattens dims `start_dim..=end_dim` (defaults 1 and -1: keep the batch dim).
#[derive(Debug, Clone, Copy)]
pub struct Flatten {
    /// First dim flattened.
    pub start_dim: isize,
    /// Last dim flattened.
    pub end_dim: isize,
}

impl Default for Flatten {
    fn default() -> Self {
        Flatten {
            start_dim: 1,
            end_dim: -1,
        }
    }
}

impl Flatten {
    /// PyTorch's default `nn.Flatten()`.
    pub fn new() -> Self {
        Flatten::default()
    }
}

impl Module for Flatten {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let y = x.flatten(self.start_dim, self.end_dim)?;
        summary::note(self, &y);
        Ok(y)
    }
}

/// Splits dim `dim` into `sizes` (their product must be its size). PyTorch: `nn.Unflatten`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unflatten {
    /// The dim split (negative counts from the end).
    pub dim: isize,
    /// What it becomes.
    pub sizes: Vec<usize>,
}

impl Unflatten {
    /// Splits `dim` into `sizes`.
    pub fn new(dim: isize, sizes: &[usize]) -> Self {
        Unflatten {
            dim,
            sizes: sizes.to_vec(),
        }
    }
}

impl Module for Unflatten {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let d = x.shape().dim("unflatten", self.dim)?;
        let product = self
            .sizes
            .iter()
            .try_fold(1usize, |acc, &s| acc.checked_mul(s));
        if product != Some(x.dims()[d]) {
            return Err(Error::invalid(
                "unflatten",
                format!(
                    "sizes {:?} do not multiply to the size {} of dim {} of {}",
                    self.sizes,
                    x.dims()[d],
                    self.dim,
                    x.shape()
                ),
            ));
        }
        let mut dims = x.dims()[..d].to_vec();
        dims.extend(&self.sizes);
        dims.extend(&x.dims()[d + 1..]);
        let y = x.reshape(dims)?;
        summary::note(self, &y);
        Ok(y)
    }
}
