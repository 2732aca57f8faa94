//! L-BFGS's state as an [`OptimizerState`]: kept, as in PyTorch, under the first parameter's
//! name, since it is over the flattened parameters. Buffers: `d` and `prev_flat_grad` (flat
//! vectors), `old_dirs` and `old_stps` (the pairs stacked, `[pairs, n]`; absent while there are
//! none); scalars: `t`, `H_diag`, `prev_loss`, `func_evals`, `n_iter` and `ro.<i>`. The step
//! count is `n_iter`.

use std::collections::{BTreeMap, VecDeque};

use sinew_tensor::{Error, Result, Tensor};

use super::flat::Flat;
use super::{History, Lbfgs, LbfgsConfig};
use crate::state::{OptimizerState, ParamState, StateReport};

const OP: &str = "load_state_dict";

fn invalid(fault: impl std::fmt::Display) -> Error {
    Error::invalid(OP, format!("LBFGS state: {fault}"))
}

impl Lbfgs {
    /// The state (see the module's documentation).
    pub(crate) fn save_state(&self) -> Result<OptimizerState> {
        let names: Vec<String> = self.params.iter().map(|p| p.name.clone()).collect();
        let options = serde_json::to_value(&self.config)
            .map_err(|e| Error::invalid("state_dict", e.to_string()))?;
        let mut params = BTreeMap::new();
        let h = &self.history;
        if let (Some(first), true) = (names.first(), h.func_evals > 0) {
            let mut buffers = Vec::new();
            let mut scalars = BTreeMap::new();
            scalars.insert("func_evals".to_string(), h.func_evals as f64);
            scalars.insert("n_iter".to_string(), h.n_iter as f64);
            if let (Some(d), Some(prev), Some(prev_loss)) = (&h.d, &h.prev_flat_grad, h.prev_loss) {
                buffers.push(("d".to_string(), d.clone()));
                buffers.push(("prev_flat_grad".to_string(), prev.clone()));
                scalars.insert("t".to_string(), h.t);
                scalars.insert("H_diag".to_string(), h.h_diag);
                scalars.insert("prev_loss".to_string(), prev_loss);
            }
            if !h.old_dirs.is_empty() {
                let stack = |pairs: &VecDeque<Tensor>| {
                    Tensor::stack(&pairs.iter().cloned().collect::<Vec<_>>(), 0)
                };
                buffers.push(("old_dirs".to_string(), stack(&h.old_dirs)?));
                buffers.push(("old_stps".to_string(), stack(&h.old_stps)?));
            }
            for (i, ro) in h.ro.iter().enumerate() {
                scalars.insert(format!("ro.{i}"), *ro);
            }
            let state = ParamState {
                step: h.n_iter,
                buffers,
                scalars,
            };
            params.insert(first.clone(), state);
        }
        Ok(OptimizerState {
            optimizer: Self::NAME.to_string(),
            groups: vec![(names, options)],
            params,
        })
    }

    /// Restores a state saved by an L-BFGS over the same parameters, in the same order (the
    /// flat vectors depend on it); the options are the saved ones.
    pub(crate) fn load_state(&mut self, state: &OptimizerState) -> Result<StateReport> {
        if state.optimizer != Self::NAME {
            return Err(invalid(format!("the state is from {}", state.optimizer)));
        }
        let [(names, options)] = state.groups.as_slice() else {
            return Err(invalid(format!(
                "it has {} groups; L-BFGS has one",
                state.groups.len()
            )));
        };
        let ours: Vec<&String> = self.params.iter().map(|p| &p.name).collect();
        if names.iter().collect::<Vec<_>>() != ours {
            return Err(invalid(format!(
                "it is over the parameters {names:?}, the optimizer over {ours:?}: L-BFGS's \
                 state is over the flattened parameters, so they must be the same, in order"
            )));
        }
        let config: LbfgsConfig = serde_json::from_value(options.clone())
            .map_err(|e| invalid(format!("group options: {e}")))?;
        config.check()?;
        let mut report = StateReport::default();
        let mut history = History::default();
        for (name, saved) in &state.params {
            if Some(name) == ours.first().copied() {
                let flat = Flat::new(&self.params, config.maximize)?;
                history = restore(&flat, saved, config.history_size)?;
            } else {
                report.unknown.push(name.clone());
            }
        }
        if history.func_evals == 0 {
            report.fresh = self
                .params
                .iter()
                .filter(|p| p.param.requires_grad())
                .map(|p| p.name.clone())
                .collect();
        }
        self.config = config;
        self.history = history;
        Ok(report)
    }
}

