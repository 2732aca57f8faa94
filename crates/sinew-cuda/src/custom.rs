//! Running kernels that are not Sinew's: PTX modules loaded by another crate, launched on the
//! device's stream so they are ordered with Sinew's own work (see the crate docs for an example).

use std::ffi::c_void;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

use cust::module::Module;
use sinew_tensor::{DeviceLocation, Error, Result};

use crate::device::CudaBackend;
use crate::driver::{CustResultExt, check_with};
use crate::functions::{FnvMap, RawFunction};

/// A PTX module loaded on one GPU by [`CudaBackend::load_module`], with its functions cached by
/// name. It stays loaded as long as the backend (the backend keeps it, so loading the same PTX
/// again returns the same module).
pub struct CudaModule {
    location: DeviceLocation,
    ptx: String,
    functions: Mutex<FnvMap<String, RawFunction>>,
    module: Module,
}

impl std::fmt::Debug for CudaModule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "CudaModule({} bytes of PTX on {})",
            self.ptx.len(),
            self.location
        )
    }
}

/// A kernel of a [`CudaModule`], ready to launch with [`CudaBackend::launch_custom`].
#[derive(Debug, Clone, Copy)]
pub struct CudaFunction {
    raw: RawFunction,
    location: DeviceLocation,
}

impl CudaModule {
    /// The entry point `name` (an `extern "C" __global__` function), looked up once and cached.
    /// A name missing from the module is an [`Error::Device`].
    pub fn function(&self, name: &str) -> Result<CudaFunction> {
        let mut functions = self.functions.lock().unwrap_or_else(|e| e.into_inner());
        let raw = match functions.get(name) {
            Some(&raw) => raw,
            None => {
                let f = self.module.get_function(name).on_with(self.location, || {
                    format!("kernel {name:?} of a custom module")
                })?;
                let raw = RawFunction(f.to_raw());
                functions.insert(name.to_string(), raw);
                raw
            }
        };
        Ok(CudaFunction {
            raw,
            location: self.location,
        })
    }
}

/// Modules loaded by other crates on one device, kept for the backend's lifetime.
#[derive(Debug, Default)]
pub(crate) struct CustomModules(Mutex<Vec<Arc<CudaModule>>>);

impl CudaBackend {
    /// Loads a PTX module (JIT-compiled by the driver) on this GPU, or returns the one already
    /// loaded from the same text. PTX that the driver rejects (syntax, a newer ISA than the
    /// driver supports, a target above the GPU's) is an [`Error::Device`] carrying the driver's
    /// message.
    pub fn load_module(&self, ptx: &str) -> Result<Arc<CudaModule>> {
        self.bind()?;
        let mut modules = self.custom.0.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(m) = modules.iter().find(|m| m.ptx == ptx) {
            return Ok(m.clone());
        }
        if ptx.contains('\0') {
            return Err(Error::invalid(
                "load_module",
                "the PTX text contains a NUL byte",
            ));
        }
        let loc = self.location();
        let module = Module::from_ptx(ptx, &[]).on(loc, "loading a custom PTX module (JIT)")?;
        let module = Arc::new(CudaModule {
            location: loc,
            ptx: ptx.to_string(),
            functions: Mutex::default(),
            module,
        });
        modules.push(module.clone());
        Ok(module)
    }

    /// Queues `function` on this device's stream (after all Sinew work queued so far, before
    /// any queued later) with `grid` x `block` threads and `shared_mem` bytes of dynamic shared
    /// memory. Errors: a function of another device, a zero grid or block dimension, or the
    /// driver refusing the launch.
    ///
    /// # Safety
    /// `args` must hold one pointer per kernel parameter, in order, each to a value of that
    /// parameter's C type ([`kernel_args!`](crate::kernel_args) builds the list); device
    /// pointers must point into live allocations of this device (e.g. [`CudaStorage`]s that
    /// outlive the kernel's execution on the stream) large enough for everything the kernel
    /// reads and writes. The driver cannot check any of this.
    ///
    /// [`CudaStorage`]: crate::CudaStorage
    // SAFETY contract: the `# Safety` section above.
    pub unsafe fn launch_custom(
        &self,
        function: &CudaFunction,
        grid: (u32, u32, u32),
        block: (u32, u32, u32),
        shared_mem: u32,
        args: &[*mut c_void],
    ) -> Result<()> {
        let loc = self.location();
        if function.location != loc {
            return Err(Error::Device {
                device: loc,
                msg: format!("kernel loaded on {} launched on {loc}", function.location),
            });
        }
        if [grid.0, grid.1, grid.2, block.0, block.1, block.2].contains(&0) {
            return Err(Error::invalid(
                "launch_custom",
                format!("empty launch: grid {grid:?}, block {block:?}"),
            ));
        }
        self.bind()?;
        // SAFETY: the caller guarantees `args` matches the kernel's parameters and that its
        // device pointers are valid (this function's contract); the function handle belongs to a
        // module this backend keeps loaded, and the stream is the backend's.
        let code = unsafe {
            cust::sys::cuLaunchKernel(
                function.raw.0,
                grid.0,
                grid.1,
                grid.2,
                block.0,
                block.1,
                block.2,
                shared_mem,
                self.stream().stream.as_inner(),
                args.as_ptr() as *mut *mut c_void,
                std::ptr::null_mut(),
            )
        };
        check_with(code, loc, || "launching a custom kernel".to_string())?;
        self.launches.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
}
