//! [`DeferredOps`]: the part of the backend interface a device that queues its work uses to
//! answer at its next wait instead of waiting at the call: scalar reads (the loss scaler's
//! inf/NaN flag) and value checks (binary cross entropy's probabilities). Each method defaults
//! to `false` (not deferred: the caller reads or checks at once), so a synchronous backend
//! takes every default (`impl DeferredOps for MyBackend {}`). Every [`crate::Backend`] is one.

use crate::{BackendStorage, Layout, Result};

/// Reads and checks answered at the device's next wait; see the module docs.
pub trait DeferredOps {
    /// Queues a read of element `start` of `src` for the next time the host waits for this
    /// device (a download or a synchronize), delivered to `target`, so that the read costs no
    /// wait of its own ([`crate::DeferredScalar`]). Returns `false` where reads are not
    /// deferred (the caller reads at once).
    ///
    /// Default: `false` (the CPU's reads cost nothing).
    fn defer_read(
        &self,
        src: &dyn BackendStorage,
        start: usize,
        target: std::sync::Arc<crate::ReadTarget>,
    ) -> Result<bool> {
        let _ = (src, start, target);
        Ok(false)
    }

    /// Queues a check that every element of the float view `x` lies in `[range.0, range.1]`
    /// (NaN does not), whose failure comes back as `Error::InvalidArgument` from `op` with
    /// `message` (and the first element outside) the next time the host waits for this device
    /// (a download or a synchronize), as PyTorch's device-side asserts do but without their
    /// fatal context: the check costs no wait of its own
    /// ([`crate::Tensor::check_in_range`]). Returns `false` where checks are not deferred (the
    /// caller checks at once).
    ///
    /// Default: `false` (the CPU's checks cost no wait).
    fn defer_range_check(
        &self,
        op: &'static str,
        x: (&dyn BackendStorage, &Layout),
        range: (f64, f64),
        message: &str,
    ) -> Result<bool> {
        let _ = (op, x, range, message);
        Ok(false)
    }
}
