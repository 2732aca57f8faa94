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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nan_follows_pythons_order() {
        assert_eq!(py_min(1.0, 2.0), 1.0);
        assert_eq!(py_max(1.0, 2.0), 2.0);
        // min(1.0, nan) is 1.0 in Python, min(nan, 1.0) is nan.
        assert_eq!(py_min(1.0, f64::NAN), 1.0);
        assert!(py_min(f64::NAN, 1.0).is_nan());
        assert_eq!(py_max(1.0, f64::NAN), 1.0);
        assert!(py_max(f64::NAN, 1.0).is_nan());
    }
}
