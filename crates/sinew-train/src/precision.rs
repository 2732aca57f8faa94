//! [`Precision`]: f32 training or mixed precision (autocast + loss scaling) in the `Trainer`.

use sinew_optim::{GradScaler, GradScalerConfig};
use sinew_tensor::{AutocastGuard, DType, Device, Result, Tensor, autocast};

/// The numeric precision a `Trainer` trains in (Lightning's `precision="32"`, `"16-mixed"`,
/// `"bf16-mixed"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Precision {
    /// f32 throughout (the default).
    #[default]
    F32,
    /// Forward and loss under autocast in `dtype` (f16 or bf16), f32 master weights and
    /// optimizer; with f16 the loss is scaled by a [`GradScaler`] (PyTorch's defaults).
    Mixed(DType),
}

impl Precision {
    /// Mixed precision in the usual half type of `device`: f16 on a GPU (with loss scaling),
    /// bf16 on the CPU (whose f32 range needs no scaling).
    pub fn mixed_for(device: &Device) -> Precision {
        if device.is_cpu() {
            Precision::Mixed(DType::BF16)
        } else {
            Precision::Mixed(DType::F16)
        }
    }

    /// The autocast scope for a forward pass (`None` in f32), with the weights the last one
    /// cast already cast (one multi-tensor kernel a few dozen on a GPU).
    pub(crate) fn forward_scope(self, casts: &WeightCasts) -> Result<Option<AutocastGuard>> {
        match self {
            Precision::F32 => Ok(None),
            Precision::Mixed(dtype) => {
                let guard = autocast(dtype)?;
                let ahead: Vec<&Tensor> = casts.0.iter().collect();
                autocast::cast_ahead(&ahead)?;
                Ok(Some(guard))
            }
        }
    }

    /// The loss scaler from `config`: enabled for f16 only (and only if `config` enables it).
    pub(crate) fn scaler(self, config: GradScalerConfig) -> GradScaler {
        GradScaler::with_config(GradScalerConfig {
            enabled: config.enabled && self == Precision::Mixed(DType::F16),
            ..config
        })
    }
}

/// The parameters the last mixed-precision forward pass cast (autocast's weight cache), which
/// the next one casts ahead, all at once.
#[derive(Debug, Default)]
pub(crate) struct WeightCasts(Vec<Tensor>);

impl WeightCasts {
    /// Remembers what the current autocast scope cast so far (call it at the end of the
    /// forward pass, inside the scope; outside one there is nothing to remember).
    pub(crate) fn remember(&mut self) {
        if autocast::is_autocast_enabled() {
            self.0 = autocast::cached_sources();
        }
    }
}
