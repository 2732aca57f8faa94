//! The [`Optimizer`] trait and [`Optim`], the engine every optimizer shares: parameter groups
//! chosen by name, the per-parameter state keyed by parameter name, skipping of frozen
//! parameters and of parameters without a gradient, and in-place, allocation-free steps.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};

use sinew_tensor::{
    DeferredScalar, Error, FusedStep, Parameter, Result, Tensor, enable_grad, no_grad,
};

use crate::skip::{Snapshot, Unsettled};
use crate::state::{OptimizerState, ParamState, StateReport};
use crate::step::Entry;

/// What every optimizer offers (PyTorch's `torch.optim.Optimizer`).
///
/// ```
/// use sinew_nn::{Linear, Module, ModuleExt};
/// use sinew_optim::{Optimizer, SgdConfig, sgd};
/// use sinew_tensor::{DType, Device, Tensor};
///
/// let model = Linear::new(3, 1)?;
/// let mut opt = sgd(model.named_parameters(), SgdConfig::new(0.1).momentum(0.9));
/// let x = Tensor::ones([4, 3], DType::F32, &Device::cpu())?;
/// let before = model.forward(&x)?.square()?.mean_all()?.item()?;
/// for _ in 0..5 {
///     opt.zero_grad();
///     model.forward(&x)?.square()?.mean_all()?.backward()?; // drive the outputs to 0
///     opt.step()?;
/// }
/// let after = model.forward(&x)?.square()?.mean_all()?.item()?;
/// assert!(after < before);
/// # Ok::<(), sinew_tensor::Error>(())
/// ```
pub trait Optimizer: Send {
    /// One update of every parameter that has a gradient and requires one.
    fn step(&mut self) -> Result<()>;
    /// [`step`](Self::step) unless `found_inf`, the loss scaler's inf/NaN flag, is non-zero
    /// (the [`GradScaler`](crate::GradScaler) calls it). [`Optim`] queues the step on a GPU to
    /// be skipped there, with no wait for the flag; its step counts follow once a later wait
    /// (`loss.item()`) has read it.
    ///
    /// Default: reads the flag (a wait on a GPU), then steps if it is zero.
    fn step_unless(&mut self, found_inf: &DeferredScalar) -> Result<()> {
        if found_inf.get()? == 0.0 {
            self.step()?;
        }
        Ok(())
    }
    /// One step with a closure that re-evaluates the model (PyTorch's `step(closure)`): the
    /// gradients are cleared, then `closure` computes the loss, calls `backward()` on it and
    /// returns it; the first evaluation's loss is returned. [`Lbfgs`](crate::Lbfgs) calls it
    /// several times a step; the default, for every other optimizer, once before
    /// [`step`](Self::step). Recording is on while it runs.
    fn step_with(&mut self, closure: &mut dyn FnMut() -> Result<Tensor>) -> Result<Tensor> {
        self.zero_grad();
        let loss = {
            let _recording = enable_grad();
            closure()?
        };
        self.step()?;
        Ok(loss)
    }
    /// Whether a step re-evaluates the loss, so needs [`step_with`](Self::step_with) and a
    /// closure ([`Lbfgs`](crate::Lbfgs)); a `Trainer` then steps each batch through one.
    /// Default: false.
    fn needs_closure(&self) -> bool {
        false
    }
    /// Clears the gradients (set to none, PyTorch's default).
    fn zero_grad(&self);
    /// The learning rate of each group.
    fn lrs(&self) -> Vec<f64>;
    /// Sets the learning rate of group `group`.
    fn set_lr(&mut self, group: usize, lr: f64) -> Result<()>;
    /// The state (steps and buffers by parameter name, group hyper-parameters).
    fn state_dict(&self) -> Result<OptimizerState>;
    /// Restores a state saved by the same kind of optimizer; shapes and dtypes are checked, and
    /// names the optimizer does not have are reported (and nothing is loaded for them).
    fn load_state_dict(&mut self, state: &OptimizerState) -> Result<StateReport>;
    /// The parameters of every group, in order (PyTorch's `param_groups[i]["params"]`).
    fn parameters(&self) -> Vec<Parameter>;
    /// Each group's momentum (`momentum`, or the Adam family's `beta1`); `None` for an
    /// optimizer without one. Default: none.
    fn momentums(&self) -> Option<Vec<f64>> {
        None
    }
    /// Sets group `group`'s momentum (what PyTorch's `OneCycleLR` cycles). An error for an
    /// optimizer without one, for a value its checks refuse, and for a change that would
    /// switch its momentum buffer on or off (from or to 0), which PyTorch makes lazily.
    /// Default: the first error.
    fn set_momentum(&mut self, group: usize, momentum: f64) -> Result<()> {
        let _ = (group, momentum);
        Err(Error::invalid(
            "optimizer",
            "this optimizer has no momentum or beta1",
        ))
    }
    /// A number that tells this optimizer apart from every other one while it lives (the
    /// [`GradScaler`](crate::GradScaler) keys the optimizers it unscaled by it). The same through
    /// a `Box`, which forwards it, and after a move for [`Optim`], which draws it when made.
    ///
    /// Default: the optimizer's address (stable while it is not moved).
    fn identity(&self) -> u64 {
        (self as *const Self).cast::<()>() as usize as u64
    }
}

