//! Plots are real PNGs with the curves drawn in the series colours.

use sinew_tensor::{DType, Device, Result, Tensor};
use sinew_train::plot::{heatmap, image_grid, plot_history};
use sinew_train::{History, Logs};

fn read(path: &std::path::Path) -> image::RgbImage {
    image::open(path).expect("a PNG").to_rgb8()
}

fn count(img: &image::RgbImage, rgb: [u8; 3]) -> usize {
    img.pixels().filter(|p| p.0 == rgb).count()
}

#[test]
fn history_plots_have_a_panel_per_quantity_with_both_curves() -> Result<()> {
    let dir = std::env::temp_dir().join(format!("sinew-plots-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut history = History::default();
    for e in 0..6 {
        let f = e as f64;
        let logs: Logs = [
            ("loss", 1.0 / (1.0 + f)),
            ("val_loss", 1.2 / (1.0 + f)),
            ("accuracy", 0.5 + 0.08 * f),
            ("val_accuracy", 0.45 + 0.08 * f),
            ("lr", 0.1 * 0.5f64.powi(e)),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        history.epochs.push(logs);
    }
    let path = dir.join("history.png");
    plot_history(&history, &path)?;
    let img = read(&path);
    // loss, accuracy, lr: three panels in two columns -> two rows.
    assert_eq!(img.dimensions(), (840, 560));
    // Train curves in the first palette colour, validation in the second.
    assert!(count(&img, [0, 114, 178]) > 300, "train curve pixels");
    assert!(count(&img, [213, 94, 0]) > 300, "validation curve pixels");
    std::fs::remove_dir_all(dir).ok();
    Ok(())
}

#[test]
fn image_grids_and_heatmaps_have_the_right_geometry_and_values() -> Result<()> {
    let dir = std::env::temp_dir().join(format!("sinew-grid-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let imgs =
        Tensor::arange(0.0, 5.0 * 16.0, 1.0, DType::F32, &Device::cpu())?.reshape([5, 1, 4, 4])?;
    image_grid(&imgs, 3, 2, dir.join("grid.png"))?;
    let grid = read(&dir.join("grid.png"));
    assert_eq!(grid.dimensions(), (3 * 10, 2 * 10));
    // Each image is scaled to its own range: its first pixel black, its last white.
    assert_eq!(grid.get_pixel(1, 1).0, [0, 0, 0]);
    assert_eq!(grid.get_pixel(1 + 7, 1 + 7).0, [255, 255, 255]);
    let ramp = Tensor::arange(0.0, 6.0, 1.0, DType::F32, &Device::cpu())?.reshape([2, 3])?;
    heatmap(&ramp, 4, dir.join("heat.png"))?;
    let heat = read(&dir.join("heat.png"));
    assert_eq!(heat.dimensions(), (12, 8));
    assert_eq!(
        heat.get_pixel(0, 0).0,
        [68, 1, 84],
        "minimum: the colormap's first stop"
    );
    assert_eq!(
        heat.get_pixel(11, 7).0,
        [253, 231, 37],
        "maximum: its last stop"
    );
    assert!(image_grid(&ramp, 3, 1, dir.join("bad.png")).is_err());
    std::fs::remove_dir_all(dir).ok();
    Ok(())
}
