//! Proptest strategies for gradcheck cases (shapes, values away from kinks, broadcast pairs)
//! and the driver that runs one op's cases and keeps the worst error.

use std::cell::RefCell;

use proptest::collection::vec;
use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestCaseError, TestRng, TestRunner};
use sinew_tensor::{Result, Tensor};

use super::{GradcheckOptions, GradcheckReport, gradcheck};

/// Where an op's inputs are drawn from, so that no value sits on a kink or pole.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Domain {
    /// Uniform in [-2, 2].
    Any,
    /// Uniform in [0.3, 3].
    Positive,
    /// Magnitude in [0.2, 2] with either sign.
    AwayFromZero,
    /// Distinct values at least 0.2 apart (for max, min and pooling).
    Spaced,
}

/// `n` values from `domain`.
pub fn values(n: usize, domain: Domain) -> BoxedStrategy<Vec<f64>> {
    match domain {
        Domain::Any => vec(-2.0..2.0f64, n).boxed(),
        Domain::Positive => vec(0.3..3.0f64, n).boxed(),
        Domain::AwayFromZero => vec(
            (0.2..2.0f64, any::<bool>()).prop_map(|(v, neg)| if neg { -v } else { v }),
            n,
        )
        .boxed(),
        Domain::Spaced => (
            Just((0..n).collect::<Vec<usize>>()).prop_shuffle(),
            vec(0.0..0.05f64, n),
        )
            .prop_map(move |(order, noise)| {
                order
                    .iter()
                    .zip(noise)
                    .map(|(&k, e)| k as f64 * 0.25 - n as f64 * 0.125 + e)
                    .collect()
            })
            .boxed(),
    }
}

/// Dimension sizes: rank in `ranks`, each size in `sizes`.
pub fn shape(
    ranks: std::ops::RangeInclusive<usize>,
    sizes: std::ops::RangeInclusive<usize>,
) -> BoxedStrategy<Vec<usize>> {
    vec(sizes, ranks).boxed()
}

/// An f64 tensor of `dims` with values from `domain`.
pub fn tensor_of(dims: Vec<usize>, domain: Domain) -> BoxedStrategy<Tensor> {
    let n = dims.iter().product();
    values(n, domain)
        .prop_map(move |v| Tensor::from_vec(v, dims.clone()).expect("length matches"))
        .boxed()
}

/// An f64 tensor with a shape from `shape(ranks, 1..=4)`.
pub fn tensor(ranks: std::ops::RangeInclusive<usize>, domain: Domain) -> BoxedStrategy<Tensor> {
    shape(ranks, 1..=4)
        .prop_flat_map(move |d| tensor_of(d, domain))
        .boxed()
}

/// Two tensors whose shapes broadcast together (leading dims dropped, some dims set to 1).
pub fn broadcast_pair(a: Domain, b: Domain) -> BoxedStrategy<(Tensor, Tensor)> {
    (
        shape(0..=3, 1..=3),
        0..=3usize,
        0..=3usize,
        vec(any::<(bool, bool)>(), 3),
    )
        .prop_flat_map(move |(out, drop_a, drop_b, ones)| {
            let derive = |drop: usize, pick: fn(&(bool, bool)) -> bool| -> Vec<usize> {
                let drop = drop.min(out.len());
                out[drop..]
                    .iter()
                    .zip(&ones[drop..])
                    .map(|(&d, o)| if pick(o) { 1 } else { d })
                    .collect()
            };
            (
                tensor_of(derive(drop_a, |o| o.0), a),
                tensor_of(derive(drop_b, |o| o.1), b),
            )
        })
        .boxed()
}

/// The outcome of one op's cases.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct OpOutcome {
    /// Cases run (shrinking steps included).
    pub cases: u32,
    /// Worst absolute error over all cases.
    pub max_abs_err: f64,
    /// Worst relative error over all cases.
    pub max_rel_err: f64,
    /// The minimal failing case and why, if any failed.
    pub failure: Option<String>,
}

impl OpOutcome {
    /// Combines the outcomes of two case sets of one op.
    pub fn merge(self, other: OpOutcome) -> OpOutcome {
        OpOutcome {
            cases: self.cases + other.cases,
            max_abs_err: self.max_abs_err.max(other.max_abs_err),
            max_rel_err: self.max_rel_err.max(other.max_rel_err),
            failure: self.failure.or(other.failure),
        }
    }
}

/// Tolerances used for the op-table cases (inputs are f64).
pub const CASE_OPTIONS: GradcheckOptions = GradcheckOptions {
    eps: 1e-6,
    atol: 1e-6,
    rtol: 1e-5,
};

/// Runs `cases` proptest cases of `strategy` through `check`, shrinking any failure.
pub fn drive<S>(
    cases: u32,
    strategy: S,
    check: impl Fn(&S::Value) -> Result<GradcheckReport>,
) -> OpOutcome
where
    S: Strategy,
    S::Value: std::fmt::Debug,
{
    let config = Config {
        cases,
        failure_persistence: None,
        max_shrink_iters: 256,
        ..Config::default()
    };
    let mut runner =
        TestRunner::new_with_rng(config, TestRng::deterministic_rng(RngAlgorithm::ChaCha));
    let stats = RefCell::new(OpOutcome::default());
    let result = runner.run(&strategy, |value| {
        let report = check(&value).map_err(|e| TestCaseError::fail(format!("error: {e}")))?;
        let mut s = stats.borrow_mut();
        s.cases += 1;
        s.max_abs_err = s.max_abs_err.max(report.max_abs_err);
        s.max_rel_err = s.max_rel_err.max(report.max_rel_err);
        match report.failure {
            Some(why) => Err(TestCaseError::fail(why)),
            None => Ok(()),
        }
    });
    let mut outcome = stats.into_inner();
    if let Err(e) = result {
        outcome.failure = Some(e.to_string());
    }
    outcome
}

/// Gradcheck of a one-input function with the case tolerances.
pub fn check1(x: &Tensor, f: impl Fn(&Tensor) -> Result<Tensor>) -> Result<GradcheckReport> {
    gradcheck(|v| f(&v[0]), std::slice::from_ref(x), CASE_OPTIONS)
}

/// Gradcheck of a two-input function with the case tolerances.
pub fn check2(
    a: &Tensor,
    b: &Tensor,
    f: impl Fn(&Tensor, &Tensor) -> Result<Tensor>,
) -> Result<GradcheckReport> {
    gradcheck(|v| f(&v[0], &v[1]), &[a.clone(), b.clone()], CASE_OPTIONS)
}

/// Gradcheck of a three-input function with the case tolerances.
pub fn check3(
    a: &Tensor,
    b: &Tensor,
    c: &Tensor,
    f: impl Fn(&Tensor, &Tensor, &Tensor) -> Result<Tensor>,
) -> Result<GradcheckReport> {
    gradcheck(
        |v| f(&v[0], &v[1], &v[2]),
        &[a.clone(), b.clone(), c.clone()],
        CASE_OPTIONS,
    )
}
