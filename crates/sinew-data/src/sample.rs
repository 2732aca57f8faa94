//! In-memory examples: images (u8 HWC or f32 CHW), feature rows, and their targets.
//!
//! Readers hand out u8 images in HWC order (as decoders and PIL do); [`crate::transforms::ToTensor`]
//! turns them into f32 CHW images in `[0, 1]`, the layout every augmentation works on.

use crate::alloc::{checked_numel, try_filled};
use crate::error::{DataError, Result};

/// `v / 255` for every byte `v`, exactly as the division rounds.
const U8_TO_UNIT: [f32; 256] = {
    let mut table = [0.0; 256];
    let mut i = 0;
    while i < 256 {
        table[i] = i as f32 / 255.0;
        i += 1;
    }
    table
};

/// An 8-bit image in height × width × channels (interleaved) order.
#[derive(Clone, Debug, PartialEq)]
pub struct ImageU8 {
    /// Rows.
    pub height: usize,
    /// Columns.
    pub width: usize,
    /// Channels per pixel (1 for grayscale, 3 for RGB).
    pub channels: usize,
    /// `height * width * channels` bytes, HWC.
    pub data: Vec<u8>,
}

impl ImageU8 {
    /// An image from HWC bytes; the length must match the dimensions (checked, never overflowing).
    pub fn new(height: usize, width: usize, channels: usize, data: Vec<u8>) -> Result<Self> {
        let len = checked_numel("ImageU8::new", &[height, width, channels])?;
        if data.len() != len {
            return Err(DataError::invalid(
                "ImageU8::new",
                format!(
                    "{} bytes for a {height}x{width}x{channels} image",
                    data.len()
                ),
            ));
        }
        Ok(ImageU8 {
            height,
            width,
            channels,
            data,
        })
    }

    /// Byte of channel `c` at row `y`, column `x` (`None` outside the image).
    pub fn at(&self, y: usize, x: usize, c: usize) -> Option<u8> {
        if y >= self.height || x >= self.width || c >= self.channels {
            return None;
        }
        self.data
            .get((y * self.width + x) * self.channels + c)
            .copied()
    }

    /// Checks that `data` holds exactly `height * width * channels` bytes (the fields are public).
    pub fn check(&self) -> Result<()> {
        let len = checked_numel("ImageU8", &[self.height, self.width, self.channels])?;
        if self.data.len() != len {
            return Err(DataError::invalid(
                "ImageU8",
                format!(
                    "{} bytes for a {}x{}x{} image",
                    self.data.len(),
                    self.height,
                    self.width,
                    self.channels
                ),
            ));
        }
        Ok(())
    }
}

/// A float image in channels × height × width (planar) order, the layout tensors use.
#[derive(Clone, Debug, PartialEq)]
pub struct ImageF32 {
    /// Channels (planes).
    pub channels: usize,
    /// Rows.
    pub height: usize,
    /// Columns.
    pub width: usize,
    /// `channels * height * width` values, CHW.
    pub data: Vec<f32>,
}

impl ImageF32 {
    /// An image from CHW values; the length must match the dimensions (checked, never overflowing).
    pub fn new(channels: usize, height: usize, width: usize, data: Vec<f32>) -> Result<Self> {
        let len = checked_numel("ImageF32::new", &[channels, height, width])?;
        if data.len() != len {
            return Err(DataError::invalid(
                "ImageF32::new",
                format!(
                    "{} values for a {channels}x{height}x{width} image",
                    data.len()
                ),
            ));
        }
        Ok(ImageF32 {
            channels,
            height,
            width,
            data,
        })
    }

    /// An image filled with `value`; the size is checked and the buffer allocated fallibly
    /// ([`DataError::TooLarge`] for a huge size, never an abort).
    pub fn filled(channels: usize, height: usize, width: usize, value: f32) -> Result<Self> {
        let len = checked_numel("ImageF32::filled", &[channels, height, width])?;
        Ok(ImageF32 {
            channels,
            height,
            width,
            data: try_filled("ImageF32::filled", len, value)?,
        })
    }

    /// Value of channel `c` at row `y`, column `x` (`None` outside the image).
    pub fn at(&self, c: usize, y: usize, x: usize) -> Option<f32> {
        if c >= self.channels || y >= self.height || x >= self.width {
            return None;
        }
        self.data
            .get((c * self.height + y) * self.width + x)
            .copied()
    }

    /// One channel's plane, row-major (`None` for a channel past the end).
    pub fn plane(&self, c: usize) -> Option<&[f32]> {
        let hw = self.height.checked_mul(self.width)?;
        let start = c.checked_mul(hw)?;
        self.data.get(start..start.checked_add(hw)?)
    }

    /// One channel's plane, mutable (`None` for a channel past the end).
    pub fn plane_mut(&mut self, c: usize) -> Option<&mut [f32]> {
        let hw = self.height.checked_mul(self.width)?;
        let start = c.checked_mul(hw)?;
        self.data.get_mut(start..start.checked_add(hw)?)
    }

