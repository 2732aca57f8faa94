//! `CsvLogger`: one CSV row per epoch (Keras' `CSVLogger`).

use std::io::Write;
use std::path::PathBuf;

use sinew_tensor::{Error, Result};

use super::{Callback, Context};
use crate::Logs;

/// Writes `epoch,<logged names...>` then one row per epoch, flushed each time so a crash keeps
/// the finished epochs.
pub struct CsvLogger {
    path: PathBuf,
    columns: Option<Vec<String>>,
}

impl CsvLogger {
    /// Writes to `path` (replaced if it exists).
    pub fn new(path: impl Into<PathBuf>) -> Self {
        CsvLogger {
            path: path.into(),
            columns: None,
        }
    }
}

impl Callback for CsvLogger {
    fn main_process_only(&self) -> bool {
        true
    }
    fn on_epoch_end(&mut self, epoch: usize, logs: &Logs, _: &mut Context<'_>) -> Result<()> {
        let io = |e: std::io::Error| {
            Error::invalid("CsvLogger", format!("{}: {e}", self.path.display()))
        };
        let first = self.columns.is_none();
        let columns = self
            .columns
            .get_or_insert_with(|| logs.keys().cloned().collect());
        let mut text = String::new();
        if first {
            text.push_str("epoch");
            for c in columns.iter() {
                text.push(',');
                text.push_str(c);
            }
            text.push('\n');
        }
        text.push_str(&epoch.to_string());
        for c in columns.iter() {
            text.push(',');
            if let Some(v) = logs.get(c) {
                text.push_str(&v.to_string());
            }
        }
        text.push('\n');
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(!first)
            .write(true)
            .truncate(first)
            .open(&self.path)
            .map_err(io)?;
        f.write_all(text.as_bytes()).map_err(io)?;
        f.flush().map_err(io)
    }
}
