//! Dropout (elements) and Dropout2d (whole channels): inverted scaling by `1 / (1 - p)` in
//! training, the identity in evaluation. Masks come from the seeded default generator's
//! counter-based stream (`Generator::keep_mask`): drawn on the input's device, and the same on
//! the CPU and a GPU for the same seed.

use sinew_tensor::{Error, Result, Tensor, with_default_generator};

use crate::{Mode, Module, Visit, summary};

/// Zeroes elements with probability `p` and scales the rest by `1 / (1 - p)` when `training`
/// (PyTorch's `F.dropout`). `mask_shape` broadcasts over `x` (channel dropout uses `[n, c, 1,
/// 1]`).
fn dropout_with_mask(x: &Tensor, p: f64, training: bool, mask_shape: Vec<usize>) -> Result<Tensor> {
    if !(0.0..=1.0).contains(&p) {
        return Err(Error::invalid(
            "dropout",
            format!("probability has to be between 0 and 1, but got {p}"),
        ));
    }
    if !training || p == 0.0 {
        return Ok(x.clone());
    }
    if p == 1.0 {
        return x.mul_scalar(0.0);
    }
    let keep = with_default_generator(|g| g.keep_mask(mask_shape, 1.0 - p, x.dtype(), x.device()))?;
    x.mul(&keep.mul_scalar(1.0 / (1.0 - p))?)
}

/// Element dropout (PyTorch's `F.dropout`).
pub fn dropout(x: &Tensor, p: f64, training: bool) -> Result<Tensor> {
    dropout_with_mask(x, p, training, x.dims().to_vec())
}

/// Channel dropout of `[n, c, ...]` (PyTorch's `F.dropout2d`).
pub fn dropout2d(x: &Tensor, p: f64, training: bool) -> Result<Tensor> {
    if x.rank() < 2 {
        return Err(Error::invalid(
            "dropout2d",
            format!("expects [n, c, ...], got {}", x.shape()),
        ));
    }
    let mut shape = vec![1; x.rank()];
    shape[..2].copy_from_slice(&x.dims()[..2]);
    dropout_with_mask(x, p, training, shape)
}

/// Element dropout layer.
pub struct Dropout {
    /// Drop probability (default 0.5).
    pub p: f64,
    /// Training flag.
    pub mode: Mode,
}

impl Dropout {
    /// Drop probability `p`.
    pub fn new(p: f64) -> Self {
        Dropout {
            p,
            mode: Mode::new(),
        }
    }
}

impl Module for Dropout {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let y = dropout(x, self.p, self.mode.is_training())?;
        summary::note(self, &y);
        Ok(y)
    }
    fn visit<'a>(&'a self, v: &mut Visit<'a, '_>) {
        v.mode(&self.mode);
    }
}

/// Channel dropout layer.
pub struct Dropout2d {
    /// Drop probability (default 0.5).
    pub p: f64,
    /// Training flag.
    pub mode: Mode,
}

impl Dropout2d {
    /// Drop probability `p`.
    pub fn new(p: f64) -> Self {
        Dropout2d {
            p,
            mode: Mode::new(),
        }
    }
}

impl Module for Dropout2d {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let y = dropout2d(x, self.p, self.mode.is_training())?;
        summary::note(self, &y);
        Ok(y)
    }
    fn visit<'a>(&'a self, v: &mut Visit<'a, '_>) {
        v.mode(&self.mode);
    }
}
