//! Adafactor's step as one backend call ([`Tensor::fused_adafactor_`]): PyTorch's
//! `torch.optim.Adafactor` update of one parameter, which reads two norms back to the host when
//! written as tensor ops (sinew-optim's `AdafactorRule`, the reference), run by a backend
//! without reading anything back (CUDA: three launches, `cuda/adafactor_step.cuh`).

use crate::{DType, Error, Result, Tensor};

/// Adafactor's step at step `t` on a parameter `p` with gradient `g` (`-g` when maximizing):
/// a matrix (or a batch of matrices, the last two dims) keeps its second moment factored,
/// `row_var = lerp(row_var, mean(g^2, -1), beta)` and `col_var = lerp(col_var, mean(g^2, -2),
/// beta)`, with the estimate `row_var col_var / max(mean(row_var, -2), eps1)`; a vector or
/// scalar keeps `variance = lerp(variance, g^2, beta)` as its estimate. Then
/// `u = g / sqrt(max(estimate, eps1^2))` and, after `p *= shrink`,
/// `p -= max(eps2, rms(p)) * rho / max(1, rms(u) / d) * u`, `rms(p)` taken before the shrink.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AdafactorStep {
    /// The second moment's weight this step, `t^beta2_decay`.
    pub beta: f64,
    /// The relative step size, `min(lr, 1 / sqrt(t))`.
    pub rho: f64,
    /// The floor of the second moment's estimate (its square floors the estimate itself).
    pub eps1: f64,
    /// The floor of the parameter's root mean square in the step size.
    pub eps2: f64,
    /// The clipping threshold of the update's root mean square.
    pub d: f64,
    /// Decoupled weight decay's factor, `1 - lr * weight_decay` (not applied when 1).
    pub shrink: f64,
    /// Ascend instead of descend (`-g`).
    pub maximize: bool,
}

impl AdafactorStep {
    /// The op's name (in errors).
    pub const NAME: &'static str = "fused_adafactor_";

    /// The state buffers' dims for a parameter of `dims`: `row_var` (the last dim 1) and
    /// `col_var` (the second-to-last 1) for a rank of 2 or more, else `variance` (the
    /// parameter's own).
    pub fn buffer_dims(dims: &[usize]) -> Vec<Vec<usize>> {
        let n = dims.len();
        if n < 2 {
            return vec![dims.to_vec()];
        }
        let (mut row, mut col) = (dims.to_vec(), dims.to_vec());
        row[n - 1] = 1;
        col[n - 2] = 1;
        vec![row, col]
    }
}

/// A parameter's shape as the kernels read it: `[batch, rows, cols]` for a factored one (the
/// leading dims flattened), `[1, 1, n]` otherwise.
fn adafactor_dims(dims: &[usize]) -> Option<[usize; 3]> {
    match dims {
        [] => Some([1, 1, 1]),
        [n] => Some([1, 1, *n]),
        [lead @ .., rows, cols] => {
            let batch = lead.iter().try_fold(1usize, |a, &d| a.checked_mul(d))?;
            Some([batch, *rows, *cols])
        }
    }
}

impl Tensor {
    /// Runs Adafactor's `step` on this parameter, its `buffers` (`[row_var, col_var]` for a
    /// rank of 2 or more, else `[variance]`, shaped as [`AdafactorStep::buffer_dims`] says) and
    /// its gradient `grad`, in place, without reading anything back to the host, when the
    /// device's backend has kernels for it and every tensor is a dense view of one float dtype
    /// and device in a storage of its own that autograd does not record. `Ok(false)`, with
    /// nothing written, otherwise: the caller then runs the step as tensor ops (sinew-optim
    /// does), which give the same values up to the order of the sums. Buffers of the wrong
    /// number or shape are an error.
    pub fn fused_adafactor_(
        &self,
        step: &AdafactorStep,
        buffers: &[&Tensor],
        grad: &Tensor,
    ) -> Result<bool> {
        let wanted = AdafactorStep::buffer_dims(self.dims());
        let shapes_fit = buffers.len() == wanted.len()
            && buffers.iter().zip(&wanted).all(|(b, w)| b.dims() == &w[..])
            && grad.dims() == self.dims();
        if !shapes_fit {
            return Err(Error::invalid(
                AdafactorStep::NAME,
                format!(
                    "a parameter of shape {} takes a gradient of its shape and buffers of dims \
                     {wanted:?}, got {} and {:?}",
                    self.shape(),
                    grad.shape(),
                    buffers
                        .iter()
                        .map(|b| b.dims().to_vec())
                        .collect::<Vec<_>>()
                ),
            ));
        }
        let (dtype, device) = (self.dtype(), self.device());
        let backend = device.backend();
        let fit = |t: &Tensor| {
            t.dtype() == dtype
                && t.device() == device
                && t.is_contiguous()
                && !(crate::is_grad_enabled() && t.requires_grad())
        };
        let operands_fit = std::iter::once(self)
            .chain(buffers.iter().copied())
            .all(fit);
        let Some(dims) = adafactor_dims(self.dims()) else {
            return Ok(false);
        };
        if !matches!(dtype, DType::F32 | DType::F64 | DType::F16 | DType::BF16)
            || !backend.fuses_adafactor(dtype)
            || !operands_fit
            || !fit(grad)
        {
            return Ok(false);
        }
        let mut dsts: Vec<&Tensor> = vec![self];
        dsts.extend(buffers);
        super::many::write_dense_runs(&dsts, &[grad], |views, g| {
            backend.fused_adafactor(step, views, g[0], dims)
        })
    }
}
