//! `state_dict()` and `load_state_dict()`: the module tree's parameters and buffers by name,
//! and loading them back (strict or not) with a report of what did not match.

use std::fmt;

use sinew_tensor::{Error, Result, Shape, Tensor, no_grad};

use crate::module::{Entry, Module};
use crate::module_ext::walk;

/// Named tensors in a fixed order (PyTorch's `OrderedDict` state dict).
#[derive(Clone, Default)]
pub struct StateDict {
    entries: Vec<(String, Tensor)>,
}

impl StateDict {
    /// An empty state dict.
    pub fn new() -> Self {
        StateDict::default()
    }

    /// Adds or replaces `name`.
    pub fn insert(&mut self, name: impl Into<String>, value: Tensor) {
        let name = name.into();
        match self.entries.iter_mut().find(|(n, _)| *n == name) {
            Some(slot) => slot.1 = value,
            None => self.entries.push((name, value)),
        }
    }

    /// The tensor called `name`.
    pub fn get(&self, name: &str) -> Option<&Tensor> {
        self.entries.iter().find(|(n, _)| n == name).map(|(_, t)| t)
    }

    /// Removes and returns `name`.
    pub fn remove(&mut self, name: &str) -> Option<Tensor> {
        let i = self.entries.iter().position(|(n, _)| n == name)?;
        Some(self.entries.remove(i).1)
    }

    /// The names, in order.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.entries.iter().map(|(n, _)| n.as_str())
    }

    /// Name and tensor pairs, in order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Tensor)> {
        self.entries.iter().map(|(n, t)| (n.as_str(), t))
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether there are no entries.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The entries whose names start with `prefix`, with it removed (for example `module.`
    /// from a `DataParallel` checkpoint). Other entries are kept unchanged.
    pub fn strip_prefix(&self, prefix: &str) -> StateDict {
        StateDict {
            entries: self
                .entries
                .iter()
                .map(|(n, t)| (n.strip_prefix(prefix).unwrap_or(n).to_string(), t.clone()))
                .collect(),
        }
    }

    /// Every name with `prefix` in front (`backbone.` to load into a sub-module's parent).
    pub fn add_prefix(&self, prefix: &str) -> StateDict {
        StateDict {
            entries: self
                .entries
                .iter()
                .map(|(n, t)| (format!("{prefix}{n}"), t.clone()))
                .collect(),
        }
    }

    /// Only the entries whose names start with `prefix`, with it removed (the weights of one
    /// sub-module, for partial loading).
    pub fn select(&self, prefix: &str) -> StateDict {
        StateDict {
            entries: self
                .entries
                .iter()
                .filter_map(|(n, t)| n.strip_prefix(prefix).map(|s| (s.to_string(), t.clone())))
                .collect(),
        }
    }
}

impl fmt::Debug for StateDict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map()
            .entries(
                self.entries
                    .iter()
                    .map(|(n, t)| (n, format!("{:?} {}", t.dtype(), t.shape()))),
            )
            .finish()
    }
}

impl FromIterator<(String, Tensor)> for StateDict {
    fn from_iter<I: IntoIterator<Item = (String, Tensor)>>(iter: I) -> Self {
        let mut sd = StateDict::new();
        for (n, t) in iter {
            sd.insert(n, t);
        }
        sd
    }
}

/// What `load_state_dict` did not match. Empty for a perfect match.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LoadReport {
    /// Model entries the state dict lacks (left unchanged).
    pub missing: Vec<String>,
    /// State dict entries the model lacks (ignored).
    pub unexpected: Vec<String>,
    /// Entries present on both sides with different shapes: (name, model's, file's); skipped.
    pub mismatched: Vec<(String, Shape, Shape)>,
}

impl LoadReport {
    /// True when every key matched.
    pub fn is_clean(&self) -> bool {
        self.missing.is_empty() && self.unexpected.is_empty() && self.mismatched.is_empty()
    }
}

impl fmt::Display for LoadReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts = Vec::new();
        if !self.missing.is_empty() {
            parts.push(format!("missing keys: {}", self.missing.join(", ")));
        }
        if !self.unexpected.is_empty() {
            parts.push(format!("unexpected keys: {}", self.unexpected.join(", ")));
        }
        for (name, want, got) in &self.mismatched {
            parts.push(format!(
                "size mismatch for {name}: the model has {want}, the state dict {got}"
            ));
        }
        if parts.is_empty() {
            write!(f, "all keys matched")
        } else {
            write!(f, "{}", parts.join("; "))
        }
    }
}

/// One loadable slot of a module: a parameter or a buffer.
enum Slot {
    Parameter(sinew_tensor::Parameter),
    Buffer(crate::Buffer),
}

impl Slot {
    fn value(&self) -> Tensor {
        match self {
            Slot::Parameter(p) => p.value(),
            Slot::Buffer(b) => b.value(),
        }
    }
}

fn slots(model: &dyn Module) -> Vec<(String, Slot)> {
    let mut out = Vec::new();
    walk(model, |path, entry| match entry {
        Entry::Parameter(p) => out.push((path.to_string(), Slot::Parameter(p.clone()))),
        Entry::Buffer(b) => out.push((path.to_string(), Slot::Buffer(b.clone()))),
        _ => {}
    });
    out
}

/// The model's parameters and buffers by name, detached (shared parameters appear under every
/// name, as in PyTorch).
pub fn state_dict(model: &dyn Module) -> StateDict {
    StateDict {
        entries: slots(model)
            .into_iter()
            .map(|(n, s)| (n, s.value().detach()))
            .collect(),
    }
}

/// Loads `sd` into the model: each matching entry is converted to the slot's dtype and device.
/// With `strict`, any missing, unexpected or mismatched key is an error naming them, and
/// nothing is loaded; otherwise the matching entries load and the report lists the rest.
pub fn load_state_dict(model: &dyn Module, sd: &StateDict, strict: bool) -> Result<LoadReport> {
    let slots = slots(model);
    let mut report = LoadReport::default();
    let mut loads = Vec::new();
    for (name, slot) in &slots {
        match sd.get(name) {
            None => report.missing.push(name.clone()),
            Some(t) => {
                let current = slot.value();
                if t.shape() != current.shape() {
                    report.mismatched.push((
                        name.clone(),
                        current.shape().clone(),
                        t.shape().clone(),
                    ));
                } else {
                    loads.push((name, t, current));
                }
            }
        }
    }
    for name in sd.keys() {
        if !slots.iter().any(|(n, _)| n == name) {
            report.unexpected.push(name.to_string());
        }
    }
    if strict && !report.is_clean() {
        return Err(Error::invalid(
            "load_state_dict",
            format!("error(s) in loading state_dict (strict): {report}"),
        ));
    }
    // Copy into the existing storage (PyTorch's `param.copy_(input_param)`): the parameter
    // keeps its identity, dtype and device, and shares nothing with `sd`.
    let _guard = no_grad();
    for (_, t, current) in loads {
        current.copy_(
            &t.detach()
                .to_dtype(current.dtype())?
                .to_device(current.device())?,
        )?;
    }
    Ok(report)
}
