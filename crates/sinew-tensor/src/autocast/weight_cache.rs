//! Autocast's weight cache (PyTorch's autocast cast cache): inside an autocast scope, the cast
//! of a leaf tensor that requires a gradient (a parameter) is made once and reused by every op
//! of the scope that casts it, until the outermost scope ends. [`cast_ahead`] fills it for
//! many tensors at once (one multi-tensor kernel a few dozen on a GPU, where each weight's cast
//! is otherwise a launch of its own), and [`cached_sources`] says which tensors a forward
//! pass cast, for the next one to cast ahead.

use std::cell::RefCell;
use std::sync::Arc;

use crate::{DType, Result, Tensor, is_grad_enabled};

/// One cast of the cache.
struct CachedCast {
    /// The tensor that was cast (a leaf that requires a gradient).
    source: Tensor,
    /// Its storage's version at the cast: a write in place since makes the cast stale.
    version: u64,
    /// Whether the cast was recorded (made outside `no_grad`): an unrecorded one is not used
    /// where gradients are recorded.
    recorded: bool,
    /// The cast, in its dtype.
    cast: Tensor,
}

thread_local! {
    static CACHE: RefCell<Vec<CachedCast>> = const { RefCell::new(Vec::new()) };
}

/// Whether casts of `t` are cached: a leaf that requires a gradient (PyTorch's rule).
fn cacheable(t: &Tensor) -> bool {
    t.grad_meta.is_some() && t.is_leaf() && t.requires_grad()
}

/// Whether `a` and `b` are the same tracked tensor (one autograd identity).
fn same_tensor(a: &Tensor, b: &Tensor) -> bool {
    match (&a.grad_meta, &b.grad_meta) {
        (Some(a), Some(b)) => Arc::ptr_eq(a, b),
        _ => false,
    }
}

/// Whether `entry` is the cast of `t` to `dtype`, and still usable.
fn matches(entry: &CachedCast, t: &Tensor, dtype: DType) -> bool {
    same_tensor(&entry.source, t)
        && entry.cast.dtype() == dtype
        && entry.source.same_storage(t)
        && entry.source.layout() == t.layout()
        && entry.version == t.version()
        && (entry.recorded || !is_grad_enabled())
}

/// The cached cast of `t` to `dtype`, if there is a usable one.
fn lookup(t: &Tensor, dtype: DType) -> Option<Tensor> {
    CACHE.with(|c| {
        c.borrow()
            .iter()
            .find(|e| matches(e, t, dtype))
            .map(|e| e.cast.clone())
    })
}

/// Caches `cast`, the cast of `source`.
fn insert(source: &Tensor, cast: &Tensor) {
    let entry = CachedCast {
        source: source.clone(),
        version: source.version(),
        recorded: is_grad_enabled(),
        cast: cast.clone(),
    };
    CACHE.with(|c| {
        let mut cache = c.borrow_mut();
        // A stale or unrecorded cast of the same tensor to the same dtype gives way.
        cache.retain(|e| !(same_tensor(&e.source, source) && e.cast.dtype() == cast.dtype()));
        cache.push(entry);
    });
}

/// `t` cast to `dtype` (an eligible float, see `cast_eligible`), through the cache when `t`
/// is a leaf that requires a gradient.
pub(super) fn cast_cached(t: &Tensor, dtype: DType) -> Result<Tensor> {
    if !cacheable(t) {
        return t.to_dtype(dtype);
    }
    if let Some(cast) = lookup(t, dtype) {
        return Ok(cast);
    }
    let cast = t.to_dtype(dtype)?;
    insert(t, &cast);
    Ok(cast)
}

/// Empties the cache (the outermost autocast scope ended).
pub(super) fn clear() {
    // Taken out first, so that dropping the casts cannot reenter the cache.
    let entries = CACHE.with(|c| std::mem::take(&mut *c.borrow_mut()));
    drop(entries);
}

/// Casts now, for the ops of the current autocast scope to use, those of `tensors` that the
/// scope's matrix products and convolutions would cast (floats other than f64 and the scope's
/// dtype) and whose casts are cached (leaves that require a gradient: a model's parameters):
/// on the GPU the dense f32 ones in one multi-tensor kernel a few dozen, where each is
/// otherwise cast by the op that first needs it, in a launch of its own. The casts are
/// recorded as those ops would record them (gradients reach the f32 tensors alike) and last
/// until the outermost autocast scope ends; one whose tensor is written in place before it is
/// used is not used. Does nothing outside an autocast scope.
///
/// Which tensors to pass: [`cached_sources`] at the end of a forward pass names those it cast
/// (a model's weights, not its normalisation parameters, which stay f32), for the next
/// forward pass; the `Trainer` does this in mixed precision.
pub fn cast_ahead(tensors: &[&Tensor]) -> Result<()> {
    let Some(dtype) = super::autocast_dtype() else {
        return Ok(());
    };
    let mut wanted: Vec<&Tensor> = Vec::new();
    for &t in tensors {
        let listed = wanted.iter().any(|w| same_tensor(w, t));
        if !listed && super::eligible(t, dtype) && cacheable(t) && lookup(t, dtype).is_none() {
            wanted.push(t);
        }
    }
    let casts = Tensor::to_dtype_many(&wanted, dtype)?;
    for (source, cast) in wanted.iter().zip(&casts) {
        insert(source, cast);
    }
    Ok(())
}

/// The tensors whose casts the current autocast scopes cached so far, in the order they were
/// first cast: at the end of a forward pass, what to [`cast_ahead`] in the next one.
pub fn cached_sources() -> Vec<Tensor> {
    CACHE.with(|c| c.borrow().iter().map(|e| e.source.clone()).collect())
}
