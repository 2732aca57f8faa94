//! [`GradScaler`]: loss scaling for f16 mixed precision, with PyTorch's semantics
//! (`torch.amp.GradScaler`).
//!
//! Small f16 gradients underflow to zero; multiplying the loss by a large scale before
//! `backward` keeps them representable. The scaler divides the gradients by the scale before
//! the optimizer step, skips the step when any gradient is inf or NaN (the scale was too large),
//! and adapts the scale: halved after an overflow, doubled after `growth_interval` clean steps.

use serde::{Deserialize, Serialize};
use sinew_tensor::{
    BackwardOptions, DType, DeferredScalar, Error, Parameter, Result, Tensor, no_grad,
};

use crate::Optimizer;

/// Options of a [`GradScaler`], with PyTorch's defaults.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GradScalerConfig {
    /// The first scale (2^16).
    pub init_scale: f64,
    /// Factor applied after `growth_interval` steps without inf/NaN (2.0).
    pub growth_factor: f64,
    /// Factor applied after a step with inf/NaN gradients (0.5).
    pub backoff_factor: f64,
    /// Clean steps between growths (2000).
    pub growth_interval: u64,
    /// When false every method is a pass-through (bf16 or f32 training).
    pub enabled: bool,
}

impl Default for GradScalerConfig {
    fn default() -> Self {
        GradScalerConfig {
            init_scale: 65536.0,
            growth_factor: 2.0,
            backoff_factor: 0.5,
            growth_interval: 2000,
            enabled: true,
        }
    }
}

/// What [`GradScaler::state_dict`] saves; PyTorch's keys (`scale`, `growth_factor`,
/// `backoff_factor`, `growth_interval`, `_growth_tracker`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GradScalerState {
    /// The current scale.
    pub scale: f64,
    /// See [`GradScalerConfig::growth_factor`].
    pub growth_factor: f64,
    /// See [`GradScalerConfig::backoff_factor`].
    pub backoff_factor: f64,
    /// See [`GradScalerConfig::growth_interval`].
    pub growth_interval: u64,
    /// Clean steps since the last growth or backoff.
    #[serde(rename = "_growth_tracker")]
    pub growth_tracker: u64,
}

/// Scales the loss, unscales the gradients, skips steps that overflowed and adapts the scale.
///
/// On a GPU the scaler never waits for the device: the inf/NaN flag its unscale computes
/// decides on the device whether the optimizer's kernels write ([`Optimizer::step_unless`]),
/// and the host reads it at its next wait for the device anyway (`loss.item()`) to adapt the
/// scale before the next [`scale`](Self::scale). A loop that never waits reads it there
/// instead (one wait a step, as PyTorch's scaler with a non-fused optimizer).
///
/// ```
/// use sinew_nn::{Linear, Module, ModuleExt};
/// use sinew_optim::{GradScaler, Optimizer, SgdConfig, sgd};
/// use sinew_tensor::{DType, Device, Tensor};
///
/// let model = Linear::new(3, 1)?;
/// let mut opt = sgd(model.named_parameters(), SgdConfig::new(0.1));
/// let mut scaler = GradScaler::new();
/// let x = Tensor::ones([4, 3], DType::F32, &Device::cpu())?;
/// opt.zero_grad();
/// let loss = model.forward(&x)?.square()?.mean_all()?;
/// scaler.scale(&loss)?.backward()?; // or `scaler.backward(&loss)?`: the same, in one kernel
/// scaler.step(&mut opt)?;
/// assert!(!scaler.found_inf()?); // gradients were finite: the step ran
/// scaler.update();
/// assert_eq!(scaler.scale_value()?, 65536.0);
/// # Ok::<(), sinew_tensor::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct GradScaler {
    config: GradScalerConfig,
    /// The scale and growth count as of the last update whose flags the host has read.
    scale: f64,
    growth_tracker: u64,
    /// The optimizers unscaled since the last `update` (by [`Optimizer::identity`]: a second
    /// `unscale_` of one is an error, as in PyTorch), each with its inf/NaN flags (one per
    /// device).
    unscaled: Vec<(u64, Vec<DeferredScalar>)>,
    /// The flags of each `update` not yet applied to the scale, oldest first (read at the
    /// next wait for the device; see the type's docs).
    unsettled: Vec<Vec<DeferredScalar>>,
}

impl Default for GradScaler {
    fn default() -> Self {
        GradScaler::new()
    }
}

/// Whether any of `flags` is set (reads them: no wait once a download has fetched them).
fn any_set(flags: &[DeferredScalar]) -> Result<bool> {
    for flag in flags {
        if flag.get()? != 0.0 {
            return Ok(true);
        }
    }
    Ok(false)
}

