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

#[cfg(test)]
mod tests {
    use super::*;
    use sinew_tensor::op_table::OP_TABLE;

    #[test]
    fn every_differentiable_op_has_a_gradcheck_entry() {
        let names: Vec<&str> = registry().iter().map(|e| e.op).collect();
        let mut unique = names.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), names.len(), "an op has two gradcheck entries");
        for op in OP_TABLE.iter().filter(|o| o.differentiable) {
            assert!(
                names.contains(&op.name),
                "no gradcheck entry for `{}`",
                op.name
            );
        }
        for name in &names {
            assert!(
                OP_TABLE.iter().any(|o| o.name == *name && o.differentiable),
                "`{name}` is not a differentiable op-table entry"
            );
        }
    }

    #[test]
    fn every_entry_passes_a_few_cases() {
        for entry in registry() {
            let outcome = (entry.run)(3);
            assert!(
                outcome.failure.is_none(),
                "{}: {:?}",
                entry.op,
                outcome.failure
            );
            assert!(
                outcome.cases >= 3,
                "{} ran {} cases",
                entry.op,
                outcome.cases
            );
        }
    }
}
