//! Metrics accumulated over batches: accuracy, top-k accuracy, MAE, MSE, and the confusion
//! matrix.
//!
//! Accuracy and the regression errors are computed where the outputs are: on a GPU each batch's
//! count or error sum stays on the device and reaches the host in the next wait the training
//! loop makes anyway (`loss.item()`; [`sinew_tensor::DeferredScalar`]), so a metric adds no wait for the GPU
//! to a step (Keras computes its metrics on the device too).

use sinew_tensor::{CmpOp, DType, Device, Error, Result, Tensor};

use crate::device_sum::DeviceSum;

/// A metric fed batch by batch (`update`) and read at the end of an epoch (`value`).
pub trait Metric: Send {
    /// Its name in the logs (`accuracy`; validation adds `val_`).
    fn name(&self) -> String;
    /// Forgets everything seen.
    fn reset(&mut self);
    /// Adds one batch: model outputs and targets.
    fn update(&mut self, output: &Tensor, target: &Tensor) -> Result<()>;
    /// The value over everything seen since `reset` (NaN before any update). Reads what the
    /// device still holds (a wait for a GPU unless a download has brought it).
    fn value(&mut self) -> Result<f64>;
    /// Running totals from which `value` is computed (hits and count, error sum and count), so
    /// that data-parallel ranks can sum them; empty when the metric has none (ranks then
    /// average its value).
    fn totals(&mut self) -> Result<Vec<f64>> {
        Ok(Vec::new())
    }
    /// Replaces the running totals with `totals` (the sums over ranks).
    fn set_totals(&mut self, totals: &[f64]) {
        let _ = totals;
    }
}

/// Fraction of samples whose target class is among the `k` highest scores (`k = 1`: accuracy).
///
/// Classes are ranked as PyTorch's `argmax` and a stable descending sort rank them: equal
/// scores by class index (the lower first) and NaN above every number. So top-1 accuracy is
/// `(output.argmax(1) == target).mean()`: a model whose outputs are all equal, or all NaN after
/// diverging, scores the share of class 0 among the targets, not 100%.
#[derive(Clone, Debug)]
pub struct TopKAccuracy {
    k: usize,
    hits: DeviceSum,
    seen: u64,
    /// `0..C` as i64 on the outputs' device, kept between batches (no upload per batch).
    classes: Option<Tensor>,
}

impl TopKAccuracy {
    /// Top-`k` accuracy over `[N, C]` scores and i64 targets `[N]`.
    pub fn new(k: usize) -> Self {
        TopKAccuracy {
            k: k.max(1),
            hits: DeviceSum::default(),
            seen: 0,
            classes: None,
        }
    }
}

impl TopKAccuracy {
    /// `0..classes` as i64 on `device`, made once for as long as both stay the same.
    fn class_index(&mut self, classes: usize, device: &Device) -> Result<Tensor> {
        match &self.classes {
            Some(t) if t.dims() == [classes] && t.device() == device => Ok(t.clone()),
            _ => {
                let t = Tensor::arange(0.0, classes as f64, 1.0, DType::I64, device)?;
                self.classes = Some(t.clone());
                Ok(t)
            }
        }
    }
}

/// Top-1 accuracy.
pub fn accuracy() -> TopKAccuracy {
    TopKAccuracy::new(1)
}

/// `N` and `C` of `[N, C]` outputs with `[N]` targets, else an error from `op`.
fn rows_and_classes(op: &'static str, output: &Tensor, target: &Tensor) -> Result<(usize, usize)> {
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
    Ok((n, c))
}

