//! Activations as modules (PyTorch's `nn.ReLU`, ...) and the functional forms Tensor lacks.

use sinew_tensor::{Result, Tensor};

use crate::{Module, summary};

/// `x * sigmoid(x)` (PyTorch's `F.silu`).
pub fn silu(x: &Tensor) -> Result<Tensor> {
    x.mul(&x.sigmoid()?)
}

/// GELU with the tanh approximation (`approximate='tanh'`):
/// `0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))`.
pub fn gelu_tanh(x: &Tensor) -> Result<Tensor> {
    let inner = x
        .add(&x.powf(3.0)?.mul_scalar(0.044715)?)?
        .mul_scalar((2.0 / std::f64::consts::PI).sqrt())?;
    x.mul(&inner.tanh()?.add_scalar(1.0)?)?.mul_scalar(0.5)
}

/// `max(x, 0)` (NaN kept). In a [`Sequential`](crate::Sequential) it runs inside the layer
/// before it ([`Module::forward_relu`]).
#[derive(Debug, Clone, Copy, Default)]
pub struct ReLU;

impl Module for ReLU {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let y = x.relu()?;
        summary::note(self, &y);
        Ok(y)
    }

    fn forward_relu(&self, x: &Tensor) -> Result<Tensor> {
        // ReLU is idempotent.
        self.forward(x)
    }

    fn is_relu(&self) -> bool {
        true
    }
}

plain_activation! {
    /// `1 / (1 + exp(-x))`.
    Sigmoid => |x| x.sigmoid();
    /// Hyperbolic tangent.
    Tanh => |x| x.tanh();
    /// `x * sigmoid(x)` (also called swish).
    SiLU => |x| silu(x);
    /// Returns its input.
    Identity => |x| Ok::<Tensor, sinew_tensor::Error>(x.clone());
}

/// `x` for `x > 0`, else `negative_slope * x` (default slope 0.01).
#[derive(Debug, Clone, Copy)]
pub struct LeakyReLU {
    /// Slope for negative inputs.
    pub negative_slope: f64,
}

impl Default for LeakyReLU {
    fn default() -> Self {
        LeakyReLU {
            negative_slope: 0.01,
        }
    }
}

impl Module for LeakyReLU {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let y = x.leaky_relu(self.negative_slope)?;
        summary::note(self, &y);
        Ok(y)
    }
}

/// `x` for `x > 0`, else `alpha * (exp(x) - 1)` (default alpha 1).
#[derive(Debug, Clone, Copy)]
pub struct ELU {
    /// Scale of the negative part.
    pub alpha: f64,
}

impl Default for ELU {
    fn default() -> Self {
        ELU { alpha: 1.0 }
    }
}

impl Module for ELU {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let y = x.elu(self.alpha)?;
        summary::note(self, &y);
        Ok(y)
    }
}

/// GELU: exact (`x * Phi(x)`, the default) or the tanh approximation.
#[derive(Debug, Clone, Copy, Default)]
pub struct GELU {
    /// Use the tanh approximation (PyTorch's `approximate='tanh'`).
    pub tanh_approximation: bool,
}

impl Module for GELU {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let y = if self.tanh_approximation {
            gelu_tanh(x)?
        } else {
            x.gelu()?
        };
        summary::note(self, &y);
        Ok(y)
    }
}

/// `log(1 + exp(beta x)) / beta`, linear above `threshold` (defaults beta 1, threshold 20).
#[derive(Debug, Clone, Copy)]
pub struct Softplus {
    /// Sharpness.
    pub beta: f64,
    /// Above `beta * x > threshold` the output is `x`.
    pub threshold: f64,
}

impl Default for Softplus {
    fn default() -> Self {
        Softplus {
            beta: 1.0,
            threshold: 20.0,
        }
    }
}

impl Module for Softplus {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let y = x.softplus(self.beta, self.threshold)?;
        summary::note(self, &y);
        Ok(y)
    }
}

/// Softmax along `dim`.
#[derive(Debug, Clone, Copy)]
pub struct Softmax {
    /// The dim that sums to 1.
    pub dim: isize,
}

impl Module for Softmax {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let y = x.softmax(self.dim)?;
        summary::note(self, &y);
        Ok(y)
    }
}

/// Softmax over the channels of `[n, c, h, w]` or `[c, h, w]` (PyTorch's `nn.Softmax2d`: dim
/// -3).
#[derive(Debug, Clone, Copy, Default)]
pub struct Softmax2d;

impl Module for Softmax2d {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        if !matches!(x.rank(), 3 | 4) {
            return Err(sinew_tensor::Error::invalid(
                "Softmax2d",
                format!("expects [n, c, h, w] or [c, h, w], got {}", x.shape()),
            ));
        }
        let y = x.softmax(-3)?;
        summary::note(self, &y);
        Ok(y)
    }
}

/// Log-softmax along `dim`.
#[derive(Debug, Clone, Copy)]
pub struct LogSoftmax {
    /// The dim normalised over.
    pub dim: isize,
}

impl Module for LogSoftmax {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let y = x.log_softmax(self.dim)?;
        summary::note(self, &y);
        Ok(y)
    }
}
