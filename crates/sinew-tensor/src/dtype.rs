//! Element types chosen at run time, and the Rust types behind them.

use half::{bf16, f16};

/// The element type of a tensor, chosen at run time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DType {
    /// 32-bit float (the default).
    F32,
    /// 64-bit float.
    F64,
    /// IEEE half precision; arithmetic accumulates in f32.
    F16,
    /// bfloat16; arithmetic accumulates in f32.
    BF16,
    /// 64-bit signed integer (labels, indices).
    I64,
    /// 8-bit unsigned integer (images).
    U8,
    /// Boolean (masks, comparison results).
    Bool,
}

impl DType {
    /// Every dtype, in declaration order.
    pub const ALL: [DType; 7] = [
        DType::F32,
        DType::F64,
        DType::F16,
        DType::BF16,
        DType::I64,
        DType::U8,
        DType::Bool,
    ];

    /// Size of one element in bytes.
    pub fn size_in_bytes(self) -> usize {
        match self {
            DType::F32 => 4,
            DType::F64 | DType::I64 => 8,
            DType::F16 | DType::BF16 => 2,
            DType::U8 | DType::Bool => 1,
        }
    }

    /// True for the floating-point dtypes.
    pub fn is_float(self) -> bool {
        matches!(self, DType::F32 | DType::F64 | DType::F16 | DType::BF16)
    }

    /// Short lowercase name, as used in kernel names (`f32`, `bf16`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            DType::F32 => "f32",
            DType::F64 => "f64",
            DType::F16 => "f16",
            DType::BF16 => "bf16",
            DType::I64 => "i64",
            DType::U8 => "u8",
            DType::Bool => "bool",
        }
    }
}

impl std::fmt::Display for DType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A Rust type that can be the element of a tensor.
pub trait Element: Copy + Send + Sync + PartialOrd + std::fmt::Debug + 'static {
    /// The run-time dtype of this type.
    const DTYPE: DType;
    /// Converts to f64 (booleans become 0 or 1).
    fn to_f64(self) -> f64;
    /// Converts from f64, rounding and saturating as `as` casts do.
    fn from_f64(v: f64) -> Self;
    /// Wraps a vector of this type into CPU storage.
    fn into_storage(data: Vec<Self>) -> crate::cpu::CpuStorage;
    /// Borrows CPU storage as a slice of this type, if the dtype matches.
    fn slice_of(storage: &crate::cpu::CpuStorage) -> Option<&[Self]>;
}

macro_rules! element {
    ($t:ty, $dtype:ident, $to:expr, $from:expr) => {
        impl Element for $t {
            const DTYPE: DType = DType::$dtype;
            fn to_f64(self) -> f64 {
                #[allow(clippy::redundant_closure_call)]
                ($to)(self)
            }
            fn from_f64(v: f64) -> Self {
                #[allow(clippy::redundant_closure_call)]
                ($from)(v)
            }
            fn into_storage(data: Vec<Self>) -> crate::cpu::CpuStorage {
                crate::cpu::CpuStorage::$dtype(data)
            }
            fn slice_of(storage: &crate::cpu::CpuStorage) -> Option<&[Self]> {
                match storage {
                    crate::cpu::CpuStorage::$dtype(v) => Some(v),
                    _ => None,
                }
            }
        }
    };
}

element!(f32, F32, |x: f32| x as f64, |v: f64| v as f32);
element!(f64, F64, |x: f64| x, |v: f64| v);
element!(f16, F16, |x: f16| x.to_f64(), f16::from_f64);
element!(bf16, BF16, |x: bf16| x.to_f64(), bf16::from_f64);
element!(i64, I64, |x: i64| x as f64, |v: f64| v as i64);
element!(u8, U8, |x: u8| x as f64, |v: f64| v as u8);
element!(bool, Bool, |x: bool| x as u8 as f64, |v: f64| v != 0.0);
