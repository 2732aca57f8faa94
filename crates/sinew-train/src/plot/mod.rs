//! Plots as PNG files: a training [`History`] (loss and metric curves for
//! training and validation, the learning rate), a grid of images (samples, filters), and a
//! heat map (saliency maps, decision boundaries). Drawn with embedded-graphics' bitmap fonts,
//! so no system font or library is needed; written atomically.

mod canvas;
mod chart;
mod images;

pub use canvas::Canvas;
pub use chart::{Series, draw_chart};
pub use images::{heatmap, image_grid};

use std::path::Path;

use sinew_tensor::Result;

use crate::History;

/// One panel per quantity of `history`: `loss` with `val_loss`, each metric with its `val_`
/// twin, and `lr`; against the epoch (1-based). Saved to `path` as PNG.
pub fn plot_history(history: &History, path: impl AsRef<Path>) -> Result<()> {
    let mut names: Vec<String> = history
        .epochs
        .iter()
        .flat_map(|l| l.keys().cloned())
        .filter(|k| !k.starts_with("val_"))
        .collect();
    names.sort();
    names.dedup();
    // The loss first, the learning rate last.
    names.sort_by_key(|n| (n != "loss", n == "lr"));
    let (cols, panel_w, panel_h) = (2usize, 420, 280);
    let rows = names.len().div_ceil(cols).max(1);
    let mut canvas = Canvas::new((cols * panel_w) as u32, (rows * panel_h) as u32)?;
    for (i, name) in names.iter().enumerate() {
        let epochs = |key: &str| -> Vec<(f64, f64)> {
            history
                .epochs
                .iter()
                .enumerate()
                .filter_map(|(e, l)| l.get(key).map(|v| ((e + 1) as f64, *v)))
                .collect()
        };
        let mut series = vec![Series {
            label: "train".into(),
            points: epochs(name),
        }];
        let val = epochs(&format!("val_{name}"));
        if !val.is_empty() {
            series.push(Series {
                label: "validation".into(),
                points: val,
            });
        }
        if name == "lr" {
            series[0].label = "lr".into();
        }
        let frame = (
            ((i % cols) * panel_w) as i32,
            ((i / cols) * panel_h) as i32,
            panel_w as i32,
            panel_h as i32,
        );
        draw_chart(&mut canvas, frame, name, "epoch", &series);
    }
    canvas.save_png(path)
}
