//! A PyTorch optimizer's state (`optimizer.state_dict()` in a `torch.save` checkpoint) as a
//! Sinew [`OptimizerState`], so a training run started in PyTorch resumes here with its
//! moments. PyTorch numbers the parameters (0, 1, ... through the groups in order); Sinew keys
//! them by name, so the numbers become the names of the optimizer they are loaded into.

use std::collections::BTreeMap;

use sinew_nn::StateDict;
use sinew_tensor::{DType, Error, Result};

use crate::{Optimizer, OptimizerState, ParamState};

const OP: &str = "OptimizerState::from_pytorch";

impl OptimizerState {
    /// PyTorch's optimizer state, as [`sinew_nn::load_pytorch`] reads it (its tensors under
    /// `state.<index>.<name>`, e.g. `checkpoint.select("optimizer.")`), for `opt`: parameter
    /// `index` is `opt`'s `index`-th parameter through its groups in order (PyTorch's numbering
    /// when both were built from the same model), and the groups and options are `opt`'s own
    /// (PyTorch's learning rates and betas are not read: build `opt` with the run's). `step`
    /// becomes the step count, NAdam's `mu_product` and ASGD's `eta` and `mu` scalars, every
    /// other tensor a buffer of PyTorch's name (`exp_avg`, `momentum_buffer`, ...); SGD's
    /// state, which has no step, counts one. L-BFGS's state is an error: its step length and
    /// counters are Python numbers, which [`sinew_nn::load_pytorch`] does not read. Pass the
    /// result to `opt.load_state_dict`, which checks shapes and dtypes.
    pub fn from_pytorch(opt: &dyn Optimizer, state: &StateDict) -> Result<OptimizerState> {
        let mut ours = opt.state_dict()?;
        if ours.optimizer == crate::Lbfgs::NAME {
            return Err(Error::invalid(
                OP,
                "PyTorch keeps L-BFGS's step length and counters as Python numbers, which a \
                 checkpoint's tensors do not carry: its state cannot be resumed here (start the \
                 L-BFGS fresh; its history rebuilds in `history_size` iterations)",
            ));
        }
        let names: Vec<&String> = ours.groups.iter().flat_map(|(n, _)| n).collect();
        let mut params: BTreeMap<String, ParamState> = BTreeMap::new();
        for (key, tensor) in state.iter() {
            let bad = || Error::invalid(OP, format!("{key:?} is not state.<index>.<name>"));
            let rest = key.strip_prefix("state.").ok_or_else(bad)?;
            let (index, buffer) = rest.split_once('.').ok_or_else(bad)?;
            let index: usize = index.parse().map_err(|_| bad())?;
            let name = names.get(index).ok_or_else(|| {
                Error::invalid(
                    OP,
                    format!(
                        "PyTorch's state has parameter {index}; the optimizer has {}",
                        names.len()
                    ),
                )
            })?;
            let entry = params
                .entry(name.to_string())
                .or_insert_with(|| ParamState {
                    step: 0,
                    buffers: Vec::new(),
                    scalars: BTreeMap::new(),
                });
            match buffer {
                "step" => {
                    let step = tensor.to_dtype(DType::F64)?.item()?;
                    if !(step >= 0.0 && step.fract() == 0.0 && step < 2f64.powi(53)) {
                        return Err(Error::invalid(OP, format!("{key} is {step}, not a count")));
                    }
                    entry.step = step as u64;
                }
                "mu_product" => {
                    let mu = tensor.to_dtype(DType::F64)?.item()?;
                    entry.scalars.insert(buffer.to_string(), mu);
                }
                // ASGD's step size and averaging weight, computed for the next step.
                "eta" | "mu" => {
                    let value = tensor.to_dtype(DType::F64)?.item()?;
                    entry.scalars.insert(format!("{buffer}_next"), value);
                }
                _ => entry.buffers.push((buffer.to_string(), tensor.clone())),
            }
        }
        for s in params.values_mut() {
            // SGD keeps no step: a momentum buffer means a step was taken.
            if s.step == 0 && !s.buffers.is_empty() {
                s.step = 1;
            }
        }
        ours.params = params;
        Ok(ours)
    }
}
