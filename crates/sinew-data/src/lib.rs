//! # sinew-data
//!
//! Datasets, readers, a parallel data loader, preprocessing and augmentation for Sinew.
//!
//! - [`Dataset`] with combinators ([`DatasetExt::map`], [`Subset`], [`Concat`],
//!   [`random_split`], [`train_val_split`]).
//! - Readers that report bad input as [`DataError`]s naming the file: [`Mnist`] (MNIST and
//!   Fashion-MNIST IDX, gzip or raw), [`Cifar`] (CIFAR-10/100 binary), [`CsvDataset`],
//!   [`ImageFolder`] (PNG/JPEG).
//! - [`DataLoader`]: seeded per-epoch shuffling, batching, `drop_last`, worker threads with
//!   prefetch, the same batches in the same order for every worker count.
//! - [`transforms`]: to-tensor, normalisation, flips, crops, affine, colour jitter, erasing.
//! - [`StandardScaler`] and [`MinMaxScaler`], fitted in one pass.
//!
//! ```
//! use std::sync::Arc;
//! use sinew_data::transforms::{Compose, RandomHorizontalFlip, ToTensor};
//! use sinew_data::{DataLoader, ImageU8, LoaderConfig, Sample, VecDataset};
//!
//! let images: Vec<Sample> = (0..10u8)
//!     .map(|i| Sample::image_u8(ImageU8::new(2, 2, 1, vec![i; 4]).unwrap(), i64::from(i % 3)))
//!     .collect();
//! let config = LoaderConfig { batch_size: 4, shuffle: true, seed: 7, ..Default::default() };
//! let loader = DataLoader::new(Arc::new(VecDataset::new(images)), config)?
//!     .with_transform(Compose::new().then(ToTensor).then(RandomHorizontalFlip::default()));
//! let mut seen = 0;
//! for batch in loader.epoch(0) {
//!     let batch = batch?;
//!     assert_eq!(batch.inputs.dims()[1..], [1, 2, 2]);
//!     seen += batch.len();
//! }
//! assert_eq!(seen, 10);
//! # Ok::<(), sinew_data::DataError>(())
//! ```

// No `unsafe` anywhere in this crate: every buffer access is bounds-checked.
#![forbid(unsafe_code)]

pub mod alloc;
pub mod cifar;
pub mod collate;
pub mod csv;
pub mod dataset;
pub mod distributed;
pub mod error;
pub mod folds;
pub mod image_folder;
pub mod io;
pub mod loader;
pub mod mnist;
pub mod rng;
pub mod sample;
pub mod sampler;
pub mod scaler;
pub mod transforms;

pub use alloc::MAX_BUFFER_BYTES;
pub use cifar::{Cifar, CifarLabels};
pub use collate::{Batch, collate};
pub use csv::{CsvDataset, CsvOptions, TargetColumn, TargetKind};
pub use dataset::{
    Concat, Dataset, DatasetExt, Map, Subset, VecDataset, random_split, train_val_split,
};
pub use distributed::DistributedSampler;
pub use error::{DataError, Result};
pub use folds::{Fold, k_fold, stratified_k_fold};
pub use image_folder::{ColorMode, ImageFolder};
pub use loader::{DataLoader, EpochIter, LoaderConfig};
pub use mnist::{Mnist, Split};
pub use sample::{ImageF32, ImageU8, Input, Sample, Target};
pub use sampler::{RandomSampler, Sampler, SubsetRandomSampler, WeightedRandomSampler};
pub use scaler::{MinMaxScaler, ScaleAxis, StandardScaler, Statistics};
