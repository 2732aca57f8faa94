//! Gradcheck entries of reductions and softmax.

use proptest::prelude::*;
use sinew_tensor::{Result, Tensor};

use super::GradcheckEntry;
use crate::gradcheck::strategy::{Domain, check1, drive, shape, tensor, tensor_of};

/// Picks dims from a bit mask (none picked = all dims).
fn dims_of(x: &Tensor, bits: &[bool]) -> Vec<isize> {
    (0..x.rank())
        .filter(|&i| bits[i])
        .map(|i| i as isize)
        .collect()
}

/// A reduction over random dims with random keepdim.
fn reduction(
    op: &'static str,
    domain: Domain,
    sizes: std::ops::RangeInclusive<usize>,
    f: fn(&Tensor, &[isize], bool) -> Result<Tensor>,
) -> GradcheckEntry {
    GradcheckEntry::new(op, move |cases| {
        let strategy = (
            shape(1..=3, sizes.clone()).prop_flat_map(move |d| tensor_of(d, domain)),
            proptest::collection::vec(any::<bool>(), 3),
            any::<bool>(),
        );
        drive(cases, strategy, |(x, bits, keepdim)| {
            let dims = dims_of(x, bits);
            check1(x, |v| f(v, &dims, *keepdim))
        })
    })
}

/// Softmax-like op along a random dim.
fn along_dim(op: &'static str, f: fn(&Tensor, isize) -> Result<Tensor>) -> GradcheckEntry {
    GradcheckEntry::new(op, move |cases| {
        drive(cases, (tensor(1..=3, Domain::Any), 0..3isize), |(x, d)| {
            let dim = d % x.rank() as isize;
            check1(x, |v| f(v, dim))
        })
    })
}

/// Products over random dims, and over rows holding exact zeros (one zero gets the product of
/// the others, two zeros give 0 everywhere).
fn prod_entry() -> GradcheckEntry {
    let plain = reduction("prod", Domain::AwayFromZero, 1..=3, |x, d, k| x.prod(d, k));
    GradcheckEntry::new("prod", move |cases| {
        let with_zeros = drive(
            cases,
            (tensor(1..=2, Domain::Any), 0..4usize, 0..4usize),
            |(x, i, j)| {
                let mut v = x.to_vec::<f64>()?;
                let n = v.len();
                v[i % n] = 0.0;
                v[j % n] = 0.0;
                let x = Tensor::from_vec(v, x.shape().clone())?;
                check1(&x, |v| v.prod(&[-1], false))
            },
        );
        (plain.run)(cases).merge(with_zeros)
    })
}

/// Norms of every differentiable branch: p = 3 (the general power), 1, 2, and the max- and
/// min-abs norms (p = inf, -inf) on positive values, so that no two magnitudes tie across signs.
fn norm_entry() -> GradcheckEntry {
    use Domain::{AwayFromZero, Positive};
    let variants = [
        reduction("norm", AwayFromZero, 1..=4, |x, d, k| x.norm(3.0, d, k)),
        reduction("norm", AwayFromZero, 1..=3, |x, d, k| x.norm(1.0, d, k)),
        reduction("norm", AwayFromZero, 1..=3, |x, d, k| x.norm(2.0, d, k)),
        reduction("norm", Positive, 1..=3, |x, d, k| {
            x.norm(f64::INFINITY, d, k)
        }),
        reduction("norm", Positive, 1..=3, |x, d, k| {
            x.norm(f64::NEG_INFINITY, d, k)
        }),
    ];
    GradcheckEntry::new("norm", move |cases| {
        let mut runs = variants.iter().map(|v| (v.run)(cases));
        let first = runs.next().expect("five variants");
        runs.fold(first, |all, next| all.merge(next))
    })
}

pub(super) fn entries() -> Vec<GradcheckEntry> {
    use Domain::*;
    vec![
        reduction("sum", Any, 1..=4, |x, d, k| x.sum(d, k)),
        reduction("mean", Any, 1..=4, |x, d, k| x.mean(d, k)),
        prod_entry(),
        reduction("max", Spaced, 1..=4, |x, d, k| x.max(d, k)),
        reduction("min", Spaced, 1..=4, |x, d, k| x.min(d, k)),
        reduction("var", Any, 2..=4, |x, d, k| x.var(d, 1, k)),
        reduction("std", Spaced, 2..=4, |x, d, k| x.std(d, 0, k)),
        reduction("logsumexp", Any, 1..=4, |x, d, k| x.logsumexp(d, k)),
        norm_entry(),
        along_dim("softmax", |x, d| x.softmax(d)),
        along_dim("log_softmax", |x, d| x.log_softmax(d)),
    ]
}
