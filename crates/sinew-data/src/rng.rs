//! Seeding: every random stream is a ChaCha8 generator keyed by (seed, epoch) and a stream number,
//! so results depend only on those numbers, never on thread count or scheduling.

use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;

/// The generator type used throughout the crate.
pub type DataRng = ChaCha8Rng;

/// Stream number reserved for the epoch's shuffle; sample positions use `position + 1`.
const SHUFFLE_STREAM: u64 = 0;

/// SplitMix64 finaliser: spreads nearby inputs over the whole 64-bit range.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The generator for `stream` of `epoch` under `seed`.
pub fn rng_for(seed: u64, epoch: u64, stream: u64) -> DataRng {
    let mut rng = DataRng::seed_from_u64(mix(seed ^ mix(epoch)));
    rng.set_stream(stream);
    rng
}

/// The generator for the sample at `position` of the epoch's order (what augmentations draw from).
pub fn sample_rng(seed: u64, epoch: u64, position: u64) -> DataRng {
    rng_for(seed, epoch, position + 1)
}

/// The generator of epoch `epoch`'s order: its shuffle, or its sampler's draws.
pub fn epoch_rng(seed: u64, epoch: u64) -> DataRng {
    rng_for(seed, epoch, SHUFFLE_STREAM)
}

/// A permutation of `0..n` fixed by `(seed, epoch)`.
pub fn permutation(n: usize, seed: u64, epoch: u64) -> Vec<usize> {
    let mut order: Vec<usize> = (0..n).collect();
    order.shuffle(&mut epoch_rng(seed, epoch));
    order
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::Rng;

    #[test]
    fn permutation_is_reproducible_and_changes_per_epoch() {
        let a = permutation(100, 7, 0);
        assert_eq!(a, permutation(100, 7, 0));
        assert_ne!(a, permutation(100, 7, 1));
        assert_ne!(a, permutation(100, 8, 0));
        let mut sorted = a.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, (0..100).collect::<Vec<_>>());
    }

    #[test]
    fn streams_differ() {
        let x: u64 = sample_rng(1, 2, 0).random();
        let y: u64 = sample_rng(1, 2, 1).random();
        let z: u64 = sample_rng(1, 2, 0).random();
        assert_ne!(x, y);
        assert_eq!(x, z);
    }
}
