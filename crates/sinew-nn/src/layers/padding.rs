//! Padding: `F::pad` (PyTorch's order of amounts, last dim first, in every mode: constant,
//! reflect, replicate, circular; negative constant amounts crop) and its layers
//! (`ConstantPad2d`, `ZeroPad2d`, `ReflectionPad1d/2d`, `ReplicationPad1d/2d`,
//! `CircularPad1d/2d`).

use sinew_tensor::{Error, PadMode, Result, Tensor};

use crate::{Module, summary};

/// Pads the last `pad.len() / 2` dims of `x` with `mode`: `pad` lists `(before, after)` of the
/// last dim first, then the one before it, as PyTorch's `F.pad`. Negative constant amounts
/// crop; the other modes take amounts of at least 0 (reflect below the size, circular at most
/// the size).
pub fn pad(x: &Tensor, pad: &[i64], mode: PadMode) -> Result<Tensor> {
    if !pad.len().is_multiple_of(2) || pad.len() / 2 > x.rank() {
        return Err(Error::invalid(
            "pad",
            format!(
                "{} amounts do not pair up over the dims of {}",
                pad.len(),
                x.shape()
            ),
        ));
    }
    let k = pad.len() / 2;
    // (dim, before, after), outermost padded dim first.
    let pairs: Vec<(usize, i64, i64)> = (0..k)
        .rev()
        .map(|i| (x.rank() - 1 - i, pad[2 * i], pad[2 * i + 1]))
        .collect();
    if !matches!(mode, PadMode::Constant(_)) && pad.iter().any(|&v| v < 0) {
        return Err(Error::invalid(
            "pad",
            format!("{mode:?} padding takes no negative amounts, got {pad:?}"),
        ));
    }
    // The amount a negative pad crops (`i64::MIN` included: its magnitude fits in u64).
    let cut = |v: i64| if v < 0 { v.unsigned_abs() } else { 0 };
    let mut cropped = x.clone();
    for &(d, before, after) in &pairs {
        let len = cropped.dims()[d];
        let cut_total = u128::from(cut(before)) + u128::from(cut(after));
        let keep = u128::try_from(len)
            .ok()
            .and_then(|len| len.checked_sub(cut_total))
            .ok_or_else(|| {
                Error::invalid("pad", format!("cropping {cut_total} of a dim of {len}"))
            })?;
        // Both fit: `keep <= len` and the cut before is at most `len - keep`.
        if keep != len as u128 {
            cropped = cropped.narrow(d as isize, cut(before) as usize, keep as usize)?;
        }
    }
    let pos = |v: i64| usize::try_from(v.max(0)).unwrap_or(usize::MAX);
    let amounts: Vec<(usize, usize)> = pairs.iter().map(|&(_, b, a)| (pos(b), pos(a))).collect();
    cropped.pad(&amounts, mode)
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
    pad(x, &pads, PadMode::Constant(value))
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

/// Declares padding layers of one mode over the last `N / 2` dims.
macro_rules! padding_layers {
    ($($(#[$doc:meta])* $name:ident, $n:literal, $mode:expr;)*) => {
        $(
            $(#[$doc])*
            #[derive(Debug, Clone, Copy, PartialEq, Eq)]
            pub struct $name {
                /// `(before, after)` of the last dim first, as PyTorch lists them.
                pub padding: [i64; $n],
            }

            impl $name {
                /// Pads by `padding`.
                pub fn new(padding: [i64; $n]) -> Self {
                    $name { padding }
                }
            }

            impl Module for $name {
                fn forward(&self, x: &Tensor) -> Result<Tensor> {
                    let y = pad(x, &self.padding, $mode)?;
                    summary::note(self, &y);
                    Ok(y)
                }
            }
        )*
    };
}

padding_layers! {
    /// Mirror padding of the last dim, `(left, right)` (`nn.ReflectionPad1d`).
    ReflectionPad1d, 2, PadMode::Reflect;
    /// Mirror padding of the last two dims, `(left, right, top, bottom)` (`nn.ReflectionPad2d`).
    ReflectionPad2d, 4, PadMode::Reflect;
    /// Edge padding of the last dim, `(left, right)` (`nn.ReplicationPad1d`).
    ReplicationPad1d, 2, PadMode::Replicate;
    /// Edge padding of the last two dims, `(left, right, top, bottom)` (`nn.ReplicationPad2d`).
    ReplicationPad2d, 4, PadMode::Replicate;
    /// Wrap-around padding of the last dim, `(left, right)` (`nn.CircularPad1d`).
    CircularPad1d, 2, PadMode::Circular;
    /// Wrap-around padding of the last two dims, `(left, right, top, bottom)`
    /// (`nn.CircularPad2d`).
    CircularPad2d, 4, PadMode::Circular;
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
