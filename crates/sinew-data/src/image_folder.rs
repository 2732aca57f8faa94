//! An image folder: one subfolder per class, PNG or JPEG files inside, decoded on `get`.
//!
//! Classes are the subfolder names in sorted order; files are sorted by path within a class.
//! PyTorch equivalent: `torchvision.datasets.ImageFolder` (which also converts to RGB).

use std::path::{Path, PathBuf};

use image::{DynamicImage, GenericImageView, Pixel};

use crate::alloc::{checked_numel, try_with_capacity};
use crate::dataset::{Dataset, check_index};
use crate::error::{DataError, Result};
use crate::sample::{ImageU8, Sample};

/// File extensions read (compared case-insensitively).
pub const IMAGE_EXTENSIONS: [&str; 3] = ["png", "jpg", "jpeg"];

/// Default cap on the bytes one decoded image may take (decoder buffers and the u8 output): 512 MiB.
pub const DEFAULT_MAX_IMAGE_BYTES: u64 = 512 << 20;

/// How decoded pixels are converted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum ColorMode {
    /// Three channels (grayscale is replicated), like torchvision's default loader.
    #[default]
    Rgb,
    /// One luminance channel.
    Gray,
}

/// A dataset of image files under `root/<class>/`.
#[derive(Clone, Debug)]
pub struct ImageFolder {
    root: PathBuf,
    classes: Vec<String>,
    files: Vec<(PathBuf, i64)>,
    mode: ColorMode,
    max_image_bytes: u64,
}

impl ImageFolder {
    /// Scans `root` for class subfolders and their PNG/JPEG files, decoding as RGB.
    pub fn open(root: impl AsRef<Path>) -> Result<Self> {
        Self::open_with(root, ColorMode::Rgb)
    }

    /// Scans `root`, decoding images in `mode`.
    pub fn open_with(root: impl AsRef<Path>, mode: ColorMode) -> Result<Self> {
        let root = root.as_ref().to_path_buf();
        let mut classes: Vec<String> = Vec::new();
        for entry in read_dir_sorted(&root)? {
            if entry.is_dir()
                && let Some(name) = entry.file_name().and_then(|n| n.to_str())
            {
                classes.push(name.to_string());
            }
        }
        if classes.is_empty() {
            return Err(DataError::format(&root, "no class subfolders found"));
        }
        let mut files = Vec::new();
        for (class, name) in classes.iter().enumerate() {
            for path in read_dir_sorted(&root.join(name))? {
                let is_image = path
                    .extension()
                    .and_then(|e| e.to_str())
                    .is_some_and(|e| IMAGE_EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()));
                if path.is_file() && is_image {
                    files.push((path, class as i64));
                }
            }
        }
        // As torchvision: every class needs at least one file with a supported extension.
        let empty: Vec<&str> = classes
            .iter()
            .enumerate()
            .filter(|&(class, _)| !files.iter().any(|&(_, c)| c == class as i64))
            .map(|(_, name)| name.as_str())
            .collect();
        if !empty.is_empty() {
            return Err(DataError::format(
                &root,
                format!(
                    "Found no valid file for the classes {}. Supported extensions are: .{}",
                    empty.join(", "),
                    IMAGE_EXTENSIONS.join(", .")
                ),
            ));
        }
        Ok(ImageFolder {
            root,
            classes,
            files,
            mode,
            max_image_bytes: DEFAULT_MAX_IMAGE_BYTES,
        })
    }

    /// Caps the bytes one decoded image may take (default [`DEFAULT_MAX_IMAGE_BYTES`]); larger
    /// images fail on `get` with [`DataError::TooLarge`].
    pub fn with_max_image_bytes(mut self, max_bytes: u64) -> Self {
        self.max_image_bytes = max_bytes;
        self
    }

    /// The root folder.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Class names (subfolder names), indexed by label.
    pub fn classes(&self) -> &[String] {
        &self.classes
    }

    /// Every image path with its label, in dataset order.
    pub fn files(&self) -> &[(PathBuf, i64)] {
        &self.files
    }
}

impl Dataset for ImageFolder {
    type Item = Sample;
    fn len(&self) -> usize {
        self.files.len()
    }
    fn get(&self, index: usize) -> Result<Sample> {
        check_index(index, self.files.len())?;
        let (path, label) = &self.files[index];
        let bytes = std::fs::read(path).map_err(|e| DataError::io(path, e))?;
        let image = decode_image_bytes(&bytes, path, self.mode, self.max_image_bytes)?;
        Ok(Sample::image_u8(image, *label))
    }
}

/// Decodes a PNG or JPEG file into a u8 HWC image (at most [`DEFAULT_MAX_IMAGE_BYTES`]).
pub fn decode_image(path: &Path, mode: ColorMode) -> Result<ImageU8> {
    let bytes = std::fs::read(path).map_err(|e| DataError::io(path, e))?;
    decode_image_bytes(&bytes, path, mode, DEFAULT_MAX_IMAGE_BYTES)
}

/// Decodes PNG or JPEG bytes (format detected from the content) into a u8 HWC image; `path` only
/// names the source in errors. The decoder's allocations and the output are capped at
/// `max_bytes`, and the conversion buffer is allocated fallibly.
pub fn decode_image_bytes(
    bytes: &[u8],
    path: &Path,
    mode: ColorMode,
    max_bytes: u64,
) -> Result<ImageU8> {
    let bad =
        |e: &dyn std::fmt::Display| DataError::format(path, format!("cannot decode image: {e}"));
    let mut reader = image::ImageReader::new(std::io::Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| bad(&e))?;
    let mut limits = image::Limits::default();
    limits.max_alloc = Some(max_bytes);
    reader.limits(limits);
    let img = reader.decode().map_err(|e| match e {
        image::ImageError::Limits(e) => DataError::TooLarge {
            op: "decode_image",
            detail: format!("{}: {e} (cap {max_bytes} bytes)", path.display()),
        },
        e => bad(&e),
    })?;
    let (width, height) = (img.width() as usize, img.height() as usize);
    let channels = match mode {
        ColorMode::Rgb => 3,
        ColorMode::Gray => 1,
    };
    let len = checked_numel("decode_image", &[height, width, channels])?;
    if len as u64 > max_bytes {
        return Err(DataError::TooLarge {
            op: "decode_image",
            detail: format!(
                "{}: a {height}x{width}x{channels} image exceeds the cap of {max_bytes} bytes",
                path.display()
            ),
        });
    }
    let data = match (mode, img) {
        (ColorMode::Rgb, DynamicImage::ImageRgb8(buf)) => buf.into_raw(),
        (ColorMode::Gray, DynamicImage::ImageLuma8(buf)) => buf.into_raw(),
        (mode, img) => {
            let mut out = try_with_capacity("decode_image", len)?;
            for (_, _, px) in img.pixels() {
                match mode {
                    ColorMode::Rgb => out.extend_from_slice(&px.to_rgb().0),
                    ColorMode::Gray => out.push(px.to_luma().0[0]),
                }
            }
            out
        }
    };
    ImageU8::new(height, width, channels, data)
}

/// Entries of a directory, sorted by path.
fn read_dir_sorted(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(|e| DataError::io(dir, e))? {
        out.push(entry.map_err(|e| DataError::io(dir, e))?.path());
    }
    out.sort();
    Ok(out)
}
