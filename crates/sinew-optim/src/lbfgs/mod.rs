//! L-BFGS (PyTorch's `torch.optim.LBFGS`): a quasi-Newton method that builds a curvature
//! estimate from the last `history_size` steps of the whole parameter vector and re-evaluates
//! the loss several times a step, through a closure, optionally with a strong-Wolfe line search.
//!
//! - [`flat`]: the parameters and gradients as one flat vector (PyTorch's `_gather_flat_grad`,
//!   `_add_grad`).
//! - [`step`]: one `step(closure)`: the two-loop recursion and the iteration.
//! - [`line_search`]: `_strong_wolfe` and `_cubic_interpolate`.
//! - [`state`]: `state_dict` and `load_state_dict`.

mod flat;
mod line_search;
mod state;
mod step;

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};
use sinew_tensor::{Error, Parameter, Result, Tensor};

use crate::checks::non_negative;
use crate::optimizer::{NamedParameter, Optimizer};
use crate::state::{OptimizerState, StateReport};

/// The line search L-BFGS can run each iteration (PyTorch's `line_search_fn`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum LineSearch {
    /// A step length meeting the strong Wolfe conditions (`"strong_wolfe"`; `c1 = 1e-4`,
    /// `c2 = 0.9`, cubic interpolation, as PyTorch's `_strong_wolfe`).
    #[serde(rename = "strong_wolfe")]
    StrongWolfe,
}

/// L-BFGS's options, with PyTorch's defaults. One group: L-BFGS works on the parameters as one
/// vector, so it has no per-parameter options (PyTorch refuses groups too).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LbfgsConfig {
    /// The step length (default 1; the first iteration of a run scales it by
    /// `min(1, 1 / |g|_1)`).
    pub lr: f64,
    /// Iterations per `step` (default 20; at least 1).
    pub max_iter: usize,
    /// Loss evaluations per `step` (default `max_iter * 5 / 4`; at least 1).
    pub max_eval: Option<usize>,
    /// A step ends once every gradient entry is at most this in size (default 1e-7).
    pub tolerance_grad: f64,
    /// A step ends once the loss or the parameters change by less than this (default 1e-9).
    pub tolerance_change: f64,
    /// Curvature pairs kept (default 100; at least 1). Memory: two flat copies of the
    /// parameters per pair.
    pub history_size: usize,
    /// The line search, if any (default none: a fixed step of `lr`).
    pub line_search_fn: Option<LineSearch>,
    /// Maximise the closure's value instead (default false).
    pub maximize: bool,
}

impl Default for LbfgsConfig {
    fn default() -> Self {
        LbfgsConfig {
            lr: 1.0,
            max_iter: 20,
            max_eval: None,
            tolerance_grad: 1e-7,
            tolerance_change: 1e-9,
            history_size: 100,
            line_search_fn: None,
            maximize: false,
        }
    }
}

impl LbfgsConfig {
    /// PyTorch's defaults with step length `lr`.
    pub fn new(lr: f64) -> Self {
        LbfgsConfig {
            lr,
            ..Default::default()
        }
    }

    /// With `max_iter` iterations per step.
    pub fn max_iter(mut self, max_iter: usize) -> Self {
        self.max_iter = max_iter;
        self
    }

    /// With at most `max_eval` loss evaluations per step.
    pub fn max_eval(mut self, max_eval: usize) -> Self {
        self.max_eval = Some(max_eval);
        self
    }

    /// With `history_size` curvature pairs.
    pub fn history_size(mut self, history_size: usize) -> Self {
        self.history_size = history_size;
        self
    }

    /// With the first-order optimality tolerance `tolerance_grad`.
    pub fn tolerance_grad(mut self, tolerance_grad: f64) -> Self {
        self.tolerance_grad = tolerance_grad;
        self
    }

    /// With the loss and parameter change tolerance `tolerance_change`.
    pub fn tolerance_change(mut self, tolerance_change: f64) -> Self {
        self.tolerance_change = tolerance_change;
        self
    }

    /// With the strong-Wolfe line search (`line_search_fn="strong_wolfe"`).
    pub fn strong_wolfe(mut self) -> Self {
        self.line_search_fn = Some(LineSearch::StrongWolfe);
        self
    }

    /// Maximising instead.
    pub fn maximize(mut self) -> Self {
        self.maximize = true;
        self
    }

    /// The evaluation budget of a step: `max_eval`, or PyTorch's `max_iter * 5 // 4`.
    fn eval_budget(&self) -> usize {
        self.max_eval.unwrap_or(self.max_iter.saturating_mul(5) / 4)
    }

    /// Errors naming the first invalid option (PyTorch's checks, plus counts of at least 1,
    /// where PyTorch returns without a step, fails on an empty history or has no budget for
    /// its line search, and tolerances that are not NaN).
    fn check(&self) -> Result<()> {
        non_negative(Lbfgs::NAME, "learning rate", self.lr)?;
        for (what, value) in [
            ("max_iter", self.max_iter),
            ("max_eval", self.eval_budget()),
            ("history_size", self.history_size),
        ] {
            if value == 0 {
                return Err(Error::invalid(
                    "optimizer",
                    format!("LBFGS: invalid {what} 0 (it must be at least 1)"),
                ));
            }
        }
        for (what, value) in [
            ("tolerance_grad", self.tolerance_grad),
            ("tolerance_change", self.tolerance_change),
        ] {
            if value.is_nan() {
                return Err(Error::invalid(
                    "optimizer",
                    format!("LBFGS: invalid {what} NaN"),
                ));
            }
        }
        Ok(())
    }
}

