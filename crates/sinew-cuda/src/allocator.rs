//! A caching device allocator: freed blocks go to a free list per size class and are handed out
//! again without a driver call (`cuMemFree` synchronizes the device, `cuMemAlloc` is slow).
//!
//! Kernels run on one stream per device, so a block freed by a tensor may be reused at once by
//! work on that stream: kernels that still read it were queued earlier on the same stream.
//! Batch uploads run on a second, copy stream so that they overlap the kernels: their blocks
//! come from a separate copy pool and are reused only once an event, recorded on the kernel
//! stream after their release, has completed (every use queued before the release is done).
//! On out-of-memory the cache is released and the allocation retried once; a second failure is
//! an error the caller sees.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use cust::event::{Event, EventFlags, EventStatus};
use cust::stream::Stream;
use cust::sys::{CUdeviceptr, CUresult, cuMemAlloc_v2, cuMemFree_v2};
use sinew_tensor::{DeviceLocation, Error, Result};

use crate::driver::{CustResultExt, check};

/// Byte counts describing one device's memory use through the allocator.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MemoryStats {
    /// Bytes in blocks owned by live storages (rounded up to size classes).
    pub allocated: usize,
    /// Bytes in freed blocks kept for reuse.
    pub cached: usize,
    /// Highest `allocated` seen since the device was opened.
    pub peak_allocated: usize,
    /// Allocations served by the driver (`cuMemAlloc`).
    pub driver_allocs: usize,
    /// Allocations served from the cache.
    pub reuses: usize,
}

/// Which free list a block returns to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Pool {
    /// Used in the kernel stream's order: reusable as soon as it is released.
    Stream,
    /// Written by the copy stream: reusable once the kernel stream has finished every use
    /// queued before its release.
    Copy,
}

/// One device allocation: address, size-class bytes and the pool it returns to.
#[derive(Debug)]
pub(crate) struct Block {
    pub(crate) ptr: CUdeviceptr,
    pub(crate) bytes: usize,
    pub(crate) pool: Pool,
}

/// Rounds a request up to its size class: 512-byte steps below 1 MiB, 1 MiB steps above.
pub fn size_class(bytes: usize) -> usize {
    const SMALL: usize = 512;
    const LARGE: usize = 1 << 20;
    if bytes == 0 {
        0
    } else if bytes < LARGE {
        bytes.div_ceil(SMALL) * SMALL
    } else {
        bytes.div_ceil(LARGE) * LARGE
    }
}

#[derive(Debug, Default)]
struct State {
    free: HashMap<usize, Vec<CUdeviceptr>>,
    /// Copy-pool blocks (size class, address) released since the last guard event.
    copy_released: Vec<(usize, CUdeviceptr)>,
    /// Copy-pool blocks, each free once its guard event (recorded on the kernel stream after
    /// the block's release) has completed.
    copy_guarded: Vec<(usize, CUdeviceptr, Arc<Event>)>,
    stats: MemoryStats,
}

/// The caching allocator of one device. The device's context must be current when it calls the
/// driver (the owning backend binds it before every allocation and release).
#[derive(Debug)]
pub(crate) struct Allocator {
    location: DeviceLocation,
    state: Mutex<State>,
}

