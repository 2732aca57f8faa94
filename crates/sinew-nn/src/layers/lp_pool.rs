//! Power-average pooling (PyTorch's `nn.LPPool1d` / `nn.LPPool2d`, `F.lp_pool1d/2d`): each
//! window's `(sum x^p)^(1/p)`, composed as PyTorch composes it: an average pooling of `x^p`,
//! `sign(s) * relu(|s|)`, times the window's size, to the power `1/p`. Windows never pad.

use sinew_tensor::{Error, Result, Tensor};

use super::pool::{PoolOptions, avg_pool2d};
use crate::{Module, summary};

/// PyTorch's `F.lp_pool2d` over `[n, c, h, w]` (or `[c, h, w]`): windows `kernel`, `stride`
/// (default the kernel), no padding, `ceil_mode` as in average pooling. `norm_type` must be
/// finite and nonzero (1 is sum pooling, 2 the windows' Euclidean norms).
pub fn lp_pool2d(
    x: &Tensor,
    norm_type: f64,
    kernel: (usize, usize),
    stride: Option<(usize, usize)>,
    ceil_mode: bool,
) -> Result<Tensor> {
    const OP: &str = "lp_pool";
    if !norm_type.is_finite() || norm_type == 0.0 {
        return Err(Error::invalid(
            OP,
            format!("norm_type must be finite and nonzero, got {norm_type}"),
        ));
    }
    let taps = kernel
        .0
        .checked_mul(kernel.1)
        .ok_or_else(|| Error::Overflow {
            op: OP,
            what: format!("the window {kernel:?}"),
        })?;
    let options = PoolOptions {
        kernel,
        stride,
        ceil_mode,
        ..PoolOptions::new(1)
    };
    let mean = avg_pool2d(&x.powf(norm_type)?, &options)?;
    mean.sign()?
        .mul(&mean.abs()?.relu()?)?
        .mul_scalar(taps as f64)?
        .powf(1.0 / norm_type)
}

/// PyTorch's `F.lp_pool1d` over `[n, c, l]` (or `[c, l]`): [`lp_pool2d`] with a window of
/// height 1.
pub fn lp_pool1d(
    x: &Tensor,
    norm_type: f64,
    kernel: usize,
    stride: Option<usize>,
    ceil_mode: bool,
) -> Result<Tensor> {
    let stride = stride.map(|s| (1, s));
    lp_pool2d(&x.unsqueeze(-2)?, norm_type, (1, kernel), stride, ceil_mode)?.squeeze(-2)
}

/// PyTorch's `nn.LPPool2d`: see [`lp_pool2d`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LPPool2d {
    /// The power `p`.
    pub norm_type: f64,
    /// Window (height, width).
    pub kernel_size: (usize, usize),
    /// Step between windows (default `None`: the kernel).
    pub stride: Option<(usize, usize)>,
    /// Round the output size up (default false).
    pub ceil_mode: bool,
}

impl LPPool2d {
    /// Power `norm_type` over `kernel_size` windows, stride the kernel.
    pub fn new(norm_type: f64, kernel_size: (usize, usize)) -> Self {
        LPPool2d {
            norm_type,
            kernel_size,
            stride: None,
            ceil_mode: false,
        }
    }
}

impl Module for LPPool2d {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let (p, k, s) = (self.norm_type, self.kernel_size, self.stride);
        let y = lp_pool2d(x, p, k, s, self.ceil_mode)?;
        summary::note(self, &y);
        Ok(y)
    }
}

/// PyTorch's `nn.LPPool1d`: see [`lp_pool1d`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LPPool1d {
    /// The power `p`.
    pub norm_type: f64,
    /// Window length.
    pub kernel_size: usize,
    /// Step between windows (default `None`: the kernel).
    pub stride: Option<usize>,
    /// Round the output size up (default false).
    pub ceil_mode: bool,
}

impl LPPool1d {
    /// Power `norm_type` over windows of `kernel_size`, stride the kernel.
    pub fn new(norm_type: f64, kernel_size: usize) -> Self {
        LPPool1d {
            norm_type,
            kernel_size,
            stride: None,
            ceil_mode: false,
        }
    }
}

impl Module for LPPool1d {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let (p, k, s) = (self.norm_type, self.kernel_size, self.stride);
        let y = lp_pool1d(x, p, k, s, self.ceil_mode)?;
        summary::note(self, &y);
        Ok(y)
    }
}

#[cfg(test)]
mod tests {
    use sinew_tensor::{DType, Device};

    use super::*;

    /// p = 2 gives each window's Euclidean norm: [3, 4] -> 5; p = 1 of positives their sum.
    #[test]
    fn the_power_average_is_the_windows_norm() -> Result<()> {
        let x = Tensor::from_vec(vec![3.0f64, 4.0, 1.0, 2.0], [1, 1, 4])?;
        let norms = lp_pool1d(&x, 2.0, 2, None, false)?.to_vec::<f64>()?;
        assert!((norms[0] - 5.0).abs() < 1e-12 && (norms[1] - 5f64.sqrt()).abs() < 1e-12);
        let sums = lp_pool1d(&x, 1.0, 2, Some(1), false)?.to_vec::<f64>()?;
        assert_eq!(sums, [7.0, 5.0, 3.0]);
        let zero = Tensor::zeros([1, 1, 2, 2], DType::F32, &Device::cpu())?;
        let err = lp_pool2d(&zero, 0.0, (2, 2), None, false).unwrap_err();
        assert!(
            err.to_string()
                .contains("norm_type must be finite and nonzero"),
            "{err}"
        );
        Ok(())
    }
}
