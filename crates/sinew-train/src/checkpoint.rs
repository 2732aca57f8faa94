//! Training checkpoints: one directory with the model (safetensors), the optimizer state, the
//! random generator's state, the callbacks' states (schedules, early stopping) and tensors (an
//! averaged model), the loss scaler's state (mixed precision) and the next epoch, replaced
//! atomically. Resuming from one gives bit-identical results to an uninterrupted run on the CPU
//! (the data order is a function of the loader's seed and the epoch).
//!
//! Writing: everything goes to `<dir>.new`, a `COMPLETE` marker is written last and synced,
//! then `<dir>` is renamed to `<dir>.old`, `<dir>.new` to `<dir>`, and `<dir>.old` removed. A
//! kill at any point leaves a complete checkpoint: `<dir>`, or `<dir>.new` (complete, not yet
//! renamed), or `<dir>.old` (the previous one); [`TrainingCheckpoint::load`] finds it. The
//! next save first completes a rename left undone, so it never deletes the latest complete one.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sinew_nn::{Module, ModuleExt, StateDict, load_safetensors, save_safetensors};
use sinew_optim::{GradScalerState, Optimizer, OptimizerState};
use sinew_tensor::{Error, Result, default_generator_state, set_default_generator_state};

const MARKER: &str = "COMPLETE";

#[derive(Serialize, Deserialize)]
struct Meta {
    next_epoch: usize,
    generator: (u64, u64),
    /// Each callback's state, in the trainer's order (`null` for stateless ones).
    #[serde(default)]
    callbacks: Vec<Option<serde_json::Value>>,
    /// The loss scaler's state, when mixed precision scales the loss.
    #[serde(default)]
    grad_scaler: Option<GradScalerState>,
}

/// What a checkpoint keeps besides the model, the optimizer and the generator: the trainer's
/// own state.
#[derive(Clone, Debug, Default)]
pub struct CheckpointExtras {
    /// Each callback's state, in the trainer's order (`None` for stateless ones).
    pub callbacks: Vec<Option<serde_json::Value>>,
    /// Each callback's tensors (an averaged model), in the trainer's order, saved as
    /// `callback<i>.safetensors` (`None`: nothing to save).
    pub callback_tensors: Vec<Option<StateDict>>,
    /// The [`GradScaler`](sinew_optim::GradScaler)'s state, when mixed precision scales the
    /// loss (PyTorch saves `scaler.state_dict()` beside the optimizer's).
    pub grad_scaler: Option<GradScalerState>,
}

/// Saving and loading whole training states.
pub struct TrainingCheckpoint;

fn io(path: &Path, e: impl std::fmt::Display) -> Error {
    Error::invalid("checkpoint", format!("{}: {e}", path.display()))
}

/// The file of callback `i`'s tensors in a checkpoint.
fn callback_file(i: usize) -> String {
    format!("callback{i}.safetensors")
}

fn sibling(dir: &Path, suffix: &str) -> PathBuf {
    let mut name = dir
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_default();
    name.push(suffix);
    dir.with_file_name(name)
}

impl TrainingCheckpoint {
    /// Saves the model, the optimizer, the default generator's state and `next_epoch` to `dir`,
    /// replacing any previous checkpoint there atomically.
    pub fn save(
        dir: impl AsRef<Path>,
        model: &dyn Module,
        optimizer: &dyn Optimizer,
        next_epoch: usize,
    ) -> Result<()> {
        Self::save_with_extras(
            dir,
            model,
            optimizer,
            next_epoch,
            CheckpointExtras::default(),
        )
    }