/// A boxed optimizer is an optimizer (choose one at run time, hand it to a `Trainer`).
impl<O: Optimizer + ?Sized> Optimizer for Box<O> {
    fn step(&mut self) -> Result<()> {
        (**self).step()
    }
    fn step_unless(&mut self, found_inf: &DeferredScalar) -> Result<()> {
        (**self).step_unless(found_inf)
    }
    fn step_with(&mut self, closure: &mut dyn FnMut() -> Result<Tensor>) -> Result<Tensor> {
        (**self).step_with(closure)
    }
    fn needs_closure(&self) -> bool {
        (**self).needs_closure()
    }
    fn zero_grad(&self) {
        (**self).zero_grad()
    }
    fn lrs(&self) -> Vec<f64> {
        (**self).lrs()
    }
    fn set_lr(&mut self, group: usize, lr: f64) -> Result<()> {
        (**self).set_lr(group, lr)
    }
    fn state_dict(&self) -> Result<OptimizerState> {
        (**self).state_dict()
    }
    fn load_state_dict(&mut self, state: &OptimizerState) -> Result<StateReport> {
        (**self).load_state_dict(state)
    }
    fn parameters(&self) -> Vec<Parameter> {
        (**self).parameters()
    }
    fn momentums(&self) -> Option<Vec<f64>> {
        (**self).momentums()
    }
    fn set_momentum(&mut self, group: usize, momentum: f64) -> Result<()> {
        (**self).set_momentum(group, momentum)
    }
    fn identity(&self) -> u64 {
        (**self).identity()
    }
}

/// One named parameter of a group.
#[derive(Clone)]
pub struct NamedParameter {
    /// Its name in the module tree (`features.0.weight`).
    pub name: String,
    /// The parameter.
    pub param: Parameter,
}

/// Parameters sharing hyper-parameters.
#[derive(Clone)]
pub struct ParamGroup<C> {
    /// The parameters.
    pub params: Vec<NamedParameter>,
    /// Their hyper-parameters.
    pub config: C,
}

/// Scratch tensors and the parameter's saved state, handed to an update rule.
pub struct Slot<'a> {
    /// Steps taken so far, this one included.
    pub step: u64,
    /// Named state buffers (`exp_avg`, ...), created by [`UpdateRule::buffers`].
    pub buffers: &'a [(String, Tensor)],
    /// Named scalar state (NAdam's `mu_product`), advanced to this step by
    /// [`UpdateRule::advance`].
    pub scalars: &'a BTreeMap<String, f64>,
    /// Scratch tensors shaped like the parameter (not saved), as many as
    /// [`UpdateRule::scratch`] asks for.
    pub scratch: &'a [Tensor],
}

