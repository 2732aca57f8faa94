//! Fused optimizer steps ([`Tensor::fused_step_`]): one parameter and its state buffers updated
//! by one kernel where the backend has one (CUDA: `cuda/fused_step.cu`, every optimizer of
//! sinew-optim), as PyTorch's `fused=True` SGD/Adam/AdamW steps are. The steps are PyTorch's formulas as sinew-optim writes them
//! with in-place ops (`mul_axpy_`, `lerp_`, `addcdiv_sqrt_`, ...); a fused kernel rounds to the
//! dtype wherever one of those ops would, without FMA contraction, so both give the same values
//! bit for bit in f32 and f64, and the in-place ops stay the reference and the fallback.
//! Adafactor's step, which needs two norms of the parameter before it can update it, is not
//! one elementwise pass: [`Tensor::fused_adafactor_`] (`adafactor.rs`) runs it in a few
//! launches that keep the norms on the device.

mod adafactor;
mod amp_unscale;
mod average;
mod foreach;
mod many;
mod steps;

pub use adafactor::AdafactorStep;
pub use average::AverageStep;
pub use many::StepOperands;
pub(crate) use many::{groups_by, with_dense_runs};
pub use steps::{
    AdadeltaStep, AdagradStep, AdamStep, AdamaxStep, AsgdStep, NadamStep, RadamStep, RmspropStep,
    RpropStep, SgdStep,
};

use crate::{Result, Tensor};

/// One optimizer step a backend may run as one kernel ([`Tensor::fused_step_`]).
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub enum FusedStep {
    /// SGD; state: the momentum buffer when `momentum != 0`, else none.
    Sgd(SgdStep),
    /// Adam / AdamW; state: `exp_avg`, `exp_avg_sq`, and `max_exp_avg_sq` with AMSGrad.
    Adam(AdamStep),
    /// Adamax; state: `exp_avg`, `exp_inf`.
    Adamax(AdamaxStep),
    /// Adagrad; state: `sum`.
    Adagrad(AdagradStep),
    /// RMSprop; state: `square_avg`, then `momentum_buffer` when `momentum > 0`, then
    /// `grad_avg` when centred.
    Rmsprop(RmspropStep),
    /// Adadelta; state: `square_avg`, `acc_delta`.
    Adadelta(AdadeltaStep),
    /// NAdam; state: `exp_avg`, `exp_avg_sq`.
    Nadam(NadamStep),
    /// RAdam; state: `exp_avg`, `exp_avg_sq`.
    Radam(RadamStep),
    /// Rprop; state: `prev`, `step_size`.
    Rprop(RpropStep),
    /// ASGD; state: `ax`.
    Asgd(AsgdStep),
}

impl FusedStep {
    /// The op's name (in errors).
    pub fn name(&self) -> &'static str {
        match self {
            FusedStep::Sgd(_) => "fused_sgd_",
            FusedStep::Adam(_) => "fused_adam_",
            FusedStep::Adamax(_) => "fused_adamax_",
            FusedStep::Adagrad(_) => "fused_adagrad_",
            FusedStep::Rmsprop(_) => "fused_rmsprop_",
            FusedStep::Adadelta(_) => "fused_adadelta_",
            FusedStep::Nadam(_) => "fused_nadam_",
            FusedStep::Radam(_) => "fused_radam_",
            FusedStep::Rprop(_) => "fused_rprop_",
            FusedStep::Asgd(_) => "fused_asgd_",
        }
    }

    /// How many state buffers the step updates besides the parameter.
    pub fn num_buffers(&self) -> usize {
        match self {
            FusedStep::Sgd(s) => usize::from(s.momentum != 0.0),
            FusedStep::Adam(a) => 2 + usize::from(a.amsgrad),
            FusedStep::Adamax(_)
            | FusedStep::Adadelta(_)
            | FusedStep::Nadam(_)
            | FusedStep::Radam(_)
            | FusedStep::Rprop(_) => 2,
            FusedStep::Adagrad(_) | FusedStep::Asgd(_) => 1,
            FusedStep::Rmsprop(r) => 1 + usize::from(r.momentum > 0.0) + usize::from(r.centered),
        }
    }
}

impl Tensor {
    /// Runs `step` on this parameter, its `buffers` (as [`FusedStep::num_buffers`] lists
    /// them) and its gradient `grad` in one kernel, in place, when the device's backend has
    /// one and every tensor is a dense view of one float dtype, shape and device in a storage
    /// of its own. `Ok(false)`, with nothing written, otherwise: the caller then runs the same
    /// step as separate in-place ops (sinew-optim does), which give the same values. Run it
    /// under `no_grad`, as optimizers do.
    pub fn fused_step_(
        &self,
        step: &FusedStep,
        buffers: &[&Tensor],
        grad: &Tensor,
    ) -> Result<bool> {
        let operands = StepOperands {
            param: self,
            buffers,
            grad,
        };
        operands.check_buffers(step)?;
        let backend = self.device().backend();
        if !backend.fuses(step, self.dtype()) || !operands.fit(self.dtype(), self.device()) {
            return Ok(false);
        }
        let mut dsts: Vec<&Tensor> = vec![self];
        dsts.extend(buffers);
        let len = self.elem_count();
        many::write_dense_runs(&dsts, &[grad], |views, g| {
            backend.fused_step(step, views, g[0], len)
        })
    }
}
