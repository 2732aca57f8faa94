//! # sinew-optim
//!
//! Optimizers with PyTorch's formulas and defaults (SGD, Adagrad, RMSprop, Adam, AdamW, NAdam,
//! RAdam, Adadelta, Adamax, Rprop, ASGD, Adafactor, L-BFGS), learning-rate schedules, gradient clipping and weight
//! averaging (SWA, EMA).
//!
//! - Parameters come by name (`model.named_parameters()`), and the state is keyed by those names:
//!   a reloaded optimizer finds its moments again or reports what it could not match. So each
//!   parameter appears once, under its own name: the first step (and the first after
//!   [`Optim::groups_mut`]) refuses a list that repeats a parameter or a name.
//! - Groups: [`Optim::add_group`] moves the parameters whose names match into a group with their
//!   own options (a lower lr for the backbone, no weight decay on biases).
//! - Steps update the parameters in place under `no_grad` with the core's in-place ops, on
//!   whatever device they live, with no allocation after the first step.
//!
//! ```
//! use sinew_nn::{Linear, Module, ModuleExt};
//! use sinew_optim::{AdamConfig, Optimizer, adam};
//! use sinew_tensor::{DType, Device, Tensor};
//! let model = Linear::new(3, 1)?;
//! let mut opt = adam(model.named_parameters(), AdamConfig::new(1e-2));
//! let x = Tensor::ones([4, 3], DType::F32, &Device::cpu())?;
//! for _ in 0..3 {
//!     opt.zero_grad();
//!     model.forward(&x)?.square()?.mean_all()?.backward()?;
//!     opt.step()?;
//! }
//! # Ok::<(), sinew_tensor::Error>(())
//! ```

mod adafactor;
mod adam;
mod adaptive;
mod asgd;
mod builders;
mod checks;
pub mod clip;
mod distinct;
mod grad_scaler;
mod lbfgs;
mod nadam;
mod optimizer;
mod python;
mod radam;
mod rprop;
pub mod schedule;
mod sgd;
mod skip;
mod state;
mod step;
mod swa;
mod torch_state;

pub use adafactor::{Adafactor, AdafactorConfig, AdafactorRule, adafactor};
pub use adam::{
    Adam, AdamConfig, AdamRule, AdamW, AdamWRule, Adamax, AdamaxRule, adam, adamax, adamw,
};
pub use adaptive::{
    Adadelta, AdadeltaConfig, AdadeltaRule, Adagrad, AdagradConfig, AdagradRule, Rmsprop,
    RmspropConfig, RmspropRule, adadelta, adagrad, rmsprop,
};
pub use asgd::{Asgd, AsgdConfig, AsgdRule, asgd};
pub use clip::{clip_grad_norm_, clip_grad_value_};
pub use grad_scaler::{GradScaler, GradScalerConfig, GradScalerState};
pub use lbfgs::{Lbfgs, LbfgsConfig, LineSearch, lbfgs};
pub use nadam::{Nadam, NadamConfig, NadamRule, nadam};
pub use optimizer::{
    NamedParameter, Optim, Optimizer, ParamGroup, Slot, UpdateRule, assign, effective_grad,
};
pub use radam::{Radam, RadamConfig, RadamRule, radam};
pub use rprop::{Rprop, RpropConfig, RpropRule, rprop};
pub use schedule::{LrSchedule, ReduceLrOnPlateau};
pub use sgd::{Sgd, SgdConfig, SgdRule, sgd};
pub use state::{OptimizerState, ParamState, StateReport};
pub use swa::{AveragedModel, Averaging};
