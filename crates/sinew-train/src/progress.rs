//! Progress output: a line per epoch (`epoch 3/10  loss 0.1234  accuracy 0.9712 ...
//! 5120 samples/s  1.2s`), and on a terminal a live line per batch with the running loss,
//! samples/s and the estimated time left. Written to stderr.

use std::io::{IsTerminal, Write};
use std::time::Instant;

use crate::Logs;

/// How much `fit` prints.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Verbosity {
    /// Nothing.
    Silent,
    /// One line per epoch; a live batch line too when stderr is a terminal (default).
    #[default]
    Auto,
}

pub(crate) struct Progress {
    on: bool,
    live: bool,
    start: Instant,
}

impl Progress {
    pub(crate) fn new(verbosity: Verbosity) -> Self {
        let on = verbosity == Verbosity::Auto;
        Progress {
            on,
            live: on && std::io::stderr().is_terminal(),
            start: Instant::now(),
        }
    }

    pub(crate) fn epoch_start(&mut self) {
        self.start = Instant::now();
    }

    pub(crate) fn batch(
        &self,
        epoch: usize,
        epochs: usize,
        done: usize,
        total: usize,
        loss: f64,
        samples: usize,
    ) {
        if !self.live {
            return;
        }
        let secs = self.start.elapsed().as_secs_f64().max(1e-9);
        let eta = secs / done.max(1) as f64 * total.saturating_sub(done) as f64;
        let width = 24;
        let filled = (done * width).checked_div(total).unwrap_or(width);
        let bar: String = "#".repeat(filled) + &"-".repeat(width - filled.min(width));
        eprint!(
            "\repoch {}/{epochs} [{bar}] {done}/{total}  loss {loss:.4}  {:.0} samples/s  eta {eta:.1}s ",
            epoch + 1,
            samples as f64 / secs
        );
        let _ = std::io::stderr().flush();
    }

    pub(crate) fn epoch_end(&self, epoch: usize, epochs: usize, logs: &Logs, samples: usize) {
        if !self.on {
            return;
        }
        let secs = self.start.elapsed().as_secs_f64();
        let mut line = format!("epoch {}/{epochs}", epoch + 1);
        for (k, v) in logs {
            line.push_str(&format!("  {k} {v:.4}"));
        }
        line.push_str(&format!(
            "  {:.0} samples/s  {secs:.1}s",
            samples as f64 / secs.max(1e-9)
        ));
        if self.live {
            eprint!("\r\x1b[2K");
        }
        eprintln!("{line}");
    }
}
