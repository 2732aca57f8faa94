//! The hyper-parameter checks of each optimizer: PyTorch's `ValueError`s ("Invalid learning
//! rate", "Invalid beta parameter at index 0", ...), run once when the groups change, when a
//! state is loaded and when a schedule sets a learning rate, so a negative or NaN option is an
//! error naming it instead of parameters that silently turn to NaN or climb the loss. NaN fails
//! every check (PyTorch's SGD lets a NaN learning rate through; here it is refused too).

use sinew_tensor::{Error, Result};

/// An error for `optimizer`'s option `what` = `value`, which must be `must`.
fn invalid(optimizer: &str, what: &str, value: f64, must: &str) -> Error {
    Error::invalid(
        "optimizer",
        format!("{optimizer}: invalid {what} {value} (it must be {must})"),
    )
}

/// `value >= 0` (NaN fails).
pub(crate) fn non_negative(optimizer: &str, what: &str, value: f64) -> Result<()> {
    if value >= 0.0 {
        Ok(())
    } else {
        Err(invalid(optimizer, what, value, ">= 0"))
    }
}

/// `value <= max` (NaN fails).
pub(crate) fn at_most(optimizer: &str, what: &str, value: f64, max: f64) -> Result<()> {
    if value <= max {
        Ok(())
    } else {
        Err(invalid(optimizer, what, value, &format!("<= {max}")))
    }
}

/// `value >= min` (NaN fails).
pub(crate) fn at_least(optimizer: &str, what: &str, value: f64, min: f64) -> Result<()> {
    if value >= min {
        Ok(())
    } else {
        Err(invalid(optimizer, what, value, &format!(">= {min}")))
    }
}

/// `0 <= value < 1`, a moving average's decay (Adam's betas).
pub(crate) fn decay(optimizer: &str, what: &str, value: f64) -> Result<()> {
    if (0.0..1.0).contains(&value) {
        Ok(())
    } else {
        Err(invalid(optimizer, what, value, "in [0, 1)"))
    }
}

/// `0 <= value <= 1` (Adadelta's rho).
pub(crate) fn unit(optimizer: &str, what: &str, value: f64) -> Result<()> {
    if (0.0..=1.0).contains(&value) {
        Ok(())
    } else {
        Err(invalid(optimizer, what, value, "in [0, 1]"))
    }
}

/// The checks every Adam-like optimizer shares: lr, eps, betas and weight decay.
pub(crate) fn adam_like(
    optimizer: &str,
    lr: f64,
    betas: (f64, f64),
    eps: f64,
    weight_decay: f64,
) -> Result<()> {
    non_negative(optimizer, "learning rate", lr)?;
    non_negative(optimizer, "eps", eps)?;
    decay(optimizer, "betas.0", betas.0)?;
    decay(optimizer, "betas.1", betas.1)?;
    non_negative(optimizer, "weight_decay", weight_decay)
}
