//! Shared by the tests: PyTorch reference files and value comparison.

#![allow(dead_code)]

use std::path::PathBuf;

use sinew_nn::{StateDict, load_safetensors};
use sinew_tensor::Tensor;

/// `tests/reference/<name>`, written by `tests/reference/make_reference.py`.
pub fn reference_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/reference")
        .join(name)
}

/// A reference safetensors file.
pub fn reference(name: &str) -> StateDict {
    load_safetensors(reference_path(name)).expect("reference file loads")
}

/// A required tensor of a reference file.
pub fn get(sd: &StateDict, key: &str) -> Tensor {
    sd.get(key)
        .unwrap_or_else(|| panic!("reference key {key} is missing"))
        .clone()
}

/// `None` when `got` matches `want` within `atol + rtol * |want|` everywhere (NaN matches
/// NaN), else a message naming `what` and the worst element.
pub fn mismatch(what: &str, got: &Tensor, want: &Tensor, atol: f64, rtol: f64) -> Option<String> {
    if got.dims() != want.dims() {
        return Some(format!(
            "{what}: shape {:?}, PyTorch {:?}",
            got.dims(),
            want.dims()
        ));
    }
    let values = |t: &Tensor| {
        t.to_dtype(sinew_tensor::DType::F64)
            .and_then(|t| t.to_vec_f64())
    };
    let (g, w) = match (values(got), values(want)) {
        (Ok(g), Ok(w)) => (g, w),
        (Err(e), _) | (_, Err(e)) => return Some(format!("{what}: cannot read values: {e}")),
    };
    let mut worst: Option<(usize, f64)> = None;
    for (i, (a, b)) in g.iter().zip(&w).enumerate() {
        if (a.is_nan() && b.is_nan()) || a == b {
            continue;
        }
        let err = (a - b).abs();
        // NaN on one side only, or beyond the tolerance.
        let bad = err.is_nan() || err > atol + rtol * b.abs();
        if bad && worst.is_none_or(|(_, e)| err > e) {
            worst = Some((i, err));
        }
    }
    worst.map(|(i, err)| {
        format!(
            "{what}: element {i} is {} but PyTorch has {} (|diff| {err:e})",
            g[i], w[i]
        )
    })
}

/// Panics listing every failure.
pub fn assert_no_failures(failures: &[String]) {
    assert!(
        failures.is_empty(),
        "{} mismatches:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
