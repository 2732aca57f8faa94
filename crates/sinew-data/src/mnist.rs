//! MNIST and Fashion-MNIST: IDX files (gzip-compressed or raw) read into one shared u8 buffer.
//!
//! IDX layout (big-endian): magic `00 00 08 NN` (`08` = unsigned bytes, `NN` = number of dims),
//! one u32 per dimension, then the data row-major. Images are `0x00000803`, labels `0x00000801`.
//! PyTorch equivalent: `torchvision.datasets.MNIST` / `FashionMNIST` (images as u8 HWC here).

use std::path::{Path, PathBuf};

use crate::dataset::Dataset;
use crate::error::{DataError, Result};
use crate::io::{gunzip_if_gzip, read_maybe_gzip, write_maybe_gzip};
use crate::sample::{ImageU8, Sample};

/// Magic number of a 3-d unsigned-byte IDX file (images).
pub const IDX_IMAGES_MAGIC: u32 = 0x0000_0803;
/// Magic number of a 1-d unsigned-byte IDX file (labels).
pub const IDX_LABELS_MAGIC: u32 = 0x0000_0801;

/// Fashion-MNIST's class names, by label.
pub const FASHION_MNIST_CLASSES: [&str; 10] = [
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
];

/// Which half of a dataset with a fixed train/test split.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Split {
    /// The training set.
    Train,
    /// The test set.
    Test,
}

/// An IDX array of unsigned bytes.
#[derive(Clone, Debug, PartialEq)]
pub struct IdxArray {
    /// Dimension sizes from the header.
    pub dims: Vec<usize>,
    /// The data, row-major.
    pub data: Vec<u8>,
}

/// Reads an unsigned-byte IDX file (gzip or raw) whose magic must be `expected_magic`.
pub fn read_idx(path: &Path, expected_magic: u32) -> Result<IdxArray> {
    let bytes = read_maybe_gzip(path)?;
    parse_idx(bytes, path, expected_magic)
}

/// Parses IDX bytes (gzip or raw, as a file would hold them); `path` only names the source in
/// errors. The parser behind [`read_idx`].
pub fn parse_idx_maybe_gzip(raw: Vec<u8>, path: &Path, expected_magic: u32) -> Result<IdxArray> {
    parse_idx(gunzip_if_gzip(raw, path)?, path, expected_magic)
}

/// Parses uncompressed IDX bytes read from `path` (used for error messages). Sizes from the
/// header are checked (overflow, then against the real length) before anything is allocated.
pub fn parse_idx(mut bytes: Vec<u8>, path: &Path, expected_magic: u32) -> Result<IdxArray> {
    let what = if expected_magic == IDX_LABELS_MAGIC {
        "IDX labels"
    } else {
        "IDX images"
    };
    if bytes.len() < 4 {
        return Err(DataError::Truncated {
            path: path.into(),
            expected: 4,
            found: bytes.len(),
        });
    }
    let magic = u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
    if magic != expected_magic {
        return Err(DataError::BadMagic {
            path: path.into(),
            expected: expected_magic,
            found: magic,
            what,
        });
    }
    let ndim = (magic & 0xff) as usize;
    let header = 4 + 4 * ndim;
    if bytes.len() < header {
        return Err(DataError::Truncated {
            path: path.into(),
            expected: header,
            found: bytes.len(),
        });
    }
    let dims: Vec<usize> = (0..ndim)
        .map(|d| {
            let o = 4 + 4 * d;
            u32::from_be_bytes([bytes[o], bytes[o + 1], bytes[o + 2], bytes[o + 3]]) as usize
        })
        .collect();
    let expected = dims
        .iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .and_then(|n| n.checked_add(header))
        .ok_or_else(|| DataError::format(path, format!("header dims {dims:?} overflow")))?;
    if bytes.len() < expected {
        return Err(DataError::Truncated {
            path: path.into(),
            expected,
            found: bytes.len(),
        });
    }
    if bytes.len() > expected {
        return Err(DataError::SizeMismatch {
            path: path.into(),
            detail: format!(
                "header dims {dims:?} need {expected} bytes but the file has {} ({} trailing)",
                bytes.len(),
                bytes.len() - expected
            ),
        });
    }
    bytes.drain(..header);
    Ok(IdxArray { dims, data: bytes })
}

/// Writes an unsigned-byte IDX file (gzip-compressed when `gzip`), e.g. for tests and exports.
pub fn write_idx(path: &Path, dims: &[usize], data: &[u8], gzip: bool) -> Result<()> {
    let n = crate::alloc::checked_numel("write_idx", dims)?;
    if n != data.len() || dims.is_empty() || dims.len() > 255 {
        return Err(DataError::invalid(
            "write_idx",
            format!("{} bytes for dims {dims:?}", data.len()),
        ));
    }
    let mut bytes = Vec::with_capacity(4 + 4 * dims.len() + data.len());
    bytes.extend_from_slice(&(0x0800u32 | dims.len() as u32).to_be_bytes());
    for &d in dims {
        let d = u32::try_from(d).map_err(|_| DataError::invalid("write_idx", "dim over u32"))?;
        bytes.extend_from_slice(&d.to_be_bytes());
    }
    bytes.extend_from_slice(data);
    write_maybe_gzip(path, &bytes, gzip)
}

