//! [`NcclLibrary`]: NVIDIA's `libnccl.so.2` (the `nvidia-nccl-cu12` wheel, or a system copy),
//! opened at run time, so building Sinew never needs NCCL and a missing library is a clear error.
//!
//! The library is found through `SINEW_NCCL_LIB` (a path), else the dynamic loader's search path
//! (`LD_LIBRARY_PATH`, the system directories). Only the stable C entry points Sinew calls are
//! looked up; their signatures follow `nccl.h` (NCCL 2.x: enums are C `int`s, `ncclUniqueId` a
//! 128-byte struct passed by value, `cudaStream_t` the driver's `CUstream`).

use std::ffi::{CStr, c_char, c_int, c_void};
use std::sync::OnceLock;

use libloading::Library;
use sinew_tensor::Result;

use crate::error::DistError;

/// `ncclResult_t`.
pub(crate) type NcclResult = c_int;
/// `ncclComm_t`.
pub(crate) type NcclComm = *mut c_void;
/// `cudaStream_t` / `CUstream`.
pub(crate) type Stream = *mut c_void;

/// `ncclSuccess`.
pub(crate) const SUCCESS: NcclResult = 0;

/// NCCL's `ncclUniqueId`: the 128 bytes rank 0 creates and every rank passes to
/// `ncclCommInitRank` (shared through [`crate::rendezvous`]).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UniqueId {
    /// The opaque bytes (`char internal[NCCL_UNIQUE_ID_BYTES]`).
    pub internal: [u8; 128],
}

impl UniqueId {
    /// The id in `bytes` (exactly 128 of them, as another rank's [`UniqueId::internal`]).
    pub fn from_bytes(bytes: &[u8]) -> Result<UniqueId> {
        let internal = bytes.try_into().map_err(|_| {
            error(format!(
                "an NCCL unique id has 128 bytes, the rendezvous gave {}",
                bytes.len()
            ))
        })?;
        Ok(UniqueId { internal })
    }
}

type GetVersion = unsafe extern "C" fn(*mut c_int) -> NcclResult;
type GetUniqueId = unsafe extern "C" fn(*mut UniqueId) -> NcclResult;
type CommInitRank = unsafe extern "C" fn(*mut NcclComm, c_int, UniqueId, c_int) -> NcclResult;
type CommFn = unsafe extern "C" fn(NcclComm) -> NcclResult;
type CommGetAsyncError = unsafe extern "C" fn(NcclComm, *mut NcclResult) -> NcclResult;
type GetErrorString = unsafe extern "C" fn(NcclResult) -> *const c_char;
/// `ncclAllReduce(send, recv, count, datatype, op, comm, stream)`.
pub(crate) type AllReduce = unsafe extern "C" fn(
    *const c_void,
    *mut c_void,
    usize,
    c_int,
    c_int,
    NcclComm,
    Stream,
) -> NcclResult;
/// `ncclBroadcast(send, recv, count, datatype, root, comm, stream)`.
pub(crate) type Broadcast = AllReduce;
/// `ncclAllGather(send, recv, sendcount, datatype, comm, stream)`.
pub(crate) type AllGather =
    unsafe extern "C" fn(*const c_void, *mut c_void, usize, c_int, NcclComm, Stream) -> NcclResult;

/// The opened library and the entry points Sinew uses.
// The communicator entry points are called by the `nccl` feature's backend only.
#[cfg_attr(not(feature = "nccl"), allow(dead_code))]
pub struct NcclLibrary {
    path: String,
    version: c_int,
    get_unique_id: GetUniqueId,
    get_error_string: GetErrorString,
    pub(crate) comm_init_rank: CommInitRank,
    pub(crate) comm_destroy: CommFn,
    pub(crate) comm_abort: CommFn,
    pub(crate) comm_get_async_error: CommGetAsyncError,
    pub(crate) all_reduce: AllReduce,
    pub(crate) broadcast: Broadcast,
    pub(crate) all_gather: AllGather,
    // Keeps the code behind the function pointers above mapped; dropped last.
    _library: Library,
}

impl std::fmt::Debug for NcclLibrary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (a, b, c) = self.version();
        write!(f, "NcclLibrary({} {a}.{b}.{c})", self.path)
    }
}

pub(crate) fn error(msg: impl Into<String>) -> sinew_tensor::Error {
    DistError::Backend {
        backend: "nccl",
        msg: msg.into(),
    }
    .into()
}

/// How to get the library, for the error when it cannot be opened.
const INSTALL_HINT: &str = "install NVIDIA's wheel (`pip install nvidia-nccl-cu12`) and set \
    SINEW_NCCL_LIB to its site-packages/nvidia/nccl/lib/libnccl.so.2, or put a libnccl.so.2 on \
    LD_LIBRARY_PATH";

/// Looks `name` up in `library` as a function pointer of type `F`.
///
/// # Safety
/// `F` must be the C signature of the symbol `name` (the types above follow `nccl.h`).
// SAFETY contract: the `# Safety` section above; every caller names a type alias of this file.
unsafe fn symbol<F: Copy>(library: &Library, path: &str, name: &str) -> Result<F> {
    let mut c_name = name.as_bytes().to_vec();
    c_name.push(0);
    // SAFETY: the caller guarantees `F` is the symbol's type; the pointer is copied out and used
    // only while `library` stays loaded (NcclLibrary keeps it).
    unsafe { library.get::<F>(&c_name) }
        .map(|s| *s)
        .map_err(|e| {
            error(format!(
                "{path} has no {name} ({e}): not an NCCL 2.x library?"
            ))
        })
}

