//! sinew-optim's integration tests.
//!
//! One test binary for the files of this folder (each a module below): one link and one
//! build of the shared code instead of one per file. The files that need a process of their
//! own (a global allocator, the default generator's seed, a release build of their own) stay
//! beside this folder as separate test binaries. `cargo xtask`'s unit tests check that every
//! file here is declared below.

mod adafactor;
mod averaged_model;
mod builders;
mod distinct_parameters;
mod fused_plans;
mod grad_scaler;
mod invalid_options;
mod lbfgs;
mod schedules;
mod torch_resume;
mod trajectories;