impl Slot<'_> {
    /// The buffer called `name`.
    pub fn buffer(&self, name: &str) -> Result<&Tensor> {
        self.buffers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, t)| t)
            .ok_or_else(|| Error::invalid("optimizer", format!("missing state buffer {name}")))
    }
}

/// The math of one optimizer: PyTorch's update of one parameter.
pub trait UpdateRule: Send + 'static {
    /// Hyper-parameters of a group.
    type Config: Clone + Send + serde::Serialize + serde::de::DeserializeOwned;
    /// The optimizer's name (checked when loading a state).
    const NAME: &'static str;
    /// The group's learning rate.
    fn lr(config: &Self::Config) -> f64;
    /// Sets the group's learning rate.
    fn set_lr(config: &mut Self::Config, lr: f64);
    /// Errors naming the first invalid option of `config` (PyTorch's `ValueError`s: a negative
    /// learning rate, a beta outside `[0, 1)`, ...). Run when the groups change, when a state
    /// is loaded and, for the learning rate, by `set_lr`. Default: the learning rate is `>= 0`.
    fn check(config: &Self::Config) -> Result<()> {
        crate::checks::non_negative(Self::NAME, "learning rate", Self::lr(config))
    }
    /// The group's momentum (SGD's and RMSprop's `momentum`, the Adam family's `beta1`), for
    /// schedules that cycle it; `None` where the rule has none. Default: none.
    fn momentum_mut(config: &mut Self::Config) -> Option<&mut f64> {
        let _ = config;
        None
    }
    /// The state buffers a parameter needs under `config`, with their initial fill value.
    fn buffers(config: &Self::Config) -> Vec<(&'static str, f64)>;
    /// The shape of buffer `name` for a parameter of shape `dims`, or `None` where such a
    /// parameter has no such buffer (Adafactor's factored moments: a row and a column vector
    /// for a matrix, a full variance for a vector). Default: every buffer of
    /// [`buffers`](Self::buffers), shaped like the parameter.
    fn buffer_dims(config: &Self::Config, name: &str, dims: &[usize]) -> Option<Vec<usize>> {
        let _ = (config, name);
        Some(dims.to_vec())
    }
    /// How many scratch tensors [`update`](Self::update) needs (default 2; made on the first
    /// update that runs, so a parameter whose steps all run fused never has them).
    fn scratch(config: &Self::Config) -> usize {
        let _ = config;
        2
    }
    /// Advances the parameter's host-side scalar state (NAdam's `mu_product`) to step `step`,
    /// once a step, before the update runs (fused or not). Default: nothing.
    fn advance(config: &Self::Config, step: u64, scalars: &mut BTreeMap<String, f64>) {
        let _ = (config, step, scalars);
    }
    /// The update at step `step` (1 for the first) as one [`FusedStep`], and the names of the
    /// buffers it updates, in its order, for a device with such a kernel
    /// ([`Tensor::fused_step_`]: the GPU's); [`update`](Self::update) runs where it has none
    /// and stays the reference (a fused kernel gives its values). Default: `None`.
    fn fused(
        config: &Self::Config,
        step: u64,
        scalars: &BTreeMap<String, f64>,
    ) -> Option<(FusedStep, &'static [&'static str])> {
        let _ = (config, step, scalars);
        None
    }
    /// Updates `param` in place from `grad` (under `no_grad`).
    fn update(config: &Self::Config, param: &Tensor, grad: &Tensor, slot: Slot<'_>) -> Result<()>;
}

/// The next [`Optim`]'s identity (odd numbers; see [`Optimizer::identity`]).
static NEXT_IDENTITY: AtomicU64 = AtomicU64::new(1);