/// Targets as i64, checked against `0..classes` on the host when they are there (free); on
/// a device, `gather` checks them and reports a bad one at the next wait.
fn class_targets(op: &'static str, target: &Tensor, classes: usize) -> Result<Tensor> {
    let labels = target.to_dtype(DType::I64)?;
    if labels.device().is_cpu() {
        let outside = labels
            .to_vec::<i64>()?
            .into_iter()
            .find(|&l| usize::try_from(l).map_or(true, |l| l >= classes));
        if let Some(label) = outside {
            return Err(Error::invalid(
                op,
                format!("target class {label} is outside 0..{classes}"),
            ));
        }
    }
    Ok(labels)
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
        (self.hits, self.seen) = (DeviceSum::default(), 0);
    }
    fn update(&mut self, output: &Tensor, target: &Tensor) -> Result<()> {
        let (n, c) = rows_and_classes("accuracy", output, target)?;
        let labels = class_targets("accuracy", target, c)?.reshape([n, 1])?;
        let scores = output.detach();
        // NaN ranks above every number, as in PyTorch's argmax.
        let scores = scores.masked_fill(&scores.ne(&scores)?, f64::INFINITY)?;
        // A sample's rank: the classes scoring higher than its target, and those scoring the
        // same with a lower index; a hit when below k.
        let own = scores.gather(1, &labels)?;
        let higher = scores.compare(CmpOp::Gt, &own)?.sum(&[1], false)?;
        let index = self.class_index(c, scores.device())?;
        let lower_index = index.compare(CmpOp::Lt, &labels)?;
        let no = Tensor::full((), 0.0, DType::Bool, scores.device())?;
        let tied_before = lower_index.where_cond(&scores.compare(CmpOp::Eq, &own)?, &no)?;
        let rank = higher.add(&tied_before.sum(&[1], false)?)?;
        let hits = rank.compare_scalar(CmpOp::Lt, self.k as f64)?.sum_all()?;
        self.hits.add(&hits, 1.0)?;
        self.seen += n as u64;
        Ok(())
    }
    fn value(&mut self) -> Result<f64> {
        Ok(self.hits.total()? / self.seen as f64)
    }
    fn totals(&mut self) -> Result<Vec<f64>> {
        Ok(vec![self.hits.total()?, self.seen as f64])
    }
    fn set_totals(&mut self, totals: &[f64]) {
        if let [hits, seen] = totals {
            self.hits.set(*hits);
            self.seen = *seen as u64;
        }
    }
}

/// Mean absolute (`Mae`) or squared (`Mse`) error of a regression output.
#[derive(Clone, Debug)]
pub struct RegressionError {
    squared: bool,
    sum: DeviceSum,
    seen: u64,
}

impl RegressionError {
    /// Mean absolute error.
    pub fn mae() -> Self {
        RegressionError {
            squared: false,
            sum: DeviceSum::default(),
            seen: 0,
        }
    }
    /// Mean squared error.
    pub fn mse() -> Self {
        RegressionError {
            squared: true,
            ..RegressionError::mae()
        }
    }
}

impl Metric for RegressionError {
    fn name(&self) -> String {
        self.name_static().into()
    }
    fn reset(&mut self) {
        (self.sum, self.seen) = (DeviceSum::default(), 0);
    }
    fn update(&mut self, output: &Tensor, target: &Tensor) -> Result<()> {
        let (n, m) = (output.elem_count(), target.elem_count());
        if n != m {
            return Err(Error::invalid(
                self.name_static(),
                format!("{n} outputs but {m} targets"),
            ));
        }
        // In f64, as the host summed before: the errors of the batch, summed on its device.
        let wide = |t: &Tensor| t.detach().to_dtype(DType::F64)?.flatten_all();
        let diff = wide(output)?.sub(&wide(target)?)?;
        let errors = if self.squared {
            diff.square()?
        } else {
            diff.abs()?
        };
        self.sum.add(&errors.sum_all()?, 1.0)?;
        self.seen += n as u64;
        Ok(())
    }
    fn value(&mut self) -> Result<f64> {
        Ok(self.sum.total()? / self.seen as f64)
    }
    fn totals(&mut self) -> Result<Vec<f64>> {
        Ok(vec![self.sum.total()?, self.seen as f64])
    }
    fn set_totals(&mut self, totals: &[f64]) {
        if let [sum, seen] = totals {
            self.sum.set(*sum);
            self.seen = *seen as u64;
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
    rows_and_classes("confusion_matrix", output, target)?;
    // PyTorch's argmax: the first of equal scores, NaN above every number.
    let predictions = output.detach().argmax(1, false)?.to_vec::<i64>()?;
    let labels = target.to_dtype(DType::I64)?.to_vec::<i64>()?;
    let mut m = vec![vec![0u64; classes]; classes];
    for (&predicted, &label) in predictions.iter().zip(&labels) {
        let predicted = predicted as usize;
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
