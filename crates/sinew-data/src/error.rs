//! The crate's error type: every reader failure names the file and what was wrong with it.

use std::path::PathBuf;

/// Errors from datasets, readers, transforms and the loader.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// The file could not be opened or read.
    #[error("{path}: {source}")]
    Io {
        /// The file that failed.
        path: PathBuf,
        /// The underlying I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The file starts with the wrong magic number.
    #[error("{path}: wrong magic number 0x{found:08x}, expected 0x{expected:08x} ({what})")]
    BadMagic {
        /// The file that failed.
        path: PathBuf,
        /// The magic number the format requires.
        expected: u32,
        /// The magic number found in the file.
        found: u32,
        /// What kind of file was expected.
        what: &'static str,
    },
    /// The file ends before the size its header (or record layout) promises.
    #[error("{path}: truncated: expected {expected} bytes, found {found}")]
    Truncated {
        /// The file that failed.
        path: PathBuf,
        /// Bytes the header or layout requires.
        expected: usize,
        /// Bytes actually present.
        found: usize,
    },
    /// Sizes disagree: trailing bytes, a file that is not whole records, or two files of different counts.
    #[error("{path}: size mismatch: {detail}")]
    SizeMismatch {
        /// The file that failed.
        path: PathBuf,
        /// What disagreed, with both numbers.
        detail: String,
    },
    /// A label outside the allowed classes (or not parsable as one).
    #[error("{path}: bad label {label:?} at record {index}: expected {expected}")]
    BadLabel {
        /// The file that failed.
        path: PathBuf,
        /// Zero-based record (or row) number.
        index: usize,
        /// The label as found, printed.
        label: String,
        /// What the format allows, e.g. `a class in 0..10`.
        expected: String,
    },
    /// Any other malformed content (bad gzip stream, unparsable CSV cell, undecodable image).
    #[error("{path}: {detail}")]
    Format {
        /// The file that failed.
        path: PathBuf,
        /// What was wrong.
        detail: String,
    },
    /// An index past the end of a dataset.
    #[error("index {index} out of range for a dataset of length {len}")]
    IndexOutOfRange {
        /// The index asked for.
        index: usize,
        /// The dataset length.
        len: usize,
    },
    /// A bad argument to a dataset, transform or loader (names the caller).
    #[error("{op}: {detail}")]
    InvalidArgument {
        /// The function or type that rejected the argument.
        op: &'static str,
        /// Why.
        detail: String,
    },
    /// A size that overflows, exceeds [`crate::alloc::MAX_BUFFER_BYTES`], or cannot be allocated.
    #[error("{op}: {detail}")]
    TooLarge {
        /// The function or type that needed the buffer.
        op: &'static str,
        /// The size asked for and why it failed.
        detail: String,
    },
    /// An error from building tensors.
    #[error(transparent)]
    Tensor(#[from] sinew_tensor::Error),
}

/// `?` on a [`DataError`] in a function returning `sinew_tensor::Result` (tensor errors are
/// unwrapped; every other error becomes [`sinew_tensor::Error::External`] with context `data`).
impl From<DataError> for sinew_tensor::Error {
    fn from(err: DataError) -> Self {
        match err {
            DataError::Tensor(e) => e,
            other => sinew_tensor::Error::External {
                context: "data",
                source: sinew_tensor::ExternalError::new(other),
            },
        }
    }
}

impl DataError {
    /// An [`DataError::InvalidArgument`] for `op`.
    pub fn invalid(op: &'static str, detail: impl Into<String>) -> Self {
        DataError::InvalidArgument {
            op,
            detail: detail.into(),
        }
    }

    /// A [`DataError::Format`] for the file at `path`.
    pub fn format(path: impl Into<PathBuf>, detail: impl Into<String>) -> Self {
        DataError::Format {
            path: path.into(),
            detail: detail.into(),
        }
    }

    /// A [`DataError::Io`] for the file at `path`.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        DataError::Io {
            path: path.into(),
            source,
        }
    }
}

/// Result alias with [`DataError`] as the default error type.
pub type Result<T, E = DataError> = std::result::Result<T, E>;
