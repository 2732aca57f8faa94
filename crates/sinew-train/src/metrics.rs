//! Metrics accumulated over batches: accuracy, top-k accuracy, MAE, MSE, and the confusion
//! matrix.

use sinew_tensor::{DType, Error, Result, Tensor};

/// A metric fed batch by batch (`update`) and read at the end of an epoch (`value`).
pub trait Metric: Send {
    /// Its name in the logs (`accuracy`; validation adds `val_`).
    fn name(&self) -> String;
    /// Forgets everything seen.
    fn reset(&mut self);
    /// Adds one batch: model outputs and targets.
    fn update(&mut self, output: &Tensor, target: &Tensor) -> Result<()>;
    /// The value over everything seen since `reset` (NaN before any update).
    fn value(&self) -> f64;
    /// Running totals from which `value` is computed (hits and count, error sum and count), so
    /// that data-parallel ranks can sum them; empty when the metric has none (ranks then
    /// average its value).
    fn totals(&self) -> Vec<f64> {
        Vec::new()
    }
    /// Replaces the running totals with `totals` (the sums over ranks).
    fn set_totals(&mut self, totals: &[f64]) {
        let _ = totals;
    }
}

/// Fraction of samples whose target class is among the `k` highest scores (`k = 1`: accuracy).
#[derive(Clone, Debug)]
pub struct TopKAccuracy {
    k: usize,
    hits: u64,
    seen: u64,
}

impl TopKAccuracy {
    /// Top-`k` accuracy over `[N, C]` scores and i64 targets `[N]`.
    pub fn new(k: usize) -> Self {
        TopKAccuracy {
            k: k.max(1),
            hits: 0,
            seen: 0,
        }
    }
}

/// Top-1 accuracy.
pub fn accuracy() -> TopKAccuracy {
    TopKAccuracy::new(1)
}

fn scores_and_labels(
    op: &'static str,
    output: &Tensor,
    target: &Tensor,
) -> Result<(Vec<f64>, Vec<i64>, usize)> {
    let (&[n, c], true) = (output.dims(), target.dims().len() == 1) else {
        return Err(Error::invalid(
            op,
            format!(
                "expects [N, C] outputs and [N] targets, got {} and {}",
                output.shape(),
                target.shape()
            ),
        ));
    };
    if target.dims()[0] != n {
        return Err(Error::invalid(
            op,
            format!("{n} outputs but {} targets", target.dims()[0]),
        ));
    }
    let scores = output.detach().to_dtype(DType::F64)?.to_vec_f64()?;
    let labels = target.to_dtype(DType::I64)?.to_vec::<i64>()?;
    Ok((scores, labels, c))
}

impl Metric for TopKAccuracy {
    fn name(&self) -> String {
        if self.k == 1 {
            "accuracy".into()
        } else {
            format!("top{}_accuracy", self.k)
        }
    }
    fn reset(&mut self) {
        (self.hits, self.seen) = (0, 0);
    }
    fn update(&mut self, output: &Tensor, target: &Tensor) -> Result<()> {
        let (scores, labels, c) = scores_and_labels("accuracy", output, target)?;
        for (row, &label) in scores.chunks(c.max(1)).zip(&labels) {
            let Some(&own) = usize::try_from(label).ok().and_then(|l| row.get(l)) else {
                return Err(Error::invalid(
                    "accuracy",
                    format!("target class {label} is outside 0..{c}"),
                ));
            };
            // Rank = how many classes score strictly higher (ties count for the target).
            let better = row.iter().filter(|&&s| s > own).count();
            self.hits += u64::from(better < self.k);
            self.seen += 1;
        }
        Ok(())
    }
    fn value(&self) -> f64 {
        self.hits as f64 / self.seen as f64
    }
    fn totals(&self) -> Vec<f64> {
        vec![self.hits as f64, self.seen as f64]
    }
    fn set_totals(&mut self, totals: &[f64]) {
        if let [hits, seen] = totals {
            (self.hits, self.seen) = (*hits as u64, *seen as u64);
        }
    }
}

/// Mean absolute (`Mae`) or squared (`Mse`) error of a regression output.
#[derive(Clone, Debug)]
pub struct RegressionError {
    squared: bool,
    sum: f64,
    seen: u64,
}

impl RegressionError {
    /// Mean absolute error.
    pub fn mae() -> Self {
        RegressionError {
            squared: false,
            sum: 0.0,
            seen: 0,
        }
    }
    /// Mean squared error.
    pub fn mse() -> Self {
        RegressionError {
            squared: true,
            sum: 0.0,
            seen: 0,
        }
    }
}

impl Metric for RegressionError {
    fn name(&self) -> String {
        if self.squared {
            "mse".into()
        } else {
            "mae".into()
        }
    }
    fn reset(&mut self) {
        (self.sum, self.seen) = (0.0, 0);
    }
    fn update(&mut self, output: &Tensor, target: &Tensor) -> Result<()> {
        let out = output
            .detach()
            .to_dtype(DType::F64)?
            .flatten_all()?
            .to_vec_f64()?;
        let tgt = target.to_dtype(DType::F64)?.flatten_all()?.to_vec_f64()?;
        if out.len() != tgt.len() {
            return Err(Error::invalid(
                self.name_static(),
                format!("{} outputs but {} targets", out.len(), tgt.len()),
            ));
        }
        for (o, t) in out.iter().zip(&tgt) {
            let d = o - t;
            self.sum += if self.squared { d * d } else { d.abs() };
        }
        self.seen += out.len() as u64;
        Ok(())
    }
    fn value(&self) -> f64 {
        self.sum / self.seen as f64
    }
    fn totals(&self) -> Vec<f64> {
        vec![self.sum, self.seen as f64]
    }
    fn set_totals(&mut self, totals: &[f64]) {
        if let [sum, seen] = totals {
            (self.sum, self.seen) = (*sum, *seen as u64);
        }
    }
}

impl RegressionError {
    fn name_static(&self) -> &'static str {
        if self.squared { "mse" } else { "mae" }
    }
}

/// `[classes, classes]` counts: row = true class, column = predicted (argmax) class.
pub fn confusion_matrix(output: &Tensor, target: &Tensor, classes: usize) -> Result<Vec<Vec<u64>>> {
    let (scores, labels, c) = scores_and_labels("confusion_matrix", output, target)?;
    let mut m = vec![vec![0u64; classes]; classes];
    for (row, &label) in scores.chunks(c.max(1)).zip(&labels) {
        let predicted = row
            .iter()
            .enumerate()
            .fold((0, f64::NEG_INFINITY), |best, (i, &s)| {
                if s > best.1 { (i, s) } else { best }
            })
            .0;
        let t = usize::try_from(label).ok().filter(|&t| t < classes);
        match (t, predicted < classes) {
            (Some(t), true) => m[t][predicted] += 1,
            _ => {
                return Err(Error::invalid(
                    "confusion_matrix",
                    format!("class {label} or {predicted} is outside 0..{classes}"),
                ));
            }
        }
    }
    Ok(m)
}
