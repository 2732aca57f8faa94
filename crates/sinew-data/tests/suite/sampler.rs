//! Samplers: uniform and weighted draws (with and without replacement), subsets, class
//! balancing, their place in the loader (shuffle, shards, batches) and their errors.

use std::sync::Arc;

use sinew_data::rng::epoch_rng;
use sinew_data::{
    DataError, DataLoader, DistributedSampler, LoaderConfig, RandomSampler, Sample, Sampler,
    SubsetRandomSampler, VecDataset, WeightedRandomSampler,
};

fn rows(n: usize) -> Arc<VecDataset<Sample>> {
    let rows = (0..n).map(|i| Sample::features(vec![i as f32], (i % 2) as i64));
    Arc::new(VecDataset::new(rows.collect()))
}

fn sampled(sampler: impl Sampler + 'static) -> LoaderConfig {
    LoaderConfig {
        batch_size: 4,
        seed: 9,
        num_workers: 0,
        sampler: Some(Arc::new(sampler)),
        ..Default::default()
    }
}

/// How often each index comes in `draws`, as fractions.
fn frequencies(draws: &[usize], n: usize) -> Vec<f64> {
    let mut counts = vec![0usize; n];
    for &i in draws {
        counts[i] += 1;
    }
    counts
        .iter()
        .map(|&c| c as f64 / draws.len() as f64)
        .collect()
}

#[test]
fn a_random_sampler_is_the_loaders_shuffle() {
    let shuffled = LoaderConfig {
        batch_size: 4,
        shuffle: true,
        seed: 9,
        num_workers: 0,
        ..Default::default()
    };
    let a = DataLoader::new(rows(10), shuffled).unwrap();
    let b = DataLoader::new(rows(10), sampled(RandomSampler::new())).unwrap();
    for epoch in 0..3 {
        assert_eq!(a.order(epoch), b.order(epoch));
    }
    assert_ne!(b.order(0), b.order(1));
    assert_ne!(b.order(0), (0..10).collect::<Vec<_>>());
}

#[test]
fn random_sampling_with_more_samples_than_examples() {
    // Without replacement: two whole permutations, then part of a third.
    let sampler = RandomSampler::new().with_num_samples(25);
    let loader = DataLoader::new(rows(10), sampled(sampler)).unwrap();
    assert_eq!(loader.num_samples(), 25);
    assert_eq!(loader.num_batches(), 7);
    let order = loader.order(0);
    for whole in [&order[..10], &order[10..20]] {
        let mut sorted = whole.to_vec();
        sorted.sort_unstable();
        assert_eq!(sorted, (0..10).collect::<Vec<_>>());
    }
    assert_ne!(order[..10], order[10..20]);
    let batches: Vec<_> = loader.epoch(0).map(|b| b.unwrap()).collect();
    assert_eq!(batches.len(), 7);
    assert_eq!(batches[6].indices, order[24..]);

    // With replacement: uniform draws, repeats included.
    let sampler = RandomSampler::new()
        .with_replacement()
        .with_num_samples(20_000);
    let draws = sampler.indices(4, &mut epoch_rng(3, 0));
    assert_eq!(draws.len(), 20_000);
    for f in frequencies(&draws, 4) {
        assert!((f - 0.25).abs() < 0.015, "{f}");
    }
}

#[test]
fn weighted_draws_follow_the_weights() {
    let sampler = WeightedRandomSampler::new(vec![0.0, 1.0, 3.0, 0.0], 40_000, true).unwrap();
    let draws = sampler.indices(4, &mut epoch_rng(1, 0));
    assert_eq!(draws.len(), 40_000);
    let f = frequencies(&draws, 4);
    assert_eq!((f[0], f[3]), (0.0, 0.0), "zero weights are never drawn");
    assert!(
        (f[1] - 0.25).abs() < 0.01 && (f[2] - 0.75).abs() < 0.01,
        "{f:?}"
    );
    // The same (seed, epoch) draws the same; another epoch draws anew.
    assert_eq!(draws, sampler.indices(4, &mut epoch_rng(1, 0)));
    assert_ne!(draws, sampler.indices(4, &mut epoch_rng(1, 1)));
}

#[test]
fn weighted_draws_without_replacement_pick_each_index_once() {
    let weights = vec![1.0, 2.0, 3.0, 4.0, 0.0];
    let sampler = WeightedRandomSampler::new(weights, 2, false).unwrap();
    let mut first = Vec::new();
    let mut second = Vec::new();
    for epoch in 0..20_000 {
        let draw = sampler.indices(5, &mut epoch_rng(5, epoch));
        assert_eq!(draw.len(), 2);
        assert_ne!(draw[0], draw[1]);
        first.push(draw[0]);
        second.push(draw[1]);
    }
    // The first draw is proportional to the weights; the second to those left, so index 0
    // comes second with probability sum_j w_j/10 * 1/(10 - w_j) for j = 1, 2, 3.
    let f = frequencies(&first, 5);
    for (got, want) in f.iter().zip([0.1, 0.2, 0.3, 0.4, 0.0]) {
        assert!((got - want).abs() < 0.012, "first draws {f:?}");
    }
    let want0 = 0.2 / 8.0 + 0.3 / 7.0 + 0.4 / 6.0;
    let s = frequencies(&second, 5);
    assert!(
        (s[0] - want0).abs() < 0.01 && s[4] == 0.0,
        "second draws {s:?}"
    );

    // All positive weights at once: a permutation of them.
    let all = WeightedRandomSampler::new(vec![5.0, 0.0, 1.0, 2.0], 3, false).unwrap();
    let mut draw = all.indices(4, &mut epoch_rng(0, 0));
    draw.sort_unstable();
    assert_eq!(draw, [0, 2, 3]);
}

