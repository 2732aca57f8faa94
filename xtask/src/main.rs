//! `cargo xtask <command>`: project automation.
fn main() {}
