//! Feature scaling fitted in one parallel pass over a dataset: standard (z-score) and min-max.
//!
//! Statistics are taken of the values as they are collated (u8 images scaled to `[0, 1]`, CHW
//! order), per element (each feature of a table, each pixel of an image) or per channel (pooled
//! over height and width). Chunks of samples are reduced in parallel with Welford/Chan updates in
//! f64 and merged in a fixed order, so results do not depend on the thread count.
//! PyTorch/scikit-learn equivalent: `sklearn.preprocessing.StandardScaler` / `MinMaxScaler`.

use rayon::prelude::*;

use crate::dataset::Dataset;
use crate::error::{DataError, Result};
use crate::rng::DataRng;
use crate::sample::{ImageF32, Input, Sample};
use crate::transforms::Transform;

/// Samples reduced per parallel task.
const CHUNK: usize = 256;

/// What one statistic covers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ScaleAxis {
    /// One statistic per element: per feature for tables, per pixel (c, y, x) for images.
    Element,
    /// One statistic per image channel, pooled over all pixels.
    Channel,
}

/// Count, mean, population variance, min and max per slot (element or channel).
#[derive(Clone, Debug, PartialEq)]
pub struct Statistics {
    /// The grouping.
    pub axis: ScaleAxis,
    /// Values seen per slot.
    pub count: u64,
    /// Mean per slot.
    pub mean: Vec<f64>,
    /// Population variance (ddof = 0) per slot.
    pub var: Vec<f64>,
    /// Minimum per slot.
    pub min: Vec<f64>,
    /// Maximum per slot.
    pub max: Vec<f64>,
}

/// Running moments of one chunk.
#[derive(Clone)]
struct Moments {
    count: u64,
    mean: Vec<f64>,
    m2: Vec<f64>,
    min: Vec<f64>,
    max: Vec<f64>,
}

impl Moments {
    fn new(slots: usize) -> Self {
        Moments {
            count: 0,
            mean: vec![0.0; slots],
            m2: vec![0.0; slots],
            min: vec![f64::INFINITY; slots],
            max: vec![f64::NEG_INFINITY; slots],
        }
    }

    /// Adds a group of `n` values per slot with the given means, M2s, mins and maxes (Chan et al.).
    fn merge(&mut self, n: u64, mean: &[f64], m2: &[f64], min: &[f64], max: &[f64]) {
        if n == 0 {
            return;
        }
        let (na, nb) = (self.count as f64, n as f64);
        let total = na + nb;
        for s in 0..self.mean.len() {
            let delta = mean[s] - self.mean[s];
            self.mean[s] += delta * nb / total;
            self.m2[s] += m2[s] + delta * delta * na * nb / total;
            self.min[s] = self.min[s].min(min[s]);
            self.max[s] = self.max[s].max(max[s]);
        }
        self.count += n;
    }

    /// Adds one sample's values (tensor order).
    fn add(&mut self, values: &[f32], axis: ScaleAxis) {
        match axis {
            ScaleAxis::Element => {
                self.count += 1;
                let n = self.count as f64;
                for (s, &v) in values.iter().enumerate() {
                    let x = f64::from(v);
                    let delta = x - self.mean[s];
                    self.mean[s] += delta / n;
                    self.m2[s] += delta * (x - self.mean[s]);
                    self.min[s] = self.min[s].min(x);
                    self.max[s] = self.max[s].max(x);
                }
            }
            ScaleAxis::Channel => {
                let slots = self.mean.len();
                let plane = values.len() / slots;
                let (mut mean, mut m2) = (vec![0.0; slots], vec![0.0; slots]);
                let (mut min, mut max) = (vec![0.0; slots], vec![0.0; slots]);
                for c in 0..slots {
                    let vals = &values[c * plane..(c + 1) * plane];
                    let m = vals.iter().map(|&v| f64::from(v)).sum::<f64>() / plane as f64;
                    mean[c] = m;
                    m2[c] = vals.iter().map(|&v| (f64::from(v) - m).powi(2)).sum();
                    min[c] = vals.iter().fold(f64::INFINITY, |a, &v| a.min(f64::from(v)));
                    max[c] = vals
                        .iter()
                        .fold(f64::NEG_INFINITY, |a, &v| a.max(f64::from(v)));
                }
                self.merge(plane as u64, &mean, &m2, &min, &max);
            }
        }
    }
}

