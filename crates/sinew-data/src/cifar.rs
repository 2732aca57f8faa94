//! CIFAR-10 and CIFAR-100 binary batches, held once in memory as u8 HWC images.
//!
//! A CIFAR-10 record is `<label><1024 R><1024 G><1024 B>` (3073 bytes); a CIFAR-100 record is
//! `<coarse label><fine label><3072 pixel bytes>` (3074 bytes). Planes are 32×32 row-major.
//! PyTorch equivalent: `torchvision.datasets.CIFAR10` / `CIFAR100` (which also give HWC images).

use std::path::{Path, PathBuf};

use crate::dataset::Dataset;
use crate::error::{DataError, Result};
use crate::mnist::Split;
use crate::sample::{ImageU8, Sample};

/// Side length of a CIFAR image.
pub const CIFAR_SIDE: usize = 32;
/// Pixel bytes per CIFAR image (3 planes of 32×32).
pub const CIFAR_PIXELS: usize = 3 * CIFAR_SIDE * CIFAR_SIDE;

/// Which labels a CIFAR dataset yields.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CifarLabels {
    /// CIFAR-10: one label byte per record, 10 classes.
    Cifar10,
    /// CIFAR-100 coarse labels (20 superclasses).
    Cifar100Coarse,
    /// CIFAR-100 fine labels (100 classes).
    Cifar100Fine,
}

impl CifarLabels {
    /// Label bytes before the pixels in each record.
    fn label_bytes(self) -> usize {
        match self {
            CifarLabels::Cifar10 => 1,
            _ => 2,
        }
    }

    /// Number of classes of the yielded label.
    pub fn num_classes(self) -> usize {
        match self {
            CifarLabels::Cifar10 => 10,
            CifarLabels::Cifar100Coarse => 20,
            CifarLabels::Cifar100Fine => 100,
        }
    }
}

/// CIFAR images and labels from one or more binary batch files.
#[derive(Clone, Debug)]
pub struct Cifar {
    /// All images, HWC, one after another.
    images: Vec<u8>,
    /// CIFAR-10 labels, or CIFAR-100 fine labels.
    fine: Vec<u8>,
    /// CIFAR-100 coarse labels (empty for CIFAR-10).
    coarse: Vec<u8>,
    labels: CifarLabels,
    class_names: Vec<String>,
}

impl Cifar {
    /// Loads CIFAR-10 `split` from `dir` (`data_batch_1..5.bin` or `test_batch.bin`, plus
    /// `batches.meta.txt` for class names when present).
    pub fn cifar10(dir: impl AsRef<Path>, split: Split) -> Result<Self> {
        let dir = dir.as_ref();
        let files: Vec<PathBuf> = match split {
            Split::Train => (1..=5)
                .map(|i| dir.join(format!("data_batch_{i}.bin")))
                .collect(),
            Split::Test => vec![dir.join("test_batch.bin")],
        };
        let mut cifar = Self::from_files(&files, CifarLabels::Cifar10)?;
        let meta = dir.join("batches.meta.txt");
        if meta.exists() {
            cifar.class_names = read_class_names(&meta)?;
        }
        Ok(cifar)
    }

    /// Loads CIFAR-100 `split` from `dir` (`train.bin` or `test.bin`) with the chosen labels.
    pub fn cifar100(dir: impl AsRef<Path>, split: Split, labels: CifarLabels) -> Result<Self> {
        if labels == CifarLabels::Cifar10 {
            return Err(DataError::invalid(
                "Cifar::cifar100",
                "pick coarse or fine labels",
            ));
        }
        let file = match split {
            Split::Train => "train.bin",
            Split::Test => "test.bin",
        };
        Self::from_files(&[dir.as_ref().join(file)], labels)
    }

    /// Loads the records of `files`, in order, with the record layout implied by `labels`.
    pub fn from_files<P: AsRef<Path>>(files: &[P], labels: CifarLabels) -> Result<Self> {
        let mut cifar = Cifar {
            images: Vec::new(),
            fine: Vec::new(),
            coarse: Vec::new(),
            labels,
            class_names: Vec::new(),
        };
        for file in files {
            cifar.append_file(file.as_ref())?;
        }
        Ok(cifar)
    }

    /// Parses the contents of one batch file held in memory, with the same parser and checks as
    /// [`Cifar::from_files`]; errors name `<cifar>`.
    pub fn from_bytes(bytes: &[u8], labels: CifarLabels) -> Result<Self> {
        let mut cifar = Self::from_files::<&Path>(&[], labels)?;
        cifar.append_bytes(bytes, Path::new("<cifar>"))?;
        Ok(cifar)
    }

    /// Reads one batch file.
    fn append_file(&mut self, path: &Path) -> Result<()> {
        let bytes = std::fs::read(path).map_err(|e| DataError::io(path, e))?;
        self.append_bytes(&bytes, path)
    }

