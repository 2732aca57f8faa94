//! Host memory of one dtype: the data every backend uploads from and downloads to.
//!
//! Neutral ground between the [`Backend`](crate::Backend) interface and its implementations:
//! `backend.rs` and `cpu/` both use it, so the interface does not depend on the CPU backend.
//! Also reachable as `sinew_tensor::CpuStorage` and `sinew_tensor::cpu::CpuStorage`.

use half::{bf16, f16};

use crate::backend::BackendStorage;
use crate::{DType, Error, Result};

/// Runs `$body` with `$v` bound to the typed vector inside a [`CpuStorage`].
#[macro_export]
#[doc(hidden)]
macro_rules! with_cpu_storage {
    ($storage:expr, $v:ident => $body:expr) => {
        match $storage {
            $crate::cpu::CpuStorage::F32($v) => $body,
            $crate::cpu::CpuStorage::F64($v) => $body,
            $crate::cpu::CpuStorage::F16($v) => $body,
            $crate::cpu::CpuStorage::BF16($v) => $body,
            $crate::cpu::CpuStorage::I64($v) => $body,
            $crate::cpu::CpuStorage::U8($v) => $body,
            $crate::cpu::CpuStorage::Bool($v) => $body,
        }
    };
}

/// Host memory of one dtype.
#[derive(Debug, Clone, PartialEq)]
pub enum CpuStorage {
    /// f32 elements.
    F32(Vec<f32>),
    /// f64 elements.
    F64(Vec<f64>),
    /// f16 elements.
    F16(Vec<f16>),
    /// bf16 elements.
    BF16(Vec<bf16>),
    /// i64 elements.
    I64(Vec<i64>),
    /// u8 elements.
    U8(Vec<u8>),
    /// bool elements.
    Bool(Vec<bool>),
}

impl CpuStorage {
    /// Element type.
    pub fn dtype(&self) -> DType {
        match self {
            CpuStorage::F32(_) => DType::F32,
            CpuStorage::F64(_) => DType::F64,
            CpuStorage::F16(_) => DType::F16,
            CpuStorage::BF16(_) => DType::BF16,
            CpuStorage::I64(_) => DType::I64,
            CpuStorage::U8(_) => DType::U8,
            CpuStorage::Bool(_) => DType::Bool,
        }
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        with_cpu_storage!(self, v => v.len())
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Every element converted to f64.
    pub fn to_f64_vec(&self) -> Vec<f64> {
        use crate::Element;
        with_cpu_storage!(self, v => v.iter().map(|x| x.to_f64()).collect())
    }

    /// Every element converted to f64, allocated fallibly (an out-of-memory error names `op`).
    pub fn try_to_f64_vec(&self, op: &'static str) -> crate::Result<Vec<f64>> {
        use crate::Element;
        let mut out = crate::cpu::alloc::try_with_capacity(op, self.len())?;
        with_cpu_storage!(self, v => out.extend(v.iter().map(|x| x.to_f64())));
        Ok(out)
    }

    /// Raw little-endian bytes (for serialisation and device uploads).
    pub fn as_bytes(&self) -> &[u8] {
        match self {
            CpuStorage::F32(v) => bytemuck::cast_slice(v),
            CpuStorage::F64(v) => bytemuck::cast_slice(v),
            CpuStorage::F16(v) => bytemuck::cast_slice(v),
            CpuStorage::BF16(v) => bytemuck::cast_slice(v),
            CpuStorage::I64(v) => bytemuck::cast_slice(v),
            CpuStorage::U8(v) => v,
            CpuStorage::Bool(v) => {
                // SAFETY: `bool` has size and alignment 1 and is always 0 or 1, so each bool is a
                // valid `u8`; the slice covers exactly the `v.len()` initialised elements of `v`
                // and borrows `self`, so it cannot outlive or alias a write. Holds by type layout
                // in every build (no run-time check needed).
                unsafe { std::slice::from_raw_parts(v.as_ptr().cast::<u8>(), v.len()) }
            }
        }
    }

    /// Storage of `dtype` from little-endian bytes (the inverse of [`CpuStorage::as_bytes`]).
    pub fn from_bytes(dtype: DType, bytes: &[u8]) -> Result<CpuStorage> {
        let size = dtype.size_in_bytes();
        if !bytes.len().is_multiple_of(size) {
            return Err(Error::invalid(
                "from_bytes",
                format!(
                    "{} bytes is not a whole number of {dtype} elements",
                    bytes.len()
                ),
            ));
        }
        fn read<T: bytemuck::Pod>(bytes: &[u8]) -> Vec<T> {
            bytemuck::pod_collect_to_vec(bytes)
        }
        Ok(match dtype {
            DType::F32 => CpuStorage::F32(read(bytes)),
            DType::F64 => CpuStorage::F64(read(bytes)),
            DType::F16 => CpuStorage::F16(read(bytes)),
            DType::BF16 => CpuStorage::BF16(read(bytes)),
            DType::I64 => CpuStorage::I64(read(bytes)),
            DType::U8 => CpuStorage::U8(bytes.to_vec()),
            DType::Bool => {
                if let Some(b) = bytes.iter().find(|&&b| b > 1) {
                    return Err(Error::invalid(
                        "from_bytes",
                        format!("byte {b} is not a bool"),
                    ));
                }
                CpuStorage::Bool(bytes.iter().map(|&b| b == 1).collect())
            }
        })
    }
}

impl BackendStorage for CpuStorage {
    fn dtype(&self) -> DType {
        CpuStorage::dtype(self)
    }
    fn len(&self) -> usize {
        CpuStorage::len(self)
    }
    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
    fn as_any_mut(&mut self) -> &mut dyn std::any::Any {
        self
    }
}