impl Statistics {
    /// One pass over `dataset` (in parallel chunks) collecting statistics along `axis`.
    pub fn compute<D: Dataset<Item = Sample>>(dataset: &D, axis: ScaleAxis) -> Result<Self> {
        if dataset.is_empty() {
            return Err(DataError::invalid("Statistics::compute", "empty dataset"));
        }
        let first = dataset.get(0)?.input;
        let dims = first.tensor_dims();
        let slots = match axis {
            ScaleAxis::Element => first.numel()?,
            ScaleAxis::Channel => first.channels().ok_or_else(|| {
                DataError::invalid("Statistics::compute", "per-channel statistics need images")
            })?,
        };
        if slots == 0 {
            return Err(DataError::invalid(
                "Statistics::compute",
                format!("samples of shape {dims:?} have no values"),
            ));
        }
        let chunks: Vec<Moments> = (0..dataset.len().div_ceil(CHUNK))
            .into_par_iter()
            .map(|chunk| {
                let mut acc = Moments::new(slots);
                let end = ((chunk + 1) * CHUNK).min(dataset.len());
                for i in chunk * CHUNK..end {
                    let input = dataset.get(i)?.input;
                    if input.tensor_dims() != dims {
                        return Err(DataError::invalid(
                            "Statistics::compute",
                            format!(
                                "sample {i} has shape {:?}, sample 0 {dims:?}",
                                input.tensor_dims()
                            ),
                        ));
                    }
                    acc.add(&input.to_f32_vec()?, axis);
                }
                Ok(acc)
            })
            .collect::<Result<_>>()?;
        let mut total = Moments::new(slots);
        for c in &chunks {
            total.merge(c.count, &c.mean, &c.m2, &c.min, &c.max);
        }
        let n = total.count as f64;
        Ok(Statistics {
            axis,
            count: total.count,
            var: total.m2.iter().map(|m2| m2 / n).collect(),
            mean: total.mean,
            min: total.min,
            max: total.max,
        })
    }
}

/// Applies `f(value, slot)` to values in tensor order laid out along `axis` with `slots` slots.
fn for_each_slot(
    values: &mut [f32],
    axis: ScaleAxis,
    slots: usize,
    op: &'static str,
    f: impl Fn(f32, usize) -> f32,
) -> Result<()> {
    let group = match axis {
        ScaleAxis::Element if values.len() == slots => 1,
        ScaleAxis::Channel if slots > 0 && values.len().is_multiple_of(slots) => {
            values.len() / slots
        }
        _ => {
            return Err(DataError::invalid(
                op,
                format!(
                    "{} values do not fit {slots} {axis:?} statistics",
                    values.len()
                ),
            ));
        }
    };
    for (i, v) in values.iter_mut().enumerate() {
        *v = f(*v, i / group);
    }
    Ok(())
}

/// Runs `f` on the sample's values as f32 (u8 images become f32 CHW in `[0, 1]` first).
fn map_values(mut sample: Sample, f: impl FnOnce(&mut [f32]) -> Result<()>) -> Result<Sample> {
    sample.input = match sample.input {
        Input::Features(mut v) => {
            f(&mut v)?;
            Input::Features(v)
        }
        Input::F32(mut img) => {
            f(&mut img.data)?;
            Input::F32(img)
        }
        u8_input @ Input::U8(_) => {
            let dims = u8_input.tensor_dims();
            let mut data = u8_input.to_f32_vec()?;
            f(&mut data)?;
            Input::F32(ImageF32::new(dims[0], dims[1], dims[2], data)?)
        }
    };
    Ok(sample)
}

/// `(x - mean) / std` per slot; a zero std is treated as 1 (as scikit-learn does).
#[derive(Clone, Debug, PartialEq)]
pub struct StandardScaler {
    axis: ScaleAxis,
    mean: Vec<f32>,
    std: Vec<f32>,
}

