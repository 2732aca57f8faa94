//! Adafactor with PyTorch's formulas (`torch.optim.Adafactor`): a matrix keeps its second
//! moment factored, as a running mean of its squared gradients along each row and each column
//! (memory `rows + cols` instead of `rows * cols`), a vector keeps it whole; the step is
//! relative to the parameter's size and clipped by the update's root mean square.

use serde::{Deserialize, Serialize};
use sinew_tensor::{AdafactorStep, DType, Error, Parameter, Result, Tensor};

use crate::checks::{at_least, at_most, non_negative};
use crate::optimizer::{Optim, Slot, UpdateRule};
use crate::python::{py_max, py_min};

/// Adafactor's options, with PyTorch's defaults.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AdafactorConfig {
    /// Learning rate: the relative step size caps at `min(lr, 1 / sqrt(step))` (default 1e-2).
    pub lr: f64,
    /// The second moment's decay exponent: its weight at step `t` is `t^beta2_decay`
    /// (default -0.8; at most 0).
    pub beta2_decay: f64,
    /// `(eps1, eps2)`: the floor of the second moment's estimate (default `None`: the
    /// parameter dtype's machine epsilon) and of the parameter's root mean square in the step
    /// size (default 1e-3).
    pub eps: (Option<f64>, f64),
    /// The clipping threshold of the update's root mean square (default 1; at least 1).
    pub d: f64,
    /// Decoupled weight decay: `p *= 1 - lr * weight_decay` (default 0).
    pub weight_decay: f64,
    /// Maximise instead (default false).
    pub maximize: bool,
}

impl Default for AdafactorConfig {
    fn default() -> Self {
        AdafactorConfig {
            lr: 1e-2,
            beta2_decay: -0.8,
            eps: (None, 1e-3),
            d: 1.0,
            weight_decay: 0.0,
            maximize: false,
        }
    }
}

impl AdafactorConfig {
    /// PyTorch's defaults with learning rate `lr`.
    pub fn new(lr: f64) -> Self {
        AdafactorConfig {
            lr,
            ..Default::default()
        }
    }

    /// With decoupled weight decay `weight_decay`.
    pub fn weight_decay(mut self, weight_decay: f64) -> Self {
        self.weight_decay = weight_decay;
        self
    }
}

/// Adafactor's rule (PyTorch's `_single_tensor_adafactor`): at step `t`, with
/// `beta = t^beta2_decay`, a matrix's (or batch of matrices') row and column second moments
/// follow `row_var.lerp_(mean(g^2, -1), beta)` and `col_var.lerp_(mean(g^2, -2), beta)`, and the
/// estimate is `row_var @ col_var / max(mean(row_var), eps1)`; a vector's `variance` follows
/// `lerp_(g^2, beta)`. The update `u = g / sqrt(max(estimate, eps1^2))` moves the parameter by
/// `-max(eps2, rms(p)) * min(lr, 1/sqrt(t)) / max(1, rms(u) / d) * u`.
pub struct AdafactorRule;
/// Adafactor (Shazeer and Stern).
pub type Adafactor = Optim<AdafactorRule>;

/// Adafactor over named parameters.
pub fn adafactor(params: Vec<(String, Parameter)>, config: AdafactorConfig) -> Adafactor {
    Optim::new(params, config)
}

/// The machine epsilon of `dtype` (PyTorch's `torch.finfo(dtype).eps`).
fn machine_epsilon(dtype: DType) -> Result<f64> {
    match dtype {
        DType::F64 => Ok(f64::EPSILON),
        DType::F32 => Ok(f64::from(f32::EPSILON)),
        DType::F16 => Ok(2f64.powi(-10)),
        DType::BF16 => Ok(2f64.powi(-7)),
        other => Err(Error::invalid(
            "Adafactor",
            format!("parameters must be floats, not {other:?}"),
        )),
    }
}

/// `t.norm(2) / (numel^0.5 * scale)`: the root mean square of `t` over `scale`, in PyTorch's
/// order of operations.
fn rms_over(t: &Tensor, scale: f64) -> Result<f64> {
    let norm = t.norm(2.0, &[], false)?.item()?;
    Ok(norm / ((t.elem_count() as f64).powf(0.5) * scale))
}

/// The mean of `g^2` along `dim`, kept (`vector_norm(g, dim).square_().div_(size)`).
fn mean_square(g: &Tensor, dim: isize, size: usize) -> Result<Tensor> {
    g.norm(2.0, &[dim], true)?.square()?.div_scalar(size as f64)
}

