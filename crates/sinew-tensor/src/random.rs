//! Seeded random numbers that are the same on any thread count.
//!
//! A [`Generator`] holds a seed and a call counter. Each sampling call splits its output into fixed
//! blocks of [`BLOCK`] values; block `b` of call `c` draws from its own ChaCha8 stream keyed by
//! `(seed, c, b)`. Blocks run in parallel, yet the numbers depend only on the seed and call order.

use std::sync::{Mutex, OnceLock};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Normal, StandardNormal};
use rayon::prelude::*;

use crate::cpu::alloc::{try_vec, try_with_capacity};
use crate::{DType, Device, Error, Result, Shape, Tensor};

/// Values drawn from one ChaCha stream before moving to the next.
pub const BLOCK: usize = 4096;

/// An explicit, seedable source of random tensors.
///
/// The handle that [`with_default_generator`] lends (and its clones) draws its call numbers
/// from the default generator, so it shares that generator's state.
#[derive(Debug, Clone)]
pub struct Generator {
    seed: u64,
    calls: u64,
    /// True for a handle onto the default generator (see [`with_default_generator`]).
    lent: bool,
}

fn default_generator() -> &'static Mutex<Generator> {
    static DEFAULT: OnceLock<Mutex<Generator>> = OnceLock::new();
    DEFAULT.get_or_init(|| Mutex::new(Generator::new(0x5EED)))
}

/// Reseeds the default generator used by `Tensor::rand` and friends. PyTorch: `torch.manual_seed`.
pub fn manual_seed(seed: u64) {
    *default_generator()
        .lock()
        .unwrap_or_else(|e| e.into_inner()) = Generator::new(seed);
}

/// The default generator's state, `(seed, calls)`: with [`set_default_generator_state`] a
/// checkpoint resumes the exact random stream (dropout masks, initialisation).
pub fn default_generator_state() -> (u64, u64) {
    let g = default_generator()
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    (g.seed, g.calls)
}

/// Restores a state from [`default_generator_state`].
pub fn set_default_generator_state(seed: u64, calls: u64) {
    let mut g = default_generator()
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    *g = Generator {
        seed,
        calls,
        lent: false,
    };
}

/// Runs `f` with a handle onto the default generator.
///
/// No lock is held while `f` runs: each draw through the handle takes the next call number of
/// the default generator under a short lock. So `f` may call `Tensor::rand`, `manual_seed` or
/// this function again (re-entrant), also from rayon tasks it waits for, and the numbers drawn
/// in a single-threaded program are the same as drawing from the default generator in order.
pub fn with_default_generator<R>(f: impl FnOnce(&mut Generator) -> R) -> R {
    let mut handle = {
        let g = default_generator()
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        Generator {
            seed: g.seed,
            calls: g.calls,
            lent: true,
        }
    };
    f(&mut handle)
}

fn mix(mut z: u64) -> u64 {
    // SplitMix64 finaliser: spreads (seed, call, block) into independent 64-bit keys.
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58476d1ce4e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d049bb133111eb);
    z ^ (z >> 31)
}

impl Generator {
    /// A generator with the given seed.
    pub fn new(seed: u64) -> Self {
        Generator {
            seed,
            calls: 0,
            lent: false,
        }
    }

    /// The seed it was made with (for the default generator's handle: its current seed).
    pub fn seed(&self) -> u64 {
        if self.lent {
            return default_generator()
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .seed;
        }
        self.seed
    }

    /// `(seed, call number)` of the next sampling call, advancing the counter (the default
    /// generator's, under a short lock, for a lent handle).
    fn next_call(&mut self) -> (u64, u64) {
        if self.lent {
            let mut g = default_generator()
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            let call = g.calls;
            g.calls += 1;
            (self.seed, self.calls) = (g.seed, g.calls);
            return (g.seed, call);
        }
        let call = self.calls;
        self.calls += 1;
        (self.seed, call)
    }