impl StandardScaler {
    /// Fits on `dataset` in one pass.
    pub fn fit<D: Dataset<Item = Sample>>(dataset: &D, axis: ScaleAxis) -> Result<Self> {
        Ok(Self::from_stats(&Statistics::compute(dataset, axis)?))
    }

    /// The scaler for already computed statistics.
    pub fn from_stats(stats: &Statistics) -> Self {
        StandardScaler {
            axis: stats.axis,
            mean: stats.mean.iter().map(|&m| m as f32).collect(),
            std: stats
                .var
                .iter()
                .map(|&v| if v > 0.0 { v.sqrt() as f32 } else { 1.0 })
                .collect(),
        }
    }

    /// Mean per slot.
    pub fn mean(&self) -> &[f32] {
        &self.mean
    }

    /// Standard deviation per slot (1 where the data had none).
    pub fn std(&self) -> &[f32] {
        &self.std
    }

    /// Scales values (tensor order) in place.
    pub fn transform(&self, values: &mut [f32]) -> Result<()> {
        let slots = self.mean.len();
        for_each_slot(values, self.axis, slots, "StandardScaler", |x, s| {
            (x - self.mean[s]) / self.std[s]
        })
    }

    /// Undoes [`StandardScaler::transform`] in place.
    pub fn inverse(&self, values: &mut [f32]) -> Result<()> {
        let slots = self.mean.len();
        for_each_slot(values, self.axis, slots, "StandardScaler", |x, s| {
            x * self.std[s] + self.mean[s]
        })
    }
}

impl Transform for StandardScaler {
    fn apply(&self, sample: Sample, _rng: &mut DataRng) -> Result<Sample> {
        map_values(sample, |v| self.transform(v))
    }
}

/// Maps each slot's `[min, max]` onto `range` linearly; a zero span maps with scale 1.
#[derive(Clone, Debug, PartialEq)]
pub struct MinMaxScaler {
    axis: ScaleAxis,
    min: Vec<f32>,
    span: Vec<f32>,
    range: (f32, f32),
}

impl MinMaxScaler {
    /// Fits on `dataset` in one pass, mapping onto `range` (e.g. `(0.0, 1.0)`).
    pub fn fit<D: Dataset<Item = Sample>>(
        dataset: &D,
        axis: ScaleAxis,
        range: (f32, f32),
    ) -> Result<Self> {
        Ok(Self::from_stats(
            &Statistics::compute(dataset, axis)?,
            range,
        ))
    }

    /// The scaler for already computed statistics.
    pub fn from_stats(stats: &Statistics, range: (f32, f32)) -> Self {
        MinMaxScaler {
            axis: stats.axis,
            min: stats.min.iter().map(|&m| m as f32).collect(),
            span: stats
                .min
                .iter()
                .zip(&stats.max)
                .map(|(lo, hi)| if hi > lo { (hi - lo) as f32 } else { 1.0 })
                .collect(),
            range,
        }
    }

    /// Minimum per slot.
    pub fn data_min(&self) -> &[f32] {
        &self.min
    }

    /// Scales values (tensor order) in place.
    pub fn transform(&self, values: &mut [f32]) -> Result<()> {
        let (lo, hi) = self.range;
        let slots = self.min.len();
        for_each_slot(values, self.axis, slots, "MinMaxScaler", |x, s| {
            (x - self.min[s]) / self.span[s] * (hi - lo) + lo
        })
    }

    /// Undoes [`MinMaxScaler::transform`] in place.
    pub fn inverse(&self, values: &mut [f32]) -> Result<()> {
        let (lo, hi) = self.range;
        let slots = self.min.len();
        for_each_slot(values, self.axis, slots, "MinMaxScaler", |x, s| {
            (x - lo) / (hi - lo) * self.span[s] + self.min[s]
        })
    }
}

impl Transform for MinMaxScaler {
    fn apply(&self, sample: Sample, _rng: &mut DataRng) -> Result<Sample> {
        map_values(sample, |v| self.transform(v))
    }
}