impl NcclLibrary {
    /// Opens the library at `path` (a file path or a bare name for the loader's search).
    pub fn open(path: &str) -> Result<NcclLibrary> {
        if path.trim().is_empty() {
            return Err(error(format!("an empty library path; {INSTALL_HINT}")));
        }
        // SAFETY: loading runs the library's initialisers; libnccl's only set up its own state.
        let library = unsafe { Library::new(path) }
            .map_err(|e| error(format!("cannot load {path}: {e}; {INSTALL_HINT}")))?;
        // SAFETY (each lookup): the type aliases are the signatures of these functions in
        // nccl.h of NCCL 2.x, whose C ABI is stable.
        let get_version: GetVersion = unsafe { symbol(&library, path, "ncclGetVersion") }?;
        let mut version: c_int = 0;
        // SAFETY: ncclGetVersion writes one int through the pointer, which is valid.
        let code = unsafe { get_version(&mut version) };
        if code != SUCCESS {
            return Err(error(format!("{path}: ncclGetVersion failed ({code})")));
        }
        // SAFETY: as above, every type matches nccl.h.
        unsafe {
            Ok(NcclLibrary {
                path: path.to_string(),
                version,
                get_unique_id: symbol(&library, path, "ncclGetUniqueId")?,
                get_error_string: symbol(&library, path, "ncclGetErrorString")?,
                comm_init_rank: symbol(&library, path, "ncclCommInitRank")?,
                comm_destroy: symbol(&library, path, "ncclCommDestroy")?,
                comm_abort: symbol(&library, path, "ncclCommAbort")?,
                comm_get_async_error: symbol(&library, path, "ncclCommGetAsyncError")?,
                all_reduce: symbol(&library, path, "ncclAllReduce")?,
                broadcast: symbol(&library, path, "ncclBroadcast")?,
                all_gather: symbol(&library, path, "ncclAllGather")?,
                _library: library,
            })
        }
    }

    /// The process-wide library: `SINEW_NCCL_LIB`, else `libnccl.so.2` from the loader's
    /// search path; opened once (a failure is remembered too).
    pub fn load() -> Result<&'static NcclLibrary> {
        static LIBRARY: OnceLock<std::result::Result<NcclLibrary, String>> = OnceLock::new();
        LIBRARY
            .get_or_init(|| {
                // An empty value counts as unset (dlopen("") would return the program itself).
                let path = std::env::var("SINEW_NCCL_LIB")
                    .ok()
                    .filter(|p| !p.trim().is_empty())
                    .unwrap_or_else(|| "libnccl.so.2".into());
                NcclLibrary::open(&path).map_err(|e| e.to_string())
            })
            .as_ref()
            .map_err(|msg| error(msg.clone()))
    }

    /// Where it was loaded from.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// `(major, minor, patch)` from `ncclGetVersion` (`22707` is 2.27.7).
    pub fn version(&self) -> (u32, u32, u32) {
        let v = self.version.max(0) as u32;
        (v / 10000, v / 100 % 100, v % 100)
    }

    /// A fresh communicator id (rank 0 makes one per job).
    pub fn unique_id(&self) -> Result<UniqueId> {
        let mut id = UniqueId { internal: [0; 128] };
        // SAFETY: ncclGetUniqueId fills the 128-byte struct behind the valid pointer.
        let code = unsafe { (self.get_unique_id)(&mut id) };
        self.check(code, "ncclGetUniqueId")?;
        Ok(id)
    }

    /// NCCL's description of `code`.
    pub fn describe(&self, code: NcclResult) -> String {
        // SAFETY: ncclGetErrorString returns a static NUL-terminated string for any code.
        let text = unsafe { (self.get_error_string)(code) };
        if text.is_null() {
            return format!("NCCL error {code}");
        }
        // SAFETY: non-null, NUL-terminated and static (checked above, per nccl.h).
        unsafe { CStr::from_ptr(text) }
            .to_string_lossy()
            .into_owned()
    }

    /// `Ok` for `ncclSuccess`, else an error naming `what` and NCCL's description.
    pub(crate) fn check(&self, code: NcclResult, what: &str) -> Result<()> {
        if code == SUCCESS {
            Ok(())
        } else {
            Err(error(format!(
                "{what} failed: {} ({code})",
                self.describe(code)
            )))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// With the library available (SINEW_NCCL_LIB or the loader's path) it reports a 2.x version
    /// and makes ids; without it the error says how to install it.
    #[test]
    fn loads_or_says_how_to_install() {
        match NcclLibrary::load() {
            Ok(lib) => {
                let (major, minor, _) = lib.version();
                assert!(major == 2 && minor >= 9, "{lib:?}");
                let id = lib.unique_id().unwrap();
                assert!(id.internal.iter().any(|&b| b != 0));
                assert_eq!(UniqueId::from_bytes(&id.internal).unwrap(), id);
                assert_eq!(lib.describe(SUCCESS), "no error");
                println!("{lib:?}");
            }
            Err(e) => {
                let msg = e.to_string();
                assert!(
                    msg.contains("nvidia-nccl-cu12") && msg.contains("SINEW_NCCL_LIB"),
                    "{msg}"
                );
            }
        }
    }

    #[test]
    fn a_wrong_file_is_named() {
        let missing = NcclLibrary::open("/nonexistent/libnccl.so.2")
            .unwrap_err()
            .to_string();
        assert!(
            missing.contains("cannot load /nonexistent/libnccl.so.2"),
            "{missing}"
        );
        let not_a_library = concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml");
        let err = NcclLibrary::open(not_a_library).unwrap_err().to_string();
        assert!(err.contains("Cargo.toml"), "{err}");
        assert!(
            UniqueId::from_bytes(&[0; 12])
                .unwrap_err()
                .to_string()
                .contains("128 bytes")
        );
    }
}
