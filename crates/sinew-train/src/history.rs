//! `History`: what `fit` returns, one row of named values per epoch (Keras' `History`).

use std::collections::BTreeMap;

/// The named values of one epoch (`loss`, `accuracy`, `val_loss`, `lr`, ...).
pub type Logs = BTreeMap<String, f64>;

/// Per-epoch logs of a training run.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct History {
    /// One entry per finished epoch, in order.
    pub epochs: Vec<Logs>,
}

impl History {
    /// The series of `key` over the epochs that logged it (`history.get("val_loss")`).
    pub fn get(&self, key: &str) -> Vec<f64> {
        self.epochs
            .iter()
            .filter_map(|l| l.get(key).copied())
            .collect()
    }

    /// The last value of `key`.
    pub fn last(&self, key: &str) -> Option<f64> {
        self.epochs.last().and_then(|l| l.get(key).copied())
    }
}