    /// `n` values, block-parallel, each block from its own stream; allocated fallibly (an
    /// out-of-memory error names `op`).
    fn sample<T: Copy + Default + Send + 'static>(
        &mut self,
        op: &'static str,
        n: usize,
        draw: impl Fn(&mut ChaCha8Rng) -> T + Sync,
    ) -> Result<Vec<T>> {
        let (seed, call) = self.next_call();
        let mut out = try_vec(op, n, T::default())?;
        out.par_chunks_mut(BLOCK)
            .enumerate()
            .for_each(|(block, chunk)| {
                let key = mix(mix(seed ^ mix(call.wrapping_add(0x9E37_79B9))) ^ block as u64);
                let mut rng = ChaCha8Rng::seed_from_u64(key);
                for v in chunk {
                    *v = draw(&mut rng);
                }
            });
        Ok(out)
    }

    fn tensor(
        &mut self,
        shape: Shape,
        dtype: DType,
        device: &Device,
        op: &'static str,
        draw: impl Fn(&mut ChaCha8Rng) -> f64 + Sync,
    ) -> Result<Tensor> {
        if !dtype.is_float() {
            return Err(Error::UnsupportedDType { op, dtype });
        }
        let values = self.sample(op, shape.checked_elem_count(op)?, draw)?;
        Tensor::from_f64_values(values, shape, dtype, device)
    }

    /// Uniform in `[low, high)`. PyTorch equivalent: `torch.empty(..).uniform_(low, high)`.
    pub fn uniform(
        &mut self,
        shape: impl Into<Shape>,
        low: f64,
        high: f64,
        dtype: DType,
        device: &Device,
    ) -> Result<Tensor> {
        if low > high || !low.is_finite() || !high.is_finite() {
            return Err(Error::invalid(
                "uniform",
                format!("bad bounds [{low}, {high})"),
            ));
        }
        // `low + (high - low) * u` can round up to `high` in f64 and, far more often, when it is
        // narrowed to f32 (about 1 in 2^25 draws), f16 (2^-12) or bf16 (2^-9). Capping at the
        // largest value of the dtype below `high` keeps the interval half-open, as in PyTorch.
        let cap = largest_below(high, dtype).max(low);
        self.tensor(shape.into(), dtype, device, "uniform", |r| {
            (low + (high - low) * r.random::<f64>()).min(cap)
        })
    }

    /// Uniform in `[0, 1)`. PyTorch equivalent: `torch.rand`.
    pub fn rand(
        &mut self,
        shape: impl Into<Shape>,
        dtype: DType,
        device: &Device,
    ) -> Result<Tensor> {
        self.uniform(shape, 0.0, 1.0, dtype, device)
    }

    /// Normal with mean `mean` and standard deviation `std`. PyTorch equivalent: `torch.normal`.
    pub fn normal(
        &mut self,
        shape: impl Into<Shape>,
        mean: f64,
        std: f64,
        dtype: DType,
        device: &Device,
    ) -> Result<Tensor> {
        // rand_distr accepts a negative std (mirroring the samples); PyTorch and we do not.
        if std.is_nan() || std < 0.0 || !std.is_finite() || !mean.is_finite() {
            return Err(Error::invalid(
                "normal",
                format!("need a finite mean and std >= 0, got mean {mean}, std {std}"),
            ));
        }
        let dist = Normal::new(mean, std).map_err(|e| Error::invalid("normal", e.to_string()))?;
        self.tensor(shape.into(), dtype, device, "normal", |r| dist.sample(r))
    }

    /// Standard normal. PyTorch equivalent: `torch.randn`.
    pub fn randn(
        &mut self,
        shape: impl Into<Shape>,
        dtype: DType,
        device: &Device,
    ) -> Result<Tensor> {
        self.tensor(shape.into(), dtype, device, "randn", |r| {
            StandardNormal.sample(r)
        })
    }

    /// Normal(mean, std) restricted to `[a, b]` by rejection. PyTorch: `nn.init.trunc_normal_`.
    pub fn truncated_normal(
        &mut self,
        shape: impl Into<Shape>,
        mean: f64,
        std: f64,
        a: f64,
        b: f64,
        dtype: DType,
        device: &Device,
    ) -> Result<Tensor> {
        if a.partial_cmp(&b) != Some(std::cmp::Ordering::Less)
            || std.partial_cmp(&0.0) != Some(std::cmp::Ordering::Greater)
        {
            return Err(Error::invalid(
                "truncated_normal",
                format!("need a < b and std > 0, got [{a}, {b}], std {std}"),
            ));
        }
        // Reject in standard units; fall back to uniform when the window is far in a tail.
        let (lo, hi) = ((a - mean) / std, (b - mean) / std);
        self.tensor(shape.into(), dtype, device, "truncated_normal", |r| {
            for _ in 0..64 {
                let z: f64 = StandardNormal.sample(r);
                if (lo..=hi).contains(&z) {
                    return mean + std * z;
                }
            }
            mean + std * (lo + (hi - lo) * r.random::<f64>())
        })
    }

    /// A fresh key for the counter-based generator ([`crate::philox`]), taken like a sampling
    /// call (it advances the call counter): the same seed and call order give the same keys.
    pub fn philox_key(&mut self) -> u64 {
        let (seed, call) = self.next_call();
        mix(seed ^ mix(call.wrapping_add(0x5851_F42D_4C95_7F2D)))
    }

    /// Dropout's keep mask: 1 with probability `keep`, else 0, as `dtype`, drawn on `device`
    /// itself from Philox4x32-10 under a fresh [`philox_key`](Self::philox_key) (element `i` is
    /// kept when its uniform is below `keep`). The same seed gives the same mask on every run,
    /// thread count and device, and a GPU draws it without a host round trip.
    pub fn keep_mask(
        &mut self,
        shape: impl Into<Shape>,
        keep: f64,
        dtype: DType,
        device: &Device,
    ) -> Result<Tensor> {
        if !(0.0..=1.0).contains(&keep) {
            return Err(Error::invalid(
                "keep_mask",
                format!("probability {keep} is outside [0, 1]"),
            ));
        }
        let key = self.philox_key();
        // The threshold rounded to f32 first, so that comparing in f32 (a GPU kernel) or in f64
        // gives the same mask: uniforms are multiples of 2^-24 and can equal it.
        let threshold = f64::from(keep as f32);
        Tensor::philox_uniform(shape, key, device)?
            .lt_scalar(threshold)?
            .to_dtype(dtype)
    }

    /// 1 with probability `p`, else 0, as `dtype`. PyTorch equivalent: `torch.bernoulli(full(p))`.
    pub fn bernoulli(
        &mut self,
        shape: impl Into<Shape>,
        p: f64,
        dtype: DType,
        device: &Device,
    ) -> Result<Tensor> {
        if !(0.0..=1.0).contains(&p) {
            return Err(Error::invalid(
                "bernoulli",
                format!("probability {p} is outside [0, 1]"),
            ));
        }
        let shape = shape.into();
        let n = shape.checked_elem_count("bernoulli")?;
        let values = self.sample("bernoulli", n, |r| (r.random::<f64>() < p) as u8 as f64)?;
        Tensor::from_f64_values(values, shape, dtype, device)
    }

    /// Integers uniform in `[low, high)` as i64. PyTorch equivalent: `torch.randint`.
    pub fn randint(
        &mut self,
        shape: impl Into<Shape>,
        low: i64,
        high: i64,
        device: &Device,
    ) -> Result<Tensor> {
        if low >= high {
            return Err(Error::invalid(
                "randint",
                format!("empty range [{low}, {high})"),
            ));
        }
        let shape = shape.into();
        // Drawn as i64 directly: an f64 detour would round values beyond 2^53.
        let n = shape.checked_elem_count("randint")?;
        let ints = self.sample("randint", n, |r| r.random_range(low..high))?;
        Tensor::from_vec_on(ints, shape, device)
    }

    /// A random permutation of `0..n` as i64. PyTorch equivalent: `torch.randperm`.
    pub fn randperm(&mut self, n: usize, device: &Device) -> Result<Tensor> {
        Shape::new([n]).checked_elem_count("randperm")?;
        let mut perm = try_with_capacity("randperm", n)?;
        // Same stream as `permutation`, built in place so a huge `n` is an error, not an abort.
        let mut rng = self.permutation_rng();
        perm.extend(0..n as i64);
        for i in (1..n).rev() {
            perm.swap(i, rng.random_range(0..=i));
        }
        Tensor::from_vec_on(perm, [n], device)
    }

    fn permutation_rng(&mut self) -> ChaCha8Rng {
        let (seed, call) = self.next_call();
        ChaCha8Rng::seed_from_u64(mix(seed ^ mix(call.wrapping_add(0x7F4A_7C15))))
    }

    /// A random permutation of `0..n` as host indices (Fisher–Yates on one stream).
    pub fn permutation(&mut self, n: usize) -> Vec<usize> {
        let mut rng = self.permutation_rng();
        let mut perm: Vec<usize> = (0..n).collect();
        for i in (1..n).rev() {
            perm.swap(i, rng.random_range(0..=i));
        }
        perm
    }
}

