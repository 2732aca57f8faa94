//! One gradcheck entry per differentiable op of the op table, grouped by family. Each entry
//! draws proptest cases (random shapes with broadcasting, non-contiguous views, size-1 dims,
//! values away from kinks) and checks them with [`gradcheck`](super::gradcheck).

mod conv;
mod elementwise;
mod reduce;
mod shape;

use super::strategy::OpOutcome;

/// A named check: `run(cases)` draws that many cases and reports the worst error.
pub struct GradcheckEntry {
    /// The op-table name it covers.
    pub op: &'static str,
    /// Runs the given number of proptest cases.
    pub run: Box<dyn Fn(u32) -> OpOutcome + Send + Sync>,
}

impl GradcheckEntry {
    /// An entry from a name and a runner.
    pub fn new(op: &'static str, run: impl Fn(u32) -> OpOutcome + Send + Sync + 'static) -> Self {
        GradcheckEntry {
            op,
            run: Box::new(run),
        }
    }
}

/// Every entry, in op-table order of families.
pub fn registry() -> Vec<GradcheckEntry> {
    let mut all = elementwise::entries();
    all.extend(reduce::entries());
    all.extend(shape::entries());
    all.extend(conv::entries());
    all
}
