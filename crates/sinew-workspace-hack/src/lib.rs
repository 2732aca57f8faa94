//! No code: this crate only pins one feature set per dependency across the workspace (see its
//! `Cargo.toml`), so `cargo test --workspace`, `cargo run -p …` and the release builds reuse each
//! other's compiled crates instead of rebuilding them with different features.
