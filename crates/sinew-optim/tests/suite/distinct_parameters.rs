//! An optimizer refuses a parameter listed twice or two parameters with one name before it
//! updates anything.

use sinew_tensor::{Parameter, Tensor};

use sinew_optim::{Optimizer, SgdConfig, sgd};

fn param(v: f32) -> Parameter {
    Parameter::new(Tensor::from_vec(vec![v, v], [2]).unwrap())
}

/// A step of SGD with momentum over `params`, every gradient 1: the error, if any, and
/// the values after it.
fn step(params: Vec<(&str, Parameter)>) -> (Option<String>, Vec<Vec<f32>>) {
    for (_, p) in &params {
        p.value()
            .set_grad(Some(Tensor::from_vec(vec![1.0f32; 2], [2]).unwrap()))
            .unwrap();
    }
    let named = params.iter().map(|(n, p)| (n.to_string(), p.clone()));
    let mut opt = sgd(named.collect(), SgdConfig::new(0.5).momentum(0.9));
    let err = opt.step().err().map(|e| e.to_string());
    let values = params
        .iter()
        .map(|(_, p)| p.value().to_vec::<f32>().unwrap())
        .collect();
    (err, values)
}

#[test]
fn repeated_parameters_or_names_are_refused_before_any_update() {
    let (a, b) = (param(1.0), param(2.0));
    // The same parameter twice would have stepped twice (1 - 0.5 - 0.5 = 0).
    let (err, values) = step(vec![("a", a.clone()), ("b", b.clone()), ("c", a.clone())]);
    let err = err.unwrap();
    assert!(err.contains("`c` is listed twice (also as `a`)"), "{err}");
    assert_eq!(values, [vec![1.0; 2], vec![2.0; 2], vec![1.0; 2]]);
    // Two models' `0.weight`s would have shared one momentum buffer.
    let (err, values) = step(vec![("0.weight", a.clone()), ("0.weight", b.clone())]);
    assert!(err.unwrap().contains("two parameters are named `0.weight`"));
    assert_eq!(values, [vec![1.0; 2], vec![2.0; 2]]);
    // Distinct names and parameters step once each.
    let (err, values) = step(vec![("a", a), ("b", b)]);
    assert_eq!(err, None);
    assert_eq!(values, [vec![0.5; 2], vec![1.5; 2]]);
}

#[test]
fn changed_groups_are_checked_again() {
    let (a, b) = (param(1.0), param(2.0));
    let mut opt = sgd(
        vec![("a".into(), a.clone()), ("b".into(), b)],
        SgdConfig::new(0.5),
    );
    opt.step().unwrap();
    opt.groups_mut()[0].params[1].param = a;
    let err = opt.step().unwrap_err().to_string();
    assert!(err.contains("`b` is listed twice (also as `a`)"), "{err}");
}
