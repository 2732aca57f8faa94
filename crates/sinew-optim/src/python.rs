//! Python's `min` and `max` of two numbers, which PyTorch's optimizers use on floats and 0-d
//! tensors: the first argument unless the second is strictly smaller (larger), so a NaN
//! compares as neither and the result depends on the order, unlike `f64::min`/`f64::max`.

/// Python's `min(a, b)`: `b` only when `b < a`.
pub(crate) fn py_min(a: f64, b: f64) -> f64 {
    if b < a { b } else { a }
}

/// Python's `max(a, b)`: `b` only when `b > a`.
pub(crate) fn py_max(a: f64, b: f64) -> f64 {
    if b > a { b } else { a }
}
