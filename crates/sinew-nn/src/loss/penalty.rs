//! Weight penalties over a module's parameters, to add to a loss.

use sinew_tensor::{Result, Tensor};

use crate::{Module, ModuleExt};

fn penalty(model: &dyn Module, f: impl Fn(&Tensor) -> Result<Tensor>) -> Result<Option<Tensor>> {
    let mut total: Option<Tensor> = None;
    for p in model.parameters() {
        let term = f(&p.value())?.sum_all()?;
        total = Some(match total {
            Some(t) => t.add(&term)?,
            None => term,
        });
    }
    Ok(total)
}

/// `sum |w|` over every parameter (L1 / lasso regularisation); `None` without parameters.
pub fn l1_penalty(model: &dyn Module) -> Result<Option<Tensor>> {
    penalty(model, Tensor::abs)
}

/// `sum w^2` over every parameter (L2 regularisation; multiply by `lambda / 2` for weight
/// decay's gradient `lambda w`); `None` without parameters.
pub fn l2_penalty(model: &dyn Module) -> Result<Option<Tensor>> {
    penalty(model, Tensor::square)
}
