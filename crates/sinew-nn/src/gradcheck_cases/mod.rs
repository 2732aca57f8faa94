//! Gradcheck entries for every layer and loss (feature `testing`): `cargo xtask gradcheck`
//! runs them after the tensor ops. Each checks the functional form in f64 with the parameters
//! as inputs, on proptest-drawn shapes and values away from kinks.

mod layers;
mod losses;
mod resampling;

pub use sinew_autograd::gradcheck::cases::GradcheckEntry;

/// Every sinew-nn entry: layers, then losses.
pub fn registry() -> Vec<GradcheckEntry> {
    let mut all = layers::entries();
    all.extend(resampling::entries());
    all.extend(losses::entries());
    all
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_entry_passes_a_few_cases_and_names_are_unique() {
        let entries = registry();
        let mut names: Vec<&str> = entries.iter().map(|e| e.op).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(
            names.len(),
            entries.len(),
            "duplicate gradcheck entry names"
        );
        for entry in entries {
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