    /// Checks that `data` holds exactly `channels * height * width` values (the fields are public).
    pub fn check(&self) -> Result<()> {
        let len = checked_numel("ImageF32", &[self.channels, self.height, self.width])?;
        if self.data.len() != len {
            return Err(DataError::invalid(
                "ImageF32",
                format!(
                    "{} values for a {}x{}x{} image",
                    self.data.len(),
                    self.channels,
                    self.height,
                    self.width
                ),
            ));
        }
        Ok(())
    }

    /// Plane `c` of an image already [`ImageF32::check`]ed, for `c < channels`.
    pub(crate) fn chan(&self, c: usize) -> &[f32] {
        let hw = self.height * self.width;
        &self.data[c * hw..(c + 1) * hw]
    }

    /// Mutable plane `c` of an image already [`ImageF32::check`]ed, for `c < channels`.
    pub(crate) fn chan_mut(&mut self, c: usize) -> &mut [f32] {
        let hw = self.height * self.width;
        &mut self.data[c * hw..(c + 1) * hw]
    }
}

/// The input half of an example.
#[derive(Clone, Debug, PartialEq)]
pub enum Input {
    /// An 8-bit HWC image (collated as f32 in `[0, 1]`, as [`crate::transforms::ToTensor`] would).
    U8(ImageU8),
    /// A float CHW image.
    F32(ImageF32),
    /// A row of tabular features.
    Features(Vec<f32>),
}

impl Input {
    /// Shape of the collated element: `[C, H, W]` for images, `[F]` for features.
    pub fn tensor_dims(&self) -> Vec<usize> {
        match self {
            Input::U8(img) => vec![img.channels, img.height, img.width],
            Input::F32(img) => vec![img.channels, img.height, img.width],
            Input::Features(f) => vec![f.len()],
        }
    }

    /// Number of values in tensor order, after checking the data length against the dimensions.
    pub fn numel(&self) -> Result<usize> {
        match self {
            Input::U8(img) => img.check().map(|()| img.data.len()),
            Input::F32(img) => img.check().map(|()| img.data.len()),
            Input::Features(f) => Ok(f.len()),
        }
    }

    /// Writes the values in tensor order (CHW for images, u8 scaled by 1/255) into `out`, which
    /// must hold exactly [`Input::numel`] values.
    pub fn write_f32(&self, out: &mut [f32]) -> Result<()> {
        let n = self.numel()?;
        if out.len() != n {
            return Err(DataError::invalid(
                "Input::write_f32",
                format!("{} output slots for {n} values", out.len()),
            ));
        }
        match self {
            Input::U8(img) => {
                let hw = img.height * img.width;
                let ch = img.channels;
                if ch == 1 {
                    for (o, &v) in out.iter_mut().zip(&img.data) {
                        *o = U8_TO_UNIT[usize::from(v)];
                    }
                } else {
                    for (p, px) in img.data.chunks_exact(ch).enumerate() {
                        for (c, &v) in px.iter().enumerate() {
                            out[c * hw + p] = U8_TO_UNIT[usize::from(v)];
                        }
                    }
                }
            }
            Input::F32(img) => out.copy_from_slice(&img.data),
            Input::Features(f) => out.copy_from_slice(f),
        }
        Ok(())
    }

    /// The values in tensor order as a fresh, fallibly allocated vector (see [`Input::write_f32`]).
    pub fn to_f32_vec(&self) -> Result<Vec<f32>> {
        let n = self.numel()?;
        let mut out = try_filled("Input::to_f32_vec", n, 0.0)?;
        self.write_f32(&mut out)?;
        Ok(out)
    }

    /// Number of channels for images (`None` for features).
    pub fn channels(&self) -> Option<usize> {
        match self {
            Input::U8(img) => Some(img.channels),
            Input::F32(img) => Some(img.channels),
            Input::Features(_) => None,
        }
    }
}

/// The target half of an example.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Target {
    /// A class index (collated as i64).
    Class(i64),
    /// A real value, for regression (collated as f32).
    Value(f32),
}

/// One example: an input and its target.
#[derive(Clone, Debug, PartialEq)]
pub struct Sample {
    /// The input.
    pub input: Input,
    /// The target.
    pub target: Target,
}

impl Sample {
    /// A sample of a u8 HWC image and a class.
    pub fn image_u8(image: ImageU8, class: i64) -> Self {
        Sample {
            input: Input::U8(image),
            target: Target::Class(class),
        }
    }

    /// A sample of a row of features and a class (tabular data).
    pub fn features(values: Vec<f32>, class: i64) -> Self {
        Sample {
            input: Input::Features(values),
            target: Target::Class(class),
        }
    }

    /// A sample of an f32 CHW image and a class.
    pub fn image_f32(image: ImageF32, class: i64) -> Self {
        Sample {
            input: Input::F32(image),
            target: Target::Class(class),
        }
    }

    /// The class, if the target is one.
    pub fn class(&self) -> Option<i64> {
        match self.target {
            Target::Class(c) => Some(c),
            Target::Value(_) => None,
        }
    }
}
