//! An image folder: one subfolder per class, PNG or JPEG files inside, decoded on `get`.
//!
//! Classes are the subfolder names in sorted order; files are sorted by path within a class.
//! PyTorch equivalent: `torchvision.datasets.ImageFolder` (which also converts to RGB).

use std::path::{Path, PathBuf};

use crate::dataset::{Dataset, check_index};
use crate::error::{DataError, Result};
use crate::sample::{ImageU8, Sample};

/// File extensions read (compared case-insensitively).
pub const IMAGE_EXTENSIONS: [&str; 3] = ["png", "jpg", "jpeg"];

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
            if entry.is_dir() {
                if let Some(name) = entry.file_name().and_then(|n| n.to_str()) {
                    classes.push(name.to_string());
                }
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
        Ok(ImageFolder {
            root,
            classes,
            files,
            mode,
        })
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
        Ok(Sample::image_u8(decode_image(path, self.mode)?, *label))
    }
}

/// Decodes a PNG or JPEG file into a u8 HWC image.
pub fn decode_image(path: &Path, mode: ColorMode) -> Result<ImageU8> {
    let bytes = std::fs::read(path).map_err(|e| DataError::io(path, e))?;
    let img = image::load_from_memory(&bytes)
        .map_err(|e| DataError::format(path, format!("cannot decode image: {e}")))?;
    let (width, height) = (img.width() as usize, img.height() as usize);
    let (channels, data) = match mode {
        ColorMode::Rgb => (3, img.into_rgb8().into_raw()),
        ColorMode::Gray => (1, img.into_luma8().into_raw()),
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
