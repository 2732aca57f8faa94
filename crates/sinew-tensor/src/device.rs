//! Devices: which backend a tensor's storage and kernels belong to.
//!
//! The tensor crate knows no GPU API. A GPU crate (sinew-cuda) implements [`Backend`] and registers a
//! factory with [`register_backend`]; [`Device::cuda`] then finds it by name.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock, RwLock};

use crate::backend::Backend;
use crate::cpu::CpuBackend;
use crate::{Error, Result};

/// Where a device is: its kind and ordinal. Cheap to copy and compare.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DeviceLocation {
    /// The host CPU.
    Cpu,
    /// NVIDIA GPU number `n`.
    Cuda(usize),
}

impl std::fmt::Display for DeviceLocation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DeviceLocation::Cpu => write!(f, "cpu"),
            DeviceLocation::Cuda(n) => write!(f, "cuda:{n}"),
        }
    }
}

/// A handle to a device's backend. Cloning is cheap; equal locations mean the same device.
#[derive(Clone)]
pub struct Device {
    backend: Arc<dyn Backend>,
}

/// Makes the device of one kind with a given ordinal; registered by backend crates.
pub type DeviceFactory = fn(usize) -> Result<Device>;

fn factories() -> &'static RwLock<HashMap<&'static str, DeviceFactory>> {
    static FACTORIES: OnceLock<RwLock<HashMap<&'static str, DeviceFactory>>> = OnceLock::new();
    FACTORIES.get_or_init(Default::default)
}

/// Registers the factory that [`Device::cuda`] (kind `"cuda"`) and friends call.
///
/// Backend crates call this once (registering twice replaces the factory).
pub fn register_backend(kind: &'static str, factory: DeviceFactory) {
    factories()
        .write()
        .unwrap_or_else(|e| e.into_inner())
        .insert(kind, factory);
}

impl Device {
    /// The CPU device (one shared backend).
    pub fn cpu() -> Device {
        static CPU: OnceLock<Device> = OnceLock::new();
        CPU.get_or_init(|| Device::from_backend(Arc::new(CpuBackend)))
            .clone()
    }

    /// NVIDIA GPU number `ordinal`, through the backend registered as `"cuda"`.
    ///
    /// Errors when no CUDA backend is registered, when there is no such GPU, or no driver.
    pub fn cuda(ordinal: usize) -> Result<Device> {
        let factory = factories()
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get("cuda")
            .copied();
        match factory {
            Some(make) => make(ordinal),
            None => Err(Error::BackendUnavailable {
                kind: "cuda",
                hint: "build with the `cuda` feature of sinew and call sinew::cuda::register()",
            }),
        }
    }

    /// Wraps a backend into a device handle (used by backend crates).
    pub fn from_backend(backend: Arc<dyn Backend>) -> Device {
        Device { backend }
    }

    /// The backend that runs this device's kernels.
    pub fn backend(&self) -> &dyn Backend {
        &*self.backend
    }

    /// The device's kind and ordinal.
    pub fn location(&self) -> DeviceLocation {
        self.backend.location()
    }

    /// True for the CPU.
    pub fn is_cpu(&self) -> bool {
        self.location() == DeviceLocation::Cpu
    }

    /// Waits until all work queued on the device has finished.
    pub fn synchronize(&self) -> Result<()> {
        self.backend.synchronize()
    }
}

impl PartialEq for Device {
    fn eq(&self, other: &Self) -> bool {
        self.location() == other.location()
    }
}

impl Eq for Device {}

impl std::fmt::Debug for Device {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Device({})", self.location())
    }
}

impl std::fmt::Display for Device {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.location())
    }
}

impl Default for Device {
    fn default() -> Self {
        Device::cpu()
    }
}
