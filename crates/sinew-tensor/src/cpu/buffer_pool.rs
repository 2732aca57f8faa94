//! A cache of large freed host buffers, handed back to the next kernel output of the same
//! element type and exact length.
//!
//! A training step allocates the same large buffers (activations, im2col columns, gradients)
//! every iteration. Served by the system allocator, each one is fresh memory from the kernel:
//! every page faults in and is zeroed on first touch, and is unmapped again when freed. Keeping
//! the buffers of tensors that die (see `Storage`'s `Drop` in `tensor.rs`) and handing them to
//! the next request of the same size removes that cost. Only buffers of at least
//! [`MIN_BYTES`] are kept (smaller ones come from the allocator's free lists anyway), at most
//! [`MAX_PER_SIZE`] per size, and at most [`MAX_POOLED_BYTES`] in all, so idle memory is
//! bounded; [`clear`] releases everything.
//!
//! Idle buffers count in the process's resident memory, so the pool gives memory back when
//! fresh memory is needed: a request it cannot serve first frees its longest-kept buffers, at
//! least as many bytes as requested. The peak is then about the live tensors' (the CIFAR CNN
//! step: 197 MiB with a pool that only filled up to its cap, 112 MiB with this rule), while a
//! loop that allocates the same sizes every iteration is still served from the pool.

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::sync::Mutex;

use super::CpuStorage;

/// Smallest buffer kept (bytes): glibc serves smaller requests from its free lists.
pub const MIN_BYTES: usize = 128 << 10;
/// Most buffers kept per (element type, length).
pub const MAX_PER_SIZE: usize = 4;
/// Most bytes kept idle in all.
pub const MAX_POOLED_BYTES: usize = 128 << 20;

/// A kept buffer (a `Vec<T>` boxed as `Any`), its size in bytes and when it was kept.
struct Kept {
    stamp: u64,
    size: usize,
    buffer: Box<dyn Any + Send>,
}

/// Buffers freed by the pool, to be dropped by the caller outside the lock.
type Evicted = Vec<Box<dyn Any + Send>>;

/// Buffers keyed by element type and capacity.
#[derive(Default)]
struct Pool {
    buffers: HashMap<(TypeId, usize), Vec<Kept>>,
    bytes: usize,
    /// The stamp of the next kept buffer (counts the buffers kept).
    clock: u64,
}

impl Pool {
    /// Removes the longest-kept buffers until at least `bytes` are freed or none is left.
    fn evict(&mut self, bytes: usize, out: &mut Evicted) {
        let mut freed = 0;
        while freed < bytes {
            // Each list is in keeping order, so its first buffer is its oldest.
            let oldest = self
                .buffers
                .iter()
                .filter_map(|(key, list)| list.first().map(|k| (k.stamp, *key)))
                .min();
            let Some((_, key)) = oldest else { break };
            if let Some(kept) = self.remove(key, 0) {
                freed += kept.size;
                out.push(kept.buffer);
            }
        }
    }

    /// Removes buffer `at` of `key`'s list (`usize::MAX`: the newest), dropping empty lists.
    fn remove(&mut self, key: (TypeId, usize), at: usize) -> Option<Kept> {
        let list = self.buffers.get_mut(&key)?;
        let kept = if at == usize::MAX {
            list.pop()?
        } else if at < list.len() {
            list.remove(at)
        } else {
            return None;
        };
        if list.is_empty() {
            self.buffers.remove(&key);
        }
        self.bytes -= kept.size;
        Some(kept)
    }

    /// The newest buffer kept for `key`; on a miss, frees the longest-kept buffers of at
    /// least `bytes` into `evicted`: the caller is about to take that much fresh memory, and
    /// idle buffers waiting for a later request of their size would only add to the peak.
    fn take(&mut self, key: (TypeId, usize), bytes: usize, evicted: &mut Evicted) -> Option<Kept> {
        let hit = self.remove(key, usize::MAX);
        if hit.is_none() {
            self.evict(bytes, evicted);
        }
        hit
    }

    /// Keeps `buffer` (of `bytes`) under `key`, freeing the longest-kept buffers into
    /// `evicted` to stay within [`MAX_POOLED_BYTES`] and [`MAX_PER_SIZE`].
    fn keep(
        &mut self,
        key: (TypeId, usize),
        bytes: usize,
        buffer: Box<dyn Any + Send>,
        evicted: &mut Evicted,
    ) {
        if self
            .buffers
            .get(&key)
            .is_some_and(|l| l.len() >= MAX_PER_SIZE)
            && let Some(old) = self.remove(key, 0)
        {
            evicted.push(old.buffer);
        }
        if self.bytes + bytes > MAX_POOLED_BYTES {
            self.evict(self.bytes + bytes - MAX_POOLED_BYTES, evicted);
        }
        let stamp = self.clock;
        self.clock += 1;
        self.buffers.entry(key).or_default().push(Kept {
            stamp,
            size: bytes,
            buffer,
        });
        self.bytes += bytes;
    }
}

static POOL: Mutex<Option<Pool>> = Mutex::new(None);

fn with_pool<R>(f: impl FnOnce(&mut Pool) -> R) -> R {
    // A panic while the lock was held cannot leave the map inconsistent (each update is one
    // insert or remove plus the byte count), so a poisoned lock is still usable.
    let mut guard = POOL.lock().unwrap_or_else(|e| e.into_inner());
    f(guard.get_or_insert_with(Pool::default))
}

