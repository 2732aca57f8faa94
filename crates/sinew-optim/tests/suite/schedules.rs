//! Learning-rate schedules against PyTorch (`tests/reference/gen_schedules.py`) and the Keras
//! inverse-time formula.

use sinew_optim::schedule::*;
use sinew_optim::{AdamConfig, Optimizer, SgdConfig, adam, sgd};
use sinew_tensor::{DType, Device, Parameter, Result, Tensor};

fn reference() -> serde_json::Value {
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/reference/schedules.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn optimizer() -> Result<Box<dyn Optimizer>> {
    let p = Parameter::new(Tensor::zeros([1], DType::F32, &Device::cpu())?);
    Ok(Box::new(sgd(vec![("p".into(), p)], SgdConfig::new(0.1))))
}

fn values(r: &serde_json::Value, key: &str) -> Vec<f64> {
    r[key]
        .as_array()
        .unwrap_or_else(|| panic!("{key}"))
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect()
}

fn rule(name: &str) -> Vec<Box<dyn ScheduleRule>> {
    match name {
        "step_lr" => vec![Box::new(StepLr {
            step_size: 5,
            gamma: 0.5,
        })],
        "multi_step_lr" => vec![Box::new(MultiStepLr {
            milestones: vec![3, 7, 12],
            gamma: 0.1,
        })],
        "exponential_lr" => vec![Box::new(ExponentialLr { gamma: 0.9 })],
        "cosine" => vec![Box::new(CosineAnnealingLr {
            t_max: 10,
            eta_min: 0.001,
        })],
        "linear_warmup" => vec![Box::new(LinearLr {
            start_factor: 0.1,
            end_factor: 1.0,
            total_iters: 5,
        })],
        "warmup_then_cosine" => vec![
            Box::new(LinearLr {
                start_factor: 0.1,
                end_factor: 1.0,
                total_iters: 5,
            }),
            Box::new(CosineAnnealingLr {
                t_max: 20,
                eta_min: 0.0,
            }),
        ],
        // PyTorch's cyclic cases ran with cycle_momentum=False (plain SGD has no momentum).
        "cyclic_triangular" => vec![Box::new(CyclicLr {
            cycle_momentum: false,
            ..CyclicLr::new(0.01, 0.1, 4)
        })],
        "cyclic_triangular2" => vec![Box::new(CyclicLr {
            step_size_down: Some(5),
            mode: CyclicMode::Triangular2,
            cycle_momentum: false,
            ..CyclicLr::new(0.01, 0.1, 3)
        })],
        "cyclic_exp_range" => vec![Box::new(CyclicLr {
            mode: CyclicMode::ExpRange { gamma: 0.95 },
            cycle_momentum: false,
            ..CyclicLr::new(0.001, 0.05, 5)
        })],
        "cyclic_custom_cycle" => vec![Box::new(CyclicLr {
            mode: CyclicMode::custom(|c| 0.7f64.powf(c - 1.0), ScaleMode::Cycle),
            cycle_momentum: false,
            ..CyclicLr::new(0.01, 0.1, 3)
        })],
        "cyclic_custom_iterations" => vec![Box::new(CyclicLr {
            step_size_down: Some(2),
            mode: CyclicMode::custom(|t| 1.0 / (1.0 + 0.1 * t), ScaleMode::Iterations),
            cycle_momentum: false,
            ..CyclicLr::new(0.002, 0.08, 4)
        })],
        // PyTorch's cases ran with cycle_momentum=False (plain SGD has no momentum to cycle).
        "one_cycle" => vec![Box::new(OneCycleLr {
            cycle_momentum: false,
            ..OneCycleLr::new(1.0, 30)
        })],
        "one_cycle_three_phase_linear" => vec![Box::new(OneCycleLr {
            pct_start: 0.25,
            anneal: Anneal::Linear,
            div_factor: 10.0,
            final_div_factor: 100.0,
            three_phase: true,
            cycle_momentum: false,
            ..OneCycleLr::new(0.5, 30)
        })],
        "cosine_warm_restarts" => vec![Box::new(CosineAnnealingWarmRestarts {
            t_0: 4,
            t_mult: 2,
            eta_min: 0.001,
        })],
        "cosine_warm_restarts_fixed" => vec![Box::new(CosineAnnealingWarmRestarts {
            t_0: 7,
            t_mult: 1,
            eta_min: 0.0,
        })],
        "polynomial" => vec![Box::new(PolynomialLr {
            total_iters: 10,
            power: 2.0,
        })],
        "constant" => vec![Box::new(ConstantLr {
            factor: 0.25,
            total_iters: 4,
        })],
        // Python's `0.95 ** e` is C's pow, as `powf`.
        "lambda" => vec![Box::new(LambdaLr {
            lr_lambda: Box::new(|e| 0.95f64.powf(e as f64)),
        })],
        "multiplicative" => vec![Box::new(MultiplicativeLr {
            lr_lambda: Box::new(|e| if e % 3 == 0 { 0.9 } else { 1.0 }),
        })],
        "swa_cos" => vec![Box::new(SwaLr {
            anneal_epochs: 5,
            ..SwaLr::new(0.01)
        })],
        "swa_linear" => vec![Box::new(SwaLr {
            swa_lr: 0.03,
            anneal_epochs: 3,
            anneal: Anneal::Linear,
        })],
        "swa_no_anneal" => vec![Box::new(SwaLr {
            anneal_epochs: 0,
            ..SwaLr::new(0.02)
        })],
        other => panic!("{other}"),
    }
}

#[test]
fn epoch_schedules_give_pytorchs_learning_rates() -> Result<()> {
    let r = reference();
    for name in [
        "step_lr",
        "multi_step_lr",
        "exponential_lr",
        "cosine",
        "linear_warmup",
        "warmup_then_cosine",
        "one_cycle",
        "one_cycle_three_phase_linear",
        "cosine_warm_restarts",
        "cosine_warm_restarts_fixed",
        "polynomial",
        "constant",
        "lambda",
        "multiplicative",
        "cyclic_triangular",
        "cyclic_triangular2",
        "cyclic_exp_range",
        "cyclic_custom_cycle",
        "cyclic_custom_iterations",
        "swa_cos",
        "swa_linear",
        "swa_no_anneal",
    ] {
        let want = values(&r, name);
        let mut opt = optimizer()?;
        let rules = rule(name);
        let milestones = if rules.len() > 1 { vec![5] } else { vec![] };
        let mut schedule = LrSchedule::sequential(opt.as_mut(), rules, milestones)?;
        let mut got = vec![opt.lrs()[0]];
        for _ in 0..30 {
            schedule.step(opt.as_mut())?;
            got.push(opt.lrs()[0]);
        }
        // One-cycle's 30th step comes after the last of its 30 batches: PyTorch extrapolates
        // its curve there (negative when linear), Sinew keeps the final rate.
        let compared = if name.starts_with("one_cycle") {
            let final_lr = match name {
                "one_cycle" => 1.0 / 25.0 / 1e4,
                _ => 0.5 / 10.0 / 100.0,
            };
            assert!((got[30] - final_lr).abs() < 1e-18, "{name}: {}", got[30]);
            30
        } else {
            31
        };
        for (i, (g, w)) in got.iter().zip(&want).take(compared).enumerate() {
            assert!(
                (g - w).abs() <= 1e-15 + 1e-12 * w.abs(),
                "{name} step {i}: {g} vs PyTorch {w}"
            );
        }
    }
    Ok(())
}

/// PyTorch's SWA recipe: a cosine schedule, then SWALR from the rate it left, both made at the
/// start.
#[test]
fn swa_lr_anneals_from_the_rate_another_schedule_left() -> Result<()> {
    let want = values(&reference(), "cosine_then_swa");
    let mut opt = optimizer()?;
    let cosine = CosineAnnealingLr {
        t_max: 10,
        eta_min: 0.001,
    };
    let mut cosine = LrSchedule::new(opt.as_mut(), cosine)?;
    let swa = SwaLr {
        anneal_epochs: 4,
        ..SwaLr::new(0.01)
    };
    let mut swa = LrSchedule::new(opt.as_mut(), swa)?;
    let mut got = vec![opt.lrs()[0]];
    for epoch in 0..30 {
        let schedule = if epoch >= 6 { &mut swa } else { &mut cosine };
        schedule.step(opt.as_mut())?;
        got.push(opt.lrs()[0]);
    }
    assert_eq!(got.len(), want.len());
    for (i, (g, w)) in got.iter().zip(&want).enumerate() {
        assert!(
            (g - w).abs() <= 1e-15 + 1e-12 * w.abs(),
            "step {i}: {g} vs PyTorch {w}"
        );
    }
    assert_eq!(got[30], 0.01);
    Ok(())
}

#[test]
fn reduce_on_plateau_follows_pytorch_in_both_modes() -> Result<()> {
    let r = reference();
    let metrics = values(&r, "plateau_metrics");
    let cases = [
        (
            "plateau_min",
            {
                let mut p = ReduceLrOnPlateau::new(PlateauMode::Min);
                (p.factor, p.patience, p.threshold, p.cooldown, p.min_lr) = (0.5, 2, 0.01, 1, 0.01);
                p
            },
            1.0,
        ),
        (
            "plateau_max_abs",
            {
                let mut p = ReduceLrOnPlateau::new(PlateauMode::Max);
                (
                    p.factor,
                    p.patience,
                    p.threshold,
                    p.threshold_mode,
                    p.cooldown,
                ) = (0.1, 1, 0.005, ThresholdMode::Abs, 0);
                p
            },
            -1.0,
        ),
    ];
    for (name, mut plateau, sign) in cases {
        let want = values(&r, name);
        let mut opt = optimizer()?;
        let mut got = vec![opt.lrs()[0]];
        for m in &metrics {
            plateau.step(opt.as_mut(), sign * m)?;
            got.push(opt.lrs()[0]);
        }
        assert_eq!(got.len(), want.len());
        for (i, (g, w)) in got.iter().zip(&want).enumerate() {
            assert!(
                (g - w).abs() <= 1e-15,
                "{name} step {i}: {g} vs PyTorch {w}"
            );
        }
    }
    Ok(())
}

#[test]
fn inverse_time_decay_is_the_keras_formula() -> Result<()> {
    for staircase in [false, true] {
        let mut opt = optimizer()?;
        let rule = InverseTimeDecay {
            decay_rate: 0.5,
            decay_steps: 4,
            staircase,
        };
        let mut schedule = LrSchedule::new(opt.as_mut(), rule)?;
        for t in 1..=12u64 {
            schedule.step(opt.as_mut())?;
            let p = if staircase {
                (t / 4) as f64
            } else {
                t as f64 / 4.0
            };
            let want = 0.1 / (1.0 + 0.5 * p);
            assert!(
                (opt.lrs()[0] - want).abs() < 1e-15,
                "t {t}: {} vs {want}",
                opt.lrs()[0]
            );
        }
    }
    Ok(())
}

#[test]
fn options_pytorch_refuses_are_errors_before_any_lr_changes() -> Result<()> {
    let bad: Vec<(Box<dyn ScheduleRule>, &str)> = vec![
        (
            Box::new(StepLr {
                step_size: 0,
                gamma: 0.1,
            }),
            "StepLr: step_size must be at least 1",
        ),
        (
            Box::new(CosineAnnealingLr {
                t_max: 0,
                eta_min: 0.0,
            }),
            "CosineAnnealingLr: t_max must be at least 1",
        ),
        (
            Box::new(LinearLr {
                start_factor: 0.0,
                end_factor: 1.0,
                total_iters: 5,
            }),
            "LinearLr: start_factor 0 must be in (0, 1]",
        ),
        (
            Box::new(LinearLr {
                start_factor: 0.5,
                end_factor: 1.5,
                total_iters: 5,
            }),
            "LinearLr: end_factor 1.5 must be in [0, 1]",
        ),
        (
            Box::new(InverseTimeDecay {
                decay_rate: 0.5,
                decay_steps: 0,
                staircase: false,
            }),
            "InverseTimeDecay: decay_steps must be at least 1",
        ),
        (
            Box::new(CyclicLr::new(0.01, 0.1, 0)),
            "CyclicLr: step_size_up must be at least 1",
        ),
        (
            Box::new(CyclicLr::new(0.01, f64::NAN, 4)),
            "CyclicLr: base_lr 0.01 and max_lr NaN must be finite and >= 0",
        ),
        (
            Box::new(CyclicLr {
                mode: CyclicMode::ExpRange { gamma: -0.5 },
                ..CyclicLr::new(0.01, 0.1, 4)
            }),
            "CyclicLr: exp_range's gamma -0.5 must be positive",
        ),
        (
            Box::new(OneCycleLr::new(0.1, 0)),
            "OneCycleLr: total_steps must be at least 1",
        ),
        (
            Box::new(OneCycleLr {
                pct_start: 1.5,
                ..OneCycleLr::new(0.1, 10)
            }),
            "OneCycleLr: pct_start 1.5 must be in [0, 1]",
        ),
        (
            Box::new(OneCycleLr::new(-1.0, 10)),
            "OneCycleLr: max_lr -1, div_factor 25 and final_div_factor 10000 must be positive",
        ),
        (
            Box::new(CosineAnnealingWarmRestarts {
                t_0: 0,
                t_mult: 1,
                eta_min: 0.0,
            }),
            "CosineAnnealingWarmRestarts: t_0 0 and t_mult 1 must be at least 1",
        ),
        (
            Box::new(ConstantLr {
                factor: 0.0,
                total_iters: 4,
            }),
            "ConstantLr: factor 0 must be in (0, 1]",
        ),
    ];
    for (rule, expected) in bad {
        let mut opt = optimizer()?;
        let err = LrSchedule::sequential(opt.as_mut(), vec![rule], vec![])
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains(expected), "{err:?} lacks {expected}");
        assert_eq!(opt.lrs(), [0.1], "{expected}: the lr was changed");
    }
    // A plateau schedule whose factor would not reduce the lr.
    let mut opt = optimizer()?;
    let mut plateau = ReduceLrOnPlateau::new(PlateauMode::Min);
    plateau.factor = 1.0;
    let err = plateau.step(opt.as_mut(), 1.0).unwrap_err().to_string();
    assert!(err.contains("factor 1 must be below 1"), "{err}");
    Ok(())
}

