//! Datasets by name: generated ones (no download), the standard files under the data root, and
//! the user's own data (`--dataset csv --data FILE.csv`, `--dataset folder --data DIR`).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use sinew::data::image_folder::ColorMode;
use sinew::data::rng::rng_for;
use sinew::data::transforms::{Compose, Resize, ToTensor, Transform};
use sinew::data::{
    Cifar, CifarLabels, CsvDataset, CsvOptions, Dataset, DatasetExt, ImageFolder, Mnist, Sample,
    Split, Target, TargetKind, train_val_split,
};
use sinew::prelude::*;

use crate::args::{DataArgs, DatasetName};
use crate::generated::generate;

/// Any dataset of samples, shared with loader threads.
pub type DynDataset = Arc<dyn Dataset<Item = Sample>>;

/// What a model needs to know about a dataset.
#[derive(Clone, Copy, Debug)]
pub struct DataInfo {
    /// Input shape of one example (`[features, 1, 1]` or `[c, h, w]`).
    pub input: [usize; 3],
    /// Whether inputs are images (`[c, h, w]`) rather than feature vectors.
    pub image: bool,
    /// Number of classes; `None` for regression.
    pub classes: Option<usize>,
}

/// Fraction of a CSV file or an image folder without `train/` and `test/` held out for testing
/// (always with seed 0, so `train`, `eval` and `predict` agree on the split).
const TEST_FRACTION: f64 = 0.2;

/// The data root: `--data`, else `$SINEW_DATA`, else `../shared/data`.
pub fn root(args: &DataArgs) -> PathBuf {
    args.data
        .clone()
        .or_else(|| std::env::var_os("SINEW_DATA").map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from("../shared/data"))
}

/// Where a standard dataset is looked for under `root`, and the file that must be there.
pub fn location(name: DatasetName, root: &Path) -> Option<(PathBuf, &'static str)> {
    let mnist_file = "train-images-idx3-ubyte(.gz)";
    match name {
        DatasetName::Mnist => Some((root.join("mnist"), mnist_file)),
        DatasetName::FashionMnist => Some((root.join("fashion-mnist"), mnist_file)),
        DatasetName::Cifar10 => Some((root.join("cifar-10"), "data_batch_1.bin")),
        DatasetName::Cifar100 => Some((root.join("cifar-100"), "train.bin")),
        _ => None,
    }
}

/// Whether a standard dataset's directory holds its files.
pub fn found(name: DatasetName, root: &Path) -> bool {
    match location(name, root) {
        None => true,
        Some((dir, _)) => match name {
            DatasetName::Cifar10 => dir.join("data_batch_1.bin").exists(),
            DatasetName::Cifar100 => dir.join("train.bin").exists(),
            _ => {
                dir.join("train-images-idx3-ubyte.gz").exists()
                    || dir.join("train-images-idx3-ubyte").exists()
            }
        },
    }
}

/// The `--data` path that `csv` and `folder` require.
fn user_path(name: DatasetName, args: &DataArgs) -> Result<&Path> {
    let what = if name == DatasetName::Csv {
        "--dataset csv needs --data FILE.csv (features in columns, the target in the last one)"
    } else {
        "--dataset folder needs --data DIR (DIR/<class>/*.png|jpg, or DIR/train/<class>/... and DIR/test/<class>/...)"
    };
    args.data
        .as_deref()
        .ok_or_else(|| Error::invalid("--data", what))
}

/// Reads the CSV file: integer classes, else named categories, or real values with
/// `--regression`.
fn read_csv(path: &Path, regression: bool) -> Result<CsvDataset> {
    let options = |kind| CsvOptions {
        kind,
        ..Default::default()
    };
    if regression {
        return Ok(CsvDataset::from_path(path, &options(TargetKind::Value))?);
    }
    match CsvDataset::from_path(path, &options(TargetKind::Class)) {
        Ok(d) => Ok(d),
        Err(_) => Ok(CsvDataset::from_path(
            path,
            &options(TargetKind::Categorical),
        )?),
    }
}

/// Number of classes in class targets (largest index + 1).
fn count_classes(targets: &[Target]) -> usize {
    targets
        .iter()
        .filter_map(|t| match t {
            Target::Class(c) => usize::try_from(*c).ok(),
            _ => None,
        })
        .max()
        .map_or(0, |c| c + 1)
}

/// The image folder's training (or only) directory.
fn folder_train_dir(dir: &Path) -> PathBuf {
    if dir.join("train").is_dir() {
        dir.join("train")
    } else {
        dir.to_path_buf()
    }
}

