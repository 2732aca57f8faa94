//! Per-device cache of loaded kernel functions, so a launch neither formats a name nor asks the
//! driver: the first launch of a kernel looks its entry up in the (lazily JIT-loaded) module and
//! stores the raw handle; later launches are one read-locked hash lookup of the [`Kernel`] key.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::RwLock;

use cust::sys::CUfunction;

use crate::names::Kernel;

/// A kernel's driver handle. It stays valid while its module is loaded, which is as long as the
/// backend that loaded it lives (modules are only dropped with their backend).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RawFunction(pub(crate) CUfunction);

// SAFETY: a CUfunction is a driver handle usable from any thread whose current context is the one
// that loaded it; launches bind the device's primary context first (`CudaBackend::bind`).
unsafe impl Send for RawFunction {}
// SAFETY: as for Send; the handle is immutable once loaded.
unsafe impl Sync for RawFunction {}

/// FNV-1a: a fast hash for the short keys of the cache (no DoS concern: keys are ours).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Fnv(u64);

impl Default for Fnv {
    fn default() -> Self {
        Fnv(0xcbf2_9ce4_8422_2325)
    }
}

impl Hasher for Fnv {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 ^ b as u64).wrapping_mul(0x0100_0000_01b3);
        }
    }
}

/// A map with the FNV hasher.
pub(crate) type FnvMap<K, V> = HashMap<K, V, BuildHasherDefault<Fnv>>;

/// Loaded functions of one device, keyed by kernel.
#[derive(Debug, Default)]
pub(crate) struct FunctionCache {
    map: RwLock<FnvMap<Kernel, RawFunction>>,
}

impl FunctionCache {
    /// The cached handle of `kernel`, if it was loaded before.
    pub(crate) fn get(&self, kernel: &Kernel) -> Option<RawFunction> {
        self.map
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(kernel)
            .copied()
    }

    /// Remembers `kernel`'s handle.
    pub(crate) fn insert(&self, kernel: Kernel, function: RawFunction) {
        self.map
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(kernel, function);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::names;
    use sinew_tensor::{BinaryOp, DType};

    #[test]
    fn cache_keys_by_kernel_without_names() {
        let cache = FunctionCache::default();
        let add = names::binary(BinaryOp::Add, DType::F32).unwrap();
        let sub = names::binary(BinaryOp::Sub, DType::F32).unwrap();
        assert_eq!(cache.get(&add), None);
        cache.insert(add, RawFunction(std::ptr::dangling_mut()));
        assert_eq!(cache.get(&add), Some(RawFunction(std::ptr::dangling_mut())));
        assert_eq!(cache.get(&sub), None);
        // The same kernel built again (no shared string) hits the same entry.
        let again = names::binary(BinaryOp::Add, DType::F32).unwrap();
        assert_eq!(
            cache.get(&again),
            Some(RawFunction(std::ptr::dangling_mut()))
        );
    }

    #[test]
    fn fnv_spreads_keys() {
        let hash = |k: &Kernel| {
            let mut h = Fnv::default();
            std::hash::Hash::hash(k, &mut h);
            h.finish()
        };
        let all = names::every_kernel();
        let mut hashes: Vec<u64> = all.iter().map(hash).collect();
        hashes.sort_unstable();
        hashes.dedup();
        assert_eq!(hashes.len(), all.len());
    }
}
