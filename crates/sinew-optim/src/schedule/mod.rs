//! Learning-rate schedules (PyTorch's `torch.optim.lr_scheduler`, plus Keras' inverse-time
//! decay): the epoch rules in `rules.rs`, the cycles, fixed-length and function schedules in
//! `cyclic.rs`, SWA's in `swa_lr.rs`. A schedule is one or more [`ScheduleRule`]s run by [`LrSchedule`], which keeps the
//! epoch count and writes each group's lr into the optimizer; call `step` once per epoch or once
//! per batch, whichever the schedule is meant for. [`ReduceLrOnPlateau`] watches a metric.
//!
//! The rules use PyTorch's recursive forms (`lr *= gamma` at a milestone, cosine's ratio
//! update), so the learning rates are PyTorch's to the last bit, not only to the formula.

mod cyclic;
mod cyclic_lr;
mod plateau;
mod rules;
mod swa_lr;

pub use cyclic::{
    Anneal, ConstantLr, CosineAnnealingWarmRestarts, LambdaLr, MultiplicativeLr, OneCycleLr,
    PolynomialLr,
};
pub use cyclic_lr::{CyclicLr, CyclicMode, ScaleFn, ScaleMode};
pub use plateau::{PlateauMode, ReduceLrOnPlateau, ThresholdMode};
pub use rules::{
    CosineAnnealingLr, ExponentialLr, InverseTimeDecay, LinearLr, MultiStepLr, ScheduleRule, StepLr,
};
pub use swa_lr::SwaLr;

use serde::{Deserialize, Serialize};
use sinew_tensor::{Error, Result};

use crate::Optimizer;

/// Runs schedule rules over an optimizer: one rule, or several in sequence (PyTorch's
/// `SequentialLR`: warm-up then cosine), switching at `milestones`.
pub struct LrSchedule {
    rules: Vec<Box<dyn ScheduleRule>>,
    milestones: Vec<u64>,
    state: ScheduleState,
}

/// The part of a schedule that changes: what `state_dict` saves.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ScheduleState {
    /// The optimizer's learning rates when the schedule was created.
    pub base_lrs: Vec<f64>,
    /// Steps taken.
    pub epoch: u64,
    /// Steps taken by the current rule since it started.
    pub rule_epoch: u64,
}

impl LrSchedule {
    /// One rule; sets the epoch-0 learning rate (e.g. the warm-up's start) right away.
    pub fn new(opt: &mut dyn Optimizer, rule: impl ScheduleRule + 'static) -> Result<Self> {
        LrSchedule::sequential(opt, vec![Box::new(rule)], vec![])
    }

    /// Rules in sequence: rule `i + 1` starts (from the base learning rates) at step
    /// `milestones[i]`.
    pub fn sequential(
        opt: &mut dyn Optimizer,
        rules: Vec<Box<dyn ScheduleRule>>,
        milestones: Vec<u64>,
    ) -> Result<Self> {
        if rules.is_empty() || milestones.len() + 1 != rules.len() {
            return Err(Error::invalid(
                "LrSchedule",
                format!(
                    "{} rules need {} milestones, got {}",
                    rules.len(),
                    rules.len().saturating_sub(1),
                    milestones.len()
                ),
            ));
        }
        if milestones.windows(2).any(|w| w[0] >= w[1]) {
            return Err(Error::invalid("LrSchedule", "milestones must increase"));
        }
        for rule in &rules {
            rule.check()?;
        }
        let base_lrs = opt.lrs();
        set_momentum(opt, rules[0].momentum(0))?;
        for (g, base) in base_lrs.iter().enumerate() {
            opt.set_lr(g, rules[0].initial(*base))?;
        }
        Ok(LrSchedule {
            rules,
            milestones,
            state: ScheduleState {
                base_lrs,
                epoch: 0,
                rule_epoch: 0,
            },
        })
    }

    /// Advances one step and writes the new learning rates into `opt`. Stepping a rule past
    /// its last step ([`OneCycleLr`]'s `total_steps`) is an error that changes nothing.
    pub fn step(&mut self, opt: &mut dyn Optimizer) -> Result<()> {
        let epoch = self.state.epoch + 1;
        let idx = self.milestones.iter().filter(|&&m| m <= epoch).count();
        let rule = &self.rules[idx];
        let restart = idx > 0 && self.milestones[idx - 1] == epoch;
        let rule_epoch = if restart {
            0
        } else {
            self.state.rule_epoch + 1
        };
        if let Some(last) = rule.last_step()
            && rule_epoch > last
        {
            return Err(Error::invalid(
                "LrSchedule",
                format!("tried to step {rule_epoch} times; the schedule has {last} steps"),
            ));
        }
        set_momentum(opt, rule.momentum(rule_epoch))?;
        let s = &mut self.state;
        s.epoch = epoch;
        s.rule_epoch = rule_epoch;
        let lrs = opt.lrs();
        for (g, (lr, base)) in lrs.iter().zip(&s.base_lrs).enumerate() {
            let next = if restart {
                rule.initial(*base)
            } else {
                rule.next(s.rule_epoch, *lr, *base)
            };
            opt.set_lr(g, next)?;
        }
        Ok(())
    }

    /// Steps taken.
    pub fn epoch(&self) -> u64 {
        self.state.epoch
    }

    /// The state to save.
    pub fn state_dict(&self) -> ScheduleState {
        self.state.clone()
    }

    /// Restores a saved state (the optimizer's learning rates come from its own state).
    pub fn load_state_dict(&mut self, state: ScheduleState) {
        self.state = state;
    }
}

/// Sets every group's momentum to `momentum`, if the rule gives one.
fn set_momentum(opt: &mut dyn Optimizer, momentum: Option<f64>) -> Result<()> {
    let Some(m) = momentum else {
        return Ok(());
    };
    for g in 0..opt.lrs().len() {
        opt.set_momentum(g, m)?;
    }
    Ok(())
}
