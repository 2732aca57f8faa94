//! The [`Tensor`] type: a view (layout) over shared, reference-counted storage on a device.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

use crate::backend::BoxedStorage;
use crate::cpu::CpuStorage;
use crate::{DType, Device, Element, Error, Layout, Result, Shape};

/// Storage shared by a tensor and its views.
#[derive(Debug)]
pub(crate) struct Storage {
    data: RwLock<BoxedStorage>,
    /// Bumped by every in-place write; autograd compares it with the value seen when a tensor
    /// was saved for backward (PyTorch's "modified by an inplace operation" check).
    version: AtomicU64,
}

impl Storage {
    fn new(data: BoxedStorage) -> Storage {
        Storage {
            data: RwLock::new(data),
            version: AtomicU64::new(0),
        }
    }

    fn read(&self) -> RwLockReadGuard<'_, BoxedStorage> {
        self.data.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, BoxedStorage> {
        self.data.write().unwrap_or_else(|e| e.into_inner())
    }
}

impl Drop for Storage {
    /// Hands a large host buffer to the CPU buffer pool for the next output of its size.
    fn drop(&mut self) {
        let data = self.data.get_mut().unwrap_or_else(|e| e.into_inner());
        if let Some(host) = data.as_any_mut().downcast_mut::<CpuStorage>() {
            crate::cpu::buffer_pool::recycle(host);
        }
    }
}

/// An n-dimensional array with a run-time dtype, living on a [`Device`].
///
/// Cloning a tensor (and every view op) is cheap: it shares storage. Operations return new
/// tensors; only the `*_` in-place methods write into existing storage.
///
/// A tensor is also autograd's variable: one made with [`requires_grad_`](Tensor::requires_grad_)
/// (or computed from one) records the ops applied to it, and [`backward`](Tensor::backward)
/// fills the leaves' [`grad`](Tensor::grad), as in PyTorch (see the `autograd` module).
#[derive(Clone)]
pub struct Tensor {
    storage: Arc<Storage>,
    layout: Layout,
    dtype: DType,
    device: Device,
    /// Autograd state; `None` for tensors that neither require a gradient nor came from one.
    pub(crate) grad_meta: Option<Arc<crate::autograd::Meta>>,
}

impl Tensor {
    /// Wraps a fresh contiguous storage of `shape` (used by ops and backend crates).
    ///
    /// Checks in every build that the shape's element count is addressable and equals the
    /// storage's length: every kernel relies on a tensor's layout staying inside its storage.
    pub fn from_storage(
        storage: BoxedStorage,
        shape: impl Into<Shape>,
        device: Device,
    ) -> Result<Tensor> {
        let shape = shape.into();
        let count = shape.checked_elem_count("from_storage")?;
        if storage.len() != count {
            return Err(Error::ElementCount {
                op: "from_storage",
                len: storage.len(),
                shape,
            });
        }
        Ok(Tensor {
            dtype: storage.dtype(),
            storage: Arc::new(Storage::new(storage)),
            layout: Layout::contiguous(shape),
            device,
            grad_meta: None,
        })
    }

    /// An untracked view of the same storage with another layout (callers keep it in bounds;
    /// view ops record themselves around it).
    pub(crate) fn with_layout(&self, layout: Layout) -> Tensor {
        Tensor {
            storage: self.storage.clone(),
            layout,
            dtype: self.dtype,
            device: self.device.clone(),
            grad_meta: None,
        }
    }

    /// A CPU tensor from a vector and a shape; the length must equal the shape's element count.
    ///
    /// ```
    /// # use sinew_tensor::Tensor;
    /// let t = Tensor::from_vec(vec![1.0f32, 2.0, 3.0, 4.0], [2, 2])?;
    /// assert_eq!(t.dims(), &[2, 2]);
    /// # Ok::<(), sinew_tensor::Error>(())
    /// ```
    pub fn from_vec<T: Element>(data: Vec<T>, shape: impl Into<Shape>) -> Result<Tensor> {
        let shape = shape.into();
        if shape.checked_elem_count("from_vec")? != data.len() {
            return Err(Error::ElementCount {
                op: "from_vec",
                len: data.len(),
                shape,
            });
        }
        Tensor::from_storage(Box::new(T::into_storage(data)), shape, Device::cpu())
    }