    /// Appends the records of one batch file's bytes, validating size and labels, converting
    /// planes to HWC; on error nothing is appended.
    fn append_bytes(&mut self, bytes: &[u8], path: &Path) -> Result<()> {
        let lb = self.labels.label_bytes();
        let record = lb + CIFAR_PIXELS;
        if bytes.is_empty() {
            return Err(DataError::format(path, "empty file: no CIFAR records"));
        }
        if !bytes.len().is_multiple_of(record) {
            return Err(DataError::Truncated {
                path: path.into(),
                expected: bytes.len().div_ceil(record) * record,
                found: bytes.len(),
            });
        }
        let count = bytes.len() / record;
        let first = self.fine.len();
        // `count * CIFAR_PIXELS < bytes.len()`: no overflow; grown fallibly all the same.
        let grow = |op: &'static str, e: std::collections::TryReserveError| DataError::TooLarge {
            op,
            detail: format!("{}: cannot hold {count} more records: {e}", path.display()),
        };
        self.images
            .try_reserve_exact(count * CIFAR_PIXELS)
            .map_err(|e| grow("Cifar", e))?;
        self.fine
            .try_reserve_exact(count)
            .map_err(|e| grow("Cifar", e))?;
        if lb == 2 {
            self.coarse
                .try_reserve_exact(count)
                .map_err(|e| grow("Cifar", e))?;
        }
        // Validate every label before appending anything, so a bad file leaves `self` unchanged.
        for (index, rec) in bytes.chunks_exact(record).enumerate() {
            let checks: &[(u8, usize)] = &match self.labels {
                CifarLabels::Cifar10 => [(rec[0], 10), (0, 1)],
                _ => [(rec[0], 20), (rec[1], 100)],
            };
            for &(label, classes) in checks {
                if usize::from(label) >= classes {
                    return Err(DataError::BadLabel {
                        path: path.into(),
                        index,
                        label: label.to_string(),
                        expected: format!("a class in 0..{classes}"),
                    });
                }
            }
        }
        let plane = CIFAR_SIDE * CIFAR_SIDE;
        for rec in bytes.chunks_exact(record) {
            let labels = &rec[..lb];
            match self.labels {
                CifarLabels::Cifar10 => self.fine.push(labels[0]),
                _ => {
                    self.coarse.push(labels[0]);
                    self.fine.push(labels[1]);
                }
            }
            let px = &rec[lb..];
            let (r, g, b) = (&px[..plane], &px[plane..2 * plane], &px[2 * plane..]);
            for p in 0..plane {
                self.images.extend_from_slice(&[r[p], g[p], b[p]]);
            }
        }
        debug_assert_eq!(self.fine.len(), first + count);
        Ok(())
    }

    /// The label set this dataset yields.
    pub fn label_kind(&self) -> CifarLabels {
        self.labels
    }

    /// Class names from `batches.meta.txt`, if loaded.
    pub fn class_names(&self) -> &[String] {
        &self.class_names
    }

    /// The yielded label of every record.
    pub fn labels(&self) -> &[u8] {
        match self.labels {
            CifarLabels::Cifar100Coarse => &self.coarse,
            _ => &self.fine,
        }
    }

    /// CIFAR-100 coarse labels (empty for CIFAR-10).
    pub fn coarse_labels(&self) -> &[u8] {
        &self.coarse
    }

    /// CIFAR-100 fine labels, or CIFAR-10 labels.
    pub fn fine_labels(&self) -> &[u8] {
        &self.fine
    }

    /// The HWC bytes of image `index` (`None` past the end).
    pub fn image(&self, index: usize) -> Option<&[u8]> {
        let start = index.checked_mul(CIFAR_PIXELS)?;
        self.images.get(start..start.checked_add(CIFAR_PIXELS)?)
    }
}

impl Dataset for Cifar {
    type Item = Sample;
    fn len(&self) -> usize {
        self.fine.len()
    }
    fn get(&self, index: usize) -> Result<Sample> {
        let pixels = self.image(index).ok_or(DataError::IndexOutOfRange {
            index,
            len: self.fine.len(),
        })?;
        let image = ImageU8 {
            height: CIFAR_SIDE,
            width: CIFAR_SIDE,
            channels: 3,
            data: pixels.to_vec(),
        };
        Ok(Sample::image_u8(image, i64::from(self.labels()[index])))
    }
}

/// Class names, one per non-empty line (e.g. CIFAR-10's `batches.meta.txt`).
pub fn read_class_names(path: &Path) -> Result<Vec<String>> {
    let text = std::fs::read_to_string(path).map_err(|e| DataError::io(path, e))?;
    Ok(text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(String::from)
        .collect())
}
