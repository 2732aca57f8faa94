//! The one error type of the tensor crate.

use crate::{DType, DeviceLocation, Shape};

/// Every fallible tensor operation returns this error.
///
/// Each variant names the operation and the operands that were wrong, so a message read in a
/// training log says what to fix without a debugger.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Error {
    /// Two shapes that must agree (or broadcast) do not.
    #[error("{op}: shape mismatch between {lhs} and {rhs}")]
    ShapeMismatch {
        /// Operation that failed.
        op: &'static str,
        /// Left (or first) operand's shape.
        lhs: Shape,
        /// Right (or second) operand's shape.
        rhs: Shape,
    },
    /// Two dtypes that must agree do not.
    #[error("{op}: dtype mismatch between {lhs:?} and {rhs:?}")]
    DTypeMismatch {
        /// Operation that failed.
        op: &'static str,
        /// Left operand's dtype.
        lhs: DType,
        /// Right operand's dtype.
        rhs: DType,
    },
    /// An operation was given tensors that live on different devices.
    #[error("{op}: device mismatch between {lhs} and {rhs} (move one with to_device first)")]
    DeviceMismatch {
        /// Operation that failed.
        op: &'static str,
        /// Left operand's device.
        lhs: DeviceLocation,
        /// Right operand's device.
        rhs: DeviceLocation,
    },
    /// An operation does not support this dtype.
    #[error("{op}: unsupported dtype {dtype:?}")]
    UnsupportedDType {
        /// Operation that failed.
        op: &'static str,
        /// The dtype it was given.
        dtype: DType,
    },
    /// A backend has no kernel for this operation.
    #[error("{op}: not implemented on {device}")]
    NotImplemented {
        /// Operation that failed.
        op: &'static str,
        /// The device whose backend lacks it.
        device: DeviceLocation,
    },
    /// A dimension index is out of range.
    #[error("{op}: dimension {dim} out of range for a tensor of rank {rank}")]
    DimOutOfRange {
        /// Operation that failed.
        op: &'static str,
        /// The requested dimension (negative counts from the end).
        dim: isize,
        /// Rank of the tensor.
        rank: usize,
    },
    /// An element index is out of range.
    #[error("{op}: index {index} out of bounds for size {size}")]
    IndexOutOfBounds {
        /// Operation that failed.
        op: &'static str,
        /// The offending index.
        index: i64,
        /// The bound it had to be below.
        size: usize,
    },
    /// Data of the wrong length was given for a shape.
    #[error("{op}: {len} elements do not fill shape {shape}")]
    ElementCount {
        /// Operation that failed.
        op: &'static str,
        /// Number of elements given.
        len: usize,
        /// Shape they were meant to fill.
        shape: Shape,
    },
    /// An argument is invalid for another reason, described in `msg`.
    #[error("{op}: {msg}")]
    InvalidArgument {
        /// Operation that failed.
        op: &'static str,
        /// What was wrong.
        msg: String,
    },
    /// An allocation of `bytes` bytes failed (or cannot be represented at all).
    #[error("{op}: out of memory: cannot allocate {bytes} bytes")]
    OutOfMemory {
        /// Operation that needed the memory.
        op: &'static str,
        /// Bytes requested (u128: sizes past `usize::MAX` are reported, not wrapped).
        bytes: u128,
    },
    /// A size, stride or offset computation does not fit in the index type.
    #[error("{op}: {what} overflows the addressable size")]
    Overflow {
        /// Operation that failed.
        op: &'static str,
        /// What was being computed, with its operands.
        what: String,
    },
    /// A device reported an error (out of memory, launch failure, missing driver).
    #[error("{device}: {msg}")]
    Device {
        /// The device that failed.
        device: DeviceLocation,
        /// The driver's or backend's message.
        msg: String,
    },
    /// No backend is registered for a device kind (for example CUDA without the `cuda` feature).
    #[error("no backend registered for {kind} devices: {hint}")]
    BackendUnavailable {
        /// The device kind asked for.
        kind: &'static str,
        /// How to make it available.
        hint: &'static str,
    },
    /// An error from a layer above the tensors (data loading, I/O), kept whole; its message is shown.
    #[error("{context}: {source}")]
    External {
        /// Where it came from, e.g. `data`.
        context: &'static str,
        /// The original error.
        source: ExternalError,
    },
}

/// A shared, type-erased error from another crate (see [`Error::External`]).
///
/// Clones share the error; two values are equal only when they share the same error.
#[derive(Clone, Debug)]
pub struct ExternalError(pub std::sync::Arc<dyn std::error::Error + Send + Sync>);

impl ExternalError {
    /// Wraps `error`.
    pub fn new(error: impl std::error::Error + Send + Sync + 'static) -> Self {
        ExternalError(std::sync::Arc::new(error))
    }
}

impl PartialEq for ExternalError {
    fn eq(&self, other: &Self) -> bool {
        std::sync::Arc::ptr_eq(&self.0, &other.0)
    }
}

impl std::fmt::Display for ExternalError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl std::error::Error for ExternalError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.0.source()
    }
}

/// Result type of the tensor crate (the error type defaults to [`Error`], so `Result<T, E>` is
/// still the standard two-parameter result).
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// Shorthand for [`Error::InvalidArgument`].
    pub fn invalid(op: &'static str, msg: impl Into<String>) -> Self {
        Error::InvalidArgument {
            op,
            msg: msg.into(),
        }
    }

    /// The same error reported under `op` when it is an [`Error::OutOfMemory`] or
    /// [`Error::Overflow`] raised by a shared kernel (which knows only its own name).
    pub fn in_op(self, op: &'static str) -> Self {
        match self {
            Error::OutOfMemory { bytes, .. } => Error::OutOfMemory { op, bytes },
            Error::Overflow { what, .. } => Error::Overflow { op, what },
            other => other,
        }
    }
}
