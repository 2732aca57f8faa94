//! The check that an optimizer's groups list each parameter once, each under its own name:
//! the state is kept by name, so two parameters with one name would share (and corrupt) one
//! momentum or Adam buffer, and a parameter listed twice would take two steps per `step()`.

use std::collections::HashSet;

use sinew_tensor::{Error, Result};

use crate::optimizer::NamedParameter;

/// Errors naming the first parameter that is listed twice or shares another's name (PyTorch
/// refuses a parameter in two groups: "some parameters appear in more than one parameter
/// group"). Run once per change of the groups, not per step: the pairwise comparison of
/// parameters is quadratic (a few hundred parameters take well under a millisecond).
pub(crate) fn check_distinct<'a>(
    params: impl IntoIterator<Item = &'a NamedParameter>,
) -> Result<()> {
    let params: Vec<&NamedParameter> = params.into_iter().collect();
    let mut names = HashSet::with_capacity(params.len());
    for (i, p) in params.iter().enumerate() {
        if let Some(first) = params[..i].iter().find(|q| q.param.ptr_eq(&p.param)) {
            return Err(Error::invalid(
                "optimizer",
                format!(
                    "parameter `{}` is listed twice (also as `{}`): each parameter may \
                     appear once in an optimizer's groups",
                    p.name, first.name
                ),
            ));
        }
        if !names.insert(p.name.as_str()) {
            return Err(Error::invalid(
                "optimizer",
                format!(
                    "two parameters are named `{}`: the optimizer keeps each parameter's state \
                     under its name, so give each its own (prefix each model's names when \
                     one optimizer trains several models)",
                    p.name
                ),
            ));
        }
    }
    Ok(())
}