/// The gradient of `param`, made dense if it is not (backward stores contiguous gradients, but
/// one set with `set_grad` may be any view) by replacing it with a dense copy multiplied by
/// `inv_scale`; the dense gradient, and whether it still needs the multiplication.
fn dense_grad(param: &Parameter, grad: Tensor, inv_scale: f64) -> Result<(Tensor, bool)> {
    if grad.is_contiguous() {
        return Ok((grad, true));
    }
    let scaled = grad.mul_scalar(inv_scale)?;
    param.value().set_grad(Some(scaled.clone()))?;
    Ok((scaled, false))
}

/// The non-finite flag of `device` in `flags`, made (0) on first use.
fn flag_of(flags: &mut Vec<Tensor>, device: &sinew_tensor::Device) -> Result<Tensor> {
    if let Some(flag) = flags.iter().find(|f| f.device() == device) {
        return Ok(flag.clone());
    }
    let flag = Tensor::zeros([1], DType::F32, device)?;
    flags.push(flag.clone());
    Ok(flag)
}

impl GradScaler {
    /// A scaler with PyTorch's defaults.
    pub fn new() -> Self {
        GradScaler::with_config(GradScalerConfig::default())
    }

    /// A scaler with `config`.
    pub fn with_config(config: GradScalerConfig) -> Self {
        GradScaler {
            config,
            scale: config.init_scale,
            growth_tracker: 0,
            unscaled: Vec::new(),
            unsettled: Vec::new(),
        }
    }

    /// Whether scaling is on.
    pub fn is_enabled(&self) -> bool {
        self.config.enabled
    }

    /// The scale and growth count after every `update` so far: PyTorch's rule applied to
    /// each update's flags in turn (reads them).
    fn current(&self) -> Result<(f64, u64)> {
        let (mut scale, mut tracker) = (self.scale, self.growth_tracker);
        for flags in &self.unsettled {
            if any_set(flags)? {
                scale *= self.config.backoff_factor;
                tracker = 0;
            } else {
                tracker += 1;
                if tracker == self.config.growth_interval {
                    scale *= self.config.growth_factor;
                    tracker = 0;
                }
            }
        }
        Ok((scale, tracker))
    }

    /// Applies the updates whose flags were pending.
    fn settle(&mut self) -> Result<()> {
        (self.scale, self.growth_tracker) = self.current()?;
        self.unsettled.clear();
        Ok(())
    }

    /// The current scale (1.0 when disabled). PyTorch: `get_scale()`. Reads the last
    /// update's flags (a wait for the device unless a download has fetched them).
    pub fn scale_value(&self) -> Result<f64> {
        if !self.config.enabled {
            return Ok(1.0);
        }
        Ok(self.current()?.0)
    }

    /// `loss * scale` (the loss itself when disabled); call `backward` on the result.
    pub fn scale(&self, loss: &Tensor) -> Result<Tensor> {
        if !self.config.enabled {
            return Ok(loss.clone());
        }
        loss.mul_scalar(self.current()?.0)
    }

    /// `scale(loss).backward()` without recording the product: backward starts from a
    /// gradient of `scale` where the product's starts from 1 and its multiply's rule gives
    /// `1 × scale`, so the gradients are the same to the bit. On a GPU that is one fill
    /// instead of three kernels (the product, the seed of ones and its gradient). A loss of
    /// more than one element is an error, as for `backward`; disabled, it is `loss.backward()`.
    pub fn backward(&self, loss: &Tensor) -> Result<()> {
        if !self.config.enabled {
            return loss.backward();
        }
        if loss.elem_count() != 1 {
            return self.scale(loss)?.backward();
        }
        let seed = loss.full_like(self.current()?.0)?;
        loss.backward_with(Some(seed), BackwardOptions::default())
    }

