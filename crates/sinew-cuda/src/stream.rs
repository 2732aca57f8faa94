//! The device's streams, pinned staging buffers for host<->device copies, and event timers.
//!
//! Every kernel of a device is queued on one non-blocking stream, so work is ordered without
//! host synchronization. Uploads copy into a pinned (page-locked) buffer and return as soon as the
//! DMA is queued; an event guards the buffer's reuse. A batch-sized upload goes on a second, copy
//! stream, so that it runs while the kernels queued before it do, and the kernel stream waits
//! for it with an event ([`DeviceStream::upload_beside`]). Downloads go through a third pinned
//! buffer and wait for the kernel stream, since the caller needs the data (several reads at
//! once wait once: [`DeviceStream::download_all`]).

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use cust::event::{Event, EventFlags};
use cust::memory::LockedBuffer;
use cust::stream::{Stream, StreamFlags, StreamWaitEventFlags};
use cust::sys::{CUdeviceptr, cuMemcpyDtoHAsync_v2, cuMemcpyHtoDAsync_v2};
use sinew_tensor::{DeviceLocation, Result};

use crate::driver::{CustResultExt, check};

/// Transfers above this size skip the staging copy and hand pageable memory to the driver.
pub(crate) const STAGING_LIMIT: usize = 64 << 20;

/// Uploads from this size up to [`STAGING_LIMIT`] go on the copy stream (a batch: 64 MNIST
/// images are 200 KB); smaller ones stay on the kernel stream, where they cost no events.
pub(crate) const COPY_STREAM_MIN: usize = 64 << 10;

/// A pinned host buffer and the event marking the end of its last copy.
struct Staging {
    buffer: Option<LockedBuffer<u8>>,
    done: Event,
}

impl Staging {
    fn new(location: DeviceLocation) -> Result<Self> {
        Ok(Staging {
            buffer: None,
            done: Event::new(EventFlags::DISABLE_TIMING).on(location, "cuEventCreate")?,
        })
    }

    /// Waits for the previous copy, then returns a pinned buffer of at least `bytes`.
    fn take(&mut self, bytes: usize, location: DeviceLocation) -> Result<&mut LockedBuffer<u8>> {
        self.done.synchronize().on(location, "cuEventSynchronize")?;
        if self.buffer.as_ref().is_none_or(|b| b.len() < bytes) {
            self.buffer = None;
            let size = bytes.next_power_of_two().max(1 << 16);
            // SAFETY: the bytes are written before any copy reads them.
            self.buffer =
                Some(unsafe { LockedBuffer::uninitialized(size) }.on(location, "cuMemAllocHost")?);
        }
        Ok(self.buffer.as_mut().expect("allocated above"))
    }
}

/// One device's work queue with its staging buffers.
pub(crate) struct DeviceStream {
    location: DeviceLocation,
    upload: Mutex<Staging>,
    download: Mutex<Staging>,
    /// Staging for [`upload_beside`](Self::upload_beside); its event is on the copy stream.
    copy_upload: Mutex<Staging>,
    /// The kernel stream.
    pub(crate) stream: Stream,
    /// Where batch uploads run beside the kernels.
    copy: Stream,
    /// Calls of [`synchronize`](Self::synchronize): the host's waits for the kernel stream.
    syncs: AtomicU64,
}

impl std::fmt::Debug for DeviceStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "DeviceStream({})", self.location)
    }
}

impl DeviceStream {
    /// A non-blocking stream on the current context.
    pub(crate) fn new(location: DeviceLocation) -> Result<Self> {
        Ok(DeviceStream {
            location,
            upload: Mutex::new(Staging::new(location)?),
            download: Mutex::new(Staging::new(location)?),
            copy_upload: Mutex::new(Staging::new(location)?),
            stream: Stream::new(StreamFlags::NON_BLOCKING, None).on(location, "cuStreamCreate")?,
            copy: Stream::new(StreamFlags::NON_BLOCKING, None).on(location, "cuStreamCreate")?,
            syncs: AtomicU64::new(0),
        })
    }