impl Allocator {
    pub(crate) fn new(location: DeviceLocation) -> Self {
        Allocator {
            location,
            state: Mutex::new(State::default()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A block of at least `bytes` bytes (a null block for 0 bytes) for work on the kernel
    /// stream.
    pub(crate) fn alloc(&self, bytes: usize) -> Result<Block> {
        let class = size_class(bytes);
        if class == 0 {
            return Ok(Block::null(Pool::Stream));
        }
        let mut state = self.lock();
        if let Some(ptr) = state.free.get_mut(&class).and_then(Vec::pop) {
            return Ok(Self::reuse(&mut state, ptr, class, Pool::Stream));
        }
        self.fresh(&mut state, bytes, class, Pool::Stream)
    }

    /// A block of at least `bytes` bytes that no queued work uses, for the copy stream to write
    /// while `kernels` (the device's kernel stream) runs. Blocks released since the last call
    /// are guarded first by one event recorded on `kernels` now; a guarded block is handed out
    /// once its event has completed, otherwise a new one is allocated.
    pub(crate) fn alloc_for_copy(&self, bytes: usize, kernels: &Stream) -> Result<Block> {
        let class = size_class(bytes);
        if class == 0 {
            return Ok(Block::null(Pool::Copy));
        }
        let mut state = self.lock();
        if !state.copy_released.is_empty() {
            let guard =
                Event::new(EventFlags::DISABLE_TIMING).on(self.location, "cuEventCreate")?;
            guard.record(kernels).on(self.location, "cuEventRecord")?;
            let guard = Arc::new(guard);
            let released = std::mem::take(&mut state.copy_released);
            state.copy_guarded.extend(
                released
                    .into_iter()
                    .map(|(c, ptr)| (c, ptr, Arc::clone(&guard))),
            );
        }
        let mut idle = None;
        for (i, (c, _, guard)) in state.copy_guarded.iter().enumerate() {
            if *c == class && guard.query().on(self.location, "cuEventQuery")? == EventStatus::Ready
            {
                idle = Some(i);
                break;
            }
        }
        if let Some(i) = idle {
            let (_, ptr, _) = state.copy_guarded.swap_remove(i);
            return Ok(Self::reuse(&mut state, ptr, class, Pool::Copy));
        }
        self.fresh(&mut state, bytes, class, Pool::Copy)
    }

    /// Counts a cached block handed out again.
    fn reuse(state: &mut State, ptr: CUdeviceptr, class: usize, pool: Pool) -> Block {
        state.stats.cached -= class;
        state.stats.reuses += 1;
        Self::count(&mut state.stats, class);
        Block {
            ptr,
            bytes: class,
            pool,
        }
    }

    /// A block from the driver; on out-of-memory, after releasing the cache, once more.
    fn fresh(&self, state: &mut State, bytes: usize, class: usize, pool: Pool) -> Result<Block> {
        let ptr = match raw_alloc(class) {
            Ok(ptr) => ptr,
            Err(CUresult::CUDA_ERROR_OUT_OF_MEMORY) => {
                Self::release_cached(state, self.location)?;
                raw_alloc(class).map_err(|code| self.oom(code, bytes, &state.stats))?
            }
            Err(code) => return Err(self.oom(code, bytes, &state.stats)),
        };
        state.stats.driver_allocs += 1;
        Self::count(&mut state.stats, class);
        Ok(Block {
            ptr,
            bytes: class,
            pool,
        })
    }

    fn count(stats: &mut MemoryStats, class: usize) {
        stats.allocated += class;
        stats.peak_allocated = stats.peak_allocated.max(stats.allocated);
    }

    fn oom(&self, code: CUresult, bytes: usize, stats: &MemoryStats) -> Error {
        let what = if code == CUresult::CUDA_ERROR_OUT_OF_MEMORY {
            "out of memory"
        } else {
            "allocation failed"
        };
        let detail = check(code, self.location, "cuMemAlloc")
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        Error::Device {
            device: self.location,
            msg: format!(
                "{what} allocating {bytes} bytes ({} bytes allocated, {} cached): {detail}",
                stats.allocated, stats.cached
            ),
        }
    }

    /// Returns a block to the cache (no driver call, safe on any thread).
    pub(crate) fn release(&self, block: Block) {
        if block.bytes == 0 {
            return;
        }
        let mut state = self.lock();
        state.stats.allocated -= block.bytes;
        state.stats.cached += block.bytes;
        match block.pool {
            Pool::Stream => state.free.entry(block.bytes).or_default().push(block.ptr),
            Pool::Copy => state.copy_released.push((block.bytes, block.ptr)),
        }
    }

    /// Frees every cached block back to the driver.
    pub(crate) fn empty_cache(&self) -> Result<()> {
        Self::release_cached(&mut self.lock(), self.location)
    }

    fn release_cached(state: &mut State, location: DeviceLocation) -> Result<()> {
        let stream_blocks = state
            .free
            .drain()
            .flat_map(|(class, ptrs)| ptrs.into_iter().map(move |ptr| (class, ptr)));
        let copy_blocks = state.copy_released.drain(..).chain(
            state
                .copy_guarded
                .drain(..)
                .map(|(class, ptr, _)| (class, ptr)),
        );
        let mut first_error = Ok(());
        let mut freed = 0;
        for (class, ptr) in stream_blocks.chain(copy_blocks) {
            // SAFETY: `ptr` came from cuMemAlloc and is owned by the cache alone; cuMemFree
            // waits for the device, so no queued work still uses it.
            let r = check(unsafe { cuMemFree_v2(ptr) }, location, "cuMemFree");
            freed += class;
            if first_error.is_ok() {
                first_error = r;
            }
        }
        state.stats.cached -= freed;
        first_error
    }

    /// Current statistics.
    pub(crate) fn stats(&self) -> MemoryStats {
        self.lock().stats
    }

    /// Starts the peak over: `peak_allocated` becomes the bytes allocated now.
    pub(crate) fn reset_peak(&self) {
        let mut state = self.lock();
        state.stats.peak_allocated = state.stats.allocated;
    }
}

impl Block {
    /// The block of a zero-byte request: no memory.
    fn null(pool: Pool) -> Block {
        Block {
            ptr: 0,
            bytes: 0,
            pool,
        }
    }
}

fn raw_alloc(bytes: usize) -> std::result::Result<CUdeviceptr, CUresult> {
    let mut ptr: CUdeviceptr = 0;
    // SAFETY: cuMemAlloc writes the new address into `ptr`.
    let code = unsafe { cuMemAlloc_v2(&mut ptr, bytes) };
    if code == CUresult::CUDA_SUCCESS {
        Ok(ptr)
    } else {
        Err(code)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn size_classes_round_up() {
        assert_eq!(size_class(0), 0);
        assert_eq!(size_class(1), 512);
        assert_eq!(size_class(512), 512);
        assert_eq!(size_class(513), 1024);
        assert_eq!(size_class((1 << 20) + 1), 2 << 20);
    }

    #[test]
    fn released_blocks_are_reused_without_the_driver() {
        let a = Allocator::new(DeviceLocation::Cuda(0));
        // A fake block, never given to the driver: release then alloc must hand it back.
        a.lock().stats.allocated = 1024;
        a.release(Block {
            ptr: 0xdead_0000,
            bytes: 1024,
            pool: Pool::Stream,
        });
        let b = a.alloc(1000).unwrap();
        assert_eq!((b.ptr, b.bytes), (0xdead_0000, 1024));
        let s = a.stats();
        assert_eq!((s.reuses, s.cached, s.driver_allocs), (1, 0, 0));
        let zero = a.alloc(0).unwrap();
        assert_eq!(zero.bytes, 0);
    }

    #[test]
    fn copy_blocks_wait_for_a_guard_instead_of_returning_to_the_stream_list() {
        let a = Allocator::new(DeviceLocation::Cuda(0));
        a.lock().stats.allocated = 2048;
        a.release(Block {
            ptr: 0xbeef_0000,
            bytes: 2048,
            pool: Pool::Copy,
        });
        let state = a.lock();
        assert!(state.free.is_empty(), "never reused by kernel-stream work");
        assert_eq!(state.copy_released, vec![(2048, 0xbeef_0000)]);
        assert_eq!((state.stats.allocated, state.stats.cached), (0, 2048));
    }
}
