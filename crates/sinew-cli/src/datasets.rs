//! Datasets by name: generated ones (no download) and the standard files under the data root.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use sinew::data::{Cifar, Dataset, Input, Mnist, Sample, Split, Target, VecDataset};
use sinew::prelude::*;

use crate::args::DatasetName;

/// Any dataset of samples, shared with loader threads.
pub type DynDataset = Arc<dyn Dataset<Item = Sample>>;

/// What a model needs to know about a dataset.
#[derive(Clone, Copy, Debug)]
pub struct DataInfo {
    /// Input shape of one example (`[features]` or `[c, h, w]`).
    pub input: [usize; 3],
    /// Whether inputs are images (`[c, h, w]`) rather than feature vectors.
    pub image: bool,
    /// Number of classes; `None` for regression.
    pub classes: Option<usize>,
}

/// The data root: `--data`, else `$SINEW_DATA`, else `../shared/data`.
pub fn root(data: &Option<PathBuf>) -> PathBuf {
    data.clone()
        .or_else(|| std::env::var_os("SINEW_DATA").map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from("../shared/data"))
}

/// Where a file-based dataset is looked for under `root`, and the file that must be there.
pub fn location(name: DatasetName, root: &Path) -> Option<(PathBuf, &'static str)> {
    match name {
        DatasetName::Mnist => Some((root.join("mnist"), "train-images-idx3-ubyte(.gz)")),
        DatasetName::FashionMnist => {
            Some((root.join("fashion-mnist"), "train-images-idx3-ubyte(.gz)"))
        }
        DatasetName::Cifar10 => Some((root.join("cifar-10"), "data_batch_1.bin")),
        _ => None,
    }
}

/// Whether a file-based dataset's directory holds its files.
pub fn found(name: DatasetName, root: &Path) -> bool {
    match location(name, root) {
        None => true,
        Some((dir, _)) => match name {
            DatasetName::Cifar10 => dir.join("data_batch_1.bin").exists(),
            _ => {
                dir.join("train-images-idx3-ubyte.gz").exists()
                    || dir.join("train-images-idx3-ubyte").exists()
            }
        },
    }
}

/// Facts about `name` without loading it.
pub fn info(name: DatasetName) -> DataInfo {
    match name {
        DatasetName::Spirals | DatasetName::Xor | DatasetName::Moons => DataInfo {
            input: [2, 1, 1],
            image: false,
            classes: Some(2),
        },
        DatasetName::Sin => DataInfo {
            input: [1, 1, 1],
            image: false,
            classes: None,
        },
        DatasetName::Mnist | DatasetName::FashionMnist => DataInfo {
            input: [1, 28, 28],
            image: true,
            classes: Some(10),
        },
        DatasetName::Cifar10 => DataInfo {
            input: [3, 32, 32],
            image: true,
            classes: Some(10),
        },
    }
}

/// Loads the training or test split of `name`.
pub fn load(name: DatasetName, root: &Path, split: Split, seed: u64) -> Result<DynDataset> {
    if let Some((dir, file)) = location(name, root)
        && !found(name, root)
    {
        return Err(Error::invalid(
            "dataset",
            format!(
                "{name:?} not found: put {file} and the other files of the dataset in {} (or pass --data DIR, or set SINEW_DATA)",
                dir.display()
            ),
        ));
    }
    let n = if split == Split::Train { 1000 } else { 500 };
    let seed = if split == Split::Train {
        seed
    } else {
        seed.wrapping_add(1_000_003)
    };
    Ok(match name {
        DatasetName::Mnist | DatasetName::FashionMnist => {
            let (dir, _) = location(name, root).expect("file-based");
            Arc::new(Mnist::load(dir, split)?)
        }
        DatasetName::Cifar10 => {
            let (dir, _) = location(name, root).expect("file-based");
            Arc::new(Cifar::cifar10(dir, split)?)
        }
        generated => Arc::new(generate(generated, n, seed)?),
    })
}

/// `n` examples of a generated task.
fn generate(name: DatasetName, n: usize, seed: u64) -> Result<VecDataset<Sample>> {
    let mut g = Generator::new(seed);
    let cpu = Device::cpu();
    let u = g.rand([n, 2], DType::F64, &cpu)?.to_vec::<f64>()?;
    let noise = g.randn([n, 2], DType::F64, &cpu)?.to_vec::<f64>()?;
    let pi = std::f64::consts::PI;
    let items = (0..n)
        .map(|i| {
            let (a, b, e1, e2) = (u[2 * i], u[2 * i + 1], noise[2 * i], noise[2 * i + 1]);
            let class = (i % 2) as i64;
            let (x, y, target) = match name {
                DatasetName::Spirals => {
                    let t = (0.25 + 0.75 * a) * 3.0 * pi;
                    let phase = class as f64 * pi;
                    let r = t / (3.0 * pi);
                    (
                        r * (t + phase).cos() + 0.05 * e1,
                        r * (t + phase).sin() + 0.05 * e2,
                        Target::Class(class),
                    )
                }
                DatasetName::Xor => {
                    let (x, y) = (2.0 * a - 1.0, 2.0 * b - 1.0);
                    (x, y, Target::Class(i64::from((x > 0.0) != (y > 0.0))))
                }
                DatasetName::Moons => {
                    let t = a * pi;
                    let (x, y) = if class == 0 {
                        (t.cos(), t.sin())
                    } else {
                        (1.0 - t.cos(), 0.5 - t.sin())
                    };
                    (x + 0.1 * e1, y + 0.1 * e2, Target::Class(class))
                }
                _ => {
                    let x = (2.0 * a - 1.0) * pi;
                    (x, 0.0, Target::Value(x.sin() as f32))
                }
            };
            let features = if name == DatasetName::Sin {
                vec![x as f32]
            } else {
                vec![x as f32, y as f32]
            };
            Sample {
                input: Input::Features(features),
                target,
            }
        })
        .collect();
    Ok(VecDataset::new(items))
}
