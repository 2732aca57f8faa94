//! Random affine warps (rotation, translation, scale) and random rotation, bilinear with a fill.

use super::functional::{self, AffineParams};
use super::{Transform, check_probability, coin, map_image, uniform};
use crate::error::{DataError, Result};
use crate::rng::DataRng;
use crate::sample::{ImageF32, Sample};

/// Rotation by an angle uniform in `degrees`, translation by up to `translate` (fractions of width
/// and height, rounded to whole pixels) and scale uniform in `scale`, about the centre, applied with
/// probability `p`. PyTorch equivalent: `transforms.RandomAffine(degrees, translate, scale,
/// interpolation=BILINEAR, fill=fill)` without shear; torchvision has no `p`.
#[derive(Clone, Copy, Debug)]
pub struct RandomAffine {
    /// Angle range in degrees (counter-clockwise).
    pub degrees: (f32, f32),
    /// Largest translation as fractions of (width, height).
    pub translate: (f32, f32),
    /// Scale range.
    pub scale: (f32, f32),
    /// Value of pixels that come from outside the image.
    pub fill: f32,
    /// Probability of warping.
    pub p: f32,
}

impl RandomAffine {
    /// Rotation only, by an angle in `[-degrees, degrees]`.
    pub fn rotation(degrees: f32) -> Self {
        RandomAffine {
            degrees: (-degrees, degrees),
            translate: (0.0, 0.0),
            scale: (1.0, 1.0),
            fill: 0.0,
            p: 1.0,
        }
    }

    /// Draws the warp for an image of `height × width`.
    pub fn params(&self, height: usize, width: usize, rng: &mut DataRng) -> AffineParams {
        let angle = uniform(rng, self.degrees.0, self.degrees.1);
        let max_dx = self.translate.0 * width as f32;
        let max_dy = self.translate.1 * height as f32;
        let tx = uniform(rng, -max_dx, max_dx).round();
        let ty = uniform(rng, -max_dy, max_dy).round();
        let scale = uniform(rng, self.scale.0, self.scale.1);
        AffineParams {
            angle,
            translate: (tx, ty),
            scale,
        }
    }

    /// Warps one image with randomness from `rng`.
    pub fn warp(&self, img: &ImageF32, rng: &mut DataRng) -> Result<ImageF32> {
        check_probability("RandomAffine", self.p)?;
        let finite = [self.degrees.0, self.degrees.1, self.scale.0, self.scale.1]
            .iter()
            .all(|v| v.is_finite());
        let ok = finite
            && self.degrees.0 <= self.degrees.1
            && (0.0..=1.0).contains(&self.translate.0)
            && (0.0..=1.0).contains(&self.translate.1)
            && 0.0 < self.scale.0
            && self.scale.0 <= self.scale.1;
        if !ok {
            return Err(DataError::invalid(
                "RandomAffine",
                format!(
                    "bad ranges: degrees {:?}, translate {:?}, scale {:?}",
                    self.degrees, self.translate, self.scale
                ),
            ));
        }
        if !coin(rng, self.p) {
            return Ok(img.clone());
        }
        let params = self.params(img.height, img.width, rng);
        functional::affine(img, params, self.fill)
    }
}

impl Transform for RandomAffine {
    fn apply(&self, sample: Sample, rng: &mut DataRng) -> Result<Sample> {
        map_image(sample, "RandomAffine", |img| self.warp(&img, rng))
    }
}

/// Rotation by an angle uniform in `degrees` about the centre, bilinear, with `fill`, applied
/// with probability `p`. PyTorch equivalent: `transforms.RandomRotation(degrees, BILINEAR,
/// fill=fill)` (no `expand`); torchvision has no `p`.
#[derive(Clone, Copy, Debug)]
pub struct RandomRotation {
    /// Angle range in degrees (counter-clockwise).
    pub degrees: (f32, f32),
    /// Value of pixels that come from outside the image.
    pub fill: f32,
    /// Probability of rotating.
    pub p: f32,
}

impl RandomRotation {
    /// Rotation by an angle in `[-degrees, degrees]`, zero fill, always applied.
    pub fn new(degrees: f32) -> Self {
        RandomRotation {
            degrees: (-degrees, degrees),
            fill: 0.0,
            p: 1.0,
        }
    }

    /// The equivalent [`RandomAffine`].
    fn as_affine(&self) -> RandomAffine {
        RandomAffine {
            degrees: self.degrees,
            fill: self.fill,
            p: self.p,
            ..RandomAffine::rotation(0.0)
        }
    }
}

impl Transform for RandomRotation {
    fn apply(&self, sample: Sample, rng: &mut DataRng) -> Result<Sample> {
        let affine = self.as_affine();
        map_image(sample, "RandomRotation", |img| affine.warp(&img, rng))
    }
}