/// The step as the backend's kernels ([`Tensor::fused_adafactor_`]: the GPU's three launches,
/// no norm read back), with the scalars computed here as [`AdafactorRule::update`] computes
/// them; `false` where the backend has none.
fn fused(
    c: &AdafactorConfig,
    param: &Tensor,
    grad: &Tensor,
    slot: &Slot<'_>,
    (beta, rho, eps1): (f64, f64, f64),
) -> Result<bool> {
    if !param.device().backend().fuses_adafactor(param.dtype()) {
        return Ok(false);
    }
    let step = AdafactorStep {
        beta,
        rho,
        eps1,
        eps2: c.eps.1,
        d: c.d,
        shrink: if c.weight_decay != 0.0 {
            1.0 - c.lr * c.weight_decay
        } else {
            1.0
        },
        maximize: c.maximize,
    };
    let buffers = if param.rank() > 1 {
        vec![slot.buffer("row_var")?, slot.buffer("col_var")?]
    } else {
        vec![slot.buffer("variance")?]
    };
    param.fused_adafactor_(&step, &buffers, grad)
}

impl UpdateRule for AdafactorRule {
    type Config = AdafactorConfig;
    const NAME: &'static str = "Adafactor";
    fn lr(c: &AdafactorConfig) -> f64 {
        c.lr
    }
    fn set_lr(c: &mut AdafactorConfig, lr: f64) {
        c.lr = lr;
    }
    fn check(c: &AdafactorConfig) -> Result<()> {
        non_negative("Adafactor", "learning rate", c.lr)?;
        at_most("Adafactor", "beta2_decay", c.beta2_decay, 0.0)?;
        if let Some(eps1) = c.eps.0 {
            non_negative("Adafactor", "eps.0", eps1)?;
        }
        non_negative("Adafactor", "eps.1", c.eps.1)?;
        at_least("Adafactor", "d", c.d, 1.0)?;
        non_negative("Adafactor", "weight_decay", c.weight_decay)
    }
    fn buffers(_: &AdafactorConfig) -> Vec<(&'static str, f64)> {
        vec![("row_var", 0.0), ("col_var", 0.0), ("variance", 0.0)]
    }
    fn buffer_dims(_: &AdafactorConfig, name: &str, dims: &[usize]) -> Option<Vec<usize>> {
        let n = dims.len();
        let mut factor = dims.to_vec();
        match (name, n > 1) {
            ("row_var", true) => factor[n - 1] = 1,
            ("col_var", true) => factor[n - 2] = 1,
            ("variance", false) => {}
            _ => return None,
        }
        Some(factor)
    }
    fn scratch(_: &AdafactorConfig) -> usize {
        0
    }
    fn update(c: &AdafactorConfig, param: &Tensor, grad: &Tensor, slot: Slot<'_>) -> Result<()> {
        let eps1 = match c.eps.0 {
            Some(eps1) => eps1,
            None => machine_epsilon(param.dtype())?,
        };
        let t = slot.step as f64;
        let beta = t.powf(c.beta2_decay);
        let rho = py_min(c.lr, 1.0 / t.powf(0.5));
        if fused(c, param, grad, &slot, (beta, rho, eps1))? {
            return Ok(());
        }
        let grad = if c.maximize {
            grad.neg()?
        } else {
            grad.clone()
        };
        // (PyTorch divides by `numel ** 0.5` alone here: `* 1.0` is exact.)
        let alpha = py_max(c.eps.1, rms_over(param, 1.0)?) * rho;
        if c.weight_decay != 0.0 {
            param.mul_scalar_(1.0 - c.lr * c.weight_decay)?;
        }
        let dims = grad.dims().to_vec();
        let estimate = if dims.len() > 1 {
            let (rows, cols) = (dims[dims.len() - 2], dims[dims.len() - 1]);
            let (row_var, col_var) = (slot.buffer("row_var")?, slot.buffer("col_var")?);
            row_var.lerp_(&mean_square(&grad, -1, cols)?, beta)?;
            col_var.lerp_(&mean_square(&grad, -2, rows)?, beta)?;
            let floor = row_var.mean(&[-2], true)?.clamp(eps1, f64::INFINITY)?;
            row_var.matmul(col_var)?.div(&floor)?
        } else {
            let variance = slot.buffer("variance")?;
            variance.lerp_(&grad.mul(&grad)?, beta)?;
            variance.clone()
        };
        let update = estimate
            .clamp(eps1 * eps1, f64::INFINITY)?
            .rsqrt()?
            .mul(&grad)?;
        let denom = py_max(1.0, rms_over(&update, c.d)?);
        param.axpy_(-alpha / denom, &update)
    }
}
