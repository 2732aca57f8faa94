//! L-BFGS against PyTorch's `torch.optim.LBFGS` (`tests/reference/gen_lbfgs.py`): parameters,
//! returned losses, evaluation and iteration counts after each `step(closure)`, and the state
//! after the last, with and without the strong-Wolfe line search; its state's round trip;
//! `step_with` on the other optimizers; and its errors.

use sinew_nn::loss::{Reduction, mse_loss};
use sinew_nn::{StateDict, load_safetensors};
use sinew_optim::*;
use sinew_tensor::{DType, Parameter, Result, Tensor};

fn reference() -> StateDict {
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/reference/lbfgs.safetensors");
    load_safetensors(path).expect("reference file")
}

fn values(t: &Tensor) -> Vec<f64> {
    t.to_dtype(DType::F64).unwrap().to_vec::<f64>().unwrap()
}

/// Asserts `got` is within `tol * (1 + |want|)` of `want`, entry by entry.
fn assert_close(got: &[f64], want: &[f64], tol: f64, what: &str) {
    assert_eq!(got.len(), want.len(), "{what}");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!(
            (g - w).abs() <= tol * (1.0 + w.abs()),
            "{what}[{i}]: {g} vs PyTorch's {w}"
        );
    }
}

/// A problem: named parameters and a loss of them.
struct Problem {
    params: Vec<(String, Parameter)>,
    loss: Box<dyn Fn() -> Result<Tensor>>,
}

impl Problem {
    fn closure(&self) -> impl FnMut() -> Result<Tensor> + '_ {
        || {
            let loss = (self.loss)()?;
            loss.backward()?;
            Ok(loss)
        }
    }
}

/// `(1 - x0)^2 + 100 (x1 - x0^2)^2` from `x = [-1.5, 2]` (negated when `negate`).
fn rosenbrock(negate: bool) -> Result<Problem> {
    let x = Parameter::new(Tensor::from_vec(vec![-1.5f64, 2.0], [2])?.requires_grad_());
    let p = x.clone();
    let loss = move || {
        let v = p.value();
        let (x0, x1) = (v.narrow(0, 0, 1)?, v.narrow(0, 1, 1)?);
        let a = x0.neg()?.add_scalar(1.0)?.square()?;
        let b = x1.sub(&x0.square()?)?.square()?.mul_scalar(100.0)?;
        let f = a.add(&b)?.sum_all()?;
        if negate { f.neg() } else { Ok(f) }
    };
    Ok(Problem {
        params: vec![("x".into(), x)],
        loss: Box::new(loss),
    })
}

const MLP_PARAMS: [&str; 4] = ["0.weight", "0.bias", "2.weight", "2.bias"];

/// Linear(3, 4) -> Tanh -> Linear(4, 1) with PyTorch's initial weights, on the reference's MSE.
fn mlp(r: &StateDict, dtype: DType) -> Result<Problem> {
    let get = |k: &str| r.get(k).unwrap().to_dtype(dtype)?.force_contiguous();
    let params: Vec<(String, Parameter)> = MLP_PARAMS
        .iter()
        .map(|n| {
            Ok((
                n.to_string(),
                Parameter::new(get(&format!("mlp.init.{n}"))?.requires_grad_()),
            ))
        })
        .collect::<Result<_>>()?;
    let (x, y) = (get("mlp.x")?, get("mlp.y")?);
    let p: Vec<Parameter> = params.iter().map(|(_, p)| p.clone()).collect();
    let loss = move || {
        let [w1, b1, w2, b2] = [0, 1, 2, 3].map(|i| p[i].value());
        let h = x.matmul(&w1.t()?)?.add(&b1)?.tanh()?;
        let out = h.matmul(&w2.t()?)?.add(&b2)?;
        mse_loss(&out, &y, Reduction::Mean)
    };
    Ok(Problem {
        params,
        loss: Box::new(loss),
    })
}

