//! sinew-tensor's integration tests.
//!
//! One test binary for the files of this folder (each a module below): one link and one
//! build of the shared code instead of one per file. The files that need a process of their
//! own (a global allocator, the default generator's seed, a release build of their own) stay
//! beside this folder as separate test binaries. `cargo xtask`'s unit tests check that every
//! file here is declared below.

#[path = "../common/mod.rs"]
mod common;

mod autocast;
mod autocast_cache;
mod backend_defaults;
mod custom_op;
mod dtype_roundtrip;
mod edge_cases;
mod errors;
mod foreach;
mod hand_conv_pool;
mod hand_elementwise;
mod hand_reduce_index;
mod inplace;
mod matmul_with;
mod prop_broadcast;
mod prop_index;
mod prop_matmul;
mod prop_reduce;
mod prop_views;
mod softmax_xent;
mod special_values;
