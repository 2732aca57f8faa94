//! Preprocessing and augmentation of samples, driven by the loader's seeded per-sample generator.
//!
//! A [`Transform`] maps one [`Sample`] to another, drawing any randomness from the generator it is
//! handed; [`apply_batch`] runs a transform over a whole batch in parallel with one generator per
//! sample position (see [`crate::rng::sample_rng`]), so results never depend on the thread count.
//! Augmentations work on f32 CHW images: put [`ToTensor`] first. Every random augmentation has a
//! probability `p` of being applied.

mod affine;
mod color;
mod convert;
mod crop;
mod erasing;
mod flip;
pub mod functional;

use rand::Rng;
use rayon::prelude::*;

pub use affine::{RandomAffine, RandomRotation};
pub use color::ColorJitter;
pub use convert::{CenterCrop, Normalize, Resize, ToTensor};
pub use crop::{RandomCrop, RandomResizedCrop};
pub use erasing::{EraseValue, RandomErasing};
pub use flip::{RandomHorizontalFlip, RandomVerticalFlip};

use crate::error::{DataError, Result};
use crate::rng::{DataRng, sample_rng};
use crate::sample::{ImageF32, Input, Sample};

/// A (possibly random) map from sample to sample.
pub trait Transform: Send + Sync {
    /// Transforms `sample`, drawing randomness only from `rng`.
    fn apply(&self, sample: Sample, rng: &mut DataRng) -> Result<Sample>;
}

impl<T: Transform + ?Sized> Transform for Box<T> {
    fn apply(&self, sample: Sample, rng: &mut DataRng) -> Result<Sample> {
        (**self).apply(sample, rng)
    }
}

impl<T: Transform + ?Sized> Transform for std::sync::Arc<T> {
    fn apply(&self, sample: Sample, rng: &mut DataRng) -> Result<Sample> {
        (**self).apply(sample, rng)
    }
}

/// Transforms applied one after another. PyTorch equivalent: `transforms.Compose`.
#[derive(Default)]
pub struct Compose {
    steps: Vec<Box<dyn Transform>>,
}

impl Compose {
    /// An empty pipeline (the identity).
    pub fn new() -> Self {
        Compose { steps: Vec::new() }
    }

    /// Appends a step.
    pub fn then(mut self, step: impl Transform + 'static) -> Self {
        self.steps.push(Box::new(step));
        self
    }

    /// Number of steps.
    pub fn len(&self) -> usize {
        self.steps.len()
    }

    /// True when there are no steps.
    pub fn is_empty(&self) -> bool {
        self.steps.is_empty()
    }
}

impl Transform for Compose {
    fn apply(&self, mut sample: Sample, rng: &mut DataRng) -> Result<Sample> {
        for step in &self.steps {
            sample = step.apply(sample, rng)?;
        }
        Ok(sample)
    }
}

/// Applies a transform with probability `p`, else leaves the sample unchanged.
/// PyTorch equivalent: `transforms.RandomApply([t], p)`.
pub struct RandomApply<T> {
    /// The wrapped transform.
    pub transform: T,
    /// Probability of applying it.
    pub p: f32,
}

impl<T: Transform> Transform for RandomApply<T> {
    fn apply(&self, sample: Sample, rng: &mut DataRng) -> Result<Sample> {
        if coin(rng, self.p) {
            self.transform.apply(sample, rng)
        } else {
            Ok(sample)
        }
    }
}

/// Transforms `samples` in parallel; the sample at `k` uses generator
/// `sample_rng(seed, epoch, first_position + k)`.
pub fn apply_batch(
    transform: &dyn Transform,
    samples: Vec<Sample>,
    seed: u64,
    epoch: u64,
    first_position: u64,
) -> Result<Vec<Sample>> {
    samples
        .into_par_iter()
        .enumerate()
        .map(|(k, s)| {
            let mut rng = sample_rng(seed, epoch, first_position + k as u64);
            transform.apply(s, &mut rng)
        })
        .collect()
}

/// True with probability `p` (always draws one number, so streams stay aligned).
pub(crate) fn coin(rng: &mut DataRng, p: f32) -> bool {
    rng.random::<f32>() < p
}

/// A uniform draw from `[lo, hi]` (exactly `lo` when the range is empty).
pub(crate) fn uniform(rng: &mut DataRng, lo: f32, hi: f32) -> f32 {
    lo + (hi - lo) * rng.random::<f32>()
}

/// Checks that a probability lies in `[0, 1]`.
pub(crate) fn check_probability(op: &'static str, p: f32) -> Result<()> {
    if (0.0..=1.0).contains(&p) {
        Ok(())
    } else {
        Err(DataError::invalid(
            op,
            format!("probability {p} is not in [0, 1]"),
        ))
    }
}

/// Runs `f` on the sample's f32 image, failing with a hint for other inputs.
pub(crate) fn map_image(
    mut sample: Sample,
    op: &'static str,
    f: impl FnOnce(ImageF32) -> Result<ImageF32>,
) -> Result<Sample> {
    sample.input = match sample.input {
        Input::F32(img) => {
            img.check()?;
            Input::F32(f(img)?)
        }
        Input::U8(_) => {
            return Err(DataError::invalid(
                op,
                "expects an f32 CHW image; put ToTensor before it",
            ));
        }
        Input::Features(_) => return Err(DataError::invalid(op, "expects an image, not features")),
    };
    Ok(sample)
}