/// The largest value of `dtype` strictly below `x` (for capping half-open intervals).
fn largest_below(x: f64, dtype: DType) -> f64 {
    use half::{bf16, f16};
    // Step one unit in the last place toward -inf, on the bit pattern of an IEEE float.
    fn down(bits: u64, sign: u64) -> u64 {
        if bits & !sign == 0 {
            sign | 1
        } else if bits & sign != 0 {
            bits + 1
        } else {
            bits - 1
        }
    }
    match dtype {
        DType::F32 => {
            let r = x as f32;
            let r = if (r as f64) < x {
                r
            } else {
                f32::from_bits(down(r.to_bits() as u64, 1 << 31) as u32)
            };
            r as f64
        }
        DType::F16 => {
            let r = f16::from_f64(x);
            let r = if r.to_f64() < x {
                r
            } else {
                f16::from_bits(down(r.to_bits() as u64, 1 << 15) as u16)
            };
            r.to_f64()
        }
        DType::BF16 => {
            let r = bf16::from_f64(x);
            let r = if r.to_f64() < x {
                r
            } else {
                bf16::from_bits(down(r.to_bits() as u64, 1 << 15) as u16)
            };
            r.to_f64()
        }
        _ => f64::from_bits(down(x.to_bits(), 1 << 63)),
    }
}