/// An optimizer: parameter groups plus an [`UpdateRule`].
pub struct Optim<R: UpdateRule> {
    groups: Vec<ParamGroup<R::Config>>,
    state: BTreeMap<String, Entry>,
    /// The last step, queued to be skipped on the device if its flag is set, until the flag
    /// is read ([`crate::skip`]).
    unsettled: Option<Unsettled>,
    /// Whether the groups, as they are now, were found to list each parameter once under its
    /// own name ([`crate::distinct`]) with valid options ([`UpdateRule::check`]); cleared when
    /// the groups may change.
    checked: bool,
    /// [`Optimizer::identity`]: drawn from a process-wide count when made, odd, so that it
    /// never equals the default's address of another optimizer (addresses are aligned).
    identity: u64,
}

impl<R: UpdateRule> Optim<R> {
    /// One group holding `params` (for example `model.named_parameters()`).
    pub fn new(params: Vec<(String, Parameter)>, config: R::Config) -> Self {
        let params = params
            .into_iter()
            .map(|(name, param)| NamedParameter { name, param })
            .collect();
        Optim {
            groups: vec![ParamGroup { params, config }],
            state: BTreeMap::new(),
            unsettled: None,
            checked: false,
            identity: NEXT_IDENTITY.fetch_add(2, Ordering::Relaxed),
        }
    }

    /// Moves the parameters whose names satisfy `select` out of the existing groups into a new
    /// group with `config` (PyTorch's per-group options: a smaller lr for the backbone, no
    /// weight decay on biases). Returns the number of parameters moved.
    pub fn add_group(&mut self, select: impl Fn(&str) -> bool, config: R::Config) -> usize {
        let mut moved = Vec::new();
        for g in &mut self.groups {
            let (take, keep): (Vec<_>, Vec<_>) = g.params.drain(..).partition(|p| select(&p.name));
            g.params = keep;
            moved.extend(take);
        }
        let n = moved.len();
        self.checked = false;
        self.groups.push(ParamGroup {
            params: moved,
            config,
        });
        n
    }

    /// The groups.
    pub fn groups(&self) -> &[ParamGroup<R::Config>] {
        &self.groups
    }

    /// The groups, to change their hyper-parameters (or their parameters: the next step
    /// checks again that each is listed once under its own name and that the options are
    /// valid).
    pub fn groups_mut(&mut self) -> &mut [ParamGroup<R::Config>] {
        self.checked = false;
        &mut self.groups
    }

    /// Errors unless every parameter is listed once and under its own name and every group's
    /// options are valid (checked once after the groups change, before any state is touched).
    fn check_groups(&mut self) -> Result<()> {
        if !self.checked {
            crate::distinct::check_distinct(self.groups.iter().flat_map(|g| &g.params))?;
            for g in &self.groups {
                R::check(&g.config)?;
            }
            self.checked = true;
        }
        Ok(())
    }

    /// Group `group`, or the index error `op` reports.
    fn group_mut(&mut self, op: &'static str, group: usize) -> Result<&mut ParamGroup<R::Config>> {
        let size = self.groups.len();
        self.groups.get_mut(group).ok_or(Error::IndexOutOfBounds {
            op,
            index: group as i64,
            size,
        })
    }

    /// Reads the flag of the last [`Optimizer::step_unless`] if the host has not yet, and
    /// undoes that step's bookkeeping if it was skipped.
    fn settle(&mut self) -> Result<()> {
        if let Some(last) = self.unsettled.take()
            && last.skipped()?
        {
            last.before.restore(&mut self.state);
        }
        Ok(())
    }

    /// Every group's step, given the scaler's flag (see [`crate::step`]), once the last
    /// `step_unless` is settled.
    fn step_groups(&mut self, skip: Option<&DeferredScalar>) -> Result<()> {
        self.check_groups()?;
        let _guard = no_grad();
        for group in &self.groups {
            crate::step::step_group::<R>(&mut self.state, group, skip)?;
        }
        Ok(())
    }
}

