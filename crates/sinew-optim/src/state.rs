//! Optimizer state keyed by parameter name, and its file form: a safetensors file whose tensors
//! are `state.<parameter>.<buffer>` and whose header holds the steps, scalars and group options
//! as JSON. A reload never silently resets a parameter's moments: unknown names are reported,
//! mismatched shapes are errors, and parameters without saved state are listed as fresh.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use serde::{Deserialize, Serialize};
use sinew_nn::StateDict;
use sinew_nn::weights::{load_safetensors_with_metadata, save_safetensors_with_metadata};
use sinew_tensor::{Error, Result, Tensor};

/// The saved state of one parameter.
#[derive(Clone, Debug)]
pub struct ParamState {
    /// Updates applied so far.
    pub step: u64,
    /// Named buffers (`momentum_buffer`, `exp_avg`, ...), shaped like the parameter.
    pub buffers: Vec<(String, Tensor)>,
    /// Named scalars (`mu_product`).
    pub scalars: BTreeMap<String, f64>,
}

/// An optimizer's whole state (PyTorch's `optimizer.state_dict()`, keyed by name).
#[derive(Clone, Debug)]
pub struct OptimizerState {
    /// Which optimizer wrote it (`Adam`, ...).
    pub optimizer: String,
    /// Each group's parameter names and options (JSON).
    pub groups: Vec<(Vec<String>, serde_json::Value)>,
    /// Per-parameter state by parameter name.
    pub params: BTreeMap<String, ParamState>,
}

/// What `load_state_dict` could not match.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StateReport {
    /// Saved names the optimizer does not have (ignored).
    pub unknown: Vec<String>,
    /// Trainable parameters with no saved state (they start fresh).
    pub fresh: Vec<String>,
}

#[derive(Serialize, Deserialize)]
struct Header {
    optimizer: String,
    groups: Vec<GroupHeader>,
    params: BTreeMap<String, ParamHeader>,
}

#[derive(Serialize, Deserialize)]
struct GroupHeader {
    params: Vec<String>,
    options: serde_json::Value,
}

#[derive(Serialize, Deserialize)]
struct ParamHeader {
    step: u64,
    buffers: Vec<String>,
    scalars: BTreeMap<String, f64>,
}

const METADATA_KEY: &str = "sinew_optimizer";

fn bad_file(path: &Path, fault: impl std::fmt::Display) -> Error {
    Error::invalid("optimizer state", format!("{}: {fault}", path.display()))
}

impl OptimizerState {
    /// Writes the state atomically to `path` (safetensors with a JSON header).
    pub fn save(&self, path: impl AsRef<Path>) -> Result<()> {
        let mut tensors = StateDict::new();
        let mut params = BTreeMap::new();
        for (name, s) in &self.params {
            for (b, t) in &s.buffers {
                tensors.insert(format!("state.{name}.{b}"), t.clone());
            }
            params.insert(
                name.clone(),
                ParamHeader {
                    step: s.step,
                    buffers: s.buffers.iter().map(|(b, _)| b.clone()).collect(),
                    scalars: s.scalars.clone(),
                },
            );
        }
        let header = Header {
            optimizer: self.optimizer.clone(),
            groups: self
                .groups
                .iter()
                .map(|(p, o)| GroupHeader {
                    params: p.clone(),
                    options: o.clone(),
                })
                .collect(),
            params,
        };
        let json =
            serde_json::to_string(&header).map_err(|e| Error::invalid("save", e.to_string()))?;
        let metadata = HashMap::from([(METADATA_KEY.to_string(), json)]);
        save_safetensors_with_metadata(&tensors, Some(metadata), path)
    }

    /// Reads a state written by [`save`](Self::save); a file without the header, or whose
    /// header and tensors disagree, is an error naming the file.
    pub fn load(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let (tensors, metadata) = load_safetensors_with_metadata(path)?;
        let json = metadata
            .get(METADATA_KEY)
            .ok_or_else(|| bad_file(path, "no optimizer header (not an optimizer state file)"))?;
        let header: Header = serde_json::from_str(json).map_err(|e| bad_file(path, e))?;
        let mut params = BTreeMap::new();
        for (name, h) in header.params {
            let buffers = h
                .buffers
                .iter()
                .map(|b| {
                    let key = format!("state.{name}.{b}");
                    tensors
                        .get(&key)
                        .cloned()
                        .map(|t| (b.clone(), t))
                        .ok_or_else(|| bad_file(path, format!("tensor {key} is missing")))
                })
                .collect::<Result<Vec<_>>>()?;
            params.insert(
                name,
                ParamState {
                    step: h.step,
                    buffers,
                    scalars: h.scalars,
                },
            );
        }
        Ok(OptimizerState {
            optimizer: header.optimizer,
            groups: header
                .groups
                .into_iter()
                .map(|g| (g.params, g.options))
                .collect(),
            params,
        })
    }
}
