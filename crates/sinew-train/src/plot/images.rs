//! Image grids and heat maps.

use std::path::Path;

use embedded_graphics::pixelcolor::Rgb888;
use sinew_tensor::{DType, Error, Result, Tensor};

use super::canvas::Canvas;

/// Saves a grid of `[N, C, H, W]` images (C = 1 or 3), `cols` per row, each scaled to
/// `[0, 255]` by its own min and max and magnified by `scale` (filters and samples).
pub fn image_grid(images: &Tensor, cols: usize, scale: u32, path: impl AsRef<Path>) -> Result<()> {
    let &[n, c, h, w] = images.dims() else {
        return Err(Error::invalid(
            "image_grid",
            format!("expects [N, C, H, W], got {}", images.shape()),
        ));
    };
    if !(c == 1 || c == 3) || cols == 0 || scale == 0 {
        return Err(Error::invalid(
            "image_grid",
            "needs 1 or 3 channels, cols > 0 and scale > 0",
        ));
    }
    let values = images.detach().to_dtype(DType::F64)?.to_vec_f64()?;
    let (cell_w, cell_h) = (w as u32 * scale + 2, h as u32 * scale + 2);
    let rows = n.div_ceil(cols).max(1);
    let mut canvas = Canvas::new(cell_w * cols as u32, cell_h * rows as u32)?;
    let plane = h * w;
    for i in 0..n {
        let img = &values[i * c * plane..(i + 1) * c * plane];
        let (lo, hi) = img
            .iter()
            .filter(|v| v.is_finite())
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &v| {
                (a.min(v), b.max(v))
            });
        let range = if hi > lo { hi - lo } else { 1.0 };
        let to8 = |v: f64| (((v - lo) / range).clamp(0.0, 1.0) * 255.0).round() as u8;
        let (ox, oy) = (
            (i % cols) as u32 * cell_w + 1,
            (i / cols) as u32 * cell_h + 1,
        );
        for y in 0..h {
            for x in 0..w {
                let px = |ch: usize| to8(img[ch.min(c - 1) * plane + y * w + x]);
                let color = Rgb888::new(px(0), px(1), px(2));
                canvas.fill(
                    (
                        (ox + x as u32 * scale) as i32,
                        (oy + y as u32 * scale) as i32,
                    ),
                    (scale, scale),
                    color,
                );
            }
        }
    }
    canvas.save_png(path)
}

/// A perceptually ordered blue-to-yellow colour for `t` in `[0, 1]` (a viridis approximation).
fn colormap(t: f64) -> Rgb888 {
    const STOPS: [(f64, f64, f64); 5] = [
        (68.0, 1.0, 84.0),
        (59.0, 82.0, 139.0),
        (33.0, 145.0, 140.0),
        (94.0, 201.0, 98.0),
        (253.0, 231.0, 37.0),
    ];
    let t = if t.is_finite() {
        t.clamp(0.0, 1.0)
    } else {
        0.0
    } * 4.0;
    let i = (t.floor() as usize).min(3);
    let f = t - i as f64;
    let (a, b) = (STOPS[i], STOPS[i + 1]);
    let mix = |x: f64, y: f64| (x + (y - x) * f).round() as u8;
    Rgb888::new(mix(a.0, b.0), mix(a.1, b.1), mix(a.2, b.2))
}

/// Saves a `[H, W]` tensor as a heat map (min to max over the colormap), each value a
/// `scale x scale` block: saliency maps, decision regions over a grid of inputs.
pub fn heatmap(values: &Tensor, scale: u32, path: impl AsRef<Path>) -> Result<()> {
    let &[h, w] = values.dims() else {
        return Err(Error::invalid(
            "heatmap",
            format!("expects [H, W], got {}", values.shape()),
        ));
    };
    let v = values.detach().to_dtype(DType::F64)?.to_vec_f64()?;
    let (lo, hi) = v
        .iter()
        .filter(|x| x.is_finite())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &x| {
            (a.min(x), b.max(x))
        });
    let range = if hi > lo { hi - lo } else { 1.0 };
    let scale = scale.max(1);
    let mut canvas = Canvas::new(w as u32 * scale, h as u32 * scale)?;
    for y in 0..h {
        for x in 0..w {
            let c = colormap((v[y * w + x] - lo) / range);
            canvas.fill(
                ((x as u32 * scale) as i32, (y as u32 * scale) as i32),
                (scale, scale),
                c,
            );
        }
    }
    canvas.save_png(path)
}