/// An empty vector with capacity exactly `len` from the pool, if one is kept. A miss frees
/// the longest-kept buffers of at least the requested size (see the module docs).
pub(crate) fn take<T: 'static>(len: usize) -> Option<Vec<T>> {
    let bytes = len.checked_mul(std::mem::size_of::<T>())?;
    if bytes < MIN_BYTES {
        return None;
    }
    let mut evicted = Evicted::new();
    let kept = with_pool(|p| p.take((TypeId::of::<T>(), len), bytes, &mut evicted));
    // Evicted buffers are freed here, outside the lock.
    drop(evicted);
    let mut v = *kept?.buffer.downcast::<Vec<T>>().ok()?;
    v.clear();
    Some(v)
}

fn put<T: Send + 'static>(v: &mut Vec<T>) {
    let (len, bytes) = (v.capacity(), v.capacity() * std::mem::size_of::<T>());
    if !(MIN_BYTES..=MAX_POOLED_BYTES).contains(&bytes) {
        return;
    }
    let v = std::mem::take(v);
    let mut evicted = Evicted::new();
    with_pool(|p| p.keep((TypeId::of::<T>(), len), bytes, Box::new(v), &mut evicted));
    drop(evicted);
}

/// Keeps the buffer of a dying storage for reuse (float and i64 buffers of at least
/// [`MIN_BYTES`]); the storage is left empty.
pub(crate) fn recycle(storage: &mut CpuStorage) {
    match storage {
        CpuStorage::F32(v) => put(v),
        CpuStorage::F64(v) => put(v),
        CpuStorage::I64(v) => put(v),
        _ => {}
    }
}

/// Bytes currently kept idle.
pub fn pooled_bytes() -> usize {
    with_pool(|p| p.bytes)
}

/// Frees every kept buffer (returns their memory to the system allocator).
pub fn clear() {
    let drained = with_pool(|p| {
        p.bytes = 0;
        std::mem::take(&mut p.buffers)
    });
    drop(drained);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_recycled_buffer_serves_the_next_request_of_its_size() {
        // Distinct sizes from every other test, which share the pool (and may evict from it
        // between these lines; the pool logic itself is tested on a private pool below).
        let len = (MIN_BYTES / 4) + 12345;
        let mut s = CpuStorage::F32(vec![1.0; len]);
        recycle(&mut s);
        assert_eq!(s, CpuStorage::F32(Vec::new()));
        if let Some(v) = take::<f32>(len) {
            assert_eq!((v.len(), v.capacity()), (0, len));
        }
        // Small buffers are never kept.
        let mut small = CpuStorage::F32(vec![0.0; 16]);
        recycle(&mut small);
        assert!(take::<f32>(16).is_none());
    }

    fn key<T: 'static>(len: usize) -> (TypeId, usize) {
        (TypeId::of::<T>(), len)
    }

    fn keep(p: &mut Pool, len: usize) -> *const f32 {
        let v = vec![0f32; len];
        let ptr = v.as_ptr();
        let mut evicted = Evicted::new();
        p.keep(key::<f32>(len), len * 4, Box::new(v), &mut evicted);
        ptr
    }

    fn take_ptr(p: &mut Pool, len: usize) -> Option<*const f32> {
        let mut evicted = Evicted::new();
        let kept = p.take(key::<f32>(len), len * 4, &mut evicted)?;
        Some(kept.buffer.downcast::<Vec<f32>>().ok()?.as_ptr())
    }

    #[test]
    fn hits_return_the_newest_buffer_and_misses_evict_the_oldest() {
        let mut p = Pool::default();
        let (a, b) = (1 << 16, 1 << 17);
        let a1 = keep(&mut p, a);
        let a2 = keep(&mut p, a);
        let b1 = keep(&mut p, b);
        assert_eq!(p.bytes, (2 * a + b) * 4);
        // Another dtype of the same length is a miss.
        let mut evicted = Evicted::new();
        assert!(p.take(key::<i64>(a), a * 8, &mut evicted).is_none());
        // The miss asked for 2a f32 worth of bytes: a1 and a2 (the oldest) went.
        assert_eq!(evicted.len(), 2);
        assert_eq!(p.bytes, b * 4);
        assert!(take_ptr(&mut p, a).is_none());
        // That miss evicted b1 too.
        assert_eq!(p.bytes, 0);
        let _ = (a1, a2, b1);
        let b2 = keep(&mut p, b);
        let b3 = keep(&mut p, b);
        assert_eq!(take_ptr(&mut p, b), Some(b3));
        assert_eq!(take_ptr(&mut p, b), Some(b2));
        assert!(p.buffers.is_empty());
    }

    #[test]
    fn caps_evict_the_oldest_buffers() {
        let mut p = Pool::default();
        let len = 1 << 16;
        let first = keep(&mut p, len);
        for _ in 0..MAX_PER_SIZE {
            keep(&mut p, len);
        }
        assert_eq!(p.buffers[&key::<f32>(len)].len(), MAX_PER_SIZE);
        let mut left = Vec::new();
        while let Some(ptr) = take_ptr(&mut p, len) {
            left.push(ptr);
        }
        assert!(!left.contains(&first));
        // The byte cap: a buffer of the whole cap evicts everything else.
        keep(&mut p, len);
        keep(&mut p, MAX_POOLED_BYTES / 4);
        assert_eq!(p.bytes, MAX_POOLED_BYTES);
        assert_eq!(p.buffers.len(), 1);
    }
}