/// Runs `steps` steps of `config` on `problem`, comparing each with the reference's `case`
/// within `tol`, then the state, its curvature scalars (`H_diag`, `ro`: ratios of differences
/// of nearly equal gradients, which amplify rounding) within `curvature_tol`.
fn follow(
    r: &StateDict,
    case: &str,
    problem: &Problem,
    config: LbfgsConfig,
    steps: usize,
    (tol, curvature_tol): (f64, f64),
) -> Result<()> {
    let mut opt = lbfgs(problem.params.clone(), config);
    let mut closure = problem.closure();
    for k in 0..steps {
        let loss = opt.step_with(&mut closure)?;
        let at = |what: &str| values(r.get(&format!("{case}.step{k}.{what}")).unwrap());
        assert_close(
            &values(&loss),
            &at("loss"),
            tol,
            &format!("{case} step {k} loss"),
        );
        assert_eq!(
            opt.evaluations() as f64,
            at("func_evals")[0],
            "{case} step {k}"
        );
        assert_eq!(opt.iterations() as f64, at("n_iter")[0], "{case} step {k}");
        for (name, p) in &problem.params {
            assert_close(
                &values(&p.value()),
                &at(name),
                tol,
                &format!("{case} step {k} {name}"),
            );
        }
    }
    let state = opt.state_dict()?;
    let saved = &state.params[&problem.params[0].0];
    let want = |what: &str| values(r.get(&format!("{case}.state.{what}")).unwrap());
    let buffer = |name: &str| values(&saved.buffers.iter().find(|(b, _)| b == name).unwrap().1);
    assert_close(&buffer("d"), &want("d"), tol, &format!("{case} d"));
    assert_close(
        &buffer("prev_flat_grad"),
        &want("prev_flat_grad"),
        tol,
        &format!("{case} prev_flat_grad"),
    );
    for scalar in ["t", "prev_loss"] {
        assert_close(
            &[saved.scalars[scalar]],
            &want(scalar),
            tol,
            &format!("{case} {scalar}"),
        );
    }
    let h_diag = [saved.scalars["H_diag"]];
    assert_close(
        &h_diag,
        &want("H_diag"),
        curvature_tol,
        &format!("{case} H_diag"),
    );
    let ro: Vec<f64> = (0..want("ro").len())
        .map(|i| saved.scalars[&format!("ro.{i}")])
        .collect();
    assert_close(&ro, &want("ro"), curvature_tol, &format!("{case} ro"));
    assert!(
        !saved.scalars.contains_key(&format!("ro.{}", ro.len())),
        "{case}: too many pairs"
    );
    Ok(())
}

#[test]
fn rosenbrock_with_strong_wolfe_follows_pytorch() -> Result<()> {
    let r = reference();
    follow(
        &r,
        "rosenbrock",
        &rosenbrock(false)?,
        LbfgsConfig::default().history_size(10).strong_wolfe(),
        3,
        (1e-8, 1e-8),
    )
}

#[test]
fn mlp_with_a_fixed_step_follows_pytorch() -> Result<()> {
    let r = reference();
    let config = LbfgsConfig::new(0.5).history_size(3).max_iter(6);
    follow(
        &r,
        "mlp_f64",
        &mlp(&r, DType::F64)?,
        config.clone(),
        4,
        (1e-9, 1e-9),
    )?;
    // f32: PyTorch's and Sinew's sums round differently; the counts still match exactly, the
    // parameters closely, the curvature estimates to a few percent (PyTorch's own f32 and f64
    // runs differ by as much).
    follow(
        &r,
        "mlp_f32",
        &mlp(&r, DType::F32)?,
        config,
        4,
        (2e-3, 5e-2),
    )
}

#[test]
fn mlp_with_strong_wolfe_follows_pytorch() -> Result<()> {
    let r = reference();
    let config = LbfgsConfig::default()
        .history_size(5)
        .max_iter(8)
        .strong_wolfe();
    follow(
        &r,
        "mlp_wolfe",
        &mlp(&r, DType::F64)?,
        config,
        3,
        (1e-9, 1e-9),
    )
}

