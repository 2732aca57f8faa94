//! `impl DeferredOps for CudaBackend`: scalar reads and value checks kept for the next wait
//! (`deferred.rs`) instead of a stream synchronisation each.

use sinew_tensor::{BackendStorage, DeferredOps, Layout, Result};

use crate::device::CudaBackend;
use crate::ops::compare;
use crate::storage::cuda;

impl DeferredOps for CudaBackend {
    fn defer_read(
        &self,
        src: &dyn BackendStorage,
        start: usize,
        target: std::sync::Arc<sinew_tensor::ReadTarget>,
    ) -> Result<bool> {
        self.defer_scalar_read(cuda(src, self.location())?, start, target)
    }

    fn defer_range_check(
        &self,
        op: &'static str,
        (x, layout): (&dyn BackendStorage, &Layout),
        range: (f64, f64),
        message: &str,
    ) -> Result<bool> {
        let x = cuda(x, self.location())?;
        compare::defer_range_check(self, op, (x, layout), range, message)
    }
}
