//! Per-device arrival counters for reductions across blocks finished by their last block, in one
//! kernel instead of a partial-results kernel and a second kernel that adds them.
//!
//! A kernel that splits a reduction over several blocks writes each block's partial result to a
//! workspace, then takes a ticket from its group's counter (`atomicAdd(&tickets[group], 1)` after
//! a `__threadfence`); the block that draws the last ticket adds the partials in a fixed order
//! (so the result does not depend on which block finished last), writes the output and puts the
//! counter back to 0 (`cuda/tickets.cuh`'s `last_to_arrive` and `reset_ticket`). Users:
//! `channel_sums_<dtype>` and `channel_stats_<dtype>` (one group a channel) and
//! `conv_wgrad_<dtype>` (one a weight tile).
//!
//! The counters are one zeroed buffer of u64 (i64 storage) per device, grown (a fresh zeroed
//! buffer) when a launch needs more groups than it holds. Every kernel runs on the device's one
//! stream, so each launch finds all counters at 0: the launch before it has finished and put back
//! every counter it used.

use std::sync::{Arc, Mutex};

use sinew_tensor::{DType, Result};

use crate::device::CudaBackend;
use crate::ops::cast::fill_pattern;
use crate::storage::CudaStorage;

/// Fewest counters allocated (covers every channel count of the model zoo).
const MIN_TICKETS: usize = 4096;

/// The device's counters (`None` until a kernel first needs them).
#[derive(Debug, Default)]
pub(crate) struct Tickets(Mutex<Option<Arc<CudaStorage>>>);

impl CudaBackend {
    /// A buffer of at least `groups` u64 counters, all 0 when the next kernel queued on the
    /// device's stream starts, which must put back every counter it uses. The returned handle
    /// keeps the buffer alive until the launch is queued.
    pub(crate) fn tickets(&self, groups: usize) -> Result<Arc<CudaStorage>> {
        let mut held = self.tickets.0.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(buffer) = held.as_ref().filter(|b| b.elem_count() >= groups) {
            return Ok(Arc::clone(buffer));
        }
        let len = groups.max(MIN_TICKETS).next_power_of_two();
        let fresh = Arc::new(fill_pattern(self, DType::I64, len, 0)?);
        *held = Some(Arc::clone(&fresh));
        Ok(fresh)
    }
}
