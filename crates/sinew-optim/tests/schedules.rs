//! Learning-rate schedules against PyTorch (`tests/reference/gen_schedules.py`) and the Keras
//! inverse-time formula.

use sinew_optim::schedule::*;
use sinew_optim::{Optimizer, SgdConfig, sgd};
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
        for (i, (g, w)) in got.iter().zip(&want).enumerate() {
            assert!(
                (g - w).abs() <= 1e-15 + 1e-12 * w.abs(),
                "{name} step {i}: {g} vs PyTorch {w}"
            );
        }
    }
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
