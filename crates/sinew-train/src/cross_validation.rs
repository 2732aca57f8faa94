//! K-fold cross-validation: train a fresh model per fold and report each logged value's mean
//! and standard deviation over the folds (to choose a regularisation strength, for example).

use std::sync::Arc;

use sinew_data::{DataLoader, Dataset, Fold, LoaderConfig, Sample, Subset};
use sinew_tensor::Result;

use crate::Logs;

/// Per-fold logs and their mean and (population) standard deviation.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct CvReport {
    /// The logs each fold returned.
    pub folds: Vec<Logs>,
    /// Mean of each value over the folds.
    pub mean: Logs,
    /// Standard deviation of each value over the folds.
    pub std: Logs,
}

/// The loaders of one fold: training (shuffled as `config` says) and validation (in order).
pub type FoldLoaders<D> = (DataLoader<Subset<Arc<D>>>, DataLoader<Subset<Arc<D>>>);

/// Runs `run_fold(i, train, val)` for every fold (it should build a fresh model, train it and
/// return the logs to compare, e.g. the last epoch of `fit`'s history) and summarises them.
pub fn cross_validate<D, F>(
    dataset: Arc<D>,
    folds: &[Fold],
    config: LoaderConfig,
    mut run_fold: F,
) -> Result<CvReport>
where
    D: Dataset<Item = Sample> + 'static,
    F: FnMut(usize, &DataLoader<Subset<Arc<D>>>, &DataLoader<Subset<Arc<D>>>) -> Result<Logs>,
{
    let mut report = CvReport::default();
    for (i, fold) in folds.iter().enumerate() {
        let train = Subset::new(dataset.clone(), fold.train.clone())?;
        let val = Subset::new(dataset.clone(), fold.val.clone())?;
        let val_config = LoaderConfig {
            shuffle: false,
            ..config.clone()
        };
        let train = DataLoader::new(Arc::new(train), config.clone())?;
        let val = DataLoader::new(Arc::new(val), val_config)?;
        report.folds.push(run_fold(i, &train, &val)?);
    }
    let n = report.folds.len().max(1) as f64;
    if let Some(first) = report.folds.first() {
        for key in first.keys() {
            let values: Vec<f64> = report
                .folds
                .iter()
                .filter_map(|l| l.get(key).copied())
                .collect();
            let mean = values.iter().sum::<f64>() / n;
            let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n;
            report.mean.insert(key.clone(), mean);
            report.std.insert(key.clone(), var.sqrt());
        }
    }
    Ok(report)
}
