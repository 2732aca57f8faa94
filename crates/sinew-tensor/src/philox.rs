//! Philox4x32-10 (Salmon et al., "Parallel Random Numbers: As Easy as 1, 2, 3", SC 2011), the
//! counter-based generator behind dropout masks: element `i` of a draw with key `k` is a pure
//! function of `(k, i)`, so a mask is the same on every run, thread count and device. GPU
//! backends compute the same numbers in their kernels (`cuda/random.cu` in sinew-cuda), so a
//! CUDA run drops exactly the elements a CPU run drops.
//!
//! Layout of a draw: element `i` takes lane `i % 4` of the block for counter
//! `[i / 4 (low 32 bits), i / 4 (high 32 bits), 0, 0]` under key `[k (low), k (high)]`; the
//! 32-bit word `w` becomes the f32 `(w >> 8) * 2^-24`, uniform on `[0, 1)` with 24 bits.

use rayon::prelude::*;

use crate::cpu::alloc::try_vec;
use crate::{Result, Shape, Tensor};

const M0: u32 = 0xD251_1F53;
const M1: u32 = 0xCD9E_8D57;
const W0: u32 = 0x9E37_79B9;
const W1: u32 = 0xBB67_AE85;

/// Elements per parallel task of [`philox_uniform_values`].
const CHUNK: usize = 1 << 14;

/// High and low 32-bit halves of the 64-bit product `a * b`.
fn mul_hi_lo(a: u32, b: u32) -> (u32, u32) {
    let p = u64::from(a) * u64::from(b);
    ((p >> 32) as u32, p as u32)
}

/// One Philox4x32-10 block: ten rounds of the counter under the key (the key bumped by the Weyl
/// constants between rounds).
pub fn philox4x32_10(counter: [u32; 4], key: [u32; 2]) -> [u32; 4] {
    let (mut c, mut k) = (counter, key);
    for round in 0..10 {
        if round > 0 {
            k = [k[0].wrapping_add(W0), k[1].wrapping_add(W1)];
        }
        let (hi0, lo0) = mul_hi_lo(M0, c[0]);
        let (hi1, lo1) = mul_hi_lo(M1, c[2]);
        c = [hi1 ^ c[1] ^ k[0], lo1, hi0 ^ c[3] ^ k[1], lo0];
    }
    c
}

/// The 32-bit word to a float uniform on `[0, 1)`: its top 24 bits times 2^-24 (exact in f32).
pub fn word_to_unit_f32(word: u32) -> f32 {
    (word >> 8) as f32 * (1.0 / 16_777_216.0)
}

/// The four uniforms of block `block` under `key` (elements `4 block .. 4 block + 4`).
fn block_uniforms(key: u64, block: u64) -> [f32; 4] {
    let counter = [block as u32, (block >> 32) as u32, 0, 0];
    philox4x32_10(counter, [key as u32, (key >> 32) as u32]).map(word_to_unit_f32)
}

/// Element `index` of the draw with `key` (see the module docs for the layout).
pub fn philox_uniform(key: u64, index: u64) -> f32 {
    block_uniforms(key, index / 4)[(index % 4) as usize]
}

/// Elements `0..len` of the draw with `key`, computed in parallel; allocated fallibly.
pub fn philox_uniform_values(len: usize, key: u64) -> Result<Vec<f32>> {
    let mut out = try_vec("philox_uniform", len, 0.0f32)?;
    out.par_chunks_mut(CHUNK)
        .enumerate()
        .for_each(|(c, chunk)| {
            // CHUNK is a multiple of 4, so every chunk starts on a block boundary.
            let first_block = (c * CHUNK / 4) as u64;
            for (b, lanes) in chunk.chunks_mut(4).enumerate() {
                let u = block_uniforms(key, first_block + b as u64);
                lanes.copy_from_slice(&u[..lanes.len()]);
            }
        });
    Ok(out)
}

