//! Data pipeline throughput on the real datasets in `../shared/data`:
//! - reading the gzip IDX files of the MNIST training set;
//! - a full MNIST training epoch of shuffled batches of 128 collated to f32 tensors (target
//!   ≥ 200k images/s on 2 cores);
//! - CIFAR-10 (`data_batch_1.bin`, 10,000 images) with random crop (padding 4) + horizontal
//!   flip + normalize, batches of 128 (target ≥ 20k images/s).
//!
//! Every loader epoch is consumed fully inside the timed region; throughput is images/s.
//!
//! `cargo bench -p sinew-benches --bench data -- --warm-up-time 1 --measurement-time 5`

use std::hint::black_box;
use std::path::PathBuf;
use std::sync::Arc;

use criterion::{Criterion, Throughput, criterion_main};
use sinew_data::transforms::{Compose, Normalize, RandomCrop, RandomHorizontalFlip, ToTensor};
use sinew_data::{Cifar, CifarLabels, DataLoader, Dataset, LoaderConfig, Mnist, Split};

/// The shared datasets folder, next to the checkout.
fn data_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/data")
}

fn config(workers: usize) -> LoaderConfig {
    LoaderConfig {
        batch_size: 128,
        shuffle: true,
        seed: 0,
        num_workers: workers,
        ..Default::default()
    }
}

/// Runs one epoch, returning the number of images seen (checked by the caller).
fn run_epoch<D: Dataset<Item = sinew_data::Sample> + 'static>(
    loader: &DataLoader<D>,
    epoch: u64,
) -> usize {
    let mut seen = 0;
    for batch in loader.epoch(epoch) {
        let batch = batch.expect("batch");
        seen += black_box(batch.inputs.dims()[0]);
    }
    seen
}

fn mnist(c: &mut Criterion) {
    let dir = data_dir().join("mnist");
    let mut group = c.benchmark_group("mnist");
    group.sample_size(10);
    group.throughput(Throughput::Elements(60_000));
    group.bench_function("read_train_idx_gz", |b| {
        b.iter(|| black_box(Mnist::load(&dir, Split::Train).expect("MNIST").len()))
    });
    let train = Arc::new(Mnist::load(&dir, Split::Train).expect("MNIST"));
    for workers in [0, 2] {
        let loader = DataLoader::new(train.clone(), config(workers)).expect("loader");
        let mut epoch = 0;
        group.bench_function(format!("epoch_shuffled_b128_workers{workers}"), |b| {
            b.iter(|| {
                epoch += 1;
                assert_eq!(run_epoch(&loader, epoch), 60_000);
            })
        });
    }
    group.finish();
}

fn cifar(c: &mut Criterion) {
    let file = data_dir().join("cifar-10/data_batch_1.bin");
    let data = Arc::new(Cifar::from_files(&[file], CifarLabels::Cifar10).expect("CIFAR-10"));
    let n = data.len();
    let mut group = c.benchmark_group("cifar10");
    group.sample_size(10);
    group.throughput(Throughput::Elements(n as u64));
    for workers in [0, 2] {
        let augment = Compose::new()
            .then(ToTensor)
            .then(RandomCrop::new(32, 32, 4))
            .then(RandomHorizontalFlip::default())
            .then(Normalize::new(&[0.4914, 0.4822, 0.4465], &[0.2470, 0.2435, 0.2616]).unwrap());
        let loader = DataLoader::new(data.clone(), config(workers))
            .expect("loader")
            .with_transform(augment);
        let mut epoch = 0;
        group.bench_function(format!("crop_flip_normalize_b128_workers{workers}"), |b| {
            b.iter(|| {
                epoch += 1;
                assert_eq!(run_epoch(&loader, epoch), n);
            })
        });
    }
    group.finish();
}

/// The benchmark group, in a private module so the macro's undocumented function stays internal.
mod group {
    use super::{cifar, mnist};
    criterion::criterion_group!(benches, mnist, cifar);
}

criterion_main!(group::benches);