/// The history in `saved`, checked against the flat vector and moved to its device.
fn restore(flat: &Flat<'_>, saved: &ParamState, history_size: usize) -> Result<History> {
    let n = flat.len();
    let scalar = |name: &str| {
        saved
            .scalars
            .get(name)
            .copied()
            .ok_or_else(|| invalid(format!("it has no {name}")))
    };
    let count = |name: &str| {
        let v = scalar(name)?;
        if v >= 0.0 && v.fract() == 0.0 && v < 2f64.powi(53) {
            Ok(v as u64)
        } else {
            Err(invalid(format!("{name} is {v}, not a count")))
        }
    };
    let buffer = |name: &str, stacked: bool| -> Result<Option<Tensor>> {
        let Some((_, t)) = saved.buffers.iter().find(|(b, _)| b == name) else {
            return Ok(None);
        };
        let dims = if stacked {
            vec![t.dims().first().copied().unwrap_or(0), n]
        } else {
            vec![n]
        };
        if t.dims() != dims.as_slice() || t.dtype() != flat.dtype() {
            return Err(invalid(format!(
                "{name} is {:?} {}, expected {:?} {:?} (the parameters have {n} entries)",
                t.dtype(),
                t.shape(),
                flat.dtype(),
                dims
            )));
        }
        Ok(Some(t.to_device(flat.device())?.force_contiguous()?))
    };
    let mut h = History {
        n_iter: count("n_iter")?,
        func_evals: count("func_evals")?,
        ..History::default()
    };
    if saved.step != h.n_iter {
        return Err(invalid(format!(
            "step {} but n_iter {}",
            saved.step, h.n_iter
        )));
    }
    if h.n_iter > 0 {
        h.d = buffer("d", false)?;
        h.prev_flat_grad = buffer("prev_flat_grad", false)?;
        if h.d.is_none() || h.prev_flat_grad.is_none() {
            return Err(invalid("it has iterations but no d or prev_flat_grad"));
        }
        h.t = scalar("t")?;
        h.h_diag = scalar("H_diag")?;
        h.prev_loss = Some(scalar("prev_loss")?);
    }
    const BUFFERS: [&str; 4] = ["d", "prev_flat_grad", "old_dirs", "old_stps"];
    if let Some((extra, _)) = saved
        .buffers
        .iter()
        .find(|(b, _)| !BUFFERS.contains(&b.as_str()))
    {
        return Err(invalid(format!("unexpected buffer {extra}")));
    }
    let (dirs, stps) = (buffer("old_dirs", true)?, buffer("old_stps", true)?);
    if dirs.is_some() != stps.is_some() {
        return Err(invalid("it has only one of old_dirs and old_stps"));
    }
    if let (Some(dirs), Some(stps)) = (dirs, stps) {
        let pairs = dirs.dims()[0];
        if stps.dims()[0] != pairs || pairs > history_size {
            return Err(invalid(format!(
                "it has {pairs} old_dirs and {} old_stps, for a history of {history_size}",
                stps.dims()[0]
            )));
        }
        for i in 0..pairs {
            h.old_dirs
                .push_back(dirs.narrow(0, i, 1)?.reshape([n])?.force_contiguous()?);
            h.old_stps
                .push_back(stps.narrow(0, i, 1)?.reshape([n])?.force_contiguous()?);
            h.ro.push_back(scalar(&format!("ro.{i}"))?);
        }
    }
    let known = |s: &str| {
        ["func_evals", "n_iter", "t", "H_diag", "prev_loss"].contains(&s)
            || s.strip_prefix("ro.")
                .and_then(|i| i.parse::<usize>().ok())
                .is_some_and(|i| i < h.ro.len())
    };
    if let Some(extra) = saved.scalars.keys().find(|s| !known(s)) {
        return Err(invalid(format!("unexpected scalar {extra}")));
    }
    Ok(h)
}
