//! K-fold splits and `cross_validate`: folds partition the data, stratified folds keep class
//! shares, and the report's mean and std are those of the folds' logs.

mod common;

use std::sync::Arc;

use sinew_data::{Dataset, LoaderConfig, k_fold, stratified_k_fold};
use sinew_nn::{ModuleExt, functional as F};
use sinew_optim::{AdamConfig, adam};
use sinew_tensor::Result;
use sinew_train::metrics::accuracy;
use sinew_train::{Trainer, Verbosity, cross_validate};

#[test]
fn folds_partition_the_indices_and_stratified_folds_keep_class_shares() -> Result<()> {
    for folds in [
        k_fold(23, 5, 1)?,
        stratified_k_fold(&[0, 1, 1, 2, 2, 2].repeat(4)[..23], 5, 1)?,
    ] {
        let mut seen: Vec<usize> = folds.iter().flat_map(|f| f.val.clone()).collect();
        seen.sort_unstable();
        assert_eq!(
            seen,
            (0..23).collect::<Vec<_>>(),
            "validation parts partition the data"
        );
        for f in &folds {
            assert_eq!(f.train.len() + f.val.len(), 23);
            assert!(f.val.len() == 4 || f.val.len() == 5, "{}", f.val.len());
            assert!(f.train.iter().all(|i| !f.val.contains(i)));
        }
    }
    // 30 of class 0 and 10 of class 1 in 5 folds: 6 and 2 in every validation part.
    let labels: Vec<i64> = (0..40).map(|i| i64::from(i % 4 == 0)).collect();
    for f in stratified_k_fold(&labels, 5, 7)? {
        let ones = f.val.iter().filter(|&&i| labels[i] == 1).count();
        assert_eq!((f.val.len() - ones, ones), (6, 2));
    }
    assert!(k_fold(3, 5, 0).is_err() && k_fold(10, 1, 0).is_err());
    Ok(())
}

#[test]
fn cross_validate_trains_a_fresh_model_per_fold_and_summarises() -> Result<()> {
    let data = common::blobs(90, 3);
    let labels: Vec<i64> = (0..data.len()).map(|i| (i % 3) as i64).collect();
    let folds = stratified_k_fold(&labels, 3, 5)?;
    let config = LoaderConfig {
        batch_size: 15,
        shuffle: true,
        num_workers: 0,
        ..Default::default()
    };
    let report = cross_validate(Arc::new(data), &folds, config, |_, train, val| {
        let model = common::model()?;
        let opt = adam(model.named_parameters(), AdamConfig::new(0.02));
        let mut trainer = Trainer::new(&model, opt, F::cross_entropy)
            .metric(accuracy())
            .verbosity(Verbosity::Silent);
        let history = trainer.fit(train, Some(val), 6)?;
        Ok(history.epochs.last().cloned().unwrap_or_default())
    })?;
    assert_eq!(report.folds.len(), 3);
    let accs: Vec<f64> = report.folds.iter().map(|l| l["val_accuracy"]).collect();
    let mean = accs.iter().sum::<f64>() / 3.0;
    let std = (accs.iter().map(|a| (a - mean).powi(2)).sum::<f64>() / 3.0).sqrt();
    assert!((report.mean["val_accuracy"] - mean).abs() < 1e-12);
    assert!((report.std["val_accuracy"] - std).abs() < 1e-12);
    assert!(mean > 0.8, "{accs:?}");
    Ok(())
}