#[test]
fn maximizing_the_negated_loss_is_minimizing_the_loss() -> Result<()> {
    let (min, max) = (rosenbrock(false)?, rosenbrock(true)?);
    let config = LbfgsConfig::default().history_size(10).strong_wolfe();
    let mut opt_min = lbfgs(min.params.clone(), config.clone());
    let mut opt_max = lbfgs(max.params.clone(), config.maximize());
    let (mut closure_min, mut closure_max) = (min.closure(), max.closure());
    for _ in 0..2 {
        let low = opt_min.step_with(&mut closure_min)?.item()?;
        let high = opt_max.step_with(&mut closure_max)?.item()?;
        assert_eq!(low, -high);
        assert_eq!(
            values(&min.params[0].1.value()),
            values(&max.params[0].1.value())
        );
        assert_eq!(opt_min.evaluations(), opt_max.evaluations());
    }
    Ok(())
}

#[test]
fn a_reloaded_state_resumes_bit_identically() -> Result<()> {
    let r = reference();
    let config = LbfgsConfig::new(0.5).history_size(3).max_iter(6);
    let (a, b) = (mlp(&r, DType::F64)?, mlp(&r, DType::F64)?);
    let mut opt_a = lbfgs(a.params.clone(), config.clone());
    let mut closure_a = a.closure();
    for _ in 0..2 {
        opt_a.step_with(&mut closure_a)?;
    }
    // Checkpoint through a file: the weights into b, the state into a fresh optimizer whose
    // options (lr 1) the saved ones replace.
    let path = std::env::temp_dir().join(format!("sinew-lbfgs-{}.safetensors", std::process::id()));
    opt_a.state_dict()?.save(&path)?;
    let saved = OptimizerState::load(&path)?;
    std::fs::remove_file(&path).unwrap();
    for ((_, pa), (_, pb)) in a.params.iter().zip(&b.params) {
        let _no_grad = sinew_tensor::no_grad();
        pb.value().copy_(&pa.value())?;
    }
    let mut opt_b = lbfgs(b.params.clone(), LbfgsConfig::default());
    let report = opt_b.load_state_dict(&saved)?;
    assert_eq!(report, StateReport::default());
    assert_eq!(opt_b.config(), &config);
    let mut closure_b = b.closure();
    for k in 2..4 {
        let la = opt_a.step_with(&mut closure_a)?.item()?;
        let lb = opt_b.step_with(&mut closure_b)?.item()?;
        assert_eq!(la, lb, "step {k}");
        for ((name, pa), (_, pb)) in a.params.iter().zip(&b.params) {
            assert_eq!(values(&pa.value()), values(&pb.value()), "step {k} {name}");
        }
        assert_eq!(opt_b.iterations(), 6 * (k as u64 + 1));
    }
    // A damaged state is refused, naming the fault, and loads nothing.
    type Damage = fn(&mut ParamState);
    let faults: [(&str, Damage); 4] = [
        ("only one of old_dirs", |s| {
            s.buffers.retain(|(b, _)| b != "old_stps")
        }),
        ("unexpected buffer", |s| {
            let d = s.buffers[0].1.clone();
            s.buffers.push(("momentum".into(), d));
        }),
        ("no ro.2", |s| {
            s.scalars.remove("ro.2");
        }),
        ("not a count", |s| {
            s.scalars.insert("n_iter".into(), -1.0);
        }),
    ];
    for (fault, damage) in faults {
        let mut bad = saved.clone();
        damage(bad.params.get_mut("0.weight").unwrap());
        let mut opt = lbfgs(b.params.clone(), LbfgsConfig::default());
        assert!(
            message(opt.load_state_dict(&bad)).contains(fault),
            "{fault}"
        );
        assert_eq!(opt.iterations(), 0, "{fault}");
    }
    // A fresh optimizer reports every parameter as starting fresh.
    let empty = lbfgs(b.params.clone(), config).state_dict()?;
    assert!(empty.params.is_empty());
    let report = lbfgs(b.params.clone(), LbfgsConfig::default()).load_state_dict(&empty)?;
    assert_eq!(report.fresh, MLP_PARAMS.map(String::from).to_vec());
    Ok(())
}