    /// A CPU tensor copied from a slice.
    pub fn from_slice<T: Element>(data: &[T], shape: impl Into<Shape>) -> Result<Tensor> {
        Tensor::from_vec(data.to_vec(), shape)
    }

    /// A 0-d CPU tensor holding one value.
    pub fn scalar<T: Element>(value: T) -> Tensor {
        // One element for the 0-d shape: the invariant `from_storage` checks holds by construction.
        Tensor {
            dtype: T::DTYPE,
            storage: Arc::new(Storage::new(Box::new(T::into_storage(vec![value])))),
            layout: Layout::contiguous(Shape::scalar()),
            device: Device::cpu(),
            grad_meta: None,
        }
    }

    /// A tensor on `device` from host storage of the given shape.
    pub fn from_cpu_storage(
        data: CpuStorage,
        shape: impl Into<Shape>,
        device: &Device,
    ) -> Result<Tensor> {
        let shape = shape.into();
        if shape.checked_elem_count("from_cpu_storage")? != data.len() {
            return Err(Error::ElementCount {
                op: "from_cpu_storage",
                len: data.len(),
                shape,
            });
        }
        let storage = device.backend().upload(&data)?;
        Tensor::from_storage(storage, shape, device.clone())
    }

    /// The shape.
    pub fn shape(&self) -> &Shape {
        self.layout.shape()
    }

    /// Dimension sizes.
    pub fn dims(&self) -> &[usize] {
        self.layout.dims()
    }

    /// Size of dimension `dim` (negative counts from the end).
    pub fn dim(&self, dim: isize) -> Result<usize> {
        Ok(self.dims()[self.shape().dim("dim", dim)?])
    }

    /// Number of dimensions.
    pub fn rank(&self) -> usize {
        self.layout.shape().rank()
    }

    /// Number of elements.
    pub fn elem_count(&self) -> usize {
        self.layout.elem_count()
    }

    /// Element type.
    pub fn dtype(&self) -> DType {
        self.dtype
    }

    /// The device holding the storage.
    pub fn device(&self) -> &Device {
        &self.device
    }

    /// Shape, strides and offset of this view.
    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    /// Strides in elements.
    pub fn stride(&self) -> &[usize] {
        self.layout.strides()
    }

    /// True when the view is dense row-major.
    pub fn is_contiguous(&self) -> bool {
        self.layout.is_contiguous()
    }

    /// True when both tensors view the same storage.
    pub fn same_storage(&self, other: &Tensor) -> bool {
        Arc::ptr_eq(&self.storage, &other.storage)
    }

    /// True when no other tensor handle (a clone, a view, a saved copy) shares this one's
    /// storage, so writing into it in place cannot change another tensor. The count cannot grow
    /// behind the caller's back: only a holder of a handle can make another.
    pub(crate) fn owns_storage_alone(&self) -> bool {
        Arc::strong_count(&self.storage) == 1
    }

    /// Read access to the storage for kernels: `f(storage, layout)`.
    pub fn with_storage<R>(&self, f: impl FnOnce(&dyn crate::BackendStorage, &Layout) -> R) -> R {
        let guard = self.storage.read();
        f(&**guard, &self.layout)
    }