#[test]
fn one_cycle_refuses_a_step_past_its_end_and_keeps_its_state() -> Result<()> {
    // PyTorch: "Tried to step 4 times. The specified number of total steps is 3".
    let mut opt = optimizer()?;
    let rule = OneCycleLr {
        cycle_momentum: false,
        ..OneCycleLr::new(1.0, 3)
    };
    let mut schedule = LrSchedule::new(opt.as_mut(), rule)?;
    for _ in 0..3 {
        schedule.step(opt.as_mut())?;
    }
    let (lr, epoch) = (opt.lrs()[0], schedule.epoch());
    let err = schedule.step(opt.as_mut()).unwrap_err().to_string();
    assert!(
        err.contains("tried to step 4 times; the schedule has 3 steps"),
        "{err}"
    );
    assert_eq!((opt.lrs()[0], schedule.epoch()), (lr, epoch));
    Ok(())
}

#[test]
fn one_cycle_and_cyclic_cycle_momentum_and_beta1_as_pytorch() -> Result<()> {
    let r = reference();
    let param = || -> Result<Vec<(String, Parameter)>> {
        let p = Parameter::new(Tensor::zeros([1], DType::F32, &Device::cpu())?);
        Ok(vec![("p".into(), p)])
    };
    // (reference key, optimizer, schedule rule)
    type Case = (&'static str, Box<dyn Optimizer>, Box<dyn ScheduleRule>);
    let cases: [Case; 4] = [
        (
            "one_cycle_sgd_momentum",
            Box::new(sgd(param()?, SgdConfig::new(0.1).momentum(0.9))),
            Box::new(OneCycleLr::new(0.8, 30)),
        ),
        (
            "one_cycle_adam_three_phase",
            Box::new(adam(param()?, AdamConfig::new(0.1))),
            Box::new(OneCycleLr {
                three_phase: true,
                base_momentum: 0.8,
                max_momentum: 0.9,
                ..OneCycleLr::new(0.05, 30)
            }),
        ),
        (
            "cyclic_sgd_momentum",
            Box::new(sgd(param()?, SgdConfig::new(0.1).momentum(0.9))),
            Box::new(CyclicLr {
                step_size_down: Some(6),
                ..CyclicLr::new(0.01, 0.1, 4)
            }),
        ),
        (
            "cyclic_adam_exp_range",
            Box::new(adam(param()?, AdamConfig::new(0.1))),
            Box::new(CyclicLr {
                mode: CyclicMode::ExpRange { gamma: 0.97 },
                base_momentum: 0.85,
                max_momentum: 0.95,
                ..CyclicLr::new(0.001, 0.01, 5)
            }),
        ),
    ];
    for (name, mut opt, rule) in cases {
        let want_lr = values(&r[name], "lr");
        let want_m = values(&r[name], "momentum");
        let mut schedule = LrSchedule::sequential(opt.as_mut(), vec![rule], vec![])?;
        let (mut lrs, mut ms) = (vec![opt.lrs()[0]], vec![opt.momentums().unwrap()[0]]);
        for _ in 0..29 {
            schedule.step(opt.as_mut())?;
            lrs.push(opt.lrs()[0]);
            ms.push(opt.momentums().unwrap()[0]);
        }
        // Steps 0 to 29 (the 30th, after the last batch, is PyTorch's extrapolation).
        for (i, ((g, w), (gm, wm))) in lrs
            .iter()
            .zip(&want_lr)
            .zip(ms.iter().zip(&want_m))
            .enumerate()
        {
            assert!(
                (g - w).abs() <= 1e-15 + 1e-12 * w.abs(),
                "{name} step {i}: lr {g} vs {w}"
            );
            assert!(
                (gm - wm).abs() <= 1e-15,
                "{name} step {i}: momentum {gm} vs {wm}"
            );
        }
    }
    Ok(())
}

#[test]
fn momentum_cycling_needs_a_momentum_to_cycle() -> Result<()> {
    let p = Parameter::new(Tensor::zeros([1], DType::F32, &Device::cpu())?);
    // PyTorch: "optimizer must support momentum or beta1 with `cycle_momentum` option
    // enabled" (Adagrad); plain SGD's momentum of 0 has no buffer to cycle here.
    let mut adagrad = sinew_optim::adagrad(
        vec![("p".into(), p.clone())],
        sinew_optim::AdagradConfig::new(0.1),
    );
    let err = LrSchedule::new(&mut adagrad, OneCycleLr::new(0.5, 10))
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(err.contains("no momentum or beta1"), "{err}");
    assert_eq!(adagrad.lrs(), [0.1], "the lr was changed");
    let mut plain = sgd(vec![("p".into(), p.clone())], SgdConfig::new(0.1));
    let err = LrSchedule::new(&mut plain, OneCycleLr::new(0.5, 10))
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(
        err.contains("would switch the momentum buffer on or off"),
        "{err}"
    );
    // A beta1 of 1 is refused as Adam's own option is.
    let mut opt = adam(vec![("p".into(), p)], AdamConfig::new(0.1));
    assert!(opt.set_momentum(0, 1.0).is_err());
    assert!(opt.set_momentum(1, 0.5).is_err());
    opt.set_momentum(0, 0.5)?;
    assert_eq!(opt.momentums(), Some(vec![0.5]));
    Ok(())
}

/// A custom scale that gives a negative or NaN rate is refused at that step, leaving the last
/// good rate; the others pass through unchanged.
#[test]
fn cyclic_custom_scale_refuses_a_bad_rate() -> Result<()> {
    let mut opt = optimizer()?;
    let scale = |t: f64| if t < 2.0 { 0.5 } else { f64::NAN };
    let rule = CyclicLr {
        mode: CyclicMode::custom(scale, ScaleMode::Iterations),
        cycle_momentum: false,
        ..CyclicLr::new(0.0, 0.4, 2)
    };
    assert!(format!("{rule:?}").contains("Custom { scale_mode: Iterations, .. }"));
    let mut schedule = LrSchedule::new(opt.as_mut(), rule)?;
    schedule.step(opt.as_mut())?;
    // Step 1: half the way up a height halved, 0.4 * 0.5 * 0.5.
    assert_eq!(opt.lrs(), vec![0.1]);
    let err = schedule.step(opt.as_mut()).unwrap_err().to_string();
    assert!(
        err.contains("learning rate") && err.contains("NaN"),
        "{err}"
    );
    assert_eq!(opt.lrs(), vec![0.1]);
    Ok(())
}