#[test]
fn step_with_runs_the_closure_once_for_other_optimizers() -> Result<()> {
    let r = reference();
    let (a, b) = (mlp(&r, DType::F64)?, mlp(&r, DType::F64)?);
    let mut opt_a = adam(a.params.clone(), AdamConfig::new(0.01));
    let mut opt_b = adam(b.params.clone(), AdamConfig::new(0.01));
    let mut calls = 0;
    let mut closure_a = || {
        calls += 1;
        let loss = (a.loss)()?;
        loss.backward()?;
        Ok(loss)
    };
    for _ in 0..3 {
        let la = opt_a.step_with(&mut closure_a)?.item()?;
        opt_b.zero_grad();
        let lb = (b.loss)()?;
        lb.backward()?;
        opt_b.step()?;
        assert_eq!(la, lb.item()?);
    }
    assert_eq!(calls, 3);
    for ((name, pa), (_, pb)) in a.params.iter().zip(&b.params) {
        assert_eq!(values(&pa.value()), values(&pb.value()), "{name}");
    }
    Ok(())
}

fn message<T>(result: Result<T>) -> String {
    match result {
        Ok(_) => panic!("expected an error"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn misuse_is_a_clear_error() -> Result<()> {
    let problem = rosenbrock(false)?;
    let mut opt = lbfgs(problem.params.clone(), LbfgsConfig::default());
    assert!(message(opt.step()).contains("step_with"));
    let mut not_a_number = || Tensor::from_vec(vec![1.0f64, 2.0], [2]);
    assert!(message(opt.step_with(&mut not_a_number)).contains("one number"));
    let mut failing = || Err(sinew_tensor::Error::invalid("closure", "out of data"));
    assert!(message(opt.step_with(&mut failing)).contains("out of data"));
    assert!(message(opt.set_lr(1, 0.1)).contains("one group"));
    assert!(message(opt.set_lr(0, -1.0)).contains("learning rate"));

    for (config, what) in [
        (LbfgsConfig::default().history_size(0), "history_size"),
        (LbfgsConfig::default().max_iter(0), "max_iter"),
        (LbfgsConfig::default().max_eval(0), "max_eval"),
        (
            LbfgsConfig::default().tolerance_grad(f64::NAN),
            "tolerance_grad",
        ),
        (LbfgsConfig::new(-0.5), "learning rate"),
    ] {
        let mut opt = lbfgs(problem.params.clone(), config);
        assert!(
            message(opt.step_with(&mut problem.closure())).contains(what),
            "{what}"
        );
    }
    // One vector needs one dtype.
    let mixed = vec![
        (
            "a".to_string(),
            Parameter::new(Tensor::zeros([2], DType::F64, &Default::default())?),
        ),
        (
            "b".to_string(),
            Parameter::new(Tensor::zeros([2], DType::F32, &Default::default())?),
        ),
    ];
    let mut opt = lbfgs(mixed, LbfgsConfig::default());
    let mut zero = || Tensor::zeros([], DType::F64, &Default::default());
    assert!(message(opt.step_with(&mut zero)).contains("one dtype"));

    // States of another optimizer or over other parameters are refused.
    let adam_state = adam(problem.params.clone(), AdamConfig::new(0.1)).state_dict()?;
    let mut opt = lbfgs(problem.params.clone(), LbfgsConfig::default());
    assert!(message(opt.load_state_dict(&adam_state)).contains("from Adam"));
    let other = rosenbrock(false)?;
    let renamed = vec![("y".to_string(), other.params[0].1.clone())];
    let state = lbfgs(renamed, LbfgsConfig::default()).state_dict()?;
    assert!(message(opt.load_state_dict(&state)).contains("in order"));
    // PyTorch's L-BFGS state keeps its step length as a Python number: it cannot carry over.
    let from_torch = OptimizerState::from_pytorch(&opt, &StateDict::new());
    assert!(message(from_torch).contains("Python numbers"));
    Ok(())
}