    /// Divides the gradients of `opt`'s parameters by the scale in place and records whether
    /// any is inf or NaN (on their device; nothing waits for it). Call it before clipping
    /// gradients; [`step`](Self::step) then does not unscale again. A second call for the
    /// same optimizer before [`update`](Self::update) is an error, as are f16/bf16 gradients
    /// (keep f32 master weights).
    pub fn unscale_(&mut self, opt: &dyn Optimizer) -> Result<()> {
        if !self.config.enabled {
            return Ok(());
        }
        let id = opt.identity();
        if self.unscaled.iter().any(|(o, _)| *o == id) {
            return Err(Error::invalid(
                "GradScaler::unscale_",
                "unscale_() has already been called on this optimizer since the last update()",
            ));
        }
        self.settle()?;
        let inv_scale = 1.0 / self.scale;
        let _guard = no_grad();
        // One non-finite flag per device.
        let mut flags: Vec<Tensor> = Vec::new();
        // Each device's dense gradients, unscaled together: one multi-tensor kernel a few dozen
        // on a GPU (`Tensor::amp_unscale_many_`); a copied gradient is checked on its own.
        let mut dense: Vec<(Tensor, Vec<Tensor>)> = Vec::new();
        for param in opt.parameters() {
            let Some(grad) = param.grad() else { continue };
            if matches!(grad.dtype(), DType::F16 | DType::BF16) {
                return Err(Error::invalid(
                    "GradScaler::unscale_",
                    format!(
                        "attempting to unscale {} gradients: keep the parameters in f32",
                        grad.dtype()
                    ),
                ));
            }
            let flag = flag_of(&mut flags, grad.device())?;
            let (grad, unscale) = dense_grad(&param, grad, inv_scale)?;
            if !unscale {
                grad.amp_unscale_(1.0, &flag)?;
                continue;
            }
            match dense.iter_mut().find(|(f, _)| f.same_storage(&flag)) {
                Some((_, grads)) => grads.push(grad),
                None => dense.push((flag, vec![grad])),
            }
        }
        for (flag, grads) in &dense {
            let grads: Vec<&Tensor> = grads.iter().collect();
            Tensor::amp_unscale_many_(&grads, inv_scale, flag)?;
        }
        let reads = flags
            .iter()
            .map(DeferredScalar::new)
            .collect::<Result<Vec<_>>>()?;
        self.unscaled.push((id, reads));
        Ok(())
    }

    /// Unscales (unless [`unscale_`](Self::unscale_) already did) and runs `opt.step()` unless
    /// one of its gradients was inf or NaN ([`Optimizer::step_unless`]: decided on the device,
    /// with no wait, where the gradients are on one GPU).
    pub fn step(&mut self, opt: &mut dyn Optimizer) -> Result<()> {
        if !self.config.enabled {
            return opt.step();
        }
        let id = opt.identity();
        if !self.unscaled.iter().any(|(o, _)| *o == id) {
            self.unscale_(opt)?;
        }
        let (_, flags) = self
            .unscaled
            .iter()
            .find(|(o, _)| *o == id)
            .expect("unscaled above");
        match flags.as_slice() {
            [] => opt.step(),
            [flag] => opt.step_unless(flag),
            several => {
                if !any_set(several)? {
                    opt.step()?;
                }
                Ok(())
            }
        }
    }

    /// Whether a gradient unscaled since the last [`update`](Self::update) was inf or NaN,
    /// that is whether [`step`](Self::step) skipped (or will skip) the optimizer's step. Reads
    /// the flags: a wait for the device unless a download has fetched them.
    pub fn found_inf(&self) -> Result<bool> {
        for (_, flags) in &self.unscaled {
            if any_set(flags)? {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Adapts the scale after the iteration's steps: times `backoff_factor` if any gradient
    /// overflowed (and the growth count restarts), else one more clean step, and times
    /// `growth_factor` after `growth_interval` of them. Applied when the flags are read (see
    /// the type's docs).
    pub fn update(&mut self) {
        if !self.config.enabled {
            return;
        }
        let flags = self.unscaled.drain(..).flat_map(|(_, f)| f).collect();
        self.unsettled.push(flags);
    }

    /// The state to save with a checkpoint (PyTorch's keys). Reads the last update's flags.
    pub fn state_dict(&self) -> Result<GradScalerState> {
        let (scale, growth_tracker) = self.current()?;
        Ok(GradScalerState {
            scale,
            growth_factor: self.config.growth_factor,
            backoff_factor: self.config.backoff_factor,
            growth_interval: self.config.growth_interval,
            growth_tracker,
        })
    }

    /// Restores a saved state; a non-positive or non-finite scale is an error.
    pub fn load_state_dict(&mut self, state: &GradScalerState) -> Result<()> {
        if !(state.scale.is_finite() && state.scale > 0.0) {
            return Err(Error::invalid(
                "GradScaler::load_state_dict",
                format!("the scale must be positive and finite, got {}", state.scale),
            ));
        }
        self.unsettled.clear();
        self.scale = state.scale;
        self.config.growth_factor = state.growth_factor;
        self.config.backoff_factor = state.backoff_factor;
        self.config.growth_interval = state.growth_interval;
        self.growth_tracker = state.growth_tracker;
        Ok(())
    }
}
