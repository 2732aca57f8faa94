//! sinew-train's integration tests.
//!
//! One test binary for the files of this folder (each a module below): one link and one
//! build of the shared code instead of one per file. The files that need a process of their
//! own (a global allocator, the default generator's seed, a release build of their own) stay
//! beside this folder as separate test binaries. `cargo xtask`'s unit tests check that every
//! file here is declared below.

#[path = "../common/mod.rs"]
mod common;

mod averaging;
mod closure_optimizers;
mod fit;
mod plots;
mod update_bn;
