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

/// Buffers keyed by element type and capacity; each value holds `Vec<T>`s boxed as `Any`.
#[derive(Default)]
struct Pool {
    buffers: HashMap<(TypeId, usize), Vec<Box<dyn Any + Send>>>,
    bytes: usize,
}

static POOL: Mutex<Option<Pool>> = Mutex::new(None);

fn with_pool<R>(f: impl FnOnce(&mut Pool) -> R) -> R {
    // A panic while the lock was held cannot leave the map inconsistent (each update is one
    // insert or remove plus the byte count), so a poisoned lock is still usable.
    let mut guard = POOL.lock().unwrap_or_else(|e| e.into_inner());
    f(guard.get_or_insert_with(Pool::default))
}

/// An empty vector with capacity exactly `len` from the pool, if one is kept.
pub(crate) fn take<T: 'static>(len: usize) -> Option<Vec<T>> {
    let bytes = len.checked_mul(std::mem::size_of::<T>())?;
    if bytes < MIN_BYTES {
        return None;
    }
    let boxed = with_pool(|p| {
        let list = p.buffers.get_mut(&(TypeId::of::<T>(), len))?;
        let boxed = list.pop()?;
        p.bytes -= bytes;
        Some(boxed)
    })?;
    let mut v = *boxed.downcast::<Vec<T>>().ok()?;
    v.clear();
    Some(v)
}

fn put<T: Send + 'static>(v: &mut Vec<T>) {
    let (len, bytes) = (v.capacity(), v.capacity() * std::mem::size_of::<T>());
    if !(MIN_BYTES..=MAX_POOLED_BYTES).contains(&bytes) {
        return;
    }
    let v = std::mem::take(v);
    with_pool(move |p| {
        let list = p.buffers.entry((TypeId::of::<T>(), len)).or_default();
        if list.len() < MAX_PER_SIZE && p.bytes + bytes <= MAX_POOLED_BYTES {
            p.bytes += bytes;
            list.push(Box::new(v));
        }
        // Otherwise `v` is dropped here, after the decision, still under the lock: freeing
        // is cheap next to the work that produced a buffer this large.
    });
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
        // Distinct sizes from every other test, which share the pool.
        let len = (MIN_BYTES / 4) + 12345;
        let mut s = CpuStorage::F32(vec![1.0; len]);
        let CpuStorage::F32(v) = &s else {
            unreachable!()
        };
        let ptr = v.as_ptr();
        recycle(&mut s);
        assert_eq!(s, CpuStorage::F32(Vec::new()));
        assert!(take::<f32>(len + 1).is_none());
        assert!(take::<i64>(len).is_none());
        let v = take::<f32>(len).expect("kept");
        assert_eq!((v.len(), v.capacity(), v.as_ptr()), (0, len, ptr));
        assert!(take::<f32>(len).is_none());
        // Small buffers are never kept.
        let mut small = CpuStorage::F32(vec![0.0; 16]);
        recycle(&mut small);
        assert!(take::<f32>(16).is_none());
    }
}
