//! Helpers shared by the integration tests: scratch folders and small synthetic datasets.
#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};

use sinew_data::{ImageU8, Sample};

/// A fresh, empty folder under Cargo's per-target scratch directory.
pub fn scratch_dir(name: &str) -> PathBuf {
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join("sinew-data-tests")
        .join(format!("{name}-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// `n` RGB images of `h × w` with distinct deterministic pixels; label = index % 10.
pub fn rgb_samples(n: usize, h: usize, w: usize) -> Vec<Sample> {
    (0..n)
        .map(|i| {
            let data = (0..h * w * 3)
                .map(|k| ((i * 31 + k * 7) % 256) as u8)
                .collect();
            Sample::image_u8(ImageU8::new(h, w, 3, data).unwrap(), (i % 10) as i64)
        })
        .collect()
}

/// Where the real datasets live (`/work/shared/data` next to the checkout).
pub fn shared_data() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data");
    assert!(
        dir.join("README.md").exists(),
        "real datasets expected at {}",
        dir.display()
    );
    dir
}
