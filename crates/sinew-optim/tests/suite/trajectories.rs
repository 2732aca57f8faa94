//! Every optimizer configuration follows PyTorch's 50-step trajectory on a small MLP problem
//! (`tests/reference/gen_trajectories.py`): within 1e-9 in f64 and 1e-4 relative in f32.

use sinew_nn::{StateDict, load_safetensors};
use sinew_optim::*;
use sinew_tensor::{DType, Parameter, Result, Tensor};

fn reference() -> StateDict {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/reference/trajectories.safetensors");
    load_safetensors(path).expect("reference file")
}

const NAMES: [&str; 4] = ["w1", "b1", "w2", "b2"];

fn optimizer(config: &str, params: Vec<(String, Parameter)>) -> Box<dyn Optimizer> {
    let sgd_cfg = |lr: f64| SgdConfig::new(lr);
    match config {
        "sgd" => Box::new(sgd(params, sgd_cfg(0.1))),
        "sgd_momentum" => Box::new(sgd(params, sgd_cfg(0.1).momentum(0.9))),
        "sgd_dampening_wd" => Box::new(sgd(
            params,
            SgdConfig {
                dampening: 0.3,
                ..sgd_cfg(0.1).momentum(0.9).weight_decay(0.01)
            },
        )),
        "sgd_nesterov" => Box::new(sgd(params, sgd_cfg(0.1).momentum(0.9).nesterov(true))),
        "sgd_maximize" => Box::new(sgd(
            params,
            SgdConfig {
                maximize: true,
                ..sgd_cfg(0.02).momentum(0.5)
            },
        )),
        "sgd_groups" => {
            let mut opt = sgd(params, sgd_cfg(0.1).momentum(0.9));
            let moved = opt.add_group(
                |n| n == "w1" || n == "b1",
                sgd_cfg(0.05).momentum(0.9).weight_decay(0.1),
            );
            assert_eq!(moved, 2);
            Box::new(opt)
        }
        "adagrad" => Box::new(adagrad(
            params,
            AdagradConfig {
                lr: 0.1,
                ..Default::default()
            },
        )),
        "adagrad_options" => Box::new(adagrad(
            params,
            AdagradConfig {
                lr: 0.1,
                lr_decay: 0.01,
                initial_accumulator_value: 0.1,
                eps: 1e-8,
                weight_decay: 0.01,
                maximize: false,
            },
        )),
        "rmsprop" => Box::new(rmsprop(
            params,
            RmspropConfig {
                lr: 0.01,
                ..Default::default()
            },
        )),
        "rmsprop_centered_momentum" => Box::new(rmsprop(
            params,
            RmspropConfig {
                lr: 0.01,
                alpha: 0.9,
                eps: 1e-6,
                momentum: 0.5,
                centered: true,
                weight_decay: 0.01,
                maximize: false,
            },
        )),
        "adam" | "adam_frozen_b2" => Box::new(adam(params, AdamConfig::new(0.01))),
        "adam_wd_amsgrad" => Box::new(adam(
            params,
            AdamConfig {
                betas: (0.8, 0.99),
                eps: 1e-6,
                ..AdamConfig::new(0.01).weight_decay(0.01).amsgrad(true)
            },
        )),
        "adamw" => Box::new(adamw(params, AdamConfig::adamw(0.01))),
        "adamw_amsgrad" => Box::new(adamw(
            params,
            AdamConfig::adamw(0.01).weight_decay(0.1).amsgrad(true),
        )),
        "nadam" => Box::new(nadam(
            params,
            NadamConfig {
                lr: 0.01,
                ..Default::default()
            },
        )),
        "nadam_options" => Box::new(nadam(
            params,
            NadamConfig {
                lr: 0.01,
                momentum_decay: 0.01,
                weight_decay: 0.01,
                ..Default::default()
            },
        )),
        "radam" => Box::new(radam(params, RadamConfig::new(0.01))),
        "radam_options" => Box::new(radam(
            params,
            RadamConfig {
                betas: (0.8, 0.99),
                eps: 1e-6,
                ..RadamConfig::new(0.01).weight_decay(0.01)
            },
        )),
        "radam_decoupled" => Box::new(radam(
            params,
            RadamConfig {
                decoupled_weight_decay: true,
                ..RadamConfig::new(0.01).weight_decay(0.1)
            },
        )),
        "adadelta" => Box::new(adadelta(params, AdadeltaConfig::default())),
        "adadelta_options" => Box::new(adadelta(
            params,
            AdadeltaConfig {
                lr: 0.5,
                rho: 0.8,
                eps: 1e-5,
                weight_decay: 0.01,
                maximize: false,
            },
        )),
        "adamax" => Box::new(adamax(
            params,
            AdamConfig {
                lr: 0.01,
                ..Default::default()
            },
        )),
        "adamax_wd" => Box::new(adamax(
            params,
            AdamConfig {
                lr: 0.01,
                betas: (0.8, 0.99),
                weight_decay: 0.01,
                ..Default::default()
            },
        )),
        "rprop" => Box::new(rprop(params, RpropConfig::new(0.01))),
        "rprop_options" => Box::new(rprop(
            params,
            RpropConfig {
                lr: 0.05,
                etas: (0.3, 1.5),
                step_sizes: (1e-3, 0.08),
                maximize: true,
            },
        )),
        "asgd" => Box::new(asgd(
            params,
            AsgdConfig {
                lr: 0.05,
                ..Default::default()
            },
        )),
        "asgd_options" => Box::new(asgd(
            params,
            AsgdConfig {
                lr: 0.1,
                lambd: 0.01,
                alpha: 0.5,
                t0: 10.0,
                weight_decay: 0.01,
                maximize: false,
            },
        )),
        "adafactor" => Box::new(adafactor(params, AdafactorConfig::new(0.01))),
        "adafactor_options" => Box::new(adafactor(
            params,
            AdafactorConfig {
                beta2_decay: -0.5,
                eps: (Some(1e-6), 1e-2),
                d: 1.5,
                maximize: true,
                ..AdafactorConfig::new(0.05).weight_decay(0.01)
            },
        )),
        other => panic!("no Sinew optimizer for {other}"),
    }
}

