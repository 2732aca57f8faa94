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
    // The amount a negative pad crops (`i64::MIN` included: its magnitude fits in u64).
    let cut = |v: i64| if v < 0 { v.unsigned_abs() } else { 0 };
    let crop = |t: Tensor, dim: isize, before: i64, after: i64| -> Result<Tensor> {
        let len = t.dim(dim)?;
        let cut_total = u128::from(cut(before)) + u128::from(cut(after));
        let keep = u128::try_from(len)
            .ok()
            .and_then(|len| len.checked_sub(cut_total))
            .ok_or_else(|| {
                Error::invalid("pad", format!("cropping {cut_total} of a dim of {len}"))
            })?;
        // Both fit: `keep <= len` and the cut before is at most `len - keep`.
        t.narrow(dim, cut(before) as usize, keep as usize)
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

#[cfg(test)]
mod tests {
    use sinew_tensor::{DType, Device, Tensor};

    use super::constant_pad2d;

    #[test]
    fn extreme_pad_amounts_are_errors_not_panics() {
        let x = Tensor::zeros([1, 1, 2, 2], DType::F32, &Device::cpu()).unwrap();
        // i64::MIN's negation overflows i64 (a panic in debug builds, no crop at all in
        // release); it crops 2^63 rows of 2.
        let err = constant_pad2d(&x, [0, 0, i64::MIN, 0], 0.0).unwrap_err();
        assert!(
            err.to_string()
                .contains("cropping 9223372036854775808 of a dim of 2")
        );
        let err = constant_pad2d(&x, [i64::MIN, i64::MIN, 0, 0], 0.0).unwrap_err();
        assert!(err.to_string().contains("cropping 18446744073709551616"));
        assert!(constant_pad2d(&x, [i64::MAX, 0, 0, 0], 0.0).is_err());
        // Cropping exactly everything leaves an empty dim, as in PyTorch.
        let empty = constant_pad2d(&x, [-1, -1, 0, 0], 0.0).unwrap();
        assert_eq!(empty.dims(), &[1, 1, 2, 0]);
    }
}
