//! Local response normalisation (PyTorch's `nn.LocalResponseNorm`, AlexNet's): each value of
//! `[n, c, ...]` divided by `(k + alpha * mean of the squares over a window of size channels
//! around its own)^beta`, the window zero-padded at the edges.

use sinew_tensor::{Error, PadMode, Result, Tensor};

use super::padding::pad;
use crate::{Module, summary};

/// `x / (k + alpha / size * sum_{c' in window(c)} x[c']^2)^beta` over the channels (dim 1) of
/// `x` (`[n, c, ...]`, 3 or more dims). The window of channel `c` runs from `c - size / 2` to
/// `c + (size - 1) / 2`, channels beyond the input's counting as zeros, and the sum is divided by
/// `size` whatever the overlap, as PyTorch's `F.local_response_norm` (an average pooling with
/// zero padding) has it. Built from differentiable ops: the gradient is autograd's.
pub fn local_response_norm(
    x: &Tensor,
    size: usize,
    alpha: f64,
    beta: f64,
    k: f64,
) -> Result<Tensor> {
    const OP: &str = "local_response_norm";
    if x.rank() < 3 {
        return Err(Error::invalid(
            OP,
            format!(
                "expects an input of 3 or more dims ([n, c, ...]), got {}",
                x.shape()
            ),
        ));
    }
    if size == 0 {
        return Err(Error::invalid(OP, "size must be at least 1"));
    }
    if x.elem_count() == 0 {
        return Ok(x.clone());
    }
    let channels = x.dims()[1];
    // Offsets of `channels` or more reach only padding: their zero terms are left out, which
    // changes no value and keeps the work at most `2 channels - 1` slices for any `size`.
    let reach = channels - 1;
    let (before, after) = ((size / 2).min(reach), ((size - 1) / 2).min(reach));
    let mut amounts = vec![0i64; 2 * (x.rank() - 2)];
    // Both are below `channels`, an element count, so they fit an i64.
    amounts.extend([before as i64, after as i64]);
    let squares = pad(&x.mul(x)?, &amounts, PadMode::Constant(0.0))?;
    let mut sum = squares.narrow(1, 0, channels)?;
    for offset in 1..=before + after {
        sum = sum.add(&squares.narrow(1, offset, channels)?)?;
    }
    let scale = sum
        .div_scalar(size as f64)?
        .mul_scalar(alpha)?
        .add_scalar(k)?
        .powf(beta)?;
    x.div(&scale)
}

/// PyTorch's `nn.LocalResponseNorm(size, alpha=1e-4, beta=0.75, k=1.0)`: see
/// [`local_response_norm`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LocalResponseNorm {
    /// Channels in each window.
    pub size: usize,
    /// Multiplier of the window's mean square (default 1e-4).
    pub alpha: f64,
    /// Exponent (default 0.75).
    pub beta: f64,
    /// Additive constant (default 1).
    pub k: f64,
}

impl LocalResponseNorm {
    /// Windows of `size` channels, with PyTorch's defaults for the rest.
    pub fn new(size: usize) -> Self {
        LocalResponseNorm {
            size,
            alpha: 1e-4,
            beta: 0.75,
            k: 1.0,
        }
    }
}

impl Module for LocalResponseNorm {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let y = local_response_norm(x, self.size, self.alpha, self.beta, self.k)?;
        summary::note(self, &y);
        Ok(y)
    }
}

#[cfg(test)]
mod tests {
    use sinew_tensor::{DType, Device, Generator};

    use super::*;

    #[test]
    fn bad_ranks_and_an_empty_window_are_errors_and_empty_inputs_pass() -> Result<()> {
        let cpu = Device::cpu();
        let flat = Tensor::ones([2, 3], DType::F32, &cpu)?;
        let err = local_response_norm(&flat, 3, 1e-4, 0.75, 1.0).unwrap_err();
        assert!(err.to_string().contains("3 or more dims"), "{err}");
        let x = Tensor::ones([1, 3, 2], DType::F32, &cpu)?;
        let err = local_response_norm(&x, 0, 1e-4, 0.75, 1.0).unwrap_err();
        assert!(err.to_string().contains("size must be at least 1"), "{err}");
        let empty = Tensor::ones([0, 3, 2], DType::F32, &cpu)?;
        assert_eq!(LocalResponseNorm::new(3).forward(&empty)?.dims(), [0, 3, 2]);
        Ok(())
    }

    /// A window of `2 c - 1` channels or more covers every channel for every position: the
    /// result is `x / (k + alpha / size * sum over all channels of x^2)^beta`, for a window of
    /// 11 over 3 channels and for `usize::MAX` (answered at once, not in `size` steps).
    #[test]
    fn a_window_wider_than_the_channels_sums_them_all() -> Result<()> {
        let x = Generator::new(5).randn([2, 3, 4], DType::F64, &Device::cpu())?;
        let all = x.square()?.sum(&[1], true)?;
        for size in [11, usize::MAX] {
            let (alpha, beta, k) = (0.7, 0.75, 1.5);
            let want = x.div(
                &all.div_scalar(size as f64)?
                    .mul_scalar(alpha)?
                    .add_scalar(k)?
                    .powf(beta)?,
            )?;
            let got = local_response_norm(&x, size, alpha, beta, k)?;
            let (got, want) = (got.to_vec::<f64>()?, want.to_vec::<f64>()?);
            for (g, w) in got.iter().zip(&want) {
                assert!(
                    (g - w).abs() <= 1e-14 * w.abs().max(1.0),
                    "{size}: {g} vs {w}"
                );
            }
        }
        Ok(())
    }
}
