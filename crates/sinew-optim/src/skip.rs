//! Steps that the loss scaler queues to be skipped on the device ([`Optimizer::step_unless`]):
//! on a GPU every update of the step is one multi-tensor kernel that writes nothing when the
//! scaler's inf/NaN flag is set, so the host steps on without waiting for the flag; the host's
//! bookkeeping (step counts, NAdam's `mu_product`) advances as if the step ran, and the
//! snapshot taken before it is restored once the flag, read at the next wait for the device
//! (`loss.item()`), says it was skipped. State that a skipped step made (its parameter's first)
//! stays, at step 0 with its buffers as made (the kernels wrote nothing), for the next step to
//! use instead of making it again; `state_dict` leaves it out, as PyTorch has no state for a
//! parameter before its first step.
//!
//! [`Optimizer::step_unless`]: crate::Optimizer::step_unless

use std::collections::BTreeMap;

use sinew_tensor::{DeferredScalar, Result};

use crate::state::ParamState;
use crate::step::Entry;

/// Each parameter's step count and scalars before a step, by name (parameters without state
/// are absent).
pub(crate) struct Snapshot(Vec<(String, u64, BTreeMap<String, f64>)>);

impl Snapshot {
    /// The bookkeeping of `state` now.
    pub(crate) fn take(state: &BTreeMap<String, Entry>) -> Snapshot {
        Snapshot(
            state
                .iter()
                .map(|(n, e)| (n.clone(), e.state.step, e.state.scalars.clone()))
                .collect(),
        )
    }

    /// Undoes a skipped step's bookkeeping in `state`: steps and scalars as they were, and the
    /// state the step made back at step 0 (see the module docs).
    pub(crate) fn restore(&self, state: &mut BTreeMap<String, Entry>) {
        for (name, e) in state.iter_mut() {
            self.restore_one(name, &mut e.state);
        }
    }

    /// [`Self::restore`] on a copy of the state (`state_dict`).
    pub(crate) fn restore_params(&self, params: &mut BTreeMap<String, ParamState>) {
        for (name, p) in params.iter_mut() {
            self.restore_one(name, p);
        }
    }

    /// Puts back `name`'s step and scalars (step 0 and none if it had no state before).
    fn restore_one(&self, name: &str, state: &mut ParamState) {
        match self.0.binary_search_by(|(n, _, _)| n.as_str().cmp(name)) {
            Ok(at) => {
                let (_, step, scalars) = &self.0[at];
                state.step = *step;
                state.scalars.clone_from(scalars);
            }
            Err(_) => {
                state.step = 0;
                state.scalars.clear();
            }
        }
    }
}

/// A step queued with [`Optimizer::step_unless`](crate::Optimizer::step_unless) whose flag the
/// host has not read yet.
pub(crate) struct Unsettled {
    /// The scaler's flag.
    pub(crate) flag: DeferredScalar,
    /// The bookkeeping before the step.
    pub(crate) before: Snapshot,
}

impl Unsettled {
    /// Whether the step was skipped (reads the flag: no wait if a download has fetched it).
    pub(crate) fn skipped(&self) -> Result<bool> {
        skipped(Some(&self.flag))
    }
}

/// Whether the step must be skipped: never without a flag, else the flag's value (read on the
/// host, a wait unless fetched already), for an update that the device cannot skip itself.
pub(crate) fn skipped(flag: Option<&DeferredScalar>) -> Result<bool> {
    Ok(match flag {
        Some(f) => f.get()? != 0.0,
        None => false,
    })
}