    /// Runs `f` with the storages of several tensors, read-locking each distinct storage once
    /// (a storage shared by two operands is never locked twice by one thread).
    pub(crate) fn with_storages<R, const N: usize>(
        tensors: [&Tensor; N],
        f: impl FnOnce([&dyn crate::BackendStorage; N]) -> R,
    ) -> R {
        // On the stack, not in a `Vec`: no allocation per op.
        let mut guards: [Option<(&Arc<Storage>, RwLockReadGuard<'_, BoxedStorage>)>; N] =
            std::array::from_fn(|_| None);
        let mut used = 0;
        let mut slots = [0usize; N];
        for (slot, t) in slots.iter_mut().zip(tensors) {
            let shared = guards[..used]
                .iter()
                .position(|g| g.as_ref().is_some_and(|(s, _)| Arc::ptr_eq(s, &t.storage)));
            *slot = match shared {
                Some(j) => j,
                None => {
                    guards[used] = Some((&t.storage, t.storage.read()));
                    used += 1;
                    used - 1
                }
            };
        }
        f(std::array::from_fn(|i| {
            let (_, guard) = guards[slots[i]]
                .as_ref()
                .expect("every slot names a held guard");
            let storage: &dyn crate::BackendStorage = &***guard;
            storage
        }))
    }

    /// Runs `f` with this tensor's storage and layout, wrapping the new storage into a tensor of `shape`.
    pub(crate) fn map_storage(
        &self,
        shape: impl Into<Shape>,
        f: impl FnOnce(&dyn crate::Backend, &dyn crate::BackendStorage, &Layout) -> Result<BoxedStorage>,
    ) -> Result<Tensor> {
        let out = self.with_storage(|s, l| f(self.device.backend(), s, l))?;
        Tensor::from_storage(out, shape, self.device.clone())
    }

    /// Writes `src` (same shape and dtype) into this tensor's view of its storage, in place.
    ///
    /// Every tensor sharing the storage sees the change. PyTorch equivalent: `self.copy_(src)`.
    pub fn copy_(&self, src: &Tensor) -> Result<()> {
        self.check_same_device("copy_", src)?;
        if self.shape() != src.shape() {
            return Err(Error::ShapeMismatch {
                op: "copy_",
                lhs: self.shape().clone(),
                rhs: src.shape().clone(),
            });
        }
        // Borrow the source unless it must be converted or copied (no handle clone: an
        // optimizer's step calls this per parameter and stays allocation-free).
        let converted;
        let src: &Tensor = if src.dtype != self.dtype {
            converted = src.to_dtype(self.dtype)?;
            &converted
        } else if src.same_storage(self) {
            converted = src.force_contiguous()?;
            &converted
        } else {
            src
        };
        let backend = self.device.backend();
        self.write_with([src], |dst, dst_layout, [src_storage]| {
            backend.copy_into(dst, dst_layout, src_storage, src.layout())
        })
    }

    /// How many in-place writes the storage has seen (shared by every view of it).
    pub fn version(&self) -> u64 {
        self.storage.version.load(Ordering::Acquire)
    }

    /// Runs `f` with this tensor's storage locked for writing and each source's storage locked
    /// for reading, then bumps the version counter. Every in-place op writes through here.
    ///
    /// Errors (before locking anything) when this view is an expanded one, i.e. a dim of size > 1
    /// has stride 0 so several elements are one memory location (PyTorch refuses such writes too),
    /// or when a source shares this tensor's storage (callers copy such a source first; an error
    /// here, never a self-deadlock).
    ///
    /// Locks are taken in address order, so two threads each writing into the other's source
    /// (`a.copy_(&b)` beside `b.copy_(&a)`) cannot deadlock; a storage used by several sources is
    /// read-locked once. Allocation-free.
    pub(crate) fn write_with<R, const N: usize>(
        &self,
        srcs: [&Tensor; N],
        f: impl FnOnce(
            &mut dyn crate::BackendStorage,
            &Layout,
            [&dyn crate::BackendStorage; N],
        ) -> Result<R>,
    ) -> Result<R> {
        let mut guards: [Option<RwLockReadGuard<'_, BoxedStorage>>; N] =
            std::array::from_fn(|_| None);
        let mut dst = self.lock_for_write(&srcs, &mut guards)?;
        let reads: [&dyn crate::BackendStorage; N] =
            std::array::from_fn(|i| read_slot(&srcs, &guards, i));
        let result = f(&mut **dst, &self.layout, reads);
        self.storage.version.fetch_add(1, Ordering::AcqRel);
        result
    }

    /// [`Tensor::write_with`] for a run-time number of sources (custom in-place ops); allocates
    /// the lock list.
    pub(crate) fn write_with_slice<R>(
        &self,
        srcs: &[&Tensor],
        f: impl FnOnce(
            &mut dyn crate::BackendStorage,
            &Layout,
            &[&dyn crate::BackendStorage],
        ) -> Result<R>,
    ) -> Result<R> {
        let mut guards: Vec<Option<RwLockReadGuard<'_, BoxedStorage>>> =
            srcs.iter().map(|_| None).collect();
        let mut dst = self.lock_for_write(srcs, &mut guards)?;
        let reads: Vec<&dyn crate::BackendStorage> = (0..srcs.len())
            .map(|i| read_slot(srcs, &guards, i))
            .collect();
        let result = f(&mut **dst, &self.layout, &reads);
        self.storage.version.fetch_add(1, Ordering::AcqRel);
        result
    }

    /// Runs `f` with the storages of `dsts` locked for writing and those of `srcs` for reading,
    /// in address order (no deadlock beside other writers): several tensors updated by one
    /// kernel (a fused optimizer step). `f` returns whether it wrote; if so, the written
    /// storages' versions are bumped. Sources may share a storage (it is locked once and
    /// handed to `f` for each); `Ok(false)`, with nothing locked or run, when a destination
    /// shares its storage with another tensor.
    pub(crate) fn write_many(
        dsts: &[&Tensor],
        srcs: &[&Tensor],
        f: impl FnOnce(
            &mut [&mut dyn crate::BackendStorage],
            &[&dyn crate::BackendStorage],
        ) -> Result<bool>,
    ) -> Result<bool> {
        let all: Vec<&Tensor> = dsts.iter().chain(srcs).copied().collect();
        // A destination may share with nothing (destinations come first in `all`, so each
        // tensor is checked against every destination before it).
        for (i, t) in all.iter().enumerate() {
            if all[..i.min(dsts.len())].iter().any(|u| u.same_storage(t)) {
                return Ok(false);
            }
        }
        // Each source's first source sharing its storage: the one that is locked.
        let first_of: Vec<usize> = (0..srcs.len())
            .map(|j| (0..j).find(|&k| srcs[k].same_storage(srcs[j])).unwrap_or(j))
            .collect();
        let mut order: Vec<usize> = (0..all.len())
            .filter(|&i| i < dsts.len() || first_of[i - dsts.len()] == i - dsts.len())
            .collect();
        order.sort_by_key(|&i| Arc::as_ptr(&all[i].storage) as usize);
        let mut writes: Vec<Option<RwLockWriteGuard<'_, BoxedStorage>>> =
            dsts.iter().map(|_| None).collect();
        let mut reads: Vec<Option<RwLockReadGuard<'_, BoxedStorage>>> =
            srcs.iter().map(|_| None).collect();
        for i in order {
            match i.checked_sub(dsts.len()) {
                None => writes[i] = Some(all[i].storage.write()),
                Some(j) => reads[j] = Some(all[i].storage.read()),
            }
        }
        let mut storages: Vec<&mut dyn crate::BackendStorage> = writes
            .iter_mut()
            .map(|g| &mut ***g.as_mut().expect("every destination is locked"))
            .collect();
        let sources: Vec<&dyn crate::BackendStorage> = first_of
            .iter()
            .map(|&k| &***reads[k].as_ref().expect("every first sharer is locked"))
            .collect();
        let wrote = f(&mut storages, &sources)?;
        if wrote {
            for t in dsts {
                t.storage.version.fetch_add(1, Ordering::AcqRel);
            }
        }
        Ok(wrote)
    }

    /// Runs `f` with the storages of a run-time number of tensors read-locked (each distinct
    /// storage once, in address order).
    pub(crate) fn with_storage_slice<R>(
        tensors: &[&Tensor],
        f: impl FnOnce(&[&dyn crate::BackendStorage]) -> R,
    ) -> R {
        let mut guards: Vec<Option<RwLockReadGuard<'_, BoxedStorage>>> =
            tensors.iter().map(|_| None).collect();
        for i in address_order(None, tensors) {
            guards[i] = Some(tensors[i].storage.read());
        }
        let reads: Vec<&dyn crate::BackendStorage> = (0..tensors.len())
            .map(|i| read_slot(tensors, &guards, i))
            .collect();
        f(&reads)
    }

    /// The checks of [`Tensor::write_with`], then the locks: this storage for writing (returned)
    /// and, into `guards[i]`, a read lock for each source `i` that is the first with its storage.
    fn lock_for_write<'a>(
        &'a self,
        srcs: &[&'a Tensor],
        guards: &mut [Option<RwLockReadGuard<'a, BoxedStorage>>],
    ) -> Result<RwLockWriteGuard<'a, BoxedStorage>> {
        if crate::is_grad_enabled()
            && (self.requires_grad() || srcs.iter().any(|t| t.requires_grad()))
        {
            return Err(Error::invalid(
                "in-place write",
                if self.is_leaf() && self.requires_grad() {
                    "a leaf tensor that requires grad is being written in place; do it inside `no_grad()` (as optimizers do)"
                } else {
                    "in-place ops are not recorded by autograd; run them inside `no_grad()` or use the out-of-place op"
                },
            ));
        }
        // An empty view writes nothing, whatever its strides.
        if self.elem_count() > 0
            && self
                .layout
                .dims()
                .iter()
                .zip(self.layout.strides())
                .any(|(&d, &s)| d > 1 && s == 0)
        {
            return Err(Error::invalid(
                "in-place write",
                format!(
                    "unsupported operation: some elements of the written-to tensor (shape {}, \
                     strides {:?}) refer to a single memory location (an expanded view); \
                     write into a contiguous copy instead",
                    self.shape(),
                    self.layout.strides()
                ),
            ));
        }
        if srcs.iter().any(|t| t.same_storage(self)) {
            return Err(Error::invalid(
                "in-place write",
                "a source shares the destination's storage (copy it first)",
            ));
        }
        let mut dst = None;
        for slot in address_order(Some(self), srcs) {
            match slot.checked_sub(1) {
                None => dst = Some(self.storage.write()),
                Some(i) => guards[i] = Some(srcs[i].storage.read()),
            }
        }
        Ok(dst.expect("the destination is in the lock order"))
    }
    /// Errors unless `other` is on the same device.
    pub(crate) fn check_same_device(&self, op: &'static str, other: &Tensor) -> Result<()> {
        if self.device != other.device {
            return Err(Error::DeviceMismatch {
                op,
                lhs: self.device.location(),
                rhs: other.device.location(),
            });
        }
        Ok(())
    }

    /// Errors unless `other` has the same dtype.
    pub(crate) fn check_same_dtype(&self, op: &'static str, other: &Tensor) -> Result<()> {
        if self.dtype != other.dtype {
            return Err(Error::DTypeMismatch {
                op,
                lhs: self.dtype,
                rhs: other.dtype,
            });
        }
        Ok(())
    }

    /// Errors unless the dtype is a float.
    pub(crate) fn check_float(&self, op: &'static str) -> Result<()> {
        if !self.dtype.is_float() {
            return Err(Error::UnsupportedDType {
                op,
                dtype: self.dtype,
            });
        }
        Ok(())
    }

    /// Always copies into fresh contiguous storage.
    pub(crate) fn force_contiguous_untracked(&self) -> Result<Tensor> {
        self.map_storage(self.shape().clone(), |b, s, l| b.copy_strided(s, l))
    }

    /// Converts to another dtype (floats to integers truncate toward zero, like PyTorch).
    pub(crate) fn to_dtype_untracked(&self, dtype: DType) -> Result<Tensor> {
        if dtype == self.dtype {
            return Ok(self.clone());
        }
        self.map_storage(self.shape().clone(), |b, s, l| b.cast(s, l, dtype))
    }

    /// Copies the tensor to `device` (a no-op clone when already there).
    pub(crate) fn to_device_untracked(&self, device: &Device) -> Result<Tensor> {
        if *device == self.device {
            return Ok(self.clone());
        }
        let host = self.to_cpu_storage()?;
        Tensor::from_cpu_storage(host, self.shape().clone(), device)
    }

    /// The elements in row-major order as host storage.
    pub fn to_cpu_storage(&self) -> Result<CpuStorage> {
        self.with_storage(|s, l| self.device.backend().download(s, l))
    }

    /// The elements in row-major order; `T` must match the dtype.
    pub fn to_vec<T: Element>(&self) -> Result<Vec<T>> {
        if T::DTYPE != self.dtype {
            return Err(Error::DTypeMismatch {
                op: "to_vec",
                lhs: self.dtype,
                rhs: T::DTYPE,
            });
        }
        let host = self.to_cpu_storage()?;
        let values = T::slice_of(&host).expect("dtype checked");
        let mut out = crate::cpu::alloc::try_with_capacity("to_vec", values.len())?;
        out.extend_from_slice(values);
        Ok(out)
    }

    /// The elements converted to f64, in row-major order (any dtype).
    pub fn to_vec_f64(&self) -> Result<Vec<f64>> {
        self.to_cpu_storage()?.try_to_f64_vec("to_vec_f64")
    }

    /// The single value of a tensor with one element; `T` must match the dtype.
    pub fn to_scalar<T: Element>(&self) -> Result<T> {
        self.check_one_element("to_scalar")?;
        Ok(self.to_vec::<T>()?[0])
    }

    /// The single value of a one-element tensor as f64 (any dtype). PyTorch equivalent: `item()`.
    pub fn item(&self) -> Result<f64> {
        self.check_one_element("item")?;
        Ok(self.to_vec_f64()?[0])
    }

    /// An error from `op` unless the tensor has exactly one element.
    pub(crate) fn check_one_element(&self, op: &'static str) -> Result<()> {
        if self.elem_count() == 1 {
            return Ok(());
        }
        Err(Error::invalid(
            op,
            format!(
                "tensor of shape {} has {} elements, not 1",
                self.shape(),
                self.elem_count()
            ),
        ))
    }
}

/// The storages of `dst` (slot 0, when given) and of `srcs` (slot `i + 1`, or `i` without `dst`)
/// in ascending address order, each distinct storage once (the first source using it).
/// Allocation-free: an iterator that rescans for the next larger address.
fn address_order<'a>(
    dst: Option<&'a Tensor>,
    srcs: &'a [&'a Tensor],
) -> impl Iterator<Item = usize> + 'a {
    let shift = usize::from(dst.is_some());
    let addr = move |slot: usize| -> usize {
        let t = if slot < shift {
            dst.expect("slot 0 is the destination")
        } else {
            srcs[slot - shift]
        };
        Arc::as_ptr(&t.storage) as usize
    };
    let count = srcs.len() + shift;
    let mut last: Option<usize> = None;
    std::iter::from_fn(move || {
        let next = (0..count)
            .filter(|&s| last.is_none_or(|l| addr(s) > l))
            .min_by_key(|&s| (addr(s), s))?;
        last = Some(addr(next));
        Some(next)
    })
}

