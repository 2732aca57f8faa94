//! K-fold splits for cross-validation: plain (a seeded random order cut in `k` parts) and
//! stratified (every fold keeps the class proportions of the whole, scikit-learn's
//! `StratifiedKFold(shuffle=True)` goal).

use crate::rng::permutation;
use crate::{DataError, Result};

/// One fold: the indices to train on and the indices to validate on (disjoint, together all).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fold {
    /// Training indices, ascending.
    pub train: Vec<usize>,
    /// Validation indices, ascending.
    pub val: Vec<usize>,
}

fn check_k(op: &'static str, n: usize, k: usize) -> Result<()> {
    if k < 2 || k > n {
        return Err(DataError::invalid(
            op,
            format!("need 2 <= k <= the number of examples ({n}), got k = {k}"),
        ));
    }
    Ok(())
}

/// Builds the folds from each example's fold number.
fn folds_from(assignment: &[usize], k: usize) -> Vec<Fold> {
    (0..k)
        .map(|f| {
            let (val, train): (Vec<usize>, Vec<usize>) =
                (0..assignment.len()).partition(|&i| assignment[i] == f);
            Fold { train, val }
        })
        .collect()
}

/// `k` folds of `0..n`: a seeded permutation cut into `k` parts whose sizes differ by at most 1.
pub fn k_fold(n: usize, k: usize, seed: u64) -> Result<Vec<Fold>> {
    check_k("k_fold", n, k)?;
    let mut assignment = vec![0; n];
    for (pos, &i) in permutation(n, seed, 0).iter().enumerate() {
        assignment[i] = pos * k / n;
    }
    Ok(folds_from(&assignment, k))
}

/// `k` folds that each hold (up to rounding) the same share of every class: each class's
/// examples, in a seeded random order, are dealt round-robin to the folds, continuing from the
/// fold where the previous class stopped so fold sizes stay within 1 of each other.
pub fn stratified_k_fold(labels: &[i64], k: usize, seed: u64) -> Result<Vec<Fold>> {
    let n = labels.len();
    check_k("stratified_k_fold", n, k)?;
    let mut classes: Vec<i64> = labels.to_vec();
    classes.sort_unstable();
    classes.dedup();
    let order = permutation(n, seed, 0);
    let mut assignment = vec![0; n];
    let mut next = 0;
    for class in classes {
        for &i in order.iter().filter(|&&i| labels[i] == class) {
            assignment[i] = next;
            next = (next + 1) % k;
        }
    }
    Ok(folds_from(&assignment, k))
}