impl<R: UpdateRule> Optimizer for Optim<R> {
    fn step(&mut self) -> Result<()> {
        self.settle()?;
        self.step_groups(None)
    }

    fn step_unless(&mut self, found_inf: &DeferredScalar) -> Result<()> {
        self.settle()?;
        let before = Snapshot::take(&self.state);
        self.step_groups(Some(found_inf))?;
        let last = Unsettled {
            flag: found_inf.clone(),
            before,
        };
        // Known already on the CPU, or when an update had to read it: settled now.
        match found_inf.try_get() {
            Some(_) if last.skipped()? => last.before.restore(&mut self.state),
            Some(_) => {}
            None => self.unsettled = Some(last),
        }
        Ok(())
    }

    fn identity(&self) -> u64 {
        self.identity
    }

    fn parameters(&self) -> Vec<Parameter> {
        self.groups
            .iter()
            .flat_map(|g| g.params.iter().map(|p| p.param.clone()))
            .collect()
    }

    fn zero_grad(&self) {
        for g in &self.groups {
            for p in &g.params {
                p.param.zero_grad();
            }
        }
    }

    fn lrs(&self) -> Vec<f64> {
        self.groups.iter().map(|g| R::lr(&g.config)).collect()
    }

    fn set_lr(&mut self, group: usize, lr: f64) -> Result<()> {
        let g = self.group_mut("set_lr", group)?;
        crate::checks::non_negative(R::NAME, "learning rate", lr)?;
        R::set_lr(&mut g.config, lr);
        Ok(())
    }

    fn momentums(&self) -> Option<Vec<f64>> {
        self.groups
            .iter()
            .map(|g| R::momentum_mut(&mut g.config.clone()).map(|m| *m))
            .collect()
    }

