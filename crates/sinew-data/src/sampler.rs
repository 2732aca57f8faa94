//! Samplers: which dataset indices an epoch visits, and how often (PyTorch's `sampler=`).
//!
//! PyTorch equivalents: `torch.utils.data.RandomSampler`, `WeightedRandomSampler` and
//! `SubsetRandomSampler`. Set one as [`LoaderConfig::sampler`]; it replaces the loader's
//! `shuffle` (the two are exclusive, as in PyTorch) and draws from the epoch's generator, so an
//! epoch's indices depend only on (seed, epoch). A [`DistributedSampler`] set beside it shards
//! the drawn indices over the ranks.
//!
//! The draws are not PyTorch's numbers (its generator differs), but their distributions are
//! the same: uniform or weighted, with or without replacement.
//!
//! [`LoaderConfig::sampler`]: crate::LoaderConfig::sampler
//! [`DistributedSampler`]: crate::DistributedSampler

use std::collections::HashMap;
use std::fmt;
use std::hash::Hash;

use rand::Rng;
use rand::seq::SliceRandom;

use crate::error::{DataError, Result};
use crate::rng::DataRng;

/// Picks the dataset indices of each epoch.
///
/// The loader calls [`Sampler::check`] once with the dataset's length when it is built, and
/// then [`Sampler::indices`] with a generator fixed by (seed, epoch) at the start of each epoch.
pub trait Sampler: Send + Sync + fmt::Debug {
    /// How many indices an epoch visits, for a dataset of `dataset_len` examples.
    fn num_samples(&self, dataset_len: usize) -> usize;

    /// Checks that the sampler fits a dataset of `dataset_len` examples (its indices are in
    /// range and it can draw [`Sampler::num_samples`] of them).
    fn check(&self, dataset_len: usize) -> Result<()>;

    /// The epoch's indices, `num_samples(dataset_len)` of them, each below `dataset_len` (once
    /// [`Sampler::check`] passed).
    fn indices(&self, dataset_len: usize, rng: &mut DataRng) -> Vec<usize>;
}

/// Uniformly random indices: a new permutation each epoch, or draws with replacement.
///
/// PyTorch: `RandomSampler(ds, replacement=False, num_samples=None)`. Without replacement and
/// with more samples than examples, whole permutations follow each other (the last one cut).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RandomSampler {
    replacement: bool,
    num_samples: Option<usize>,
}

impl RandomSampler {
    /// A permutation of the dataset each epoch (what `shuffle: true` gives).
    pub fn new() -> Self {
        RandomSampler::default()
    }

    /// Draws each index independently, so an example can come twice in an epoch.
    pub fn with_replacement(mut self) -> Self {
        self.replacement = true;
        self
    }

    /// Visits `num_samples` indices per epoch instead of the dataset's length (positive).
    pub fn with_num_samples(mut self, num_samples: usize) -> Self {
        self.num_samples = Some(num_samples);
        self
    }
}

impl Sampler for RandomSampler {
    fn num_samples(&self, dataset_len: usize) -> usize {
        self.num_samples.unwrap_or(dataset_len)
    }

    fn check(&self, dataset_len: usize) -> Result<()> {
        if self.num_samples == Some(0) {
            return invalid(
                "RandomSampler",
                "num_samples must be positive, got 0".into(),
            );
        }
        if dataset_len == 0 && self.num_samples.is_some() {
            return invalid(
                "RandomSampler",
                "cannot draw samples from an empty dataset".into(),
            );
        }
        Ok(())
    }

    fn indices(&self, dataset_len: usize, rng: &mut DataRng) -> Vec<usize> {
        let wanted = self.num_samples(dataset_len);
        if dataset_len == 0 {
            return Vec::new();
        }
        if self.replacement {
            return (0..wanted)
                .map(|_| rng.random_range(0..dataset_len))
                .collect();
        }
        let mut out = Vec::with_capacity(wanted);
        let mut permutation: Vec<usize> = (0..dataset_len).collect();
        while out.len() < wanted {
            permutation.shuffle(rng);
            let take = (wanted - out.len()).min(dataset_len);
            out.extend_from_slice(&permutation[..take]);
        }
        out
    }
}

/// Indices drawn with probability proportional to their weight: one weight per example.
///
/// PyTorch: `WeightedRandomSampler(weights, num_samples, replacement=True)`. The usual use is
/// class balancing, for which [`WeightedRandomSampler::balanced`] gives each example the inverse
/// of its class's frequency.
#[derive(Clone, Debug, PartialEq)]
pub struct WeightedRandomSampler {
    /// Cumulative sums of the weights (the draws with replacement search them).
    cumulative: Vec<f64>,
    weights: Vec<f64>,
    num_samples: usize,
    replacement: bool,
}

