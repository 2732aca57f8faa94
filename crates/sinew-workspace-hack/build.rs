//! Empty on purpose: it exists so that `[build-dependencies]` can pin the host-side features
//! (`syn` for the derive macros) to the same set in every build.

fn main() {}