/// The storage of source `i`, read through the guard of the first source sharing it.
fn read_slot<'g>(
    srcs: &[&Tensor],
    guards: &'g [Option<RwLockReadGuard<'_, BoxedStorage>>],
    i: usize,
) -> &'g dyn crate::BackendStorage {
    let first = srcs
        .iter()
        .position(|t| t.same_storage(srcs[i]))
        .expect("a source is found among the sources");
    &***guards[first]
        .as_ref()
        .expect("the first source with a storage holds its lock")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn from_vec_checks_the_element_count() {
        let err = Tensor::from_vec(vec![1.0f32; 5], [2, 3]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "from_vec: 5 elements do not fill shape [2, 3]"
        );
    }

    #[test]
    fn to_vec_checks_the_dtype() {
        let t = Tensor::from_vec(vec![1i64, 2], [2]).unwrap();
        assert!(t.to_vec::<f32>().is_err());
        assert_eq!(t.to_vec::<i64>().unwrap(), vec![1, 2]);
    }

    #[test]
    fn copy_into_a_view_writes_through_to_the_base() {
        let base = Tensor::zeros([2, 3], DType::F32, &Device::cpu()).unwrap();
        let column = base.narrow(1, 1, 1).unwrap();
        column
            .copy_(&Tensor::from_vec(vec![5.0f32, 7.0], [2, 1]).unwrap())
            .unwrap();
        assert_eq!(
            base.to_vec::<f32>().unwrap(),
            vec![0.0, 5.0, 0.0, 0.0, 7.0, 0.0]
        );
    }

    #[test]
    fn copy_from_an_overlapping_view_of_itself() {
        let t = Tensor::from_vec(vec![1.0f32, 2.0, 3.0], [3]).unwrap();
        let reversed_ish = t.narrow(0, 0, 2).unwrap();
        t.narrow(0, 1, 2).unwrap().copy_(&reversed_ish).unwrap();
        assert_eq!(t.to_vec::<f32>().unwrap(), vec![1.0, 1.0, 2.0]);
    }

    #[test]
    fn tensors_are_send_and_sync() {
        fn check<T: Send + Sync>() {}
        check::<Tensor>();
    }
}
