//! The rest of PyTorch's activation modules, each composed from tensor ops (so autograd, every
//! dtype and every device come with them): `Mish`, `SELU`, `CELU`, `Softsign`, `Tanhshrink`,
//! `LogSigmoid`, `GLU` and `Softmin`.

use sinew_tensor::{Error, Result, Tensor};

use crate::{Module, summary};

/// SELU's `alpha` (PyTorch's constant).
pub const SELU_ALPHA: f64 = 1.673_263_242_354_377_284_817_042_991_671_7;
/// SELU's `scale` (PyTorch's constant).
pub const SELU_SCALE: f64 = 1.050_700_987_355_480_493_419_334_985_294_6;

/// `x * tanh(softplus(x))`. PyTorch: `F.mish`.
pub fn mish(x: &Tensor) -> Result<Tensor> {
    x.mul(&x.softplus(1.0, 20.0)?.tanh()?)
}

/// `scale * elu(x, alpha)` with PyTorch's constants ([`SELU_SCALE`], [`SELU_ALPHA`]).
/// PyTorch: `F.selu`.
pub fn selu(x: &Tensor) -> Result<Tensor> {
    x.elu(SELU_ALPHA)?.mul_scalar(SELU_SCALE)
}

/// `max(0, x) + min(0, alpha * (exp(x / alpha) - 1))`: `alpha * elu(x / alpha)`.
/// PyTorch: `F.celu` (default alpha 1).
pub fn celu(x: &Tensor, alpha: f64) -> Result<Tensor> {
    if alpha == 0.0 || !alpha.is_finite() {
        return Err(Error::invalid(
            "celu",
            format!("alpha must be finite and nonzero, got {alpha}"),
        ));
    }
    x.div_scalar(alpha)?.elu(1.0)?.mul_scalar(alpha)
}

/// `x / (1 + |x|)`. PyTorch: `F.softsign`.
pub fn softsign(x: &Tensor) -> Result<Tensor> {
    x.div(&x.abs()?.add_scalar(1.0)?)
}

/// `x - tanh(x)`. PyTorch: `F.tanhshrink`.
pub fn tanhshrink(x: &Tensor) -> Result<Tensor> {
    x.sub(&x.tanh()?)
}

/// `log(sigmoid(x))` as `-softplus(-x)`, finite for large negative `x`. PyTorch:
/// `F.logsigmoid`.
pub fn logsigmoid(x: &Tensor) -> Result<Tensor> {
    x.neg()?.softplus(1.0, 20.0)?.neg()
}

/// Gated linear unit: `a * sigmoid(b)` for the halves `a`, `b` of `dim` (its size must be
/// even). PyTorch: `F.glu` (default dim -1).
pub fn glu(x: &Tensor, dim: isize) -> Result<Tensor> {
    let size = x.dim(dim)?;
    if size % 2 != 0 {
        return Err(Error::invalid(
            "glu",
            format!(
                "halves dim {dim} of shape {}, whose size {size} is odd",
                x.shape()
            ),
        ));
    }
    let half = size / 2;
    x.narrow(dim, 0, half)?
        .mul(&x.narrow(dim, half, half)?.sigmoid()?)
}

/// `softmax(-x)` over `dim`. PyTorch: `F.softmin`.
pub fn softmin(x: &Tensor, dim: isize) -> Result<Tensor> {
    x.neg()?.softmax(dim)
}

plain_activation! {
    /// [`mish`].
    Mish => |x| mish(x);
    /// [`selu`].
    SELU => |x| selu(x);
    /// [`softsign`].
    Softsign => |x| softsign(x);
    /// [`tanhshrink`].
    Tanhshrink => |x| tanhshrink(x);
    /// [`logsigmoid`].
    LogSigmoid => |x| logsigmoid(x);
}

activation_modules! {
    /// [`celu`] (default alpha 1).
    CELU {
        /// Scale of the negative part.
        alpha: f64 = 1.0
    } => |s, x| celu(x, s.alpha);
    /// [`glu`] (default dim -1).
    GLU {
        /// The dim that is halved.
        dim: isize = -1
    } => |s, x| glu(x, s.dim);
}

/// [`softmin`] over `dim` (PyTorch's `nn.Softmin(dim)`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Softmin {
    /// The dim that sums to 1.
    pub dim: isize,
}

impl Module for Softmin {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let y = softmin(x, self.dim)?;
        summary::note(self, &y);
        Ok(y)
    }
}
