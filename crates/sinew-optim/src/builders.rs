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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builders_set_lr_and_decay_and_keep_the_other_defaults() {
        let c = RmspropConfig::new(0.003).weight_decay(0.1);
        assert_eq!((c.lr, c.weight_decay), (0.003, 0.1));
        assert_eq!(c.alpha, RmspropConfig::default().alpha);
        let n = NadamConfig::new(0.5);
        assert_eq!((n.lr, n.weight_decay), (0.5, 0.0));
        assert_eq!(AdagradConfig::new(0.2).eps, AdagradConfig::default().eps);
        assert_eq!(
            AdadeltaConfig::new(1.0).weight_decay(0.01).weight_decay,
            0.01
        );
    }
}
