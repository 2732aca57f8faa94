//! [`DeviceSum`]: a running sum whose terms a device computes, read by the host when it next
//! waits for the device anyway ([`DeferredScalar`]): the metrics' counts and the evaluation's
//! loss, so that neither adds a wait for a GPU to a batch.

use sinew_tensor::{DeferredScalar, Result, Tensor};

/// The sum of the terms the host has read, and the reads still pending with their factors.
#[derive(Clone, Debug, Default)]
pub(crate) struct DeviceSum {
    read: f64,
    pending: Vec<(DeferredScalar, f64)>,
}

impl DeviceSum {
    /// Adds `factor` times the one-element tensor `term` (read later, multiplied on the host in
    /// f64), first folding in the terms already brought to the host, in order (no wait).
    pub(crate) fn add(&mut self, term: &Tensor, factor: f64) -> Result<()> {
        let brought = self
            .pending
            .iter()
            .take_while(|(p, _)| p.try_get().is_some())
            .count();
        for (p, f) in self.pending.drain(..brought) {
            self.read += p.get()? * f;
        }
        self.pending.push((DeferredScalar::new(term)?, factor));
        Ok(())
    }

    /// The whole sum (reads the pending terms, waiting where a download has not brought them).
    pub(crate) fn total(&mut self) -> Result<f64> {
        for (p, f) in self.pending.drain(..) {
            self.read += p.get()? * f;
        }
        Ok(self.read)
    }

    /// Replaces the sum with `value`.
    pub(crate) fn set(&mut self, value: f64) {
        self.pending.clear();
        self.read = value;
    }
}
