//! Automatic mixed precision: PyTorch's `torch.autocast`.
//!
//! Inside an [`autocast`] scope the ops that gain from half precision (matrix products,
//! convolutions, linear layers) cast their float inputs to the scope's dtype (f16 or bf16) and
//! return that dtype, while the ops that need range or accuracy (reductions, softmax and
//! log-softmax, `exp`/`log`/`pow`, losses, normalisation statistics) cast half-precision
//! inputs to f32 and return f32. Binary ops promote mixed float dtypes to the wider one (f32 over
//! f16/bf16, as PyTorch's type promotion does), so a bf16 activation plus an f32 residual is f32.
//! f64 tensors are never cast (PyTorch's eligibility rule). Casts are recorded ops: gradients
//! flow back to the f32 parameters in their own dtype (f32 master weights). As in PyTorch, a
//! parameter (a leaf that requires a gradient) is cast once a scope: its cast is cached until
//! the outermost scope ends, and [`cast_ahead`] casts many at once (one multi-tensor kernel a
//! few dozen on a GPU).
//!
//! The scope is per thread, like [`crate::no_grad`]. Backward runs with autocast off: each
//! gradient rule works in the dtypes its forward saw.
//!
//! Ops choose their policy through [`lower_precision`] and [`full_precision`]; a crate adding
//! an op (a fused kernel, a loss) calls the same two functions on its inputs.
//!
//! ```
//! # use sinew_tensor::{autocast, DType, Device, Tensor};
//! let x = Tensor::ones([2, 3], DType::F32, &Device::cpu())?;
//! let w = Tensor::ones([3, 4], DType::F32, &Device::cpu())?;
//! let (y, p) = {
//!     let _amp = autocast::autocast(DType::BF16)?;
//!     let y = x.matmul(&w)?; // runs in bf16
//!     let p = y.softmax(-1)?; // runs in f32
//!     (y, p)
//! };
//! assert_eq!((y.dtype(), p.dtype()), (DType::BF16, DType::F32));
//! # Ok::<(), sinew_tensor::Error>(())
//! ```

mod weight_cache;

use std::cell::Cell;

pub use weight_cache::{cached_sources, cast_ahead};

use crate::{DType, Error, Result, Tensor};

thread_local! {
    static AUTOCAST_DTYPE: Cell<Option<DType>> = const { Cell::new(None) };
}

/// The dtype low-precision ops run in on this thread, or `None` outside an autocast scope.
/// PyTorch: `torch.get_autocast_dtype` when `torch.is_autocast_enabled()`.
pub fn autocast_dtype() -> Option<DType> {
    AUTOCAST_DTYPE.with(Cell::get)
}

/// True inside an [`autocast`] scope on this thread.
pub fn is_autocast_enabled() -> bool {
    autocast_dtype().is_some()
}

/// Restores the previous autocast state when dropped.
#[must_use = "autocast is only switched while the guard lives"]
#[derive(Debug)]
pub struct AutocastGuard {
    previous: Option<DType>,
}

impl Drop for AutocastGuard {
    fn drop(&mut self) {
        AUTOCAST_DTYPE.with(|c| c.set(self.previous));
        if self.previous.is_none() {
            weight_cache::clear();
        }
    }
}

fn set_autocast(dtype: Option<DType>) -> AutocastGuard {
    AutocastGuard {
        previous: AUTOCAST_DTYPE.with(|c| c.replace(dtype)),
    }
}

/// Runs matrix products and convolutions in `dtype` (f16 or bf16) on this thread until the
/// guard drops; see the module docs. PyTorch: `with torch.autocast(device, dtype=dtype):`.
/// Any other dtype is an error.
#[must_use = "autocast is on only while the guard lives: bind it with `let _amp = autocast(..)?;`"]
pub fn autocast(dtype: DType) -> Result<AutocastGuard> {
    if !matches!(dtype, DType::F16 | DType::BF16) {
        return Err(Error::UnsupportedDType {
            op: "autocast (f16 or bf16)",
            dtype,
        });
    }
    Ok(set_autocast(Some(dtype)))
}

/// Turns autocast off until the guard drops (PyTorch: `torch.autocast(..., enabled=False)`).
#[must_use = "autocast is off only while the guard lives: bind it with `let _off = autocast_off();`"]
pub fn autocast_off() -> AutocastGuard {
    set_autocast(None)
}

/// Runs `f` under [`autocast`]`(dtype)`.
pub fn with_autocast<R>(dtype: DType, f: impl FnOnce() -> Result<R>) -> Result<R> {
    let _amp = autocast(dtype)?;
    f()
}

/// Whether autocast casts `t` to `dtype`: a float other than f64 and `dtype`.
fn eligible(t: &Tensor, dtype: DType) -> bool {
    t.dtype().is_float() && t.dtype() != DType::F64 && t.dtype() != dtype
}

