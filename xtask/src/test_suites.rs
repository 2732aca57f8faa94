//! A check of the workspace's layout (a unit test of xtask, so `cargo test --workspace` runs it):
//! every crate's integration tests under `tests/suite/` build as one test binary whose
//! `main.rs` declares each file as a module, and a file it leaves out would never be compiled
//! or run. This test names any such file.

use std::path::Path;

use crate::nvcc::workspace_root;

/// The `.rs` files of `dir` (besides `main.rs`) that `main.rs` does not declare with `mod`.
fn undeclared_modules(dir: &Path) -> Result<Vec<String>, String> {
    let main = std::fs::read_to_string(dir.join("main.rs"))
        .map_err(|e| format!("{}: {e}", dir.join("main.rs").display()))?;
    let declared: Vec<&str> = main
        .lines()
        .filter_map(|l| l.trim().strip_prefix("mod ")?.strip_suffix(';'))
        .collect();
    let mut missing = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))? {
        let path = entry.map_err(|e| e.to_string())?.path();
        let Some(stem) = path.file_stem().and_then(|s| s.to_str()) else {
            continue;
        };
        let is_source = path.extension().is_some_and(|e| e == "rs");
        if is_source && stem != "main" && !declared.contains(&stem) {
            missing.push(path.display().to_string());
        }
    }
    Ok(missing)
}

#[test]
fn every_file_of_a_test_suite_is_one_of_its_modules() {
    let crates = workspace_root().join("crates");
    let mut suites = 0;
    for entry in std::fs::read_dir(&crates).unwrap() {
        let suite = entry.unwrap().path().join("tests/suite");
        if suite.join("main.rs").is_file() {
            suites += 1;
            let missing = undeclared_modules(&suite).unwrap();
            assert!(
                missing.is_empty(),
                "not declared in their suite's main.rs, so never run: {missing:?}"
            );
        }
    }
    assert!(
        suites >= 6,
        "found {suites} test suites under {}",
        crates.display()
    );
}

#[test]
fn a_file_left_out_of_main_is_named() {
    let dir = std::env::temp_dir().join(format!("xtask-suite-check-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("main.rs"), "mod common;\nmod kept;\n").unwrap();
    for file in ["kept.rs", "forgotten.rs", "notes.txt"] {
        std::fs::write(dir.join(file), "").unwrap();
    }
    let missing = undeclared_modules(&dir).unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(missing.len(), 1, "{missing:?}");
    assert!(missing[0].ends_with("forgotten.rs"), "{missing:?}");
}
