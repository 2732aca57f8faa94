//! Fallible allocation of kernel outputs: a request the allocator cannot meet is an
//! [`Error::OutOfMemory`] naming the op and the size, never a process abort.

use crate::{Error, Result};

/// The error for a failed request of `len` elements of `T`.
pub(crate) fn out_of_memory<T>(op: &'static str, len: usize) -> Error {
    Error::OutOfMemory {
        op,
        bytes: len as u128 * std::mem::size_of::<T>().max(1) as u128,
    }
}

/// An empty vector with room for exactly `len` elements, or an out-of-memory error. Large
/// requests reuse a freed buffer of the same size when one is kept (`buffer_pool`).
pub(crate) fn try_with_capacity<T: 'static>(op: &'static str, len: usize) -> Result<Vec<T>> {
    if let Some(v) = super::buffer_pool::take(len) {
        return Ok(v);
    }
    let mut v = Vec::new();
    v.try_reserve_exact(len)
        .map_err(|_| out_of_memory::<T>(op, len))?;
    Ok(v)
}

/// `len` copies of `value`, or an out-of-memory error (the fallible `vec![value; len]`).
/// Every CPU kernel allocates its output through here.
pub(crate) fn try_vec<T: Clone + 'static>(
    op: &'static str,
    len: usize,
    value: T,
) -> Result<Vec<T>> {
    let mut v = try_with_capacity(op, len)?;
    v.resize(len, value);
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn absurd_requests_are_errors() {
        let err = try_vec::<f32>("zeros", 1 << 62, 0.0).unwrap_err();
        assert_eq!(
            err.to_string(),
            "zeros: out of memory: cannot allocate 18446744073709551616 bytes"
        );
        assert_eq!(try_vec("t", 3, 7u8).unwrap(), vec![7, 7, 7]);
    }
}
