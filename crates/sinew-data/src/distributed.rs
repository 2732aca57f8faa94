//! [`DistributedSampler`]: each process of a data-parallel job reads its own shard of every epoch.
//!
//! PyTorch equivalent: `torch.utils.data.distributed.DistributedSampler`. The epoch's order (the
//! loader's seeded shuffle, identical on every rank because the seed is shared) is padded by
//! repeating its start until its length divides by the number of replicas, and rank `r` takes
//! positions `r, r + R, r + 2R, ...`. Batch `k` of all ranks together is then exactly batch `k`
//! of one process with an `R` times larger batch, which is what makes data-parallel training
//! equal to single-process training.

use crate::error::{DataError, Result};

/// Which shard of each epoch a process reads (set it as [`LoaderConfig::shard`]).
///
/// [`LoaderConfig::shard`]: crate::LoaderConfig::shard
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DistributedSampler {
    rank: usize,
    num_replicas: usize,
    pad: bool,
}

impl DistributedSampler {
    /// Shard `rank` of `num_replicas`, padded so every rank gets the same number of examples
    /// (and so of batches, which keeps the ranks' collective calls in step).
    pub fn new(rank: usize, num_replicas: usize) -> Result<Self> {
        if num_replicas == 0 || rank >= num_replicas {
            return Err(DataError::invalid(
                "DistributedSampler",
                format!("rank {rank} is not in 0..{num_replicas}"),
            ));
        }
        Ok(DistributedSampler {
            rank,
            num_replicas,
            pad: true,
        })
    }

    /// Without padding: every example is read exactly once over all ranks, and shards may differ
    /// in length by one. For evaluation, where results are summed over ranks at the end.
    pub fn without_padding(mut self) -> Self {
        self.pad = false;
        self
    }

    /// This process's rank.
    pub fn rank(&self) -> usize {
        self.rank
    }

    /// Number of processes.
    pub fn num_replicas(&self) -> usize {
        self.num_replicas
    }

    /// Examples this rank reads per epoch from a dataset of `n`.
    pub fn num_samples(&self, n: usize) -> usize {
        if self.pad {
            n.div_ceil(self.num_replicas)
        } else {
            // Positions r, r + R, ... below n.
            n.saturating_sub(self.rank).div_ceil(self.num_replicas)
        }
    }

    /// This rank's part of an epoch's `order` (all ranks must pass the same order).
    pub fn shard(&self, order: &[usize]) -> Vec<usize> {
        let n = order.len();
        if n == 0 {
            return Vec::new();
        }
        let len = self.num_samples(n);
        (0..len)
            .map(|k| {
                // k < ceil(n / R), so the global position is below n + R: no overflow, and the
                // modulo wraps padding positions onto the start of the order.
                let global = self.rank + k * self.num_replicas;
                order[global % n]
            })
            .collect()
    }

    /// The position in the unsharded epoch of this rank's `k`-th example (the stream its
    /// augmentation draws from, so ranks never share random streams).
    pub fn global_position(&self, k: usize) -> u64 {
        (self.rank as u64).wrapping_add((k as u64).wrapping_mul(self.num_replicas as u64))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn padded_shards_cover_the_epoch_and_have_equal_length() {
        let order: Vec<usize> = (0..10).map(|i| 100 + i).collect();
        let shards: Vec<Vec<usize>> = (0..4)
            .map(|r| DistributedSampler::new(r, 4).unwrap().shard(&order))
            .collect();
        // PyTorch: indices + indices[:2], then indices[rank::4].
        assert_eq!(shards[0], vec![100, 104, 108]);
        assert_eq!(shards[1], vec![101, 105, 109]);
        assert_eq!(shards[2], vec![102, 106, 100]);
        assert_eq!(shards[3], vec![103, 107, 101]);
    }

    #[test]
    fn unpadded_shards_read_every_example_once() {
        let order: Vec<usize> = (0..10).collect();
        let mut all: Vec<usize> = (0..4)
            .flat_map(|r| {
                DistributedSampler::new(r, 4)
                    .unwrap()
                    .without_padding()
                    .shard(&order)
            })
            .collect();
        all.sort_unstable();
        assert_eq!(all, order);
        let lens: Vec<usize> = (0..4)
            .map(|r| {
                DistributedSampler::new(r, 4)
                    .unwrap()
                    .without_padding()
                    .num_samples(10)
            })
            .collect();
        assert_eq!(lens, vec![3, 3, 2, 2]);
    }

    #[test]
    fn padding_longer_than_the_dataset_repeats_it() {
        let order = vec![7, 8];
        let shard = DistributedSampler::new(4, 5).unwrap().shard(&order);
        // PyTorch pads [7, 8] to [7, 8, 7, 8, 7]; rank 4 takes position 4.
        assert_eq!(shard, vec![7]);
    }

    #[test]
    fn a_rank_outside_the_world_is_an_error() {
        assert!(DistributedSampler::new(2, 2).is_err());
        assert!(DistributedSampler::new(0, 0).is_err());
    }
}
