//! A caching device allocator: freed blocks go to a free list per size class and are handed out
//! again without a driver call (`cuMemFree` synchronizes the device, `cuMemAlloc` is slow).
//!
//! All work runs on one stream per device, so a block freed by a tensor may be reused at once:
//! kernels that still read it were queued earlier on the same stream. On out-of-memory the cache
//! is released and the allocation retried once; a second failure is an error the caller sees.

use std::collections::HashMap;
use std::sync::Mutex;

use cust::sys::{CUdeviceptr, CUresult, cuMemAlloc_v2, cuMemFree_v2};
use sinew_tensor::{DeviceLocation, Error, Result};

use crate::driver::check;

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

/// One device allocation: address and size-class bytes.
#[derive(Debug)]
pub(crate) struct Block {
    pub(crate) ptr: CUdeviceptr,
    pub(crate) bytes: usize,
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

    /// A block of at least `bytes` bytes (a null block for 0 bytes).
    pub(crate) fn alloc(&self, bytes: usize) -> Result<Block> {
        let class = size_class(bytes);
        if class == 0 {
            return Ok(Block { ptr: 0, bytes: 0 });
        }
        let mut state = self.lock();
        if let Some(ptr) = state.free.get_mut(&class).and_then(Vec::pop) {
            state.stats.cached -= class;
            state.stats.reuses += 1;
            Self::count(&mut state.stats, class);
            return Ok(Block { ptr, bytes: class });
        }
        let ptr = match raw_alloc(class) {
            Ok(ptr) => ptr,
            Err(CUresult::CUDA_ERROR_OUT_OF_MEMORY) => {
                Self::release_cached(&mut state, self.location)?;
                raw_alloc(class).map_err(|code| self.oom(code, bytes, &state.stats))?
            }
            Err(code) => return Err(self.oom(code, bytes, &state.stats)),
        };
        state.stats.driver_allocs += 1;
        Self::count(&mut state.stats, class);
        Ok(Block { ptr, bytes: class })
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
        state.free.entry(block.bytes).or_default().push(block.ptr);
    }

    /// Frees every cached block back to the driver.
    pub(crate) fn empty_cache(&self) -> Result<()> {
        Self::release_cached(&mut self.lock(), self.location)
    }

    fn release_cached(state: &mut State, location: DeviceLocation) -> Result<()> {
        let mut first_error = Ok(());
        for (class, ptrs) in state.free.drain() {
            for ptr in ptrs {
                // SAFETY: `ptr` came from cuMemAlloc and is owned by the cache alone.
                let r = check(unsafe { cuMemFree_v2(ptr) }, location, "cuMemFree");
                state.stats.cached -= class;
                if first_error.is_ok() {
                    first_error = r;
                }
            }
        }
        first_error
    }

    /// Current statistics.
    pub(crate) fn stats(&self) -> MemoryStats {
        self.lock().stats
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
        });
        let b = a.alloc(1000).unwrap();
        assert_eq!((b.ptr, b.bytes), (0xdead_0000, 1024));
        let s = a.stats();
        assert_eq!((s.reuses, s.cached, s.driver_allocs), (1, 0, 0));
        let zero = a.alloc(0).unwrap();
        assert_eq!(zero.bytes, 0);
    }
}
