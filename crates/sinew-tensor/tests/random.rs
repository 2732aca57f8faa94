//! Random tensors: the same seed gives the same numbers on any thread count for every
//! distribution, intervals stay half-open after rounding to the dtype, and the default generator
//! is reproducible and safe to use from rayon tasks.

use rayon::prelude::*;
use sinew_tensor::{DType, Device, Generator, Tensor, manual_seed, with_default_generator};

fn cpu() -> Device {
    Device::cpu()
}

/// Every sampling method of a generator, as f64 vectors, in one fixed order.
fn draw_all(seed: u64) -> Vec<Vec<f64>> {
    let mut g = Generator::new(seed);
    let n = [3 * 4096 + 17];
    let f = |t: Tensor| t.to_vec_f64().unwrap();
    vec![
        f(g.rand(n, DType::F32, &cpu()).unwrap()),
        f(g.randn(n, DType::F64, &cpu()).unwrap()),
        f(g.uniform(n, -2.0, 5.0, DType::BF16, &cpu()).unwrap()),
        f(g.normal(n, 1.0, 0.5, DType::F16, &cpu()).unwrap()),
        f(
            g.truncated_normal(n, 0.0, 1.0, -1.0, 0.5, DType::F32, &cpu())
                .unwrap(),
        ),
        f(g.bernoulli(n, 0.3, DType::U8, &cpu()).unwrap()),
        f(g.randint(n, -5, 1 << 60, &cpu()).unwrap()),
        f(g.randperm(1000, &cpu()).unwrap()),
    ]
}

#[test]
fn the_same_seed_gives_the_same_numbers_on_any_thread_count() {
    let on = |threads: usize| {
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap()
            .install(|| draw_all(42))
    };
    let one = on(1);
    assert_eq!(one, on(2));
    assert_eq!(one, on(5));
    assert_ne!(one, draw_all(43));
}

#[test]
fn uniform_never_returns_its_upper_bound() {
    // bf16 has 8 significant bits: without the cap, about 1 in 512 draws of [0, 1) rounds to 1.0.
    let mut g = Generator::new(9);
    for dtype in [DType::BF16, DType::F16, DType::F32, DType::F64] {
        let v = g
            .rand([200_000], dtype, &cpu())
            .unwrap()
            .to_vec_f64()
            .unwrap();
        assert!(
            v.iter().all(|x| (0.0..1.0).contains(x)),
            "{dtype}: max {}",
            v.iter().cloned().fold(0.0, f64::max)
        );
        let w = g
            .uniform([50_000], -3.0, 0.1, dtype, &cpu())
            .unwrap()
            .to_vec_f64()
            .unwrap();
        assert!(w.iter().all(|&x| (-3.0..0.1).contains(&x)), "{dtype}");
    }
    // A degenerate interval gives its only value; an inverted one is an error.
    assert_eq!(
        g.uniform([3], 2.0, 2.0, DType::F32, &cpu())
            .unwrap()
            .to_vec::<f32>()
            .unwrap(),
        vec![2.0; 3]
    );
    assert!(g.uniform([3], 2.0, 1.0, DType::F32, &cpu()).is_err());
}

#[test]
fn randint_reaches_beyond_f64_precision() {
    let v = Generator::new(3)
        .randint([1000], 1 << 62, (1 << 62) + 1000, &cpu())
        .unwrap()
        .to_vec::<i64>()
        .unwrap();
    assert!(v.iter().all(|x| ((1 << 62)..(1 << 62) + 1000).contains(x)));
    // Values 2^62 + k for odd k are not f64-representable; they must still appear.
    assert!(v.iter().any(|x| x % 2 == 1));
}

#[test]
fn the_default_generator_is_reproducible() {
    // One test touches the default generator, so no other test races with the reseed.
    manual_seed(123);
    let a = Tensor::randn([10], DType::F32, &cpu())
        .unwrap()
        .to_vec::<f32>()
        .unwrap();
    let b = Tensor::rand([10], DType::F32, &cpu())
        .unwrap()
        .to_vec::<f32>()
        .unwrap();
    manual_seed(123);
    assert_eq!(
        Tensor::randn([10], DType::F32, &cpu())
            .unwrap()
            .to_vec::<f32>()
            .unwrap(),
        a
    );
    assert_eq!(
        Tensor::rand([10], DType::F32, &cpu())
            .unwrap()
            .to_vec::<f32>()
            .unwrap(),
        b
    );
    // The default generator draws what an explicit one with the same seed draws.
    let mut g = Generator::new(123);
    assert_eq!(
        g.randn([10], DType::F32, &cpu())
            .unwrap()
            .to_vec::<f32>()
            .unwrap(),
        a
    );
    assert_eq!(with_default_generator(|g| g.seed()), 123);

    // Sampling from many rayon tasks at once, each large enough to sample in parallel itself,
    // finishes (the lock is not held while sampling) and gives distinct streams.
    let draws: Vec<Vec<f32>> = (0..16)
        .into_par_iter()
        .map(|_| {
            Tensor::rand([2 * 4096], DType::F32, &cpu())
                .unwrap()
                .to_vec::<f32>()
                .unwrap()
        })
        .collect();
    for i in 0..draws.len() {
        for j in 0..i {
            assert_ne!(draws[i], draws[j]);
        }
    }
}

#[test]
fn distribution_arguments_are_checked() {
    let mut g = Generator::new(1);
    assert!(g.normal([2], 0.0, -1.0, DType::F32, &cpu()).is_err());
    assert!(g.bernoulli([2], 1.5, DType::F32, &cpu()).is_err());
    assert!(g.randint([2], 3, 3, &cpu()).is_err());
    assert!(
        g.rand([2], DType::I64, &cpu())
            .unwrap_err()
            .to_string()
            .contains("unsupported dtype I64")
    );
    // Bernoulli extremes are exact.
    assert_eq!(
        g.bernoulli([64], 0.0, DType::F32, &cpu())
            .unwrap()
            .sum_all()
            .unwrap()
            .item()
            .unwrap(),
        0.0
    );
    assert_eq!(
        g.bernoulli([64], 1.0, DType::Bool, &cpu())
            .unwrap()
            .to_vec::<bool>()
            .unwrap(),
        vec![true; 64]
    );
    assert_eq!(g.randperm(0, &cpu()).unwrap().dims(), &[0]);
}
