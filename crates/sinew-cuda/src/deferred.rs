//! Index errors reported at the next synchronisation point instead of costing a stream
//! synchronisation per op (issue 14: `loss.item()` is the only sync in a training step; PyTorch's
//! device-side index errors are asynchronous the same way).
//!
//! An index op (`gather`, `index_select`, `scatter`, `scatter_add`, cross-entropy's targets, max
//! pooling's backward) queues its kernels, which record the first bad index and its position in
//! the op's [`FirstBad`] slot ([`crate::check_slots`]); the slot is kept here. Whenever the host
//! waits for the device anyway (the backend's `synchronize`, every download: `to_vec`, `item`,
//! `to_device(cpu)`) the slots are read (one copy for each run of slots from one ring, queued
//! with the download's own copy, so that the host still waits once) in the order their ops
//! were queued, and the first fault comes back as that op's error, the same
//! `Error::IndexOutOfBounds` the CPU backend returns at the call. The failed op's output
//! has the bad positions unwritten (nothing out of range is ever read or written).
//!
//! Value checks (`DeferredOps::defer_range_check`: binary cross entropy's probabilities) are kept
//! the same way, their slots holding the first value outside the range.
//!
//! The same waits deliver the deferred scalar reads (`DeferredOps::defer_read`,
//! `sinew_tensor::DeferredScalar`: the loss scaler's inf/NaN flag), each one more small copy
//! queued with the others.

use std::sync::{Arc, Mutex};

use sinew_tensor::{CpuStorage, DType, Error, ReadTarget, Result, Unfold2d};

use crate::check_slots::{FirstBad, SlotReads};
use crate::device::CudaBackend;
use crate::storage::CudaStorage;

/// Slots kept before a check is forced (a loop that never synchronises stays bounded).
const MAX_PENDING: usize = 256;

/// What a queued check's indices must satisfy.
enum Rule {
    /// Stay in `[0, bound)`.
    Below(usize),
    /// Name a tap of their own window of this geometry (max pooling's backward).
    InWindow(Unfold2d),
    /// A value check ([`crate::ops::compare::defer_range_check`]): the slot holds the first
    /// value outside the range, its f64 bits; the error says this message.
    InRange(String),
}

/// One queued check: the op, the rule its indices must follow, and its device slot.
struct Pending {
    op: &'static str,
    rule: Rule,
    slot: FirstBad,
}

/// One queued scalar read: the device address and dtype of the element, and where its value
/// goes (which holds the tensor, so the element outlives the read).
struct ScalarRead {
    ptr: u64,
    dtype: DType,
    target: Arc<ReadTarget>,
}

/// The contents of `list`, taken.
fn taken<T>(list: &Mutex<Vec<T>>) -> Vec<T> {
    std::mem::take(&mut *list.lock().unwrap_or_else(|e| e.into_inner()))
}

/// The checks and scalar reads queued on one device and not yet read.
#[derive(Default)]
pub(crate) struct DeferredChecks {
    checks: Mutex<Vec<Pending>>,
    reads: Mutex<Vec<ScalarRead>>,
}

impl std::fmt::Debug for DeferredChecks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let n = self.checks.lock().map_or(0, |p| p.len());
        let r = self.reads.lock().map_or(0, |p| p.len());
        write!(f, "DeferredChecks({n} checks, {r} reads pending)")
    }
}

impl CudaBackend {
    /// Keeps `slot` (filled by kernels already queued) to be read at the next synchronisation;
    /// past [`MAX_PENDING`] slots, reads them now.
    pub(crate) fn defer_index_check(
        &self,
        op: &'static str,
        bound: usize,
        slot: FirstBad,
    ) -> Result<()> {
        self.defer(Pending {
            op,
            rule: Rule::Below(bound),
            slot,
        })
    }

    /// As [`Self::defer_index_check`], for indices that must name a tap of their own window of
    /// `window` (max pooling's).
    pub(crate) fn defer_window_check(
        &self,
        op: &'static str,
        window: Unfold2d,
        slot: FirstBad,
    ) -> Result<()> {
        self.defer(Pending {
            op,
            rule: Rule::InWindow(window),
            slot,
        })
    }

    /// As [`Self::defer_index_check`], for a value check whose failure is `message` (the slot
    /// holding the first value outside its range).
    pub(crate) fn defer_range_check_slot(
        &self,
        op: &'static str,
        message: &str,
        slot: FirstBad,
    ) -> Result<()> {
        self.defer(Pending {
            op,
            rule: Rule::InRange(message.to_string()),
            slot,
        })
    }