    fn set_momentum(&mut self, group: usize, momentum: f64) -> Result<()> {
        let g = self.group_mut("set_momentum", group)?;
        let mut config = g.config.clone();
        let Some(slot) = R::momentum_mut(&mut config) else {
            return Err(Error::invalid(
                "optimizer",
                format!("{}: has no momentum or beta1 to set", R::NAME),
            ));
        };
        *slot = momentum;
        R::check(&config)?;
        let names = |c: &R::Config| -> Vec<&'static str> {
            R::buffers(c).into_iter().map(|(name, _)| name).collect()
        };
        if names(&config) != names(&g.config) {
            return Err(Error::invalid(
                "optimizer",
                format!(
                    "{}: momentum {momentum} would switch the momentum buffer on or off; start with a nonzero momentum",
                    R::NAME
                ),
            ));
        }
        g.config = config;
        Ok(())
    }

    fn state_dict(&self) -> Result<OptimizerState> {
        let groups = self
            .groups
            .iter()
            .map(|g| {
                let names = g.params.iter().map(|p| p.name.clone()).collect();
                serde_json::to_value(&g.config)
                    .map(|c| (names, c))
                    .map_err(|e| Error::invalid("state_dict", e.to_string()))
            })
            .collect::<Result<Vec<_>>>()?;
        let mut params = self
            .state
            .iter()
            .map(|(n, e)| (n.clone(), e.state.clone()))
            .collect();
        if let Some(last) = &self.unsettled
            && last.skipped()?
        {
            last.before.restore_params(&mut params);
        }
        // State at step 0 is that of a parameter whose steps were all skipped: none yet.
        params.retain(|_, p: &mut ParamState| p.step > 0);
        Ok(OptimizerState {
            optimizer: R::NAME.to_string(),
            groups,
            params,
        })
    }

    fn load_state_dict(&mut self, state: &OptimizerState) -> Result<StateReport> {
        self.check_groups()?;
        self.settle()?;
        if state.optimizer != R::NAME {
            return Err(Error::invalid(
                "load_state_dict",
                format!("the state is from {}, not {}", state.optimizer, R::NAME),
            ));
        }
        if state.groups.len() != self.groups.len() {
            return Err(Error::invalid(
                "load_state_dict",
                format!(
                    "the state has {} groups, the optimizer {}",
                    state.groups.len(),
                    self.groups.len()
                ),
            ));
        }
        let mut configs = Vec::new();
        for (_, c) in &state.groups {
            configs.push(
                serde_json::from_value::<R::Config>(c.clone()).map_err(|e| {
                    Error::invalid("load_state_dict", format!("group options: {e}"))
                })?,
            );
        }
        for c in &configs {
            R::check(c)?;
        }
        let mut report = StateReport::default();
        let mut loaded = Vec::new();
        for (name, saved) in &state.params {
            let found = self.groups.iter().enumerate().find_map(|(gi, g)| {
                let p = g.params.iter().find(|p| &p.name == name)?;
                Some((p, &configs[gi]))
            });
            let Some((p, config)) = found else {
                report.unknown.push(name.clone());
                continue;
            };
            let value = p.param.value();
            for (bn, t) in &saved.buffers {
                let Some(dims) = R::buffer_dims(config, bn, value.dims()) else {
                    return Err(Error::invalid(
                        "load_state_dict",
                        format!(
                            "{} keeps no state {bn} for {name}, a parameter of shape {}",
                            R::NAME,
                            value.shape()
                        ),
                    ));
                };
                if t.dims() != dims.as_slice() || t.dtype() != value.dtype() {
                    return Err(Error::invalid(
                        "load_state_dict",
                        format!(
                            "state {bn} of {name} is {:?} {}, expected {:?} {dims:?} (the \
                             parameter is {})",
                            t.dtype(),
                            t.shape(),
                            value.dtype(),
                            value.shape()
                        ),
                    ));
                }
            }
            let buffers = saved
                .buffers
                .iter()
                .map(|(bn, t)| Ok((bn.clone(), t.to_device(value.device())?.force_contiguous()?)))
                .collect::<Result<Vec<_>>>()?;
            let state = ParamState {
                step: saved.step,
                buffers,
                scalars: saved.scalars.clone(),
            };
            loaded.push((name.clone(), state, Vec::new()));
        }
        for (g, c) in self.groups.iter_mut().zip(configs) {
            g.config = c;
        }
        for (name, state, scratch) in loaded {
            self.state.insert(name, Entry { state, scratch });
        }
        for g in &self.groups {
            for p in &g.params {
                let stepped = self.state.get(&p.name).is_some_and(|e| e.state.step > 0);
                if p.param.requires_grad() && !stepped {
                    report.fresh.push(p.name.clone());
                }
            }
        }
        Ok(report)
    }
}

/// `grad` with PyTorch's preprocessing: negated when maximizing, plus `weight_decay * param`
/// (L2). Writes into `scratch` only when it has to, so a plain step reads the gradient as is.
pub fn effective_grad<'a>(
    grad: &'a Tensor,
    param: &Tensor,
    weight_decay: f64,
    maximize: bool,
    scratch: &'a Tensor,
) -> Result<&'a Tensor> {
    if weight_decay == 0.0 && !maximize {
        return Ok(grad);
    }
    assign(scratch, grad)?;
    if maximize {
        scratch.mul_scalar_(-1.0)?;
    }
    if weight_decay != 0.0 {
        scratch.axpy_(weight_decay, param)?;
    }
    Ok(scratch)
}

/// `dst = src` for a `src` that may be a strided view (a gradient of a transposed weight):
/// `zero_` then `add_`, which stay allocation-free where a strided `copy_` does not.
pub fn assign(dst: &Tensor, src: &Tensor) -> Result<()> {
    dst.zero_()?;
    dst.add_(src)
}
