//! [`DistError`]: what can go wrong between processes, reported through `sinew_tensor::Error`.

use sinew_tensor::{Error, ExternalError};

/// A failure of the process group or of a collective.
#[derive(Debug, thiserror::Error)]
pub enum DistError {
    /// A collective did not finish in time: another rank died, hangs, or is far behind.
    #[error(
        "rank {rank}: {op} #{seq} did not complete within {seconds:.1} s; another rank has probably \
         died or stopped (set SINEW_DIST_TIMEOUT to the seconds a step may legitimately take)"
    )]
    Timeout {
        /// This process's rank.
        rank: usize,
        /// The collective (`all_reduce`, `broadcast`, ...).
        op: &'static str,
        /// Its sequence number in this process group.
        seq: u64,
        /// The timeout, in seconds.
        seconds: f64,
    },
    /// The launcher's environment is missing, malformed or inconsistent.
    #[error("launch environment: {0}")]
    Launch(String),
    /// The communication backend failed or is not built in.
    #[error("{backend}: {msg}")]
    Backend {
        /// The backend's name (`mpi`, `single`).
        backend: &'static str,
        /// What happened.
        msg: String,
    },
    /// The ranks disagree (buffer lengths, dtypes, parameter lists).
    #[error("ranks disagree in {op}: {msg}")]
    Mismatch {
        /// The collective.
        op: &'static str,
        /// What differs.
        msg: String,
    },
    /// The group failed earlier (a timeout or a dead communication thread) and can no longer be
    /// used.
    #[error("the process group failed earlier: {0}")]
    Failed(String),
}

impl From<DistError> for Error {
    fn from(e: DistError) -> Self {
        Error::External {
            context: "sinew-dist",
            source: ExternalError::new(e),
        }
    }
}
