//! Driver results as sinew errors: every failed CUDA call becomes [`Error::Device`] naming the
//! device, the call and the driver's message, never a panic.

use std::ffi::CStr;

use cust::error::CudaError;
use cust::sys::{CUresult, cuGetErrorString};
use sinew_tensor::{DeviceLocation, Error, Result};

/// The driver's description of a result code.
fn describe(code: CUresult) -> String {
    let mut text: *const std::os::raw::c_char = std::ptr::null();
    // SAFETY: cuGetErrorString writes a pointer to a static NUL-terminated string (or leaves null).
    let ok = unsafe { cuGetErrorString(code, &mut text) } == CUresult::CUDA_SUCCESS;
    if ok && !text.is_null() {
        // SAFETY: checked non-null above; the driver owns the static string.
        unsafe { CStr::from_ptr(text) }
            .to_string_lossy()
            .into_owned()
    } else {
        format!("{code:?}")
    }
}

/// Turns a raw driver result into `Ok` or a device error about `what`.
pub(crate) fn check(code: CUresult, device: DeviceLocation, what: &str) -> Result<()> {
    if code == CUresult::CUDA_SUCCESS {
        return Ok(());
    }
    Err(Error::Device {
        device,
        msg: format!("{what}: {} ({code:?})", describe(code)),
    })
}

/// [`check`] with the description built only when the call failed (keeps formatting off the
/// launch path).
pub(crate) fn check_with(
    code: CUresult,
    device: DeviceLocation,
    what: impl FnOnce() -> String,
) -> Result<()> {
    if code == CUresult::CUDA_SUCCESS {
        return Ok(());
    }
    check(code, device, &what())
}

/// Wraps a cust error as a device error about `what`.
pub(crate) fn from_cust(err: CudaError, device: DeviceLocation, what: &str) -> Error {
    Error::Device {
        device,
        msg: format!("{what}: {err} ({err:?})"),
    }
}

/// Extension to add context to cust results.
pub(crate) trait CustResultExt<T> {
    /// Maps the error into a sinew device error about `what`.
    fn on(self, device: DeviceLocation, what: &str) -> Result<T>;

    /// [`on`](Self::on) with the description built only on error.
    fn on_with(self, device: DeviceLocation, what: impl FnOnce() -> String) -> Result<T>;
}

impl<T> CustResultExt<T> for std::result::Result<T, CudaError> {
    fn on(self, device: DeviceLocation, what: &str) -> Result<T> {
        self.map_err(|e| from_cust(e, device, what))
    }

    fn on_with(self, device: DeviceLocation, what: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|e| from_cust(e, device, &what()))
    }
}