    /// [`save`](Self::save) plus the trainer's state: callbacks (schedules, early stopping,
    /// ...) and the loss scaler.
    pub fn save_with_extras(
        dir: impl AsRef<Path>,
        model: &dyn Module,
        optimizer: &dyn Optimizer,
        next_epoch: usize,
        extras: CheckpointExtras,
    ) -> Result<()> {
        let dir = dir.as_ref();
        let (new, old) = (sibling(dir, ".new"), sibling(dir, ".old"));
        // A save stopped between its two renames left the latest checkpoint in `<dir>.new`:
        // finish that rename first, so that this save does not delete it to start over.
        if !dir.exists() && new.join(MARKER).exists() {
            std::fs::rename(&new, dir).map_err(|e| io(dir, e))?;
        }
        if new.exists() {
            std::fs::remove_dir_all(&new).map_err(|e| io(&new, e))?;
        }
        std::fs::create_dir_all(&new).map_err(|e| io(&new, e))?;
        save_safetensors(&model.state_dict(), new.join("model.safetensors"))?;
        for (i, tensors) in extras.callback_tensors.iter().enumerate() {
            if let Some(tensors) = tensors {
                save_safetensors(tensors, new.join(callback_file(i)))?;
            }
        }
        optimizer
            .state_dict()?
            .save(new.join("optimizer.safetensors"))?;
        let meta = Meta {
            next_epoch,
            generator: default_generator_state(),
            callbacks: extras.callbacks,
            grad_scaler: extras.grad_scaler,
        };
        let json = serde_json::to_vec(&meta).map_err(|e| io(&new, e))?;
        sinew_nn::weights::write_atomic(&new.join("meta.json"), &json).map_err(|e| io(&new, e))?;
        sinew_nn::weights::write_atomic(&new.join(MARKER), b"ok").map_err(|e| io(&new, e))?;
        if dir.exists() {
            if old.exists() {
                std::fs::remove_dir_all(&old).map_err(|e| io(&old, e))?;
            }
            std::fs::rename(dir, &old).map_err(|e| io(dir, e))?;
        }
        std::fs::rename(&new, dir).map_err(|e| io(dir, e))?;
        if old.exists() {
            std::fs::remove_dir_all(&old).map_err(|e| io(&old, e))?;
        }
        Ok(())
    }

    /// The complete checkpoint to load: `dir`, else a finished `<dir>.new`, else `<dir>.old`.
    pub fn locate(dir: impl AsRef<Path>) -> Option<PathBuf> {
        let dir = dir.as_ref();
        [
            dir.to_path_buf(),
            sibling(dir, ".new"),
            sibling(dir, ".old"),
        ]
        .into_iter()
        .find(|d| d.join(MARKER).exists())
    }

    /// Loads a checkpoint into `model` and `optimizer` (strictly) and restores the generator;
    /// returns the epoch to continue from.
    pub fn load(
        dir: impl AsRef<Path>,
        model: &dyn Module,
        optimizer: &mut dyn Optimizer,
    ) -> Result<usize> {
        Ok(Self::load_with_extras(dir, model, optimizer)?.0)
    }

    /// [`load`](Self::load), also returning the saved trainer state (callbacks, loss scaler).
    pub fn load_with_extras(
        dir: impl AsRef<Path>,
        model: &dyn Module,
        optimizer: &mut dyn Optimizer,
    ) -> Result<(usize, CheckpointExtras)> {
        let dir = dir.as_ref();
        let found = Self::locate(dir).ok_or_else(|| io(dir, "no complete checkpoint here"))?;
        model.load_state_dict(&load_safetensors(found.join("model.safetensors"))?, true)?;
        let state = OptimizerState::load(found.join("optimizer.safetensors"))?;
        let report = optimizer.load_state_dict(&state)?;
        if !report.unknown.is_empty() {
            return Err(io(
                &found,
                format!(
                    "optimizer state for unknown parameters: {}",
                    report.unknown.join(", ")
                ),
            ));
        }
        let meta_path = found.join("meta.json");
        let bytes = std::fs::read(&meta_path).map_err(|e| io(&meta_path, e))?;
        let meta: Meta = serde_json::from_slice(&bytes).map_err(|e| io(&meta_path, e))?;
        let callback_tensors = (0..meta.callbacks.len())
            .map(|i| {
                let path = found.join(callback_file(i));
                path.exists().then(|| load_safetensors(&path)).transpose()
            })
            .collect::<Result<_>>()?;
        set_default_generator_state(meta.generator.0, meta.generator.1);
        let extras = CheckpointExtras {
            callbacks: meta.callbacks,
            callback_tensors,
            grad_scaler: meta.grad_scaler,
        };
        Ok((meta.next_epoch, extras))
    }
}