/// A copy of the default generator that owns the next call number, taken under a short lock.
///
/// Sampling then runs without the lock, so `Tensor::rand` called from inside rayon tasks (for
/// example by data-loading workers) cannot deadlock on a lock held by a thread that is waiting
/// for those tasks. Each sampling call consumes exactly one call number, so the numbers are the
/// same as sampling under the lock.
fn reserve_default_call() -> Generator {
    let mut g = default_generator()
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    let snapshot = g.clone();
    g.calls += 1;
    snapshot
}

impl Tensor {
    /// Uniform `[0, 1)` from the default generator. PyTorch equivalent: `torch.rand`.
    pub fn rand(shape: impl Into<Shape>, dtype: DType, device: &Device) -> Result<Tensor> {
        reserve_default_call().rand(shape, dtype, device)
    }

    /// Standard normal from the default generator. PyTorch equivalent: `torch.randn`.
    pub fn randn(shape: impl Into<Shape>, dtype: DType, device: &Device) -> Result<Tensor> {
        reserve_default_call().randn(shape, dtype, device)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_numbers_on_any_thread_count() {
        let draw = |threads: usize| {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            pool.install(|| {
                Generator::new(7)
                    .randn([3 * BLOCK + 5], DType::F64, &Device::cpu())
                    .unwrap()
                    .to_vec::<f64>()
                    .unwrap()
            })
        };
        assert_eq!(draw(1), draw(3));
        let other = Generator::new(8)
            .randn([10], DType::F64, &Device::cpu())
            .unwrap()
            .to_vec::<f64>()
            .unwrap();
        assert_ne!(draw(1)[..10], other[..]);
    }

    #[test]
    fn successive_calls_differ() {
        let mut g = Generator::new(1);
        let a = g
            .rand([8], DType::F32, &Device::cpu())
            .unwrap()
            .to_vec::<f32>()
            .unwrap();
        let b = g
            .rand([8], DType::F32, &Device::cpu())
            .unwrap()
            .to_vec::<f32>()
            .unwrap();
        assert_ne!(a, b);
    }

    #[test]
    fn moments_are_right() {
        let mut g = Generator::new(3);
        let n = 200_000;
        let x = g.normal([n], 2.0, 3.0, DType::F64, &Device::cpu()).unwrap();
        let mean = x.mean_all().unwrap().to_scalar::<f64>().unwrap();
        let std = x.std(&[], 1, false).unwrap().to_scalar::<f64>().unwrap();
        assert!((mean - 2.0).abs() < 0.03, "mean {mean}");
        assert!((std - 3.0).abs() < 0.03, "std {std}");
        let u = g
            .uniform([n], -1.0, 1.0, DType::F64, &Device::cpu())
            .unwrap()
            .to_vec::<f64>()
            .unwrap();
        assert!(u.iter().all(|v| (-1.0..1.0).contains(v)));
        let b = g
            .bernoulli([n], 0.25, DType::F64, &Device::cpu())
            .unwrap()
            .mean_all()
            .unwrap()
            .to_scalar::<f64>()
            .unwrap();
        assert!((b - 0.25).abs() < 0.01);
    }

    #[test]
    fn truncated_normal_respects_bounds() {
        let mut g = Generator::new(4);
        let x = g
            .truncated_normal([50_000], 0.0, 1.0, -0.5, 2.0, DType::F32, &Device::cpu())
            .unwrap()
            .to_vec::<f32>()
            .unwrap();
        assert!(x.iter().all(|v| (-0.5..=2.0).contains(v)));
        assert!(
            g.truncated_normal([1], 0.0, 1.0, 1.0, 1.0, DType::F32, &Device::cpu())
                .is_err()
        );
    }

    #[test]
    fn the_lent_default_generator_is_reentrant() {
        let cpu = Device::cpu();
        let (a, b, c) = with_default_generator(|g| {
            let a = Tensor::rand([4], DType::F64, &cpu).unwrap();
            let b = g.rand([4], DType::F64, &cpu).unwrap();
            let c = with_default_generator(|h| h.randn([4], DType::F64, &cpu).unwrap());
            (a, b, c)
        });
        let (a, b, c) = (
            a.to_vec::<f64>().unwrap(),
            b.to_vec::<f64>().unwrap(),
            c.to_vec::<f64>().unwrap(),
        );
        assert!(a.iter().chain(&b).all(|v| (0.0..1.0).contains(v)));
        assert_ne!(a, b);
        assert_ne!(b, c);
    }

    #[test]
    fn randperm_is_a_permutation() {
        let mut p = Generator::new(5)
            .randperm(1000, &Device::cpu())
            .unwrap()
            .to_vec::<i64>()
            .unwrap();
        assert_ne!(p[..10], (0..10).collect::<Vec<i64>>()[..]);
        p.sort_unstable();
        assert_eq!(p, (0..1000).collect::<Vec<i64>>());
        let r = Generator::new(5)
            .randint([1000], -3, 4, &Device::cpu())
            .unwrap()
            .to_vec::<i64>()
            .unwrap();
        assert!(r.iter().all(|v| (-3..4).contains(v)) && r.contains(&-3) && r.contains(&3));
    }
}