    /// Waits until everything queued has finished (counted in [`Self::synchronizations`]).
    pub(crate) fn synchronize(&self) -> Result<()> {
        self.syncs.fetch_add(1, Ordering::Relaxed);
        self.stream
            .synchronize()
            .on(self.location, "cuStreamSynchronize")
    }

    /// How many times the host has waited for the kernel stream to drain
    /// ([`Self::synchronize`]: downloads, explicit synchronisations, cache releases).
    pub(crate) fn synchronizations(&self) -> u64 {
        self.syncs.load(Ordering::Relaxed)
    }

    /// Queues a copy of `data` to device address `dst`; returns once `data` may be reused.
    pub(crate) fn upload(&self, dst: CUdeviceptr, data: &[u8]) -> Result<()> {
        if data.is_empty() {
            return Ok(());
        }
        let raw = self.stream.as_inner();
        if data.len() > STAGING_LIMIT {
            // SAFETY: from pageable memory the driver stages `data` before returning.
            let code = unsafe { cuMemcpyHtoDAsync_v2(dst, data.as_ptr().cast(), data.len(), raw) };
            return check(code, self.location, "cuMemcpyHtoDAsync");
        }
        let mut staging = self.upload.lock().unwrap_or_else(|e| e.into_inner());
        let buffer = staging.take(data.len(), self.location)?;
        buffer[..data.len()].copy_from_slice(data);
        let src = buffer.as_ptr();
        // SAFETY: the pinned buffer stays alive and untouched until `done` fires (checked in take).
        let code = unsafe { cuMemcpyHtoDAsync_v2(dst, src.cast(), data.len(), raw) };
        check(code, self.location, "cuMemcpyHtoDAsync")?;
        staging
            .done
            .record(&self.stream)
            .on(self.location, "cuEventRecord")
    }

    /// Queues a copy of `data` (at most [`STAGING_LIMIT`] bytes) to device address `dst` on the
    /// copy stream, where it runs beside the kernels already queued, and makes the kernel stream
    /// wait for it: work queued from now on sees the data. Returns once `data` may be reused.
    /// `dst` must be used by no queued work (a block of the allocator's copy pool).
    pub(crate) fn upload_beside(&self, dst: CUdeviceptr, data: &[u8]) -> Result<()> {
        if data.is_empty() {
            return Ok(());
        }
        if data.len() > STAGING_LIMIT {
            return Err(sinew_tensor::Error::invalid(
                "upload",
                format!(
                    "{} bytes exceed the copy stream's staging buffer",
                    data.len()
                ),
            ));
        }
        let location = self.location;
        let mut staging = self.copy_upload.lock().unwrap_or_else(|e| e.into_inner());
        let buffer = staging.take(data.len(), location)?;
        buffer[..data.len()].copy_from_slice(data);
        let src = buffer.as_ptr();
        // SAFETY: the pinned buffer holds `data.len()` bytes and stays untouched until `done`
        // fires (take waits for it); `dst` holds at least as many (the caller allocated it for
        // `data`) and no queued work uses it (a copy-pool block, see Allocator::alloc_for_copy).
        let code =
            unsafe { cuMemcpyHtoDAsync_v2(dst, src.cast(), data.len(), self.copy.as_inner()) };
        check(code, location, "cuMemcpyHtoDAsync")?;
        staging
            .done
            .record(&self.copy)
            .on(location, "cuEventRecord")?;
        let copied = Event::new(EventFlags::DISABLE_TIMING).on(location, "cuEventCreate")?;
        copied.record(&self.copy).on(location, "cuEventRecord")?;
        self.stream
            .wait_event(copied, StreamWaitEventFlags::DEFAULT)
            .on(location, "cuStreamWaitEvent")
    }

