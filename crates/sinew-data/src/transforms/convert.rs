//! Deterministic preprocessing: to-tensor conversion, per-channel normalisation, resize, centre crop.

use super::{Transform, functional, map_image};
use crate::error::{DataError, Result};
use crate::rng::DataRng;
use crate::sample::{ImageF32, Input, Sample};

/// Converts u8 HWC images to f32 CHW in `[0, 1]` (value / 255); f32 images and features pass
/// through. PyTorch equivalent: `transforms.ToTensor()`.
#[derive(Clone, Copy, Debug, Default)]
pub struct ToTensor;

impl Transform for ToTensor {
    fn apply(&self, mut sample: Sample, _rng: &mut DataRng) -> Result<Sample> {
        if let Input::U8(img) = &sample.input {
            let data = sample.input.to_f32_vec()?;
            sample.input = Input::F32(ImageF32::new(img.channels, img.height, img.width, data)?);
        }
        Ok(sample)
    }
}

/// `(x - mean[c]) / std[c]` per channel of an f32 image (one value broadcasts to every channel).
/// PyTorch equivalent: `transforms.Normalize(mean, std)`.
#[derive(Clone, Debug)]
pub struct Normalize {
    mean: Vec<f32>,
    inv_std: Vec<f32>,
}

impl Normalize {
    /// Per-channel mean and standard deviation (same non-zero length; every mean finite, every
    /// std finite and positive: a zero, negative, infinite or NaN std is an error here rather than
    /// NaN or infinite pixels later).
    pub fn new(mean: &[f32], std: &[f32]) -> Result<Self> {
        if mean.len() != std.len() || mean.is_empty() {
            return Err(DataError::invalid(
                "Normalize",
                format!("{} means but {} stds", mean.len(), std.len()),
            ));
        }
        if let Some((c, m)) = mean.iter().enumerate().find(|(_, m)| !m.is_finite()) {
            return Err(DataError::invalid(
                "Normalize",
                format!("mean[{c}] = {m} is not finite"),
            ));
        }
        if let Some((c, s)) = std
            .iter()
            .enumerate()
            .find(|(_, s)| !(s.is_finite() && **s > 0.0 && (1.0 / **s).is_finite()))
        {
            return Err(DataError::invalid(
                "Normalize",
                format!("std[{c}] = {s} must be finite and positive"),
            ));
        }
        Ok(Normalize {
            mean: mean.to_vec(),
            inv_std: std.iter().map(|s| 1.0 / s).collect(),
        })
    }

    /// Normalises an image in place.
    pub fn normalize(&self, img: &mut ImageF32) -> Result<()> {
        let n = self.mean.len();
        if n != 1 && n != img.channels {
            return Err(DataError::invalid(
                "Normalize",
                format!(
                    "{n} channel statistics for a {}-channel image",
                    img.channels
                ),
            ));
        }
        for c in 0..img.channels {
            let k = if n == 1 { 0 } else { c };
            let (m, s) = (self.mean[k], self.inv_std[k]);
            for v in img.chan_mut(c) {
                *v = (*v - m) * s;
            }
        }
        Ok(())
    }
}

impl Transform for Normalize {
    fn apply(&self, sample: Sample, _rng: &mut DataRng) -> Result<Sample> {
        map_image(sample, "Normalize", |mut img| {
            self.normalize(&mut img)?;
            Ok(img)
        })
    }
}

/// Bilinear resize to a fixed size (no antialiasing). PyTorch equivalent:
/// `transforms.Resize((h, w), antialias=False)`.
#[derive(Clone, Copy, Debug)]
pub struct Resize {
    /// Output height.
    pub height: usize,
    /// Output width.
    pub width: usize,
}

impl Transform for Resize {
    fn apply(&self, sample: Sample, _rng: &mut DataRng) -> Result<Sample> {
        if self.height == 0 || self.width == 0 {
            return Err(DataError::invalid("Resize", "output size must be non-zero"));
        }
        map_image(sample, "Resize", |img| {
            functional::resize(&img, self.height, self.width)
        })
    }
}

/// The central `height × width` window, padded with zeros when larger than the image.
/// PyTorch equivalent: `transforms.CenterCrop((h, w))`.
#[derive(Clone, Copy, Debug)]
pub struct CenterCrop {
    /// Output height.
    pub height: usize,
    /// Output width.
    pub width: usize,
}

impl CenterCrop {
    /// Crops an image (torchvision rounding of the offsets).
    pub fn crop(&self, img: &ImageF32) -> Result<ImageF32> {
        let top = ((img.height as f64 - self.height as f64) / 2.0).round() as isize;
        let left = ((img.width as f64 - self.width as f64) / 2.0).round() as isize;
        functional::crop(img, top, left, self.height, self.width, 0.0)
    }
}

impl Transform for CenterCrop {
    fn apply(&self, sample: Sample, _rng: &mut DataRng) -> Result<Sample> {
        map_image(sample, "CenterCrop", |img| self.crop(&img))
    }
}
