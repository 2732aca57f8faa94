//! Random crop with padding, and random resized crop.

use rand::Rng;

use super::{Transform, check_probability, coin, functional, map_image, uniform};
use crate::error::{DataError, Result};
use crate::rng::DataRng;
use crate::sample::{ImageF32, Sample};

/// A random `height × width` window of the image padded by `padding` pixels of `fill` on every
/// side. PyTorch equivalent: `transforms.RandomCrop(size, padding, fill=fill)` (constant padding
/// only). With probability `1 - p` it takes the centre window of the padded image instead (the
/// identity when the window has the image's size); torchvision has no `p` (it is always 1).
#[derive(Clone, Copy, Debug)]
pub struct RandomCrop {
    /// Output height.
    pub height: usize,
    /// Output width.
    pub width: usize,
    /// Padding on each side.
    pub padding: usize,
    /// Value of padded pixels.
    pub fill: f32,
    /// Probability of a random (rather than central) window.
    pub p: f32,
}

impl RandomCrop {
    /// A crop of `height × width` after `padding`, with zero fill, always random.
    pub fn new(height: usize, width: usize, padding: usize) -> Self {
        RandomCrop {
            height,
            width,
            padding,
            fill: 0.0,
            p: 1.0,
        }
    }

    /// Crops one image with randomness from `rng`.
    pub fn crop(&self, img: &ImageF32, rng: &mut DataRng) -> Result<ImageF32> {
        check_probability("RandomCrop", self.p)?;
        // Padded sizes, checked so that every offset below also fits in `isize`.
        let padded = |side: usize| {
            self.padding
                .checked_mul(2)
                .and_then(|p| p.checked_add(side))
                .filter(|&s| isize::try_from(s).is_ok())
        };
        let (Some(ph), Some(pw)) = (padded(img.height), padded(img.width)) else {
            return Err(DataError::TooLarge {
                op: "RandomCrop",
                detail: format!(
                    "padding {} of a {}x{} image overflows",
                    self.padding, img.height, img.width
                ),
            });
        };
        if self.height > ph || self.width > pw || self.height == 0 || self.width == 0 {
            return Err(DataError::invalid(
                "RandomCrop",
                format!(
                    "window {}x{} does not fit the padded {ph}x{pw} image",
                    self.height, self.width
                ),
            ));
        }
        let (top, left) = if coin(rng, self.p) {
            (
                rng.random_range(0..=ph - self.height),
                rng.random_range(0..=pw - self.width),
            )
        } else {
            ((ph - self.height) / 2, (pw - self.width) / 2)
        };
        let pad = self.padding as isize;
        functional::crop(
            img,
            top as isize - pad,
            left as isize - pad,
            self.height,
            self.width,
            self.fill,
        )
    }
}

impl Transform for RandomCrop {
    fn apply(&self, sample: Sample, rng: &mut DataRng) -> Result<Sample> {
        map_image(sample, "RandomCrop", |img| self.crop(&img, rng))
    }
}

/// A random window of random area fraction (`scale`) and aspect ratio (`ratio`, log-uniform),
/// resized bilinearly to `height × width`. PyTorch equivalent:
/// `transforms.RandomResizedCrop(size, scale, ratio, antialias=False)`. With probability `1 - p`
/// the whole image is resized instead (torchvision has no `p`).
#[derive(Clone, Copy, Debug)]
pub struct RandomResizedCrop {
    /// Output height.
    pub height: usize,
    /// Output width.
    pub width: usize,
    /// Range of the window's area as a fraction of the image's.
    pub scale: (f32, f32),
    /// Range of the window's width / height.
    pub ratio: (f32, f32),
    /// Probability of cropping.
    pub p: f32,
}

impl RandomResizedCrop {
    /// Output `height × width` with torchvision's defaults: scale (0.08, 1), ratio (3/4, 4/3).
    pub fn new(height: usize, width: usize) -> Self {
        RandomResizedCrop {
            height,
            width,
            scale: (0.08, 1.0),
            ratio: (3.0 / 4.0, 4.0 / 3.0),
            p: 1.0,
        }
    }

    /// The window (top, left, height, width) in an `h × w` image, as torchvision's `get_params`.
    pub fn window(&self, h: usize, w: usize, rng: &mut DataRng) -> (usize, usize, usize, usize) {
        let area = (h * w) as f32;
        let (log_lo, log_hi) = (self.ratio.0.ln(), self.ratio.1.ln());
        for _ in 0..10 {
            let target = area * uniform(rng, self.scale.0, self.scale.1);
            let aspect = uniform(rng, log_lo, log_hi).exp();
            let cw = (target * aspect).sqrt().round() as usize;
            let ch = (target / aspect).sqrt().round() as usize;
            if 0 < cw && cw <= w && 0 < ch && ch <= h {
                let top = rng.random_range(0..=h - ch);
                let left = rng.random_range(0..=w - cw);
                return (top, left, ch, cw);
            }
        }
        // Fallback: the central crop with the ratio clamped into range.
        let in_ratio = w as f32 / h as f32;
        let (ch, cw) = if in_ratio < self.ratio.0 {
            (((w as f32 / self.ratio.0).round() as usize).clamp(1, h), w)
        } else if in_ratio > self.ratio.1 {
            (h, ((h as f32 * self.ratio.1).round() as usize).clamp(1, w))
        } else {
            (h, w)
        };
        ((h - ch) / 2, (w - cw) / 2, ch, cw)
    }

    /// Crops and resizes one image with randomness from `rng`.
    pub fn crop(&self, img: &ImageF32, rng: &mut DataRng) -> Result<ImageF32> {
        check_probability("RandomResizedCrop", self.p)?;
        let ok_ranges = 0.0 < self.scale.0
            && self.scale.0 <= self.scale.1
            && 0.0 < self.ratio.0
            && self.ratio.0 <= self.ratio.1;
        if !ok_ranges || self.height == 0 || self.width == 0 || img.height * img.width == 0 {
            return Err(DataError::invalid(
                "RandomResizedCrop",
                format!("bad scale {:?} / ratio {:?} / size", self.scale, self.ratio),
            ));
        }
        let (top, left, h, w) = if coin(rng, self.p) {
            self.window(img.height, img.width, rng)
        } else {
            (0, 0, img.height, img.width)
        };
        functional::resized_crop(img, top, left, h, w, self.height, self.width)
    }
}

impl Transform for RandomResizedCrop {
    fn apply(&self, sample: Sample, rng: &mut DataRng) -> Result<Sample> {
        map_image(sample, "RandomResizedCrop", |img| self.crop(&img, rng))
    }
}
