//! Data loader: batching, seeded shuffling, drop_last, determinism across worker counts, errors.

use crate::common;

use std::sync::Arc;

use sinew_data::transforms::{
    ColorJitter, Compose, Normalize, RandomCrop, RandomErasing, RandomHorizontalFlip, ToTensor,
};
use sinew_data::{
    Batch, DataError, DataLoader, Dataset, ImageU8, LoaderConfig, Sample, VecDataset,
};
use sinew_tensor::{DType, Device};

fn dataset(n: usize) -> Arc<VecDataset<Sample>> {
    Arc::new(VecDataset::new(common::rgb_samples(n, 8, 6)))
}

fn augment() -> Compose {
    Compose::new()
        .then(ToTensor)
        .then(RandomCrop::new(8, 6, 2))
        .then(RandomHorizontalFlip::default())
        .then(ColorJitter::new(0.4, 0.4, 0.4, 0.1))
        .then(RandomErasing::default())
        .then(Normalize::new(&[0.5, 0.5, 0.5], &[0.25, 0.25, 0.25]).unwrap())
}

fn collect(loader: &DataLoader<VecDataset<Sample>>, epoch: u64) -> Vec<Batch> {
    loader.epoch(epoch).map(|b| b.unwrap()).collect()
}

fn config(batch_size: usize, workers: usize) -> LoaderConfig {
    LoaderConfig {
        batch_size,
        shuffle: true,
        seed: 1234,
        num_workers: workers,
        ..Default::default()
    }
}

#[test]
fn batches_cover_the_dataset_once_with_tensor_shapes() {
    let loader = DataLoader::new(dataset(23), config(5, 2)).unwrap();
    assert_eq!(loader.num_batches(), 5);
    let batches = collect(&loader, 0);
    let sizes: Vec<usize> = batches.iter().map(Batch::len).collect();
    assert_eq!(sizes, vec![5, 5, 5, 5, 3]);
    let b = &batches[0];
    assert_eq!(b.inputs.dims(), &[5, 3, 8, 6]);
    assert_eq!(b.inputs.dtype(), DType::F32);
    assert_eq!(b.targets.dims(), &[5]);
    assert_eq!(b.targets.dtype(), DType::I64);
    let labels = b.targets.to_vec::<i64>().unwrap();
    let want: Vec<i64> = b.indices.iter().map(|&i| (i % 10) as i64).collect();
    assert_eq!(labels, want);
    // u8 images collate as CHW f32 in [0, 1]: check one value against the source bytes.
    let ds = dataset(23);
    let sinew_data::Input::U8(img) = ds.get(b.indices[1]).unwrap().input else {
        panic!("expected u8")
    };
    let x = b.inputs.to_vec::<f32>().unwrap();
    let (c, y, xx) = (2, 5, 4);
    let got = x[((8 * 6 * 3) + (c * 8 + y) * 6) + xx];
    assert_eq!(got, f32::from(img.at(y, xx, c).unwrap()) / 255.0);
    let mut all: Vec<usize> = batches.iter().flat_map(|b| b.indices.clone()).collect();
    all.sort_unstable();
    assert_eq!(all, (0..23).collect::<Vec<_>>());
}

#[test]
fn drop_last_and_no_shuffle() {
    let cfg = LoaderConfig {
        batch_size: 5,
        drop_last: true,
        num_workers: 0,
        ..Default::default()
    };
    let loader = DataLoader::new(dataset(23), cfg).unwrap();
    assert_eq!(loader.num_batches(), 4);
    let batches = collect(&loader, 3);
    assert_eq!(batches.len(), 4);
    assert!(batches.iter().all(|b| b.len() == 5));
    assert_eq!(batches[1].indices, vec![5, 6, 7, 8, 9]);
    assert!(
        DataLoader::new(
            dataset(3),
            LoaderConfig {
                batch_size: 0,
                ..Default::default()
            }
        )
        .is_err()
    );
}

#[test]
fn shuffle_is_seeded_and_changes_per_epoch() {
    let loader = DataLoader::new(dataset(40), config(40, 1)).unwrap();
    let e0 = collect(&loader, 0)[0].indices.clone();
    let e1 = collect(&loader, 1)[0].indices.clone();
    assert_ne!(e0, e1);
    assert_ne!(e0, (0..40).collect::<Vec<_>>());
    assert_eq!(e0, collect(&loader, 0)[0].indices);
    let other = DataLoader::new(
        dataset(40),
        LoaderConfig {
            seed: 99,
            ..config(40, 1)
        },
    )
    .unwrap();
    assert_ne!(collect(&other, 0)[0].indices, e0);
}

/// `for batch in &loader` runs epoch 0, then 1, ...: a new order each pass, the same as
/// `epoch(e)` gives.
#[test]
fn iterating_the_loader_runs_its_next_epoch() {
    let loader = DataLoader::new(dataset(40), config(8, 2)).unwrap();
    let indices = |batches: Vec<Batch>| batches.into_iter().flat_map(|b| b.indices).collect();
    let mut passes: Vec<Vec<usize>> = Vec::new();
    for _ in 0..3 {
        let mut seen = Vec::new();
        for batch in &loader {
            seen.extend(batch.unwrap().indices);
        }
        passes.push(seen);
    }
    for (epoch, pass) in passes.iter().enumerate() {
        let want: Vec<usize> = indices(collect(&loader, epoch as u64));
        assert_eq!(pass, &want, "pass {epoch}");
    }
    assert_ne!(passes[0], passes[1]);
    // `epoch(e)` does not move the count: the next loop is the fourth pass.
    let fourth: Vec<usize> = (&loader)
        .into_iter()
        .flat_map(|b| b.unwrap().indices)
        .collect();
    assert_eq!(fourth, indices(collect(&loader, 3)));
}