/// MNIST-format images and labels, held once in memory as u8 (share it with `Arc`).
#[derive(Clone, Debug)]
pub struct Mnist {
    images: Vec<u8>,
    labels: Vec<u8>,
    rows: usize,
    cols: usize,
}

impl Mnist {
    /// Number of classes (10 for both MNIST and Fashion-MNIST).
    pub const NUM_CLASSES: usize = 10;

    /// Loads `split` from `dir` holding `{train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz]`.
    pub fn load(dir: impl AsRef<Path>, split: Split) -> Result<Self> {
        let dir = dir.as_ref();
        let prefix = match split {
            Split::Train => "train",
            Split::Test => "t10k",
        };
        let find = |stem: String| -> PathBuf {
            let gz = dir.join(format!("{stem}.gz"));
            if gz.exists() { gz } else { dir.join(stem) }
        };
        Self::from_files(
            find(format!("{prefix}-images-idx3-ubyte")),
            find(format!("{prefix}-labels-idx1-ubyte")),
        )
    }

    /// Loads an image file and a label file (each gzip or raw), checking they agree.
    pub fn from_files(images: impl AsRef<Path>, labels: impl AsRef<Path>) -> Result<Self> {
        let (images_path, labels_path) = (images.as_ref(), labels.as_ref());
        let img = read_idx(images_path, IDX_IMAGES_MAGIC)?;
        let lab = read_idx(labels_path, IDX_LABELS_MAGIC)?;
        Self::from_idx(img, images_path, lab, labels_path)
    }

    /// Parses the contents of an image file and a label file (each gzip or raw) held in memory,
    /// with the same parser and checks as [`Mnist::from_files`]; errors name `<images>` and
    /// `<labels>`.
    pub fn from_bytes(images: &[u8], labels: &[u8]) -> Result<Self> {
        let (images_path, labels_path) = (Path::new("<images>"), Path::new("<labels>"));
        let img = parse_idx_maybe_gzip(images.to_vec(), images_path, IDX_IMAGES_MAGIC)?;
        let lab = parse_idx_maybe_gzip(labels.to_vec(), labels_path, IDX_LABELS_MAGIC)?;
        Self::from_idx(img, images_path, lab, labels_path)
    }

    /// Checks that parsed image and label arrays agree and builds the dataset.
    fn from_idx(
        img: IdxArray,
        images_path: &Path,
        lab: IdxArray,
        labels_path: &Path,
    ) -> Result<Self> {
        let (count, rows, cols) = (img.dims[0], img.dims[1], img.dims[2]);
        if lab.dims[0] != count {
            return Err(DataError::SizeMismatch {
                path: labels_path.into(),
                detail: format!(
                    "{} labels but {} holds {count} images",
                    lab.dims[0],
                    images_path.display()
                ),
            });
        }
        if let Some((index, &label)) = lab
            .data
            .iter()
            .enumerate()
            .find(|&(_, &l)| usize::from(l) >= Self::NUM_CLASSES)
        {
            return Err(DataError::BadLabel {
                path: labels_path.into(),
                index,
                label: label.to_string(),
                expected: format!("a class in 0..{}", Self::NUM_CLASSES),
            });
        }
        Ok(Mnist {
            images: img.data,
            labels: lab.data,
            rows,
            cols,
        })
    }

    /// Image height.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Image width.
    pub fn cols(&self) -> usize {
        self.cols
    }

    /// All pixels, image after image, row-major.
    pub fn images(&self) -> &[u8] {
        &self.images
    }

    /// All labels.
    pub fn labels(&self) -> &[u8] {
        &self.labels
    }

    /// The pixels of image `index` (`None` past the end).
    pub fn image(&self, index: usize) -> Option<&[u8]> {
        if index >= self.labels.len() {
            return None;
        }
        let n = self.rows.checked_mul(self.cols)?;
        let start = index.checked_mul(n)?;
        self.images.get(start..start.checked_add(n)?)
    }
}

impl Dataset for Mnist {
    type Item = Sample;
    fn len(&self) -> usize {
        self.labels.len()
    }
    fn get(&self, index: usize) -> Result<Sample> {
        let pixels = self.image(index).ok_or(DataError::IndexOutOfRange {
            index,
            len: self.labels.len(),
        })?;
        let image = ImageU8 {
            height: self.rows,
            width: self.cols,
            channels: 1,
            data: pixels.to_vec(),
        };
        Ok(Sample::image_u8(image, i64::from(self.labels[index])))
    }
}
