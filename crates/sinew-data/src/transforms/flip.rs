//! Random horizontal and vertical flips.

use super::{Transform, check_probability, coin, functional, map_image};
use crate::error::Result;
use crate::rng::DataRng;
use crate::sample::Sample;

/// Mirrors left-right with probability `p`. PyTorch equivalent: `transforms.RandomHorizontalFlip(p)`.
#[derive(Clone, Copy, Debug)]
pub struct RandomHorizontalFlip {
    /// Probability of flipping.
    pub p: f32,
}

impl Default for RandomHorizontalFlip {
    fn default() -> Self {
        RandomHorizontalFlip { p: 0.5 }
    }
}

impl Transform for RandomHorizontalFlip {
    fn apply(&self, sample: Sample, rng: &mut DataRng) -> Result<Sample> {
        check_probability("RandomHorizontalFlip", self.p)?;
        map_image(sample, "RandomHorizontalFlip", |mut img| {
            if coin(rng, self.p) {
                functional::hflip(&mut img)?;
            }
            Ok(img)
        })
    }
}

/// Mirrors top-bottom with probability `p`. PyTorch equivalent: `transforms.RandomVerticalFlip(p)`.
#[derive(Clone, Copy, Debug)]
pub struct RandomVerticalFlip {
    /// Probability of flipping.
    pub p: f32,
}

impl Default for RandomVerticalFlip {
    fn default() -> Self {
        RandomVerticalFlip { p: 0.5 }
    }
}

impl Transform for RandomVerticalFlip {
    fn apply(&self, sample: Sample, rng: &mut DataRng) -> Result<Sample> {
        check_probability("RandomVerticalFlip", self.p)?;
        map_image(sample, "RandomVerticalFlip", |mut img| {
            if coin(rng, self.p) {
                functional::vflip(&mut img)?;
            }
            Ok(img)
        })
    }
}