    /// Queues the read of element `start` of `src` for the next wait (see the module docs);
    /// past [`MAX_PENDING`] reads, waits now.
    pub(crate) fn defer_scalar_read(
        &self,
        src: &CudaStorage,
        start: usize,
        target: Arc<ReadTarget>,
    ) -> Result<bool> {
        if start >= src.elem_count() {
            return Err(Error::invalid(
                "defer_read",
                format!(
                    "element {start} of a storage of {} elements",
                    src.elem_count()
                ),
            ));
        }
        let full = {
            let mut reads = self
                .deferred
                .reads
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            reads.push(ScalarRead {
                ptr: src.ptr_at(start),
                dtype: src.dtype_of(),
                target,
            });
            reads.len() >= MAX_PENDING
        };
        if full {
            self.check_deferred()?
        }
        Ok(true)
    }

    fn defer(&self, check: Pending) -> Result<()> {
        let full = {
            let mut pending = self
                .deferred
                .checks
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            pending.push(check);
            pending.len() >= MAX_PENDING
        };
        if full { self.check_deferred() } else { Ok(()) }
    }

    /// Waits for the queued work, reads every pending slot in queue order and returns the first
    /// fault as its op's error (the remaining slots are dropped: one error per check, as the
    /// first failing call would have returned on the CPU). Cheap when nothing is pending.
    pub(crate) fn check_deferred(&self) -> Result<()> {
        let (pending, reads) = self.take_pending();
        if pending.is_empty() && reads.is_empty() {
            return Ok(());
        }
        self.read_with_pending(pending, reads, &mut [])
    }

    /// Waits for the queued work (once), delivers the pending reads and reports the pending
    /// checks' first fault.
    pub(crate) fn synchronize_checked(&self) -> Result<()> {
        let (pending, reads) = self.take_pending();
        if pending.is_empty() && reads.is_empty() {
            self.bind()?;
            return self.stream().synchronize();
        }
        self.read_with_pending(pending, reads, &mut [])
    }

    /// Copies each part `(device address, host bytes)` and reads the pending checks' slots
    /// with one wait for the stream (a download is a synchronisation point: `item()` waits
    /// once), then reports the first fault.
    pub(crate) fn download_checked(&self, parts: &mut [(u64, &mut [u8])]) -> Result<()> {
        let (pending, reads) = self.take_pending();
        self.read_with_pending(pending, reads, parts)
    }

    /// The pending checks and reads, taken (none are left pending).
    fn take_pending(&self) -> (Vec<Pending>, Vec<ScalarRead>) {
        (taken(&self.deferred.checks), taken(&self.deferred.reads))
    }

    /// [`Self::download_checked`] with the pending checks and reads taken: every copy in one
    /// wait, the reads delivered, then the checks' first fault reported.
    fn read_with_pending(
        &self,
        pending: Vec<Pending>,
        scalars: Vec<ScalarRead>,
        parts: &mut [(u64, &mut [u8])],
    ) -> Result<()> {
        let slots: Vec<&FirstBad> = pending.iter().map(|p| &p.slot).collect();
        let mut reads = SlotReads::plan(&slots);
        let mut values: Vec<Vec<u8>> = scalars
            .iter()
            .map(|r| vec![0u8; r.dtype.size_in_bytes()])
            .collect();
        let mut copies: Vec<(u64, &mut [u8])> = parts
            .iter_mut()
            .map(|(src, out)| (*src, &mut **out))
            .collect();
        copies.extend(reads.copies());
        copies.extend(
            scalars
                .iter()
                .zip(&mut values)
                .map(|(r, v)| (r.ptr, v.as_mut_slice())),
        );
        self.bind()?;
        self.stream().download_all(&mut copies)?;
        drop(copies);
        for (r, bytes) in scalars.iter().zip(&values) {
            let value = CpuStorage::from_bytes(r.dtype, bytes)?.try_to_f64_vec("defer_read")?;
            r.target.deliver(value[0]);
        }
        for (p, fault) in pending.iter().zip(reads.decode()) {
            if let Some((position, index)) = fault {
                return Err(match &p.rule {
                    &Rule::Below(size) => Error::IndexOutOfBounds {
                        op: p.op,
                        index,
                        size,
                    },
                    Rule::InWindow(s) => Error::invalid(
                        p.op,
                        format!(
                            "index {index} at position {position} is not a tap of its own \
                             window (kernel {:?}, stride {:?}, padding {:?}, dilation {:?} on a \
                             {}x{} plane)",
                            s.kernel, s.stride, s.padding, s.dilation, s.h, s.w
                        ),
                    ),
                    Rule::InRange(message) => {
                        let value = f64::from_bits(index as u64);
                        Error::invalid(p.op, format!("{message} (element {position} is {value})"))
                    }
                });
            }
        }
        Ok(())
    }
}
