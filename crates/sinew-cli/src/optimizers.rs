//! The optimizer and learning-rate schedule that `--optimizer` and `--schedule` name.

use sinew::optim::schedule::{
    CosineAnnealingLr, CyclicLr, ExponentialLr, InverseTimeDecay, OneCycleLr, StepLr,
};
use sinew::optim::*;
use sinew::prelude::*;

use crate::args::{OptimizerName, ScheduleName, TrainArgs};

/// The optimizer over `params`; the default learning rate is 0.05 for the SGD family, 1 for
/// Adadelta and L-BFGS (PyTorch's defaults, a scale of the step rather than a rate) and 0.01
/// for the other adaptive methods. Weight decay with an optimizer without it is an error.
pub fn optimizer(args: &TrainArgs, params: Vec<(String, Parameter)>) -> Result<Box<dyn Optimizer>> {
    let lr = args.lr.unwrap_or(match args.optimizer {
        OptimizerName::Sgd | OptimizerName::Momentum | OptimizerName::Nesterov => 0.05,
        OptimizerName::Adadelta | OptimizerName::Lbfgs => 1.0,
        _ => 0.01,
    });
    let wd = args.weight_decay;
    let sgd_cfg = SgdConfig::new(lr).weight_decay(wd);
    Ok(match args.optimizer {
        OptimizerName::Sgd => Box::new(sgd(params, sgd_cfg)),
        OptimizerName::Momentum => Box::new(sgd(params, sgd_cfg.momentum(0.9))),
        OptimizerName::Nesterov => Box::new(sgd(params, sgd_cfg.momentum(0.9).nesterov(true))),
        OptimizerName::Adagrad => {
            Box::new(adagrad(params, AdagradConfig::new(lr).weight_decay(wd)))
        }
        OptimizerName::Rmsprop => {
            Box::new(rmsprop(params, RmspropConfig::new(lr).weight_decay(wd)))
        }
        OptimizerName::Adam => Box::new(adam(params, AdamConfig::new(lr).weight_decay(wd))),
        OptimizerName::Amsgrad => Box::new(adam(
            params,
            AdamConfig::new(lr).weight_decay(wd).amsgrad(true),
        )),
        OptimizerName::Nadam => Box::new(nadam(params, NadamConfig::new(lr).weight_decay(wd))),
        OptimizerName::Radam => Box::new(radam(params, RadamConfig::new(lr).weight_decay(wd))),
        OptimizerName::Adamw => Box::new(adamw(params, AdamConfig::adamw(lr).weight_decay(wd))),
        OptimizerName::Adadelta => {
            Box::new(adadelta(params, AdadeltaConfig::new(lr).weight_decay(wd)))
        }
        OptimizerName::Adamax => Box::new(adamax(params, AdamConfig::new(lr).weight_decay(wd))),
        OptimizerName::Asgd => Box::new(asgd(
            params,
            AsgdConfig {
                lr,
                weight_decay: wd,
                ..Default::default()
            },
        )),
        OptimizerName::Adafactor => {
            Box::new(adafactor(params, AdafactorConfig::new(lr).weight_decay(wd)))
        }
        OptimizerName::Rprop | OptimizerName::Lbfgs if wd != 0.0 => {
            return Err(Error::invalid(
                "--weight-decay",
                format!(
                    "{:?} has no weight decay (PyTorch's has none either)",
                    args.optimizer
                ),
            ));
        }
        OptimizerName::Rprop => Box::new(rprop(params, RpropConfig::new(lr))),
        OptimizerName::Lbfgs => Box::new(lbfgs(params, LbfgsConfig::new(lr).strong_wolfe())),
    })
}

/// The schedule of `--schedule` (`plateau` is a callback, see `train`), if any, and whether it
/// steps per batch (`one-cycle`, over `epochs * batches` steps) rather than per epoch.
pub fn schedule(
    args: &TrainArgs,
    opt: &mut Box<dyn Optimizer>,
    batches: usize,
) -> Result<Option<(LrSchedule, bool)>> {
    // The momentum cycles where there is one to cycle (not plain SGD's or Adagrad's).
    let cycle_momentum = opt.momentums().is_some_and(|m| m.iter().all(|&v| v > 0.0));
    if args.schedule == Some(ScheduleName::OneCycle) {
        let steps = (args.epochs as u64).saturating_mul(batches as u64).max(1);
        let rule = OneCycleLr {
            cycle_momentum,
            ..OneCycleLr::new(opt.lrs()[0], steps)
        };
        return Ok(Some((LrSchedule::new(opt, rule)?, true)));
    }
    if args.schedule == Some(ScheduleName::Cyclic) {
        let lr = opt.lrs()[0];
        let half = (batches as u64).saturating_mul(2).max(1);
        let rule = CyclicLr {
            cycle_momentum,
            ..CyclicLr::new(lr / 10.0, lr, half)
        };
        return Ok(Some((LrSchedule::new(opt, rule)?, true)));
    }
    let per_epoch = match args.schedule {
        Some(ScheduleName::Step) => Some(LrSchedule::new(
            opt,
            StepLr {
                step_size: (args.epochs / 3).max(1) as u64,
                gamma: 0.5,
            },
        )?),
        Some(ScheduleName::Exponential) => {
            Some(LrSchedule::new(opt, ExponentialLr { gamma: 0.9 })?)
        }
        Some(ScheduleName::InverseTime) => Some(LrSchedule::new(
            opt,
            InverseTimeDecay {
                decay_rate: 0.5,
                decay_steps: 1,
                staircase: false,
            },
        )?),
        Some(ScheduleName::Cosine) => Some(LrSchedule::new(
            opt,
            CosineAnnealingLr {
                t_max: args.epochs.max(1) as u64,
                eta_min: 0.0,
            },
        )?),
        _ => None,
    };
    Ok(per_epoch.map(|schedule| (schedule, false)))
}

