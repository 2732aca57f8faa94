//! Shape layers: `Flatten` and constant padding (`ZeroPad2d`, `ConstantPad2d`; negative amounts
//! crop, as in PyTorch).

use sinew_tensor::{Error, PadMode, Result, Tensor};

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

/// Pads (or, for negative amounts, crops) the last two dims: `(left, right, top, bottom)`, the
/// order of PyTorch's `F.pad`, with `value`.
pub fn constant_pad2d(x: &Tensor, pads: [i64; 4], value: f64) -> Result<Tensor> {
    if x.rank() < 2 {
        return Err(Error::invalid(
            "pad",
            format!("expects at least 2 dims, got {}", x.shape()),
        ));
    }
    let [left, right, top, bottom] = pads;
    let (hd, wd) = (x.rank() as isize - 2, x.rank() as isize - 1);
    let crop = |t: Tensor, dim: isize, before: i64, after: i64| -> Result<Tensor> {
        let len = t.dim(dim)?;
        let cut_before = (-before).max(0) as usize;
        let cut_after = (-after).max(0) as usize;
        let keep = len.checked_sub(cut_before + cut_after).ok_or_else(|| {
            Error::invalid(
                "pad",
                format!("cropping {} of a dim of {len}", cut_before + cut_after),
            )
        })?;
        t.narrow(dim, cut_before, keep)
    };
    let cropped = crop(crop(x.clone(), hd, top, bottom)?, wd, left, right)?;
    let pos = |v: i64| v.max(0) as usize;
    cropped.pad(
        &[(pos(top), pos(bottom)), (pos(left), pos(right))],
        PadMode::Constant(value),
    )
}

/// Constant padding of the last two dims (`nn.ConstantPad2d`); negative amounts crop.
#[derive(Debug, Clone, Copy)]
pub struct ConstantPad2d {
    /// `(left, right, top, bottom)`.
    pub padding: [i64; 4],
    /// Fill value.
    pub value: f64,
}

impl ConstantPad2d {
    /// Pads with `value`.
    pub fn new(padding: [i64; 4], value: f64) -> Self {
        ConstantPad2d { padding, value }
    }
}

impl Module for ConstantPad2d {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let y = constant_pad2d(x, self.padding, self.value)?;
        summary::note(self, &y);
        Ok(y)
    }
}

/// Zero padding of the last two dims (`nn.ZeroPad2d`).
#[derive(Debug, Clone, Copy)]
pub struct ZeroPad2d {
    /// `(left, right, top, bottom)`.
    pub padding: [i64; 4],
}

impl ZeroPad2d {
    /// Pads with zeros.
    pub fn new(padding: [i64; 4]) -> Self {
        ZeroPad2d { padding }
    }
}

impl Module for ZeroPad2d {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let y = constant_pad2d(x, self.padding, 0.0)?;
        summary::note(self, &y);
        Ok(y)
    }
}
