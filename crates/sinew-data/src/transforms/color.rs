//! Colour jitter: random brightness, contrast, saturation and hue, in random order.

use rand::seq::SliceRandom;

use super::{Transform, check_probability, coin, functional, map_image, uniform};
use crate::error::{DataError, Result};
use crate::rng::DataRng;
use crate::sample::{ImageF32, Sample};

/// Random brightness, contrast and saturation factors uniform in `[max(0, 1 - s), 1 + s]` and a hue
/// shift uniform in `[-hue, hue]` turns, applied in a random order with probability `p`, on images
/// in `[0, 1]`. A zero strength skips that adjustment entirely, so all zeros is the identity.
/// Saturation and hue leave one-channel images unchanged. PyTorch equivalent:
/// `transforms.ColorJitter(brightness, contrast, saturation, hue)`; torchvision has no `p`.
#[derive(Clone, Copy, Debug, Default)]
pub struct ColorJitter {
    /// Brightness strength `s ≥ 0`.
    pub brightness: f32,
    /// Contrast strength `s ≥ 0`.
    pub contrast: f32,
    /// Saturation strength `s ≥ 0`.
    pub saturation: f32,
    /// Hue strength in `[0, 0.5]`.
    pub hue: f32,
    /// Probability of jittering.
    pub p: f32,
}

impl ColorJitter {
    /// A jitter with the given strengths, always applied.
    pub fn new(brightness: f32, contrast: f32, saturation: f32, hue: f32) -> Self {
        ColorJitter {
            brightness,
            contrast,
            saturation,
            hue,
            p: 1.0,
        }
    }

    /// Jitters one image with randomness from `rng`.
    pub fn jitter(&self, mut img: ImageF32, rng: &mut DataRng) -> Result<ImageF32> {
        check_probability("ColorJitter", self.p)?;
        let strengths = [self.brightness, self.contrast, self.saturation];
        if strengths.iter().any(|&s| !(s >= 0.0 && s.is_finite()))
            || !(0.0..=0.5).contains(&self.hue)
        {
            return Err(DataError::invalid(
                "ColorJitter",
                format!(
                    "strengths {strengths:?} must be >= 0 and hue {} in [0, 0.5]",
                    self.hue
                ),
            ));
        }
        if !coin(rng, self.p) {
            return Ok(img);
        }
        let factor = |rng: &mut DataRng, s: f32| uniform(rng, (1.0 - s).max(0.0), 1.0 + s);
        let mut order = [0usize, 1, 2, 3];
        order.shuffle(rng);
        for op in order {
            match op {
                0 if self.brightness > 0.0 => {
                    let f = factor(rng, self.brightness);
                    functional::adjust_brightness(&mut img, f)?;
                }
                1 if self.contrast > 0.0 => {
                    let f = factor(rng, self.contrast);
                    functional::adjust_contrast(&mut img, f)?;
                }
                2 if self.saturation > 0.0 => {
                    let f = factor(rng, self.saturation);
                    functional::adjust_saturation(&mut img, f)?;
                }
                3 if self.hue > 0.0 => {
                    let shift = uniform(rng, -self.hue, self.hue);
                    functional::adjust_hue(&mut img, shift)?;
                }
                _ => {}
            }
        }
        Ok(img)
    }
}

impl Transform for ColorJitter {
    fn apply(&self, sample: Sample, rng: &mut DataRng) -> Result<Sample> {
        map_image(sample, "ColorJitter", |img| self.jitter(img, rng))
    }
}
