//! Mixed-precision training through `Trainer::precision`: bf16 and f16 autocast with f32
//! master weights learn what f32 learns, and f16 scales the loss.

mod common;

use sinew_nn::{ModuleExt, functional as F};
use sinew_optim::{GradScalerConfig, SgdConfig, sgd};
use sinew_tensor::{DType, Device, Result, manual_seed};
use sinew_train::metrics::accuracy;
use sinew_train::{History, Precision, Trainer, Verbosity};

static SEEDED: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Trains the common model from one seed in `precision`; returns the history, the dtypes of
/// the parameters and the final loss scale.
fn run(precision: Precision) -> Result<(History, Vec<DType>, f64)> {
    // The default generator is shared by the tests of this binary: hold it while seeded.
    let _seeded = SEEDED.lock().unwrap_or_else(|e| e.into_inner());
    manual_seed(7);
    let model = common::model()?;
    let (train, val) = (
        common::loader(common::blobs(240, 1), 16, false),
        common::loader(common::blobs(60, 2), 30, false),
    );
    let opt = sgd(model.named_parameters(), SgdConfig::new(0.05).momentum(0.5));
    let mut trainer = Trainer::new(&model, opt, F::cross_entropy)
        .metric(accuracy())
        .precision(precision)
        .verbosity(Verbosity::Silent);
    let history = trainer.fit(&train, Some(&val), 6)?;
    let scale = trainer.grad_scaler().scale_value()?;
    let dtypes = model
        .named_parameters()
        .iter()
        .map(|(_, p)| p.value().dtype())
        .collect();
    Ok((history, dtypes, scale))
}

#[test]
fn mixed_precision_learns_what_f32_learns() -> Result<()> {
    let (full, _, full_scale) = run(Precision::F32)?;
    assert_eq!(full_scale, 1.0);
    for (precision, tol) in [
        (Precision::Mixed(DType::BF16), 0.1),
        (Precision::Mixed(DType::F16), 0.02),
    ] {
        let (mixed, dtypes, scale) = run(precision)?;
        assert!(
            dtypes.iter().all(|&d| d == DType::F32),
            "master weights {dtypes:?}"
        );
        if precision == Precision::Mixed(DType::BF16) {
            assert_eq!(scale, 1.0, "bf16 needs no loss scaling");
        } else {
            // f16 starts at 2^16 and halves on each overflowing step (none grow in 90 steps).
            assert!(
                (1024.0..=65536.0).contains(&scale) && scale.log2().fract() == 0.0,
                "{scale}"
            );
        }
        let (a, b) = (full.get("loss"), mixed.get("loss"));
        for (x, y) in a.iter().zip(&b) {
            assert!(
                (x - y).abs() < tol * x.abs().max(0.1),
                "{precision:?}: {a:?} vs {b:?}"
            );
        }
        assert!(mixed.last("val_accuracy").unwrap() > 0.9, "{precision:?}");
    }
    Ok(())
}

#[test]
fn mixed_for_picks_bf16_on_the_cpu() {
    assert_eq!(
        Precision::mixed_for(&Device::cpu()),
        Precision::Mixed(DType::BF16)
    );
}

#[test]
fn a_full_precision_dtype_is_rejected_at_fit() -> Result<()> {
    let _seeded = SEEDED.lock().unwrap_or_else(|e| e.into_inner());
    let model = common::model()?;
    let train = common::loader(common::blobs(32, 1), 16, false);
    let opt = sgd(model.named_parameters(), SgdConfig::new(0.1));
    let mut trainer = Trainer::new(&model, opt, F::cross_entropy)
        .precision(Precision::Mixed(DType::F64))
        .verbosity(Verbosity::Silent);
    let err = trainer
        .fit(&train, Some(&train), 1)
        .unwrap_err()
        .to_string();
    assert!(err.contains("autocast"), "{err}");
    Ok(())
}

/// f16 training resumed from a checkpoint continues with the saved loss scale, exactly as the
/// uninterrupted run.
#[test]
fn a_resumed_f16_run_restores_the_loss_scale() -> Result<()> {
    let _seeded = SEEDED.lock().unwrap_or_else(|e| e.into_inner());
    let dir = std::env::temp_dir().join(format!("sinew-precision-resume-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let train = common::loader(common::blobs(240, 1), 16, true);
    let precision = Precision::Mixed(DType::F16);
    let fit = |epochs: usize, resume: bool| -> Result<(History, f64, f64)> {
        manual_seed(7);
        let model = common::model()?;
        let opt = sgd(model.named_parameters(), SgdConfig::new(0.05).momentum(0.5));
        let mut trainer = Trainer::new(&model, opt, F::cross_entropy)
            .precision(precision)
            // Grows every 3 clean steps, so the scale overflows and backs off within an epoch.
            .grad_scaler_config(GradScalerConfig {
                growth_interval: 3,
                ..Default::default()
            })
            .checkpoint_every_epoch(&dir)
            .verbosity(Verbosity::Silent);
        if resume {
            trainer.resume(&dir)?;
        }
        let start_scale = trainer.grad_scaler().scale_value()?;
        let history = trainer.fit(&train, Some(&train), epochs)?;
        Ok((history, start_scale, trainer.grad_scaler().scale_value()?))
    };
    let (whole, _, whole_scale) = fit(6, false)?;
    let _ = std::fs::remove_dir_all(&dir);
    let (first, _, saved_scale) = fit(3, false)?;
    let (rest, resumed_scale, final_scale) = fit(6, true)?;
    let _ = std::fs::remove_dir_all(&dir);
    // The scale moved in the first half, so a fresh scaler (2^16) would differ.
    assert_ne!(saved_scale, 65536.0);
    assert_eq!(resumed_scale, saved_scale);
    assert_eq!(final_scale, whole_scale);
    let losses: Vec<f64> = first
        .get("loss")
        .into_iter()
        .chain(rest.get("loss"))
        .collect();
    assert_eq!(losses, whole.get("loss"));
    Ok(())
}