impl WeightedRandomSampler {
    /// `num_samples` draws per epoch, index `i` with probability `weights[i] / sum(weights)`;
    /// without `replacement`, each index at most once (each draw then among those left).
    ///
    /// The weights must be finite and non-negative with a positive sum, `num_samples` positive,
    /// and without replacement at most the number of positive weights: otherwise an error, as
    /// PyTorch's `ValueError` / `RuntimeError`.
    pub fn new(weights: Vec<f64>, num_samples: usize, replacement: bool) -> Result<Self> {
        const WHAT: &str = "WeightedRandomSampler";
        if let Some((i, w)) = weights
            .iter()
            .enumerate()
            .find(|(_, w)| !w.is_finite() || **w < 0.0)
        {
            return invalid(
                WHAT,
                format!("weight {i} is {w}; weights must be finite and non-negative"),
            );
        }
        if num_samples == 0 {
            return invalid(WHAT, "num_samples must be positive, got 0".into());
        }
        let cumulative: Vec<f64> = weights
            .iter()
            .scan(0.0, |sum, w| {
                *sum += w;
                Some(*sum)
            })
            .collect();
        let total = cumulative.last().copied().unwrap_or(0.0);
        if !(total > 0.0 && total.is_finite()) {
            return invalid(
                WHAT,
                format!("the weights must have a positive, finite sum, got {total}"),
            );
        }
        let positive = weights.iter().filter(|w| **w > 0.0).count();
        if !replacement && num_samples > positive {
            return invalid(
                WHAT,
                format!(
                    "cannot draw {num_samples} samples without replacement from {positive} \
                     examples of positive weight"
                ),
            );
        }
        Ok(WeightedRandomSampler {
            cumulative,
            weights,
            num_samples,
            replacement,
        })
    }

    /// Class-balanced sampling with replacement: example `i` weighs `1 / count(labels[i])`, so
    /// every class is drawn equally often; `num_samples` per epoch (`labels.len()` is usual).
    /// The labels are of any type that can be compared (`Mnist::labels()` gives bytes).
    pub fn balanced<L: Eq + Hash>(labels: &[L], num_samples: usize) -> Result<Self> {
        let mut counts: HashMap<&L, usize> = HashMap::new();
        for label in labels {
            *counts.entry(label).or_default() += 1;
        }
        // Every label was counted, so its count is positive.
        let weights = labels.iter().map(|l| 1.0 / counts[l] as f64).collect();
        WeightedRandomSampler::new(weights, num_samples, true)
    }

    /// The weights, one per example.
    pub fn weights(&self) -> &[f64] {
        &self.weights
    }

    /// Draws with replacement: inverse-CDF search of a uniform draw in the cumulative weights.
    fn draw_with_replacement(&self, rng: &mut DataRng) -> Vec<usize> {
        // `new` checked the total is positive and finite.
        let total = *self.cumulative.last().unwrap_or(&1.0);
        let last_positive = self.weights.iter().rposition(|w| *w > 0.0).unwrap_or(0);
        (0..self.num_samples)
            .map(|_| {
                let u = rng.random::<f64>() * total;
                // The first index whose cumulative weight passes `u`: zero weights never are.
                // Rounding can put `u` at `total`; the last positive weight takes it then.
                self.cumulative
                    .partition_point(|c| *c <= u)
                    .min(last_positive)
            })
            .collect()
    }

    /// Draws without replacement: each index gets an exponential key of rate `weights[i]`
    /// and the smallest keys win, in order (Efraimidis and Spirakis: drawing one index at a
    /// time, each with probability proportional to its weight among those left).
    fn draw_without_replacement(&self, rng: &mut DataRng) -> Vec<usize> {
        let mut keyed: Vec<(f64, usize)> = self
            .weights
            .iter()
            .enumerate()
            .filter(|(_, w)| **w > 0.0)
            .map(|(i, w)| {
                // `1 - u` is in (0, 1], so the logarithm is finite.
                let u = 1.0 - rng.random::<f64>();
                (-u.ln() / w, i)
            })
            .collect();
        // `new` checked num_samples <= the positive weights, that is `keyed.len()`.
        let k = self.num_samples.min(keyed.len());
        let by_key = |a: &(f64, usize), b: &(f64, usize)| a.0.total_cmp(&b.0);
        if k < keyed.len() {
            keyed.select_nth_unstable_by(k, by_key);
            keyed.truncate(k);
        }
        keyed.sort_unstable_by(by_key);
        keyed.into_iter().map(|(_, i)| i).collect()
    }
}

impl Sampler for WeightedRandomSampler {
    fn num_samples(&self, _dataset_len: usize) -> usize {
        self.num_samples
    }

    fn check(&self, dataset_len: usize) -> Result<()> {
        if self.weights.len() != dataset_len {
            return invalid(
                "WeightedRandomSampler",
                format!(
                    "{} weights for a dataset of {dataset_len} examples: give one weight per \
                     example (class weights go through WeightedRandomSampler::balanced)",
                    self.weights.len()
                ),
            );
        }
        Ok(())
    }

    fn indices(&self, _dataset_len: usize, rng: &mut DataRng) -> Vec<usize> {
        if self.replacement {
            self.draw_with_replacement(rng)
        } else {
            self.draw_without_replacement(rng)
        }
    }
}

/// A new permutation of a fixed set of indices each epoch.
///
/// PyTorch: `SubsetRandomSampler(indices)`; for example the training part of a split that
/// keeps a single dataset.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SubsetRandomSampler {
    indices: Vec<usize>,
}

impl SubsetRandomSampler {
    /// Samples `indices` in a random order each epoch.
    pub fn new(indices: Vec<usize>) -> Self {
        SubsetRandomSampler { indices }
    }
}

impl Sampler for SubsetRandomSampler {
    fn num_samples(&self, _dataset_len: usize) -> usize {
        self.indices.len()
    }

    fn check(&self, dataset_len: usize) -> Result<()> {
        match self.indices.iter().find(|&&i| i >= dataset_len) {
            Some(&index) => Err(DataError::IndexOutOfRange {
                index,
                len: dataset_len,
            }),
            None => Ok(()),
        }
    }

    fn indices(&self, _dataset_len: usize, rng: &mut DataRng) -> Vec<usize> {
        let mut out = self.indices.clone();
        out.shuffle(rng);
        out
    }
}

fn invalid<T>(what: &'static str, detail: String) -> Result<T> {
    Err(DataError::invalid(what, detail))
}