#[test]
fn balanced_sampling_evens_out_the_classes() {
    // Class 1 has a quarter of the examples but comes half the time.
    let labels = [0, 0, 0, 1, 0, 0, 1, 0];
    let sampler = WeightedRandomSampler::balanced(&labels, 40_000).unwrap();
    assert_eq!(
        sampler.weights(),
        [
            1. / 6.,
            1. / 6.,
            1. / 6.,
            0.5,
            1. / 6.,
            1. / 6.,
            0.5,
            1. / 6.
        ]
    );
    // Labels of any comparable type: MNIST's and CIFAR's are bytes.
    let bytes = WeightedRandomSampler::balanced(&[3u8, 3, 7], 3).unwrap();
    assert_eq!(bytes.weights(), [0.5, 0.5, 1.0]);
    let draws = sampler.indices(8, &mut epoch_rng(2, 0));
    let ones = draws.iter().filter(|&&i| labels[i] == 1).count();
    assert!((ones as f64 / 40_000.0 - 0.5).abs() < 0.01, "{ones}");

    // In a loader, batches carry the drawn examples.
    let loader = DataLoader::new(rows(8), sampled(sampler)).unwrap();
    assert_eq!(loader.num_batches(), 10_000);
    let batch = loader.batch(0, 0).unwrap();
    assert_eq!(batch.indices, loader.order(0)[..4]);
    let features = batch.inputs.to_vec::<f32>().unwrap();
    let indices: Vec<f32> = batch.indices.iter().map(|&i| i as f32).collect();
    assert_eq!(features, indices);
}

#[test]
fn a_subset_sampler_permutes_its_indices() {
    let sampler = SubsetRandomSampler::new(vec![7, 2, 9, 4]);
    let loader = DataLoader::new(rows(10), sampled(sampler)).unwrap();
    assert_eq!(loader.num_batches(), 1);
    let mut seen = Vec::new();
    for epoch in 0..6 {
        let mut order = loader.order(epoch);
        seen.push(order.clone());
        order.sort_unstable();
        assert_eq!(order, [2, 4, 7, 9]);
    }
    seen.dedup();
    assert!(seen.len() > 1, "every epoch gave {:?}", seen[0]);
}

#[test]
fn ranks_shard_what_the_sampler_draws() {
    let sampler = Arc::new(WeightedRandomSampler::new(vec![1.0; 10], 7, true).unwrap());
    let config = |shard| LoaderConfig {
        sampler: Some(sampler.clone()),
        shard,
        ..sampled(RandomSampler::new())
    };
    let whole = DataLoader::new(rows(10), config(None)).unwrap().order(3);
    assert_eq!(whole.len(), 7);
    let ranks: Vec<Vec<usize>> = (0..2)
        .map(|r| {
            let shard = DistributedSampler::new(r, 2).unwrap();
            let loader = DataLoader::new(rows(10), config(Some(shard))).unwrap();
            assert_eq!(loader.num_samples(), 4);
            loader.order(3)
        })
        .collect();
    // Rank r takes positions r, r + 2, ...; the padding repeats the first draw.
    let interleaved: Vec<usize> = (0..8).map(|k| ranks[k % 2][k / 2]).collect();
    assert_eq!(interleaved[..7], whole[..]);
    assert_eq!(interleaved[7], whole[0]);
}

#[test]
fn bad_samplers_are_refused_with_the_reason() {
    let err = |r: Result<WeightedRandomSampler, DataError>| r.unwrap_err().to_string();
    let negative = err(WeightedRandomSampler::new(vec![1.0, -0.5], 2, true));
    assert!(negative.contains("weight 1 is -0.5"), "{negative}");
    let nan = err(WeightedRandomSampler::new(vec![f64::NAN], 2, true));
    assert!(nan.contains("finite"), "{nan}");
    let zero = err(WeightedRandomSampler::new(vec![0.0, 0.0], 2, true));
    assert!(zero.contains("positive, finite sum"), "{zero}");
    let overflow = err(WeightedRandomSampler::new(
        vec![f64::MAX, f64::MAX],
        2,
        true,
    ));
    assert!(overflow.contains("positive, finite sum"), "{overflow}");
    let none = err(WeightedRandomSampler::new(vec![1.0], 0, true));
    assert!(none.contains("num_samples must be positive"), "{none}");
    let too_many = err(WeightedRandomSampler::new(vec![1.0, 0.0, 2.0], 3, false));
    assert!(
        too_many.contains("3 samples without replacement from 2"),
        "{too_many}"
    );

    // Checked against the dataset when the loader is built.
    let refused = |sampler: Arc<dyn Sampler>, shuffle: bool| {
        let config = LoaderConfig {
            shuffle,
            sampler: Some(sampler),
            ..Default::default()
        };
        match DataLoader::new(rows(5), config) {
            Ok(_) => panic!("the loader took a bad sampler"),
            Err(e) => e.to_string(),
        }
    };
    let class_weights = Arc::new(WeightedRandomSampler::new(vec![1.0, 3.0], 5, true).unwrap());
    let msg = refused(class_weights, false);
    assert!(msg.contains("2 weights for a dataset of 5"), "{msg}");
    let msg = refused(Arc::new(SubsetRandomSampler::new(vec![1, 5])), false);
    assert!(msg.contains('5'), "{msg}");
    let msg = refused(Arc::new(RandomSampler::new()), true);
    assert!(msg.contains("set shuffle to false"), "{msg}");
    let msg = refused(Arc::new(RandomSampler::new().with_num_samples(0)), false);
    assert!(msg.contains("num_samples must be positive"), "{msg}");
    let huge = Arc::new(RandomSampler::new().with_num_samples(usize::MAX));
    let msg = refused(huge, false);
    assert!(msg.contains("DataLoader"), "{msg}");
}
