//! `ModelCheckpoint`: save the model's weights after epochs, optionally only improvements,
//! keeping the last N files.

use std::collections::VecDeque;
use std::path::PathBuf;

use sinew_nn::{ModuleExt, save_safetensors};
use sinew_tensor::Result;

use super::{Callback, Context, MonitorMode, decode, monitored};
use crate::Logs;

/// Saves `model.state_dict()` as safetensors (atomically) to a path made from a template:
/// `{epoch}` becomes the 1-based epoch, `{name}` any logged value with 4 decimals
/// (`"ckpt/model-{epoch}-{val_loss}.safetensors"`).
pub struct ModelCheckpoint {
    /// The path template.
    pub template: String,
    /// The logged value compared with `save_best_only` (default `val_loss`).
    pub monitor: String,
    /// Min or max for `monitor`.
    pub mode: MonitorMode,
    /// Save only when `monitor` improves (default false).
    pub save_best_only: bool,
    /// Keep at most this many files written by this callback, deleting the oldest (default all).
    pub keep_last: Option<usize>,
    best: Option<f64>,
    written: VecDeque<PathBuf>,
}

impl ModelCheckpoint {
    /// Saves after every epoch to `template`.
    pub fn new(template: &str) -> Self {
        ModelCheckpoint {
            template: template.to_string(),
            monitor: "val_loss".into(),
            mode: MonitorMode::Min,
            save_best_only: false,
            keep_last: None,
            best: None,
            written: VecDeque::new(),
        }
    }

    /// Only when `monitor` improves.
    pub fn save_best_only(mut self, monitor: &str) -> Self {
        self.monitor = monitor.to_string();
        self.mode = MonitorMode::auto(monitor);
        self.save_best_only = true;
        self
    }

    /// Keeps the last `n` files.
    pub fn keep_last(mut self, n: usize) -> Self {
        self.keep_last = Some(n.max(1));
        self
    }

    /// The files written and still kept, oldest first.
    pub fn files(&self) -> impl Iterator<Item = &PathBuf> {
        self.written.iter()
    }

    fn path_for(&self, epoch: usize, logs: &Logs) -> PathBuf {
        let mut p = self.template.replace("{epoch}", &(epoch + 1).to_string());
        for (k, v) in logs {
            p = p.replace(&format!("{{{k}}}"), &format!("{v:.4}"));
        }
        PathBuf::from(p)
    }
}

impl Callback for ModelCheckpoint {
    fn main_process_only(&self) -> bool {
        true
    }
    fn state(&self) -> Option<serde_json::Value> {
        serde_json::to_value((self.best, &self.written)).ok()
    }

    fn load_state(&mut self, state: serde_json::Value) -> Result<()> {
        (self.best, self.written) = decode("ModelCheckpoint", state)?;
        Ok(())
    }

    fn on_epoch_end(&mut self, epoch: usize, logs: &Logs, ctx: &mut Context<'_>) -> Result<()> {
        if self.save_best_only {
            let current = monitored(logs, &self.monitor)?;
            // NaN never improves (Keras compares with `np.less`): as the first value it became
            // the best, and no later epoch could beat it, so nothing after it was saved.
            let better = !current.is_nan()
                && match (self.best, self.mode) {
                    (None, _) => true,
                    (Some(b), MonitorMode::Min) => current < b,
                    (Some(b), MonitorMode::Max) => current > b,
                };
            if !better {
                return Ok(());
            }
            self.best = Some(current);
        }
        let path = self.path_for(epoch, logs);
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| {
                sinew_tensor::Error::invalid("ModelCheckpoint", format!("{}: {e}", dir.display()))
            })?;
        }
        save_safetensors(&ctx.model.state_dict(), &path)?;
        self.written.retain(|p| p != &path);
        self.written.push_back(path);
        if let Some(n) = self.keep_last {
            while self.written.len() > n {
                if let Some(old) = self.written.pop_front() {
                    let _ = std::fs::remove_file(old);
                }
            }
        }
        Ok(())
    }
}