#[test]
fn same_batches_for_any_worker_count() {
    let reference: Vec<(Vec<usize>, Vec<f32>, Vec<i64>)> = {
        let loader = DataLoader::new(dataset(37), config(4, 0))
            .unwrap()
            .with_transform(augment());
        collect(&loader, 2)
            .into_iter()
            .map(|b| {
                (
                    b.indices,
                    b.inputs.to_vec().unwrap(),
                    b.targets.to_vec().unwrap(),
                )
            })
            .collect()
    };
    for workers in [1, 2, 3, 8] {
        for prefetch in [1, 4] {
            let cfg = LoaderConfig {
                prefetch,
                ..config(4, workers)
            };
            let loader = DataLoader::new(dataset(37), cfg)
                .unwrap()
                .with_transform(augment());
            let got: Vec<_> = collect(&loader, 2)
                .into_iter()
                .map(|b| {
                    (
                        b.indices,
                        b.inputs.to_vec().unwrap(),
                        b.targets.to_vec().unwrap(),
                    )
                })
                .collect();
            assert_eq!(got, reference, "workers {workers}, prefetch {prefetch}");
        }
    }
    // The augmentation really is random: another epoch differs on the same positions.
    let loader = DataLoader::new(dataset(37), config(4, 2))
        .unwrap()
        .with_transform(augment());
    let b = loader.batch(3, 0).unwrap();
    assert_ne!(b.inputs.to_vec::<f32>().unwrap(), reference[0].1);
    assert_eq!(
        loader.batch(2, 1).unwrap().inputs.to_vec::<f32>().unwrap(),
        reference[1].1
    );
}

#[test]
fn dropping_an_epoch_early_stops_the_workers() {
    let loader = DataLoader::new(dataset(200), config(2, 3)).unwrap();
    let mut it = loader.epoch(0);
    assert_eq!(it.len(), 100);
    let first = it.next().unwrap().unwrap();
    assert_eq!(first.len(), 2);
    assert_eq!(it.len(), 99);
    drop(it);
    assert_eq!(loader.epoch(0).count(), 100);
}

/// A dataset whose item 7 cannot be read, and whose item 9 has another shape.
struct Flaky;

impl Dataset for Flaky {
    type Item = Sample;
    fn len(&self) -> usize {
        12
    }
    fn get(&self, index: usize) -> sinew_data::Result<Sample> {
        if index == 7 {
            return Err(DataError::invalid("Flaky", "item 7 is broken"));
        }
        let side = if index == 9 { 3 } else { 2 };
        Ok(Sample::image_u8(
            ImageU8::new(side, side, 1, vec![1; side * side])?,
            0,
        ))
    }
}

#[test]
fn errors_reach_the_consumer_in_order() {
    for workers in [0, 2] {
        let cfg = LoaderConfig {
            batch_size: 4,
            num_workers: workers,
            ..Default::default()
        };
        let loader = DataLoader::new(Arc::new(Flaky), cfg).unwrap();
        let results: Vec<_> = loader.epoch(0).collect();
        assert_eq!(results.len(), 3);
        assert!(results[0].is_ok());
        assert!(
            results[1]
                .as_ref()
                .unwrap_err()
                .to_string()
                .contains("item 7 is broken")
        );
        let shape_err = results[2].as_ref().unwrap_err().to_string();
        assert!(shape_err.contains("dataset index 9"), "{shape_err}");
    }
}

#[test]
fn batches_move_to_the_configured_device() {
    let cfg = LoaderConfig {
        device: Some(Device::cpu()),
        ..config(8, 1)
    };
    let loader = DataLoader::new(dataset(8), cfg).unwrap();
    let b = loader.epoch(0).next().unwrap().unwrap();
    assert!(b.inputs.device().is_cpu());
    assert_eq!(b.inputs.dims(), &[8, 3, 8, 6]);
}

#[test]
fn sharded_batches_of_all_ranks_make_the_single_process_batch() {
    use sinew_data::DistributedSampler;
    let (n, world, batch) = (23, 3, 4);
    let single = DataLoader::new(dataset(n), config(batch * world, 0)).unwrap();
    let ranks: Vec<_> = (0..world)
        .map(|r| {
            let mut cfg = config(batch, 1);
            cfg.shard = Some(DistributedSampler::new(r, world).unwrap());
            DataLoader::new(dataset(n), cfg).unwrap()
        })
        .collect();
    // 23 examples padded to 24: 8 per rank, 2 batches of 4 each.
    assert!(
        ranks
            .iter()
            .all(|l| l.num_batches() == 2 && l.num_samples() == 8)
    );
    for epoch in 0..2 {
        let whole = single.order(epoch);
        let shards: Vec<Vec<usize>> = ranks.iter().map(|l| l.order(epoch)).collect();
        for k in 0..2 {
            // Batch k of the single process (padded by its own start) is the union of the
            // ranks' batches k.
            let mut expected: Vec<usize> = (k * batch * world..(k + 1) * batch * world)
                .map(|p| whole[p % n])
                .collect();
            let mut got: Vec<usize> = shards
                .iter()
                .flat_map(|s| s[k * batch..(k + 1) * batch].to_vec())
                .collect();
            expected.sort_unstable();
            got.sort_unstable();
            assert_eq!(got, expected, "epoch {epoch} batch {k}");
        }
        let batches: Vec<Batch> = collect(&ranks[1], epoch);
        assert_eq!(batches[0].indices, shards[1][..batch].to_vec());
    }
    assert_ne!(ranks[0].order(0), ranks[0].order(1), "reshuffled per epoch");
}
