//! Every optimizer refuses PyTorch's invalid options (its ValueErrors) at its first step and
//! leaves the parameters untouched.

use sinew_tensor::{Parameter, Tensor};

use sinew_optim::{
    AdadeltaConfig, AdafactorConfig, AdagradConfig, AdamConfig, AsgdConfig, NadamConfig, Optimizer,
    RadamConfig, RmspropConfig, RpropConfig, SgdConfig, adadelta, adafactor, adagrad, adam, adamax,
    adamw, asgd, nadam, radam, rmsprop, rprop, sgd,
};

fn params() -> (Parameter, Vec<(String, Parameter)>) {
    let p = Parameter::new(Tensor::from_vec(vec![1.0f32, 2.0], [2]).unwrap());
    p.value()
        .set_grad(Some(Tensor::from_vec(vec![0.5f32, 0.5], [2]).unwrap()))
        .unwrap();
    (p.clone(), vec![("w".to_string(), p)])
}

/// The error of the first step of `make`'s optimizer, after which the parameter must be
/// untouched.
fn first_step_error(make: impl Fn(Vec<(String, Parameter)>) -> Box<dyn Optimizer>) -> String {
    let (p, named) = params();
    let mut opt = make(named);
    let err = opt.step().unwrap_err().to_string();
    assert_eq!(p.value().to_vec::<f32>().unwrap(), [1.0, 2.0], "{err}");
    err
}

#[test]
fn each_optimizer_refuses_pytorchs_invalid_options() {
    let nan = f64::NAN;
    type Make = Box<dyn Fn(Vec<(String, Parameter)>) -> Box<dyn Optimizer>>;
    let cases: Vec<(Make, &str)> = vec![
        (
            Box::new(|p| Box::new(sgd(p, SgdConfig::new(-0.1)))),
            "SGD: invalid learning rate -0.1",
        ),
        (
            Box::new(move |p| Box::new(sgd(p, SgdConfig::new(nan)))),
            "SGD: invalid learning rate NaN",
        ),
        (
            Box::new(|p| Box::new(sgd(p, SgdConfig::new(0.1).momentum(-0.9)))),
            "invalid momentum -0.9",
        ),
        (
            Box::new(|p| Box::new(sgd(p, SgdConfig::new(0.1).weight_decay(-1e-4)))),
            "invalid weight_decay",
        ),
        (
            Box::new(|p| Box::new(sgd(p, SgdConfig::new(0.1).nesterov(true)))),
            "Nesterov momentum requires a momentum and zero dampening",
        ),
        (
            Box::new(|p| {
                Box::new(adam(
                    p,
                    AdamConfig {
                        betas: (1.0, 0.999),
                        ..AdamConfig::new(1e-3)
                    },
                ))
            }),
            "Adam: invalid betas.0 1 (it must be in [0, 1))",
        ),
        (
            Box::new(|p| {
                Box::new(adamw(
                    p,
                    AdamConfig {
                        betas: (0.9, -0.1),
                        ..AdamConfig::adamw(1e-3)
                    },
                ))
            }),
            "AdamW: invalid betas.1 -0.1",
        ),
        (
            Box::new(|p| {
                Box::new(adamax(
                    p,
                    AdamConfig {
                        eps: -1e-8,
                        ..AdamConfig::new(2e-3)
                    },
                ))
            }),
            "Adamax: invalid eps",
        ),
        (
            Box::new(|p| {
                Box::new(nadam(
                    p,
                    NadamConfig {
                        momentum_decay: -1.0,
                        ..Default::default()
                    },
                ))
            }),
            "NAdam: invalid momentum_decay -1",
        ),
        (
            Box::new(|p| Box::new(radam(p, RadamConfig::new(1e-3).weight_decay(-0.1)))),
            "RAdam: invalid weight_decay -0.1",
        ),
        (
            Box::new(|p| {
                Box::new(adagrad(
                    p,
                    AdagradConfig {
                        lr_decay: -1.0,
                        ..Default::default()
                    },
                ))
            }),
            "Adagrad: invalid lr_decay -1",
        ),
        (
            Box::new(|p| {
                Box::new(adagrad(
                    p,
                    AdagradConfig {
                        initial_accumulator_value: -1.0,
                        ..Default::default()
                    },
                ))
            }),
            "invalid initial_accumulator_value",
        ),
        (
            Box::new(|p| {
                Box::new(rmsprop(
                    p,
                    RmspropConfig {
                        alpha: -0.5,
                        ..Default::default()
                    },
                ))
            }),
            "RMSprop: invalid alpha -0.5",
        ),
        (
            Box::new(|p| {
                Box::new(adadelta(
                    p,
                    AdadeltaConfig {
                        rho: 1.5,
                        ..Default::default()
                    },
                ))
            }),
            "Adadelta: invalid rho 1.5 (it must be in [0, 1])",
        ),
        (
            Box::new(|p| {
                Box::new(rprop(
                    p,
                    RpropConfig {
                        etas: (0.5, 0.9),
                        ..Default::default()
                    },
                ))
            }),
            "Rprop: invalid etas (0.5, 0.9)",
        ),
        (
            Box::new(|p| {
                Box::new(rprop(
                    p,
                    RpropConfig {
                        step_sizes: (1.0, 0.1),
                        ..Default::default()
                    },
                ))
            }),
            "Rprop: invalid step_sizes (1, 0.1)",
        ),
        (
            Box::new(|p| {
                Box::new(asgd(
                    p,
                    AsgdConfig {
                        lr: -1.0,
                        ..Default::default()
                    },
                ))
            }),
            "ASGD: invalid learning rate -1",
        ),
        (
            Box::new(|p| {
                Box::new(adafactor(
                    p,
                    AdafactorConfig {
                        beta2_decay: 0.5,
                        ..Default::default()
                    },
                ))
            }),
            "Adafactor: invalid beta2_decay 0.5 (it must be <= 0)",
        ),
        (
            Box::new(|p| {
                Box::new(adafactor(
                    p,
                    AdafactorConfig {
                        d: 0.5,
                        ..Default::default()
                    },
                ))
            }),
            "Adafactor: invalid d 0.5 (it must be >= 1)",
        ),
        (
            Box::new(move |p| {
                Box::new(adafactor(
                    p,
                    AdafactorConfig {
                        eps: (Some(nan), 1e-3),
                        ..Default::default()
                    },
                ))
            }),
            "Adafactor: invalid eps.0 NaN",
        ),
    ];
    for (make, expected) in cases {
        let err = first_step_error(make);
        assert!(err.contains(expected), "{err} lacks {expected}");
    }
}

