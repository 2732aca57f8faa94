//! One training batch of [`Trainer::fit`]: forward, loss, backward and the optimizer's step,
//! either once ([`Trainer::plain_step`]) or through a closure the optimizer re-runs
//! ([`Trainer::closure_step`], for L-BFGS: PyTorch Lightning's `optimizer.step(closure)`).

use sinew_data::Batch;
use sinew_tensor::{Error, Result, Tensor};

use super::Trainer;

impl Trainer<'_> {
    /// Forward and loss (under autocast in mixed precision), backward through the loss scaler,
    /// the distributed gradient reduction, clipping and one step. Returns the output and loss.
    pub(super) fn plain_step(&mut self, batch: &Batch) -> Result<(Tensor, Tensor)> {
        let (out, loss) = {
            let _amp = self.precision.forward_scope(&self.weight_casts)?;
            let out = self.model.forward(&batch.inputs)?;
            let loss = (self.loss)(&out, &batch.targets)?;
            self.weight_casts.remember();
            (out, loss)
        };
        self.optimizer.zero_grad();
        self.scaler.backward(&loss)?;
        if let Some(d) = &self.distributed {
            d.after_backward()?;
        }
        if let Some(max_norm) = self.clip_grad_norm {
            self.scaler.unscale_(self.optimizer.as_ref())?;
            let params = self.optimizer.parameters();
            sinew_optim::clip_grad_norm_(&params, max_norm, 2.0, false)?;
        }
        self.scaler.step(self.optimizer.as_mut())?;
        self.scaler.update();
        Ok((out, loss))
    }

    /// A step of an optimizer that re-evaluates the loss (L-BFGS): each evaluation runs the
    /// forward pass (under autocast in bf16 mixed precision), the loss, backward and clipping.
    /// Returns the first evaluation's output and loss, the ones at the weights the batch found.
    /// Loss scaling (f16) and data-parallel training are errors: neither follows a step that
    /// re-evaluates (PyTorch's `GradScaler` refuses closures too).
    pub(super) fn closure_step(&mut self, batch: &Batch) -> Result<(Tensor, Tensor)> {
        if self.scaler.is_enabled() {
            return Err(refused("f16 mixed precision (loss scaling)"));
        }
        if self.distributed.is_some() {
            return Err(refused("data-parallel training"));
        }
        let Trainer {
            model,
            optimizer,
            loss: loss_fn,
            precision,
            weight_casts,
            clip_grad_norm,
            ..
        } = self;
        let params = optimizer.parameters();
        let mut first_out = None;
        let mut closure = || {
            let (out, loss) = {
                let _amp = precision.forward_scope(weight_casts)?;
                let out = model.forward(&batch.inputs)?;
                let loss = loss_fn(&out, &batch.targets)?;
                weight_casts.remember();
                (out, loss)
            };
            loss.backward()?;
            if let Some(max_norm) = *clip_grad_norm {
                sinew_optim::clip_grad_norm_(&params, max_norm, 2.0, false)?;
            }
            first_out.get_or_insert(out);
            Ok(loss)
        };
        let loss = optimizer.step_with(&mut closure)?;
        let out = first_out.ok_or_else(|| {
            Error::invalid("fit", "the optimizer stepped without evaluating the loss")
        })?;
        Ok((out, loss))
    }
}

/// The error for training an optimizer that re-evaluates the loss with `what`.
fn refused(what: &str) -> Error {
    Error::invalid(
        "fit",
        format!(
            "the optimizer re-evaluates the loss within a step (L-BFGS), which {what} does not \
             support: train it in f32 or bf16, on one process"
        ),
    )
}