impl Tensor {
    /// Uniforms on `[0, 1)` in f32 from Philox4x32-10 under `key`, computed on `device` by its
    /// backend ([`Backend::philox_uniform`](crate::Backend::philox_uniform)): the same values
    /// on every device. [`Generator::philox_key`](crate::Generator::philox_key) hands out keys.
    pub fn philox_uniform(
        shape: impl Into<Shape>,
        key: u64,
        device: &crate::Device,
    ) -> Result<Tensor> {
        let shape = shape.into();
        let len = shape.checked_elem_count("philox_uniform")?;
        let storage = device.backend().philox_uniform(len, key)?;
        Tensor::from_storage(storage, shape, device.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Random123's known-answer vectors for Philox4x32-10 (its `kat_vectors`).
    #[test]
    fn matches_the_random123_known_answers() {
        let cases = [
            (
                [0; 4],
                [0; 2],
                [0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8],
            ),
            (
                [u32::MAX; 4],
                [u32::MAX; 2],
                [0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd],
            ),
            (
                [0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344],
                [0xa4093822, 0x299f31d0],
                [0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1],
            ),
        ];
        for (counter, key, expected) in cases {
            assert_eq!(
                philox4x32_10(counter, key),
                expected,
                "{counter:x?} {key:x?}"
            );
        }
    }

    #[test]
    fn words_map_into_the_half_open_unit_interval() {
        assert_eq!(word_to_unit_f32(0), 0.0);
        assert_eq!(word_to_unit_f32(0xFF), 0.0);
        assert_eq!(word_to_unit_f32(0x100), 1.0 / 16_777_216.0);
        assert_eq!(word_to_unit_f32(u32::MAX), 1.0 - 1.0 / 16_777_216.0);
    }

    #[test]
    fn the_parallel_fill_equals_the_per_element_formula() {
        // Crosses a chunk boundary and ends inside a block.
        let len = CHUNK + 7;
        let key = 0x0123_4567_89ab_cdef;
        let values = philox_uniform_values(len, key).unwrap();
        for i in [0, 1, 2, 3, 4, CHUNK - 1, CHUNK, CHUNK + 6] {
            assert_eq!(values[i], philox_uniform(key, i as u64), "element {i}");
        }
        let first = block_uniforms(key, 0);
        assert_eq!(values[..4], first);
        // A prefix of a longer draw: element i depends only on (key, i).
        assert_eq!(philox_uniform_values(5, key).unwrap(), values[..5]);
    }

    #[test]
    fn keep_masks_are_the_philox_stream_under_the_generators_key() {
        use crate::{DType, Device, Generator};
        let cpu = Device::cpu();
        let n = 10_000;
        let mask = |seed| {
            Generator::new(seed)
                .keep_mask([n], 0.7, DType::F32, &cpu)
                .unwrap()
                .to_vec::<f32>()
                .unwrap()
        };
        let a = mask(3);
        assert_eq!(a, mask(3), "same seed, same mask");
        assert_ne!(a, mask(4));
        let key = Generator::new(3).philox_key();
        for (i, &m) in a.iter().enumerate() {
            let expected = f32::from(u8::from(philox_uniform(key, i as u64) < 0.7));
            assert_eq!(m, expected, "element {i}");
        }
        let kept = a.iter().filter(|&&m| m == 1.0).count() as f64 / n as f64;
        assert!((kept - 0.7).abs() < 0.02, "kept {kept}");
        // Successive masks from one generator differ.
        let mut g = Generator::new(3);
        let first = g.keep_mask([64], 0.5, DType::F64, &cpu).unwrap();
        let second = g.keep_mask([64], 0.5, DType::F64, &cpu).unwrap();
        assert_ne!(
            first.to_vec::<f64>().unwrap(),
            second.to_vec::<f64>().unwrap()
        );
        assert!(g.keep_mask([4], 1.5, DType::F32, &cpu).is_err());
    }

    #[test]
    fn uniforms_have_the_moments_of_u01_and_keys_decorrelate() {
        let n = 1 << 16;
        let a = philox_uniform_values(n, 1).unwrap();
        let b = philox_uniform_values(n, 2).unwrap();
        let mean = a.iter().map(|&v| f64::from(v)).sum::<f64>() / n as f64;
        let var = a
            .iter()
            .map(|&v| (f64::from(v) - mean).powi(2))
            .sum::<f64>()
            / n as f64;
        // Standard errors: 1/sqrt(12 n) ~ 0.0011 for the mean, ~0.0003 for the variance.
        assert!((mean - 0.5).abs() < 0.006, "mean {mean}");
        assert!((var - 1.0 / 12.0).abs() < 0.002, "variance {var}");
        let same = a.iter().zip(&b).filter(|(x, y)| x == y).count();
        assert!(same < 4, "{same} equal values under different keys");
        let below = a.iter().filter(|&&v| v < 0.25).count() as f64 / n as f64;
        assert!((below - 0.25).abs() < 0.01, "P(u < 0.25) = {below}");
    }
}