    /// Copies each part `(src, out)`, `out.len()` bytes from device address `src`, after all
    /// queued work, with one wait for the stream (so several reads cost one synchronisation):
    /// through the pinned buffer, or straight into `out` when the parts exceed
    /// [`STAGING_LIMIT`]. Nothing is copied, and nothing waited for, when the parts are empty.
    pub(crate) fn download_all(&self, parts: &mut [(CUdeviceptr, &mut [u8])]) -> Result<()> {
        // Host slices: their lengths cannot overflow in total.
        let total: usize = parts.iter().map(|(_, out)| out.len()).sum();
        if total == 0 {
            return Ok(());
        }
        let raw = self.stream.as_inner();
        if total > STAGING_LIMIT {
            for (src, out) in parts.iter_mut().filter(|(_, out)| !out.is_empty()) {
                // SAFETY: `out` is valid for its length; the stream is synchronized before
                // returning, so the copy has landed before the caller can touch `out`.
                let code =
                    unsafe { cuMemcpyDtoHAsync_v2(out.as_mut_ptr().cast(), *src, out.len(), raw) };
                check(code, self.location, "cuMemcpyDtoHAsync")?;
            }
            return self.synchronize();
        }
        let mut staging = self.download.lock().unwrap_or_else(|e| e.into_inner());
        let buffer = staging.take(total, self.location)?;
        let base = buffer.as_mut_ptr();
        let mut at = 0;
        for (src, out) in parts.iter().filter(|(_, out)| !out.is_empty()) {
            // SAFETY: the pinned buffer holds at least `total` bytes and `at + out.len()` is at
            // most `total` (the parts' lengths add up to it); it is read only after the sync.
            let code = unsafe { cuMemcpyDtoHAsync_v2(base.add(at).cast(), *src, out.len(), raw) };
            check(code, self.location, "cuMemcpyDtoHAsync")?;
            at += out.len();
        }
        self.synchronize()?;
        let mut at = 0;
        for (_, out) in parts.iter_mut() {
            out.copy_from_slice(&buffer[at..at + out.len()]);
            at += out.len();
        }
        Ok(())
    }
}

/// Times work queued on a device's stream with CUDA events: start to [`stop`](Self::stop), or
/// a trace of labelled [`lap`](Self::lap)s that costs no host synchronisation until
/// [`laps`](Self::laps) reads it.
pub struct EventTimer {
    start: Event,
    stop: Event,
    marks: Vec<(String, Event)>,
    location: DeviceLocation,
}

impl EventTimer {
    pub(crate) fn start(stream: &DeviceStream) -> Result<Self> {
        let location = stream.location;
        let start = Event::new(EventFlags::DEFAULT).on(location, "cuEventCreate")?;
        let stop = Event::new(EventFlags::DEFAULT).on(location, "cuEventCreate")?;
        start.record(&stream.stream).on(location, "cuEventRecord")?;
        Ok(EventTimer {
            start,
            stop,
            marks: Vec::new(),
            location,
        })
    }

    /// Marks the end of a phase called `label` on the stream (after everything queued so far),
    /// without waiting.
    pub fn lap(&mut self, stream_owner: &crate::CudaBackend, label: &str) -> Result<()> {
        let event = Event::new(EventFlags::DEFAULT).on(self.location, "cuEventCreate")?;
        event
            .record(&stream_owner.stream().stream)
            .on(self.location, "cuEventRecord")?;
        self.marks.push((label.to_string(), event));
        Ok(())
    }

    /// Waits for the last [`lap`](Self::lap) and returns each phase's label and its stream
    /// time in milliseconds (from the previous mark, the first from the timer's start).
    pub fn laps(&self) -> Result<Vec<(String, f32)>> {
        let Some((_, last)) = self.marks.last() else {
            return Ok(Vec::new());
        };
        last.synchronize().on(self.location, "cuEventSynchronize")?;
        let mut previous = &self.start;
        let mut out = Vec::with_capacity(self.marks.len());
        for (label, event) in &self.marks {
            let ms = event
                .elapsed_time_f32(previous)
                .on(self.location, "cuEventElapsedTime")?;
            out.push((label.clone(), ms));
            previous = event;
        }
        Ok(out)
    }

    /// Milliseconds of stream time since the timer started; waits for the queued work.
    pub fn stop(&self, stream_owner: &crate::CudaBackend) -> Result<f32> {
        let stream = &stream_owner.stream().stream;
        self.stop
            .record(stream)
            .on(self.location, "cuEventRecord")?;
        self.stop
            .synchronize()
            .on(self.location, "cuEventSynchronize")?;
        self.stop
            .elapsed_time_f32(&self.start)
            .on(self.location, "cuEventElapsedTime")
    }
}
