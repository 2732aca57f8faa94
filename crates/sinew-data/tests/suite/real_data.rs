//! The real datasets in `../shared/data`: counts, labels and first pixels against their README.

use crate::common;

use std::sync::Arc;

use sinew_data::transforms::{Compose, Normalize, RandomCrop, RandomHorizontalFlip, ToTensor};
use sinew_data::{Cifar, DataLoader, Dataset, LoaderConfig, Mnist, ScaleAxis, Split, Statistics};

fn class_counts(labels: &[u8], classes: usize) -> Vec<usize> {
    let mut counts = vec![0; classes];
    for &l in labels {
        counts[usize::from(l)] += 1;
    }
    counts
}

#[test]
fn mnist_train_and_test() {
    let dir = common::shared_data().join("mnist");
    let train = Mnist::load(&dir, Split::Train).unwrap();
    assert_eq!((train.len(), train.rows(), train.cols()), (60_000, 28, 28));
    assert_eq!(
        class_counts(train.labels(), 10),
        vec![5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
    );
    let test = Mnist::load(&dir, Split::Test).unwrap();
    assert_eq!(
        class_counts(test.labels(), 10),
        vec![980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    );
    // Background is 0 and full ink 255.
    assert_eq!(train.image(0).unwrap()[0], 0);
    assert_eq!(train.images().iter().max(), Some(&255));
}

#[test]
fn fashion_mnist_is_balanced() {
    let dir = common::shared_data().join("fashion-mnist");
    let train = Mnist::load(&dir, Split::Train).unwrap();
    assert_eq!(class_counts(train.labels(), 10), vec![6000; 10]);
    let test = Mnist::load(&dir, Split::Test).unwrap();
    assert_eq!(class_counts(test.labels(), 10), vec![1000; 10]);
}

#[test]
fn cifar10_labels_pixels_and_channel_statistics() {
    let dir = common::shared_data().join("cifar-10");
    let test = Cifar::cifar10(&dir, Split::Test).unwrap();
    assert_eq!(test.len(), 10_000);
    assert_eq!(&test.labels()[..10], &[3, 8, 8, 0, 6, 6, 1, 6, 3, 1]);
    assert_eq!(test.class_names()[3], "cat");
    assert_eq!(class_counts(test.labels(), 10), vec![1000; 10]);
    let first = Cifar::from_files(
        &[dir.join("data_batch_1.bin")],
        sinew_data::CifarLabels::Cifar10,
    )
    .unwrap();
    assert_eq!(&first.labels()[..10], &[6, 9, 9, 4, 1, 1, 2, 7, 8, 3]);
    assert_eq!(
        class_counts(first.labels(), 10),
        vec![1005, 974, 1032, 1016, 999, 937, 1030, 1001, 1025, 981]
    );
    // Pixel (0, 0) of training image 0 is (59, 62, 63) in the lossless original; this copy
    // went through JPEG, so allow a small error.
    for (got, want) in first.image(0).unwrap()[..3].iter().zip([59, 62, 63]) {
        assert!((i32::from(*got) - want).abs() <= 16, "{got} vs {want}");
    }
    // Per-channel mean / std of the test set is near the README's training figures.
    let stats = Statistics::compute(&test, ScaleAxis::Channel).unwrap();
    for (c, (m, s)) in [(0.4913, 0.2452), (0.4821, 0.2428), (0.4465, 0.2606)]
        .iter()
        .enumerate()
    {
        assert!(
            (stats.mean[c] - m).abs() < 0.01,
            "mean {c}: {}",
            stats.mean[c]
        );
        assert!(
            (stats.var[c].sqrt() - s).abs() < 0.01,
            "std {c}: {}",
            stats.var[c].sqrt()
        );
    }
}

#[test]
fn loader_over_real_cifar_with_augmentation() {
    let dir = common::shared_data().join("cifar-10");
    let test = Arc::new(Cifar::cifar10(&dir, Split::Test).unwrap());
    let augment = Compose::new()
        .then(ToTensor)
        .then(RandomCrop::new(32, 32, 4))
        .then(RandomHorizontalFlip::default())
        .then(Normalize::new(&[0.4914, 0.4822, 0.4465], &[0.2470, 0.2435, 0.2616]).unwrap());
    let cfg = LoaderConfig {
        batch_size: 128,
        shuffle: true,
        seed: 3,
        ..Default::default()
    };
    let loader = DataLoader::new(test, cfg).unwrap().with_transform(augment);
    let mut images = 0;
    let mut sum = 0.0f64;
    for batch in loader.epoch(0) {
        let batch = batch.unwrap();
        assert_eq!(&batch.inputs.dims()[1..], &[3, 32, 32]);
        images += batch.len();
        sum += batch
            .inputs
            .to_vec::<f32>()
            .unwrap()
            .iter()
            .map(|&v| f64::from(v))
            .sum::<f64>();
    }
    assert_eq!(images, 10_000);
    // Normalised data has a mean near zero (padding zeros pull it slightly negative).
    let mean = sum / (10_000.0 * 3072.0);
    assert!(mean.abs() < 0.35, "{mean}");
}