/// Casts a float tensor other than f64 to `dtype` (a parameter's cast once a scope, through
/// the weight cache); anything else is returned as it is.
fn cast_eligible(t: &Tensor, dtype: DType) -> Result<Tensor> {
    if eligible(t, dtype) {
        weight_cache::cast_cached(t, dtype)
    } else {
        Ok(t.clone())
    }
}

/// An input of an op that runs in low precision (matmul, convolution, linear): cast to the
/// autocast dtype inside a scope, unchanged outside one.
pub fn lower_precision(t: &Tensor) -> Result<Tensor> {
    match autocast_dtype() {
        Some(dtype) => cast_eligible(t, dtype),
        None => Ok(t.clone()),
    }
}

/// An input of an op that runs in f32 (reductions, softmax, losses, normalisation): an f16 or
/// bf16 tensor is cast to f32 inside a scope; unchanged outside one.
pub fn full_precision(t: &Tensor) -> Result<Tensor> {
    match autocast_dtype() {
        Some(_) if matches!(t.dtype(), DType::F16 | DType::BF16) => t.to_dtype(DType::F32),
        _ => Ok(t.clone()),
    }
}

/// For an op's entry point: its inputs cast by [`lower_precision`] when any of them changes
/// (the op then reruns on them), `None` when the op can go on as it is.
pub(crate) fn lowered(inputs: &[&Tensor]) -> Result<Option<Vec<Tensor>>> {
    let Some(dtype) = autocast_dtype() else {
        return Ok(None);
    };
    if !inputs.iter().any(|t| eligible(t, dtype)) {
        return Ok(None);
    }
    inputs
        .iter()
        .map(|t| cast_eligible(t, dtype))
        .collect::<Result<Vec<_>>>()
        .map(Some)
}

/// For an op's entry point: the input cast to f32 by [`full_precision`] when that changes it,
/// `None` when the op can go on as it is.
pub(crate) fn widened(t: &Tensor) -> Result<Option<Tensor>> {
    if is_autocast_enabled() && matches!(t.dtype(), DType::F16 | DType::BF16) {
        return t.to_dtype(DType::F32).map(Some);
    }
    Ok(None)
}

/// The dtype PyTorch's type promotion gives two float dtypes: the wider one, and f32 for
/// f16 with bf16. `None` unless both are floats.
pub fn promote_floats(a: DType, b: DType) -> Option<DType> {
    if !a.is_float() || !b.is_float() {
        return None;
    }
    let rank = |d: DType| match d {
        DType::F64 => 3,
        DType::F32 => 2,
        _ => 1,
    };
    Some(match (a, b) {
        _ if a == b => a,
        (DType::F16, DType::BF16) | (DType::BF16, DType::F16) => DType::F32,
        _ if rank(a) >= rank(b) => a,
        _ => b,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Device;

    #[test]
    fn scopes_nest_and_restore() -> Result<()> {
        assert_eq!(autocast_dtype(), None);
        {
            let _a = autocast(DType::BF16)?;
            assert_eq!(autocast_dtype(), Some(DType::BF16));
            {
                let _off = autocast_off();
                assert!(!is_autocast_enabled());
            }
            assert_eq!(autocast_dtype(), Some(DType::BF16));
        }
        assert_eq!(autocast_dtype(), None);
        assert!(autocast(DType::F32).is_err());
        Ok(())
    }

    #[test]
    fn policies_cast_only_eligible_tensors() -> Result<()> {
        let cpu = Device::cpu();
        let f32s = Tensor::ones([2], DType::F32, &cpu)?;
        let f64s = Tensor::ones([2], DType::F64, &cpu)?;
        let ints = Tensor::ones([2], DType::I64, &cpu)?;
        let halves = Tensor::ones([2], DType::F16, &cpu)?;
        assert_eq!(lower_precision(&f32s)?.dtype(), DType::F32);
        let _a = autocast(DType::F16)?;
        assert_eq!(lower_precision(&f32s)?.dtype(), DType::F16);
        assert_eq!(lower_precision(&f64s)?.dtype(), DType::F64);
        assert_eq!(lower_precision(&ints)?.dtype(), DType::I64);
        assert_eq!(full_precision(&halves)?.dtype(), DType::F32);
        assert_eq!(full_precision(&f64s)?.dtype(), DType::F64);
        Ok(())
    }

    #[test]
    fn promotion_follows_pytorch() {
        use DType::*;
        assert_eq!(promote_floats(F16, F32), Some(F32));
        assert_eq!(promote_floats(BF16, F64), Some(F64));
        assert_eq!(promote_floats(F16, BF16), Some(F32));
        assert_eq!(promote_floats(BF16, BF16), Some(BF16));
        assert_eq!(promote_floats(F32, I64), None);
    }
}
