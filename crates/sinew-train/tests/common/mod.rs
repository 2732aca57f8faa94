//! A small synthetic classification problem shared by the tests.

#![allow(dead_code)]

use std::sync::Arc;

use sinew_data::{DataLoader, Input, LoaderConfig, Sample, Target, VecDataset};
use sinew_nn::{Dropout, Linear, ReLU, Sequential};
use sinew_tensor::{Generator, Result};

/// Two Gaussian blobs per class in 4-d, 3 classes; `n` samples from `seed`.
pub fn blobs(n: usize, seed: u64) -> VecDataset<Sample> {
    let mut g = Generator::new(seed);
    let noise = g
        .randn(
            [n, 4],
            sinew_tensor::DType::F32,
            &sinew_tensor::Device::cpu(),
        )
        .unwrap()
        .to_vec::<f32>()
        .unwrap();
    let items = (0..n)
        .map(|i| {
            let class = (i % 3) as i64;
            let centre = [class as f32 * 2.0, -(class as f32), 1.0 - class as f32, 0.5];
            let features = (0..4).map(|j| centre[j] + 0.5 * noise[i * 4 + j]).collect();
            Sample {
                input: Input::Features(features),
                target: Target::Class(class),
            }
        })
        .collect();
    VecDataset::new(items)
}

/// A shuffled loader (no worker threads: deterministic and light).
pub fn loader(
    data: VecDataset<Sample>,
    batch: usize,
    shuffle: bool,
) -> DataLoader<VecDataset<Sample>> {
    let config = LoaderConfig {
        batch_size: batch,
        shuffle,
        seed: 3,
        num_workers: 0,
        ..Default::default()
    };
    DataLoader::new(Arc::new(data), config).unwrap()
}

/// 4 -> 16 -> 3 with dropout.
pub fn model() -> Result<Sequential> {
    Ok(Sequential::new()
        .append(Linear::new(4, 16)?)
        .append(ReLU)
        .append(Dropout::new(0.2))
        .append(Linear::new(16, 3)?))
}
