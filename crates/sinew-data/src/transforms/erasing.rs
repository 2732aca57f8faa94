//! Random erasing: blanks a random rectangle of the image.

use rand::Rng;
use rand_distr::StandardNormal;

use super::{Transform, check_probability, coin, functional, map_image, uniform};
use crate::error::{DataError, Result};
use crate::rng::DataRng;
use crate::sample::{ImageF32, Sample};

/// What erased pixels become.
#[derive(Clone, Debug, PartialEq)]
pub enum EraseValue {
    /// One value for every channel.
    Constant(f32),
    /// One value per channel.
    PerChannel(Vec<f32>),
    /// Independent standard normal draws (torchvision's `value='random'`).
    Random,
}

/// With probability `p`, erases a rectangle of area fraction in `scale` and aspect ratio in `ratio`
/// (log-uniform), trying 10 times to fit it. PyTorch equivalent:
/// `transforms.RandomErasing(p, scale, ratio, value)`.
#[derive(Clone, Debug)]
pub struct RandomErasing {
    /// Probability of erasing.
    pub p: f32,
    /// Range of the erased area as a fraction of the image.
    pub scale: (f32, f32),
    /// Range of the rectangle's height / width.
    pub ratio: (f32, f32),
    /// The fill.
    pub value: EraseValue,
}

impl Default for RandomErasing {
    /// torchvision's defaults: p 0.5, scale (0.02, 0.33), ratio (0.3, 3.3), value 0.
    fn default() -> Self {
        RandomErasing {
            p: 0.5,
            scale: (0.02, 0.33),
            ratio: (0.3, 3.3),
            value: EraseValue::Constant(0.0),
        }
    }
}

impl RandomErasing {
    /// Erases (or not) one image with randomness from `rng`.
    pub fn erase(&self, mut img: ImageF32, rng: &mut DataRng) -> Result<ImageF32> {
        check_probability("RandomErasing", self.p)?;
        if let EraseValue::PerChannel(v) = &self.value
            && v.len() != img.channels
        {
            return Err(DataError::invalid(
                "RandomErasing",
                format!("{} fill values for {} channels", v.len(), img.channels),
            ));
        }
        if !coin(rng, self.p) {
            return Ok(img);
        }
        let (h, w) = (img.height, img.width);
        let area = (h * w) as f32;
        let (log_lo, log_hi) = (self.ratio.0.ln(), self.ratio.1.ln());
        for _ in 0..10 {
            let target = area * uniform(rng, self.scale.0, self.scale.1);
            let aspect = uniform(rng, log_lo, log_hi).exp();
            let eh = (target * aspect).sqrt().round() as usize;
            let ew = (target / aspect).sqrt().round() as usize;
            if !(eh < h && ew < w) || eh == 0 || ew == 0 {
                continue;
            }
            let top = rng.random_range(0..=h - eh);
            let left = rng.random_range(0..=w - ew);
            match &self.value {
                EraseValue::Constant(v) => {
                    functional::erase(&mut img, top, left, eh, ew, |_, _| *v)
                }
                EraseValue::PerChannel(v) => {
                    functional::erase(&mut img, top, left, eh, ew, |c, _| v[c])
                }
                EraseValue::Random => functional::erase(&mut img, top, left, eh, ew, |_, _| {
                    rng.sample::<f32, _>(StandardNormal)
                }),
            }?;
            return Ok(img);
        }
        Ok(img)
    }
}

impl Transform for RandomErasing {
    fn apply(&self, sample: Sample, rng: &mut DataRng) -> Result<Sample> {
        map_image(sample, "RandomErasing", |img| self.erase(img, rng))
    }
}
