//! Checked sizes and fallible allocation for every buffer whose size comes from user input
//! (image dimensions, resize targets, batch sizes, file headers).

use crate::error::{DataError, Result};

/// The largest single buffer (image, batch, decoded file) the crate allocates: 16 GiB.
///
/// Larger requests fail with [`DataError::TooLarge`] before any allocation, so a hostile size
/// gets an error instead of an abort or the out-of-memory killer on machines that overcommit.
pub const MAX_BUFFER_BYTES: usize = 16 << 30;

/// The product of `dims`, or [`DataError::TooLarge`] on overflow.
pub fn checked_numel(op: &'static str, dims: &[usize]) -> Result<usize> {
    dims.iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .ok_or_else(|| DataError::TooLarge {
            op,
            detail: format!("size {dims:?} overflows usize"),
        })
}

/// Checks that `len` elements of `T` fit in [`MAX_BUFFER_BYTES`].
pub fn check_buffer<T>(op: &'static str, len: usize) -> Result<()> {
    let bytes = len.checked_mul(std::mem::size_of::<T>());
    match bytes {
        Some(b) if b <= MAX_BUFFER_BYTES => Ok(()),
        _ => Err(DataError::TooLarge {
            op,
            detail: format!(
                "{len} elements of {} bytes exceed the {MAX_BUFFER_BYTES}-byte buffer limit",
                std::mem::size_of::<T>()
            ),
        }),
    }
}

/// An empty vector with room for exactly `len` elements, allocated fallibly.
pub fn try_with_capacity<T>(op: &'static str, len: usize) -> Result<Vec<T>> {
    check_buffer::<T>(op, len)?;
    let mut v = Vec::new();
    v.try_reserve_exact(len).map_err(|e| DataError::TooLarge {
        op,
        detail: format!(
            "cannot allocate {len} elements of {} bytes: {e}",
            std::mem::size_of::<T>()
        ),
    })?;
    Ok(v)
}

/// `vec![value; len]`, allocated fallibly.
pub fn try_filled<T: Clone>(op: &'static str, len: usize, value: T) -> Result<Vec<T>> {
    let mut v = try_with_capacity(op, len)?;
    v.resize(len, value);
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_are_checked() {
        assert_eq!(checked_numel("t", &[2, 3, 4]).unwrap(), 24);
        assert!(checked_numel("t", &[usize::MAX, 2]).is_err());
        assert_eq!(try_filled("t", 3, 7u8).unwrap(), vec![7, 7, 7]);
        let err = try_filled("t", MAX_BUFFER_BYTES / 4 + 1, 0f32).unwrap_err();
        assert!(err.to_string().contains("buffer limit"), "{err}");
    }
}
