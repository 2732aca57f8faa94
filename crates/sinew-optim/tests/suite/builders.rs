//! The configs' builder methods.

use sinew_optim::{AdadeltaConfig, AdagradConfig, NadamConfig, RmspropConfig};

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
