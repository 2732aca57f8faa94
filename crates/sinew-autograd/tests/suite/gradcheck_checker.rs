//! The gradient checker itself: it passes a correct rule and fails a wrong or missing one, and
//! its registry has exactly one passing entry per differentiable op-table entry.

use sinew_autograd::Save;
use sinew_autograd::gradcheck::cases::registry;
use sinew_autograd::gradcheck::{GradcheckOptions, gradcheck};
use sinew_tensor::op_table::OP_TABLE;
use sinew_tensor::{Result, Tensor};

fn x() -> Tensor {
    Tensor::from_vec(vec![0.5f64, -1.5, 2.0, 0.25], [2, 2]).unwrap()
}

#[test]
fn a_correct_rule_passes() {
    let r = gradcheck(
        |v| v[0].exp()?.matmul(&v[0]),
        &[x()],
        GradcheckOptions::default(),
    )
    .unwrap();
    assert!(r.passed(), "{r:?}");
    assert_eq!(r.checked, 4);
    assert!(r.max_abs_err < 1e-6);
}

#[test]
fn a_deliberately_wrong_rule_fails() {
    // exp with a backward that forgets the chain rule's factor of 2 on half the inputs.
    let wrong_exp = |v: &Tensor| -> Result<Tensor> {
        let out = v.exp()?;
        Ok(Tensor::from_op(
            out,
            "wrong_exp",
            &[v],
            Save::OUTPUT,
            |ctx, g| Ok(vec![Some(g.mul(&ctx.output()?)?.mul_scalar(2.0)?)]),
        ))
    };
    let r = gradcheck(|v| wrong_exp(&v[0]), &[x()], GradcheckOptions::default()).unwrap();
    assert!(!r.passed());
    assert!(r.failure.unwrap().contains("element 0"));
}

#[test]
fn a_dropped_gradient_fails() {
    // A rule that returns no gradient at all is caught too.
    let silent = |v: &Tensor| -> Result<Tensor> {
        let out = v.sin()?;
        Ok(Tensor::from_op(
            out,
            "silent_sin",
            &[v],
            Save::NOTHING,
            |_, _| Ok(vec![None]),
        ))
    };
    let r = gradcheck(|v| silent(&v[0]), &[x()], GradcheckOptions::default()).unwrap();
    assert!(!r.passed());
}

#[test]
fn the_step_size_matters_as_in_micrograd() {
    // With a huge step the finite difference of a curved function is off: the check fails.
    let opts = GradcheckOptions {
        eps: 0.5,
        ..Default::default()
    };
    let r = gradcheck(|v| v[0].exp(), &[x()], opts).unwrap();
    assert!(!r.passed());
}

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