/// Facts about `name` (opens CSV files and image folders to count features and classes).
pub fn info(name: DatasetName, args: &DataArgs) -> Result<DataInfo> {
    let (features, image, colour, classes) = match name {
        DatasetName::Spirals | DatasetName::Xor | DatasetName::Moons => (2, false, 0, Some(2)),
        DatasetName::Sin => (1, false, 0, None),
        DatasetName::Mnist | DatasetName::FashionMnist => (0, true, 1, Some(10)),
        DatasetName::Cifar10 => (0, true, 3, Some(10)),
        DatasetName::Cifar100 => (0, true, 3, Some(100)),
        DatasetName::Csv => {
            let csv = read_csv(user_path(name, args)?, args.regression)?;
            let classes = (!args.regression).then(|| count_classes(csv.targets()));
            (csv.num_features(), false, 0, classes)
        }
        DatasetName::Folder => {
            let folder = ImageFolder::open(folder_train_dir(user_path(name, args)?))?;
            (0, true, 3, Some(folder.classes().len()))
        }
    };
    let input = match name {
        DatasetName::Mnist | DatasetName::FashionMnist => [1, 28, 28],
        DatasetName::Folder => [3, args.image_size, args.image_size],
        _ if image => [colour, 32, 32],
        _ => [features, 1, 1],
    };
    Ok(DataInfo {
        input,
        image,
        classes,
    })
}

/// Splits off the fixed test part of a dataset that has no test split of its own.
fn fixed_split(full: DynDataset, split: Split) -> Result<DynDataset> {
    let (train, test) = train_val_split(full, TEST_FRACTION, 0)?;
    Ok(match split {
        Split::Train => Arc::new(train),
        Split::Test => Arc::new(test),
    })
}

/// `data`'s images as f32 CHW resized to `height × width` (bilinear, as `transforms.Resize`).
fn resized(data: DynDataset, height: usize, width: usize) -> DynDataset {
    let to_input = Compose::new().then(ToTensor).then(Resize { height, width });
    Arc::new(data.map(move |s| to_input.apply(s, &mut rng_for(0, 0, 0))))
}

/// The images of a folder, resized to `size × size`.
fn load_folder(dir: &Path, split: Split, size: usize) -> Result<DynDataset> {
    let open = |d: &Path| -> Result<DynDataset> {
        let folder = ImageFolder::open_with(d, ColorMode::Rgb)?;
        Ok(resized(Arc::new(folder), size, size))
    };
    if dir.join("train").is_dir() {
        let part = if split == Split::Train {
            "train"
        } else {
            "test"
        };
        if !dir.join(part).is_dir() {
            return Err(Error::invalid(
                "--data",
                format!("{} has train/ but no test/", dir.display()),
            ));
        }
        open(&dir.join(part))
    } else {
        fixed_split(open(dir)?, split)
    }
}

/// Loads the training or test split of `name`, with images resized to `input` (the model's
/// input, see `models::input_for`) where that differs from the dataset's own size.
pub fn load(
    name: DatasetName,
    args: &DataArgs,
    split: Split,
    seed: u64,
    input: [usize; 3],
) -> Result<DynDataset> {
    let root = root(args);
    if let Some((dir, file)) = location(name, &root)
        && !found(name, &root)
    {
        return Err(Error::invalid(
            "dataset",
            format!(
                "{name:?} not found: put {file} and the other files of the dataset in {} (or pass --data DIR, or set SINEW_DATA)",
                dir.display()
            ),
        ));
    }
    let (n, seed) = match split {
        Split::Train => (1000, seed),
        Split::Test => (500, seed.wrapping_add(1_000_003)),
    };
    let dir = || location(name, &root).map(|(d, _)| d).unwrap_or_default();
    let native = match name {
        DatasetName::Mnist | DatasetName::FashionMnist => [1, 28, 28],
        DatasetName::Cifar10 | DatasetName::Cifar100 => [3, 32, 32],
        DatasetName::Folder => [3, args.image_size, args.image_size],
        _ => input,
    };
    let data: DynDataset = match name {
        DatasetName::Mnist | DatasetName::FashionMnist => Arc::new(Mnist::load(dir(), split)?),
        DatasetName::Cifar10 => Arc::new(Cifar::cifar10(dir(), split)?),
        DatasetName::Cifar100 => {
            Arc::new(Cifar::cifar100(dir(), split, CifarLabels::Cifar100Fine)?)
        }
        DatasetName::Csv => {
            let csv = read_csv(user_path(name, args)?, args.regression)?;
            fixed_split(Arc::new(csv), split)?
        }
        DatasetName::Folder => load_folder(user_path(name, args)?, split, args.image_size)?,
        generated => Arc::new(generate(generated, n, seed)?),
    };
    Ok(if native == input {
        data
    } else {
        resized(data, input[1], input[2])
    })
}
