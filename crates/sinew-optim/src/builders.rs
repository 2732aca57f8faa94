//! `Config::new(lr).weight_decay(wd)` for the optimizers whose options are otherwise set field
//! by field (`AdagradConfig { lr, ..Default::default() }`), as `SgdConfig` and `AdamConfig`
//! already offer.

use crate::adaptive::{AdadeltaConfig, AdagradConfig, RmspropConfig};
use crate::nadam::NadamConfig;
use crate::radam::RadamConfig;

macro_rules! lr_and_decay_builders {
    ($($cfg:ident),*) => {$(
        impl $cfg {
            /// PyTorch's defaults with learning rate `lr`.
            pub fn new(lr: f64) -> Self {
                $cfg { lr, ..Default::default() }
            }

            /// With L2 penalty `weight_decay` (added to the gradient, as in PyTorch).
            pub fn weight_decay(mut self, weight_decay: f64) -> Self {
                self.weight_decay = weight_decay;
                self
            }
        }
    )*};
}

lr_and_decay_builders!(
    AdagradConfig,
    RmspropConfig,
    AdadeltaConfig,
    NadamConfig,
    RadamConfig
);