#[test]
fn set_lr_group_changes_and_loaded_states_are_checked() {
    let (p, named) = params();
    let mut opt = sgd(named, SgdConfig::new(0.1).momentum(0.9));
    assert!(
        opt.set_lr(0, f64::NAN)
            .unwrap_err()
            .to_string()
            .contains("learning rate NaN")
    );
    assert_eq!(opt.lrs(), [0.1], "a refused lr is not written");
    opt.step().unwrap();
    let state = opt.state_dict().unwrap();
    // A group's options changed after the first step are checked at the next.
    opt.groups_mut()[0].config.momentum = -1.0;
    assert!(
        opt.step()
            .unwrap_err()
            .to_string()
            .contains("invalid momentum -1")
    );
    // And so are the options a loaded state brings.
    opt.groups_mut()[0].config.momentum = 0.9;
    let mut bad = state.clone();
    bad.groups[0].1["lr"] = serde_json::json!(-1.0);
    let before = p.value().to_vec::<f32>().unwrap();
    assert!(
        opt.load_state_dict(&bad)
            .unwrap_err()
            .to_string()
            .contains("learning rate -1")
    );
    opt.load_state_dict(&state).unwrap();
    opt.step().unwrap();
    assert_ne!(p.value().to_vec::<f32>().unwrap(), before);
    // A group added with bad options is checked before any step runs.
    let moved = opt.add_group(|n| n == "w", SgdConfig::new(-0.5));
    assert_eq!(moved, 1);
    let now = p.value().to_vec::<f32>().unwrap();
    assert!(
        opt.step()
            .unwrap_err()
            .to_string()
            .contains("learning rate -0.5")
    );
    assert_eq!(p.value().to_vec::<f32>().unwrap(), now);
}