/// What L-BFGS keeps between steps (PyTorch's `state[params[0]]`).
#[derive(Clone, Default)]
pub(crate) struct History {
    /// Iterations run over all steps.
    pub(crate) n_iter: u64,
    /// Loss evaluations over all steps.
    pub(crate) func_evals: u64,
    /// The last search direction.
    pub(crate) d: Option<Tensor>,
    /// The last step length.
    pub(crate) t: f64,
    /// The initial inverse-Hessian scale `y.s / y.y` of the newest pair.
    pub(crate) h_diag: f64,
    /// Gradient differences `y`, oldest first.
    pub(crate) old_dirs: VecDeque<Tensor>,
    /// Parameter differences `s`, oldest first.
    pub(crate) old_stps: VecDeque<Tensor>,
    /// `1 / (y.s)` of each pair.
    pub(crate) ro: VecDeque<f64>,
    /// The flat gradient where the last direction was chosen.
    pub(crate) prev_flat_grad: Option<Tensor>,
    /// The loss there.
    pub(crate) prev_loss: Option<f64>,
}

/// L-BFGS over named parameters. Step it with [`Optimizer::step_with`] and a closure that
/// computes the loss and calls `backward()` (the gradients are cleared before each call);
/// [`Optimizer::step`] without a closure is an error, as in PyTorch.
///
/// ```
/// use sinew_optim::{LbfgsConfig, Optimizer, lbfgs};
/// use sinew_tensor::{Parameter, Tensor};
///
/// // Minimise (x - 3)^2 + (y + 1)^2.
/// let xy = Parameter::new(Tensor::from_vec(vec![0.0f64, 0.0], [2])?.requires_grad_());
/// let target = Tensor::from_vec(vec![3.0f64, -1.0], [2])?;
/// let mut opt = lbfgs(vec![("xy".into(), xy.clone())], LbfgsConfig::new(1.0).strong_wolfe());
/// let mut closure = || {
///     let loss = xy.value().sub(&target)?.square()?.sum_all()?;
///     loss.backward()?;
///     Ok(loss)
/// };
/// opt.step_with(&mut closure)?;
/// let got = xy.value().to_vec::<f64>()?;
/// assert!((got[0] - 3.0).abs() < 1e-6 && (got[1] + 1.0).abs() < 1e-6);
/// # Ok::<(), sinew_tensor::Error>(())
/// ```
pub struct Lbfgs {
    params: Vec<NamedParameter>,
    config: LbfgsConfig,
    history: History,
}

/// L-BFGS over named parameters (all on one device, of one dtype).
pub fn lbfgs(params: Vec<(String, Parameter)>, config: LbfgsConfig) -> Lbfgs {
    let params = params
        .into_iter()
        .map(|(name, param)| NamedParameter { name, param })
        .collect();
    Lbfgs {
        params,
        config,
        history: History::default(),
    }
}

impl Lbfgs {
    /// The name its states carry (PyTorch's class name).
    pub const NAME: &'static str = "LBFGS";

    /// The options.
    pub fn config(&self) -> &LbfgsConfig {
        &self.config
    }

    /// Iterations run so far, over all steps (PyTorch's `state["n_iter"]`).
    pub fn iterations(&self) -> u64 {
        self.history.n_iter
    }

    /// Loss evaluations so far, over all steps (PyTorch's `state["func_evals"]`).
    pub fn evaluations(&self) -> u64 {
        self.history.func_evals
    }
}

impl Optimizer for Lbfgs {
    /// An error: L-BFGS re-evaluates the loss within a step (use
    /// [`step_with`](Optimizer::step_with)).
    fn step(&mut self) -> Result<()> {
        Err(Error::invalid(
            "LBFGS",
            "L-BFGS evaluates the loss several times a step: call step_with(&mut closure) \
             with a closure that computes the loss and calls backward() on it",
        ))
    }

    fn step_with(&mut self, closure: &mut dyn FnMut() -> Result<Tensor>) -> Result<Tensor> {
        self.run(closure)
    }

    fn needs_closure(&self) -> bool {
        true
    }

    fn zero_grad(&self) {
        for p in &self.params {
            p.param.zero_grad();
        }
    }

    fn lrs(&self) -> Vec<f64> {
        vec![self.config.lr]
    }

    fn set_lr(&mut self, group: usize, lr: f64) -> Result<()> {
        if group != 0 {
            return Err(Error::invalid(
                "set_lr",
                format!("LBFGS has one group; there is no group {group}"),
            ));
        }
        non_negative(Self::NAME, "learning rate", lr)?;
        self.config.lr = lr;
        Ok(())
    }

    fn state_dict(&self) -> Result<OptimizerState> {
        self.save_state()
    }

    fn load_state_dict(&mut self, state: &OptimizerState) -> Result<StateReport> {
        self.load_state(state)
    }

    fn parameters(&self) -> Vec<Parameter> {
        self.params.iter().map(|p| p.param.clone()).collect()
    }
}
