//! The thread-local switch that turns graph recording off (`no_grad`) or back on (`enable_grad`).

use std::cell::Cell;

thread_local! {
    static GRAD_ENABLED: Cell<bool> = const { Cell::new(true) };
}

/// True when ops on this thread record the graph (the default).
pub fn is_grad_enabled() -> bool {
    GRAD_ENABLED.with(Cell::get)
}

/// Restores the previous recording mode when dropped.
#[must_use = "recording is only switched while the guard lives"]
#[derive(Debug)]
pub struct GradModeGuard {
    previous: bool,
}

impl Drop for GradModeGuard {
    fn drop(&mut self) {
        GRAD_ENABLED.with(|g| g.set(self.previous));
    }
}

fn set_grad_enabled(enabled: bool) -> GradModeGuard {
    GradModeGuard {
        previous: GRAD_ENABLED.with(|g| g.replace(enabled)),
    }
}

/// Stops recording on this thread until the guard drops. PyTorch equivalent: `torch.no_grad()`.
///
/// Bind the guard to a named variable (`let _guard = no_grad();`): `let _ = no_grad();` drops it
/// at once and records as before. [`with_no_grad`] cannot be misused that way.
///
/// ```
/// # use sinew_tensor::{no_grad, Tensor};
/// let w = Tensor::from_vec(vec![1.0f32], [1])?.requires_grad_();
/// let y = {
///     let _guard = no_grad();
///     w.mul_scalar(2.0)?
/// };
/// assert!(!y.requires_grad());
/// # Ok::<(), sinew_tensor::Error>(())
/// ```
#[must_use = "recording is off only while the guard lives: bind it with `let _guard = no_grad();`"]
pub fn no_grad() -> GradModeGuard {
    set_grad_enabled(false)
}

/// Runs `f` with recording off. PyTorch: `with torch.no_grad(): ...`.
///
/// ```
/// # use sinew_tensor::{with_no_grad, Tensor};
/// let w = Tensor::from_vec(vec![1.0f32], [1])?.requires_grad_();
/// let y = with_no_grad(|| w.mul_scalar(2.0))?;
/// assert!(!y.requires_grad());
/// # Ok::<(), sinew_tensor::Error>(())
/// ```
pub fn with_no_grad<R>(f: impl FnOnce() -> R) -> R {
    let _guard = no_grad();
    f()
}

/// Turns recording on until the guard drops (inside a `no_grad` scope, or for `create_graph`).
#[must_use = "recording is on only while the guard lives: bind it with `let _guard = enable_grad();`"]
pub fn enable_grad() -> GradModeGuard {
    set_grad_enabled(true)
}
