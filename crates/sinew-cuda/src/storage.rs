//! Device memory holding the elements of one tensor storage.

use std::sync::Arc;

use cust::sys::CUdeviceptr;
use sinew_tensor::{BackendStorage, DType, DeviceLocation, Error, Layout, Result};

use crate::allocator::{Allocator, Block};

/// A block of GPU memory with `len` elements of `dtype`; returns to the device's cache on drop.
pub struct CudaStorage {
    block: Option<Block>,
    len: usize,
    dtype: DType,
    location: DeviceLocation,
    allocator: Arc<Allocator>,
}

impl CudaStorage {
    pub(crate) fn new(
        block: Block,
        len: usize,
        dtype: DType,
        location: DeviceLocation,
        allocator: Arc<Allocator>,
    ) -> Self {
        CudaStorage {
            block: Some(block),
            len,
            dtype,
            location,
            allocator,
        }
    }

    /// Device address of the first element (0 for an empty storage).
    pub fn device_ptr(&self) -> CUdeviceptr {
        self.block.as_ref().map_or(0, |b| b.ptr)
    }

    /// Device address of element `offset`.
    pub fn ptr_at(&self, offset: usize) -> CUdeviceptr {
        self.device_ptr() + (offset * self.dtype.size_in_bytes()) as CUdeviceptr
    }

    /// The CUDA storage behind a tensor's storage (e.g. inside `Tensor::with_storage`), or
    /// `None` for another backend's.
    pub fn downcast(storage: &dyn BackendStorage) -> Option<&CudaStorage> {
        storage.as_any().downcast_ref::<CudaStorage>()
    }

    /// Mutable form of [`downcast`](Self::downcast).
    pub fn downcast_mut(storage: &mut dyn BackendStorage) -> Option<&mut CudaStorage> {
        storage.as_any_mut().downcast_mut::<CudaStorage>()
    }

    /// Number of elements (inherent twin of the trait's `len`).
    pub fn elem_count(&self) -> usize {
        self.len
    }

    /// Element type (inherent twin of the trait method, for use without the trait in scope).
    pub fn dtype_of(&self) -> DType {
        self.dtype
    }

    /// The GPU this storage lives on.
    pub fn location(&self) -> DeviceLocation {
        self.location
    }

    /// Size in bytes of the elements (not the rounded block).
    pub fn size_in_bytes(&self) -> usize {
        self.len * self.dtype.size_in_bytes()
    }
}

impl Drop for CudaStorage {
    fn drop(&mut self) {
        if let Some(block) = self.block.take() {
            self.allocator.release(block);
        }
    }
}

impl std::fmt::Debug for CudaStorage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "CudaStorage({} x {} on {} at {:#x})",
            self.len,
            self.dtype,
            self.location,
            self.device_ptr()
        )
    }
}

impl BackendStorage for CudaStorage {
    fn dtype(&self) -> DType {
        self.dtype
    }
    fn len(&self) -> usize {
        self.len
    }
    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
    fn as_any_mut(&mut self) -> &mut dyn std::any::Any {
        self
    }
}

/// Downcasts a storage handed to the CUDA backend, or names what it was given instead.
pub(crate) fn cuda(storage: &dyn BackendStorage, location: DeviceLocation) -> Result<&CudaStorage> {
    storage
        .as_any()
        .downcast_ref::<CudaStorage>()
        .ok_or_else(|| Error::Device {
            device: location,
            msg: format!("expected a CUDA storage, got {storage:?}"),
        })
}

/// [`cuda`] of an optional view's storage, the layout kept.
pub(crate) fn cuda_view<'a>(
    view: Option<(&'a dyn BackendStorage, &'a Layout)>,
    location: DeviceLocation,
) -> Result<Option<(&'a CudaStorage, &'a Layout)>> {
    view.map(|(s, l)| Ok((cuda(s, location)?, l))).transpose()
}

/// Mutable form of [`cuda`].
pub(crate) fn cuda_mut(
    storage: &mut dyn BackendStorage,
    location: DeviceLocation,
) -> Result<&mut CudaStorage> {
    if storage.as_any().is::<CudaStorage>() {
        return Ok(storage
            .as_any_mut()
            .downcast_mut::<CudaStorage>()
            .expect("checked above"));
    }
    Err(Error::Device {
        device: location,
        msg: format!("expected a CUDA storage, got {storage:?}"),
    })
}