fn get(r: &StateDict, key: &str) -> Tensor {
    r.get(key)
        .unwrap_or_else(|| panic!("missing {key}"))
        .clone()
}

/// Largest `|a - b| / (atol + rtol |b|)`-style deviation: returns (max abs diff, max rel diff).
fn deviation(a: &Tensor, b: &Tensor) -> Result<(f64, f64)> {
    let (a, b) = (
        a.to_dtype(DType::F64)?.to_vec_f64()?,
        b.to_dtype(DType::F64)?.to_vec_f64()?,
    );
    assert_eq!(a.len(), b.len());
    let mut worst = (0f64, 0f64);
    for (x, y) in a.iter().zip(&b) {
        let d = (x - y).abs();
        worst.0 = worst.0.max(d);
        worst.1 = worst.1.max(d / y.abs().max(1e-30));
    }
    Ok(worst)
}

/// Runs one configuration; returns the worst (abs, rel) deviation over losses and checkpoints.
fn run(r: &StateDict, config: &str, dtype: DType, tag: &str) -> Result<(f64, f64)> {
    // A copy: the parameters are updated in place and the reference must stay as it is.
    let cast = |k: &str| {
        get(r, &format!("problem.{k}"))
            .to_dtype(dtype)?
            .force_contiguous()
    };
    let (x, y) = (cast("x")?, cast("y")?);
    let params: Vec<(String, Parameter)> = NAMES
        .iter()
        .map(|n| Ok((n.to_string(), Parameter::new(cast(n)?))))
        .collect::<Result<_>>()?;
    if config == "adam_frozen_b2" {
        params[3].1.set_requires_grad(false)?;
    }
    let p: Vec<Parameter> = params.iter().map(|(_, p)| p.clone()).collect();
    let mut opt = optimizer(config, params);
    let mut losses = Vec::new();
    let mut worst = (0f64, 0f64);
    let mut keep = |d: (f64, f64)| worst = (worst.0.max(d.0), worst.1.max(d.1));
    for step in 1..=50 {
        opt.zero_grad();
        let h = x.matmul(&p[0].value().t()?)?.add(&p[1].value())?.tanh()?;
        let out = h.matmul(&p[2].value().t()?)?.add(&p[3].value())?;
        let loss = out.sub(&y)?.square()?.mean_all()?;
        loss.backward()?;
        opt.step()?;
        losses.push(loss.detach());
        if [1, 2, 5, 10, 25, 50].contains(&step) {
            for (n, param) in NAMES.iter().zip(&p) {
                keep(deviation(
                    &param.value(),
                    &get(r, &format!("{config}.{tag}.step{step}.{n}")),
                )?);
            }
        }
    }
    let losses = Tensor::stack(&losses, 0)?;
    keep(deviation(
        &losses,
        &get(r, &format!("{config}.{tag}.losses")),
    )?);
    // ASGD's averaged weights, Rprop's step sizes and Adafactor's second moments (factored
    // for the matrices) after the last step: the same buffers, of the same shapes.
    let buffers: &[&str] = match config {
        c if c.starts_with("asgd") => &["ax"],
        c if c.starts_with("rprop") => &["step_size"],
        c if c.starts_with("adafactor") => &["row_var", "col_var", "variance"],
        _ => &[],
    };
    let state = opt.state_dict()?;
    for n in NAMES {
        for buffer in buffers {
            let key = format!("{config}.{tag}.state.{buffer}.{n}");
            let got = state.params[n].buffers.iter().find(|(b, _)| b == buffer);
            match (got, r.get(&key)) {
                (Some((_, got)), Some(want)) => {
                    assert_eq!(got.dims(), want.dims(), "{key}");
                    keep(deviation(got, want)?);
                }
                (None, None) => {}
                (got, want) => panic!("{key}: Sinew has {got:?}, PyTorch {want:?}"),
            }
        }
    }
    Ok(worst)
}

#[test]
fn every_optimizer_follows_pytorchs_trajectory() -> Result<()> {
    let r = reference();
    let mut configs: Vec<String> = r
        .keys()
        .filter_map(|k| k.strip_suffix(".f64.losses").map(String::from))
        .collect();
    configs.sort();
    assert_eq!(configs.len(), 30);
    let mut failures = Vec::new();
    println!(
        "{:<28} {:>14} {:>14}",
        "optimizer", "f64 max |dev|", "f32 max rel"
    );
    for c in &configs {
        let (abs64, rel64) = run(&r, c, DType::F64, "f64")?;
        let (_, rel32) = run(&r, c, DType::F32, "f32")?;
        println!("{c:<28} {abs64:>14.2e} {rel32:>14.2e}");
        // f64: 1e-9 absolute, or relative for the diverging `sgd_maximize` run.
        if abs64 > 1e-9 && rel64 > 1e-9 {
            failures.push(format!("{c} f64: {abs64:e} abs, {rel64:e} rel"));
        }
        if rel32 > 1e-4 {
            failures.push(format!("{c} f32: {rel32:e} rel"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    Ok(())
}