#[cfg(test)]
mod tests {
    use clap::{Parser, ValueEnum};

    use super::*;
    use crate::args::{Cli, Command};

    /// The training arguments of `sinew train <extra>`.
    fn train_args(extra: &[&str]) -> TrainArgs {
        let argv = ["sinew", "train"].iter().chain(extra);
        match Cli::try_parse_from(argv).expect("arguments parse").command {
            Command::Train(args) => args,
            other => panic!("parsed {other:?}"),
        }
    }

    #[test]
    fn each_optimizer_name_builds_its_pytorch_optimizer_with_the_given_lr() {
        let want = [
            ("sgd", "SGD"),
            ("momentum", "SGD"),
            ("nesterov", "SGD"),
            ("adagrad", "Adagrad"),
            ("rmsprop", "RMSprop"),
            ("adam", "Adam"),
            ("amsgrad", "Adam"),
            ("nadam", "NAdam"),
            ("radam", "RAdam"),
            ("adamw", "AdamW"),
            ("adadelta", "Adadelta"),
            ("adamax", "Adamax"),
            ("rprop", "Rprop"),
            ("asgd", "ASGD"),
            ("adafactor", "Adafactor"),
            ("lbfgs", "LBFGS"),
        ];
        assert_eq!(want.len(), OptimizerName::value_variants().len());
        for (flag, name) in want {
            let args = train_args(&["--optimizer", flag, "--lr", "0.25"]);
            let w = Parameter::new(Tensor::zeros([2], DType::F32, &Device::cpu()).unwrap());
            let opt = optimizer(&args, vec![("w".to_string(), w)]).unwrap();
            assert_eq!(
                opt.state_dict().unwrap().optimizer,
                name,
                "--optimizer {flag}"
            );
            assert_eq!(opt.lrs(), [0.25], "--optimizer {flag}");
        }
    }

    #[test]
    fn default_rates_follow_pytorch_and_weight_decay_needs_an_optimizer_with_it() {
        let w = || {
            let w = Parameter::new(Tensor::zeros([2], DType::F32, &Device::cpu()).unwrap());
            vec![("w".to_string(), w)]
        };
        for (flag, lr) in [
            ("sgd", 0.05),
            ("adadelta", 1.0),
            ("lbfgs", 1.0),
            ("rprop", 0.01),
        ] {
            let opt = optimizer(&train_args(&["--optimizer", flag]), w()).unwrap();
            assert_eq!(opt.lrs(), [lr], "--optimizer {flag}");
            assert_eq!(opt.needs_closure(), flag == "lbfgs", "--optimizer {flag}");
        }
        for flag in ["rprop", "lbfgs"] {
            let args = train_args(&["--optimizer", flag, "--weight-decay", "0.1"]);
            let Err(e) = optimizer(&args, w()) else {
                panic!("--optimizer {flag} took a weight decay");
            };
            assert!(e.to_string().contains("no weight decay"), "{e}");
        }
        let args = train_args(&["--optimizer", "asgd", "--weight-decay", "0.1"]);
        let state = optimizer(&args, w()).unwrap().state_dict().unwrap();
        assert_eq!(state.groups[0].1["weight_decay"], 0.1);
    }

    /// `--schedule cyclic` steps per batch from a tenth of `--lr` to `--lr` in two epochs'
    /// batches (6 here), with SGD's momentum going from 0.9 down to 0.8 meanwhile.
    #[test]
    fn cyclic_rises_from_a_tenth_of_the_lr_over_two_epochs() -> Result<()> {
        let args = train_args(&[
            "--optimizer",
            "momentum",
            "--lr",
            "0.5",
            "--schedule",
            "cyclic",
        ]);
        let w = Parameter::new(Tensor::zeros([2], DType::F32, &Device::cpu())?);
        let mut opt = optimizer(&args, vec![("w".to_string(), w)])?;
        let (mut schedule, per_batch) = schedule(&args, &mut opt, 3)?.expect("a schedule");
        assert!(per_batch);
        assert!((opt.lrs()[0] - 0.05).abs() < 1e-15, "{:?}", opt.lrs());
        assert_eq!(opt.momentums(), Some(vec![0.9]));
        for _ in 0..6 {
            schedule.step(opt.as_mut())?;
        }
        assert!((opt.lrs()[0] - 0.5).abs() < 1e-15, "{:?}", opt.lrs());
        assert!((opt.momentums().unwrap()[0] - 0.8).abs() < 1e-15);
        Ok(())
    }
}
