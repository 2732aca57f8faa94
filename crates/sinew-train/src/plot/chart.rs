//! Line charts with axes, "nice" tick labels, a title and a legend.

use embedded_graphics::pixelcolor::Rgb888;
use embedded_graphics::prelude::RgbColor;
use embedded_graphics::text::Alignment;

use super::canvas::{Canvas, PALETTE};

/// One named series of `(x, y)` points.
pub struct Series {
    /// Legend label.
    pub label: String,
    /// Points, in drawing order (non-finite values are skipped).
    pub points: Vec<(f64, f64)>,
}

/// About five round tick values covering `[lo, hi]`.
fn ticks(lo: f64, hi: f64) -> Vec<f64> {
    let span = (hi - lo).max(1e-12);
    let raw = span / 5.0;
    let mag = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * mag)
        .find(|s| span / s <= 6.0)
        .unwrap_or(10.0 * mag);
    let mut t = (lo / step).ceil() * step;
    let mut out = Vec::new();
    while t <= hi + step * 1e-9 {
        out.push(if t.abs() < step * 1e-9 { 0.0 } else { t });
        t += step;
    }
    out
}

fn label(v: f64) -> String {
    let a = v.abs();
    if a != 0.0 && !(1e-3..1e5).contains(&a) {
        format!("{v:.1e}")
    } else {
        format!("{}", (v * 1e4).round() / 1e4)
    }
}

/// Draws `series` in the rectangle `(x, y, w, h)` of `canvas`, with a title and axis labels.
pub fn draw_chart(
    canvas: &mut Canvas,
    frame: (i32, i32, i32, i32),
    title: &str,
    x_label: &str,
    series: &[Series],
) {
    let (fx, fy, fw, fh) = frame;
    let (left, right, top, bottom) = (fx + 58, fx + fw - 10, fy + 24, fy + fh - 34);
    let finite: Vec<(f64, f64)> = series
        .iter()
        .flat_map(|s| s.points.iter().copied())
        .filter(|(x, y)| x.is_finite() && y.is_finite())
        .collect();
    canvas.text(
        title,
        (fx + fw / 2, fy + 14),
        Alignment::Center,
        Rgb888::BLACK,
    );
    if finite.is_empty() || right <= left || bottom <= top {
        return;
    }
    let fold = |f: fn(f64, f64) -> f64, init: f64, g: fn(&(f64, f64)) -> f64| {
        finite.iter().map(g).fold(init, f)
    };
    let (mut x0, mut x1) = (
        fold(f64::min, f64::INFINITY, |p| p.0),
        fold(f64::max, f64::NEG_INFINITY, |p| p.0),
    );
    let (mut y0, mut y1) = (
        fold(f64::min, f64::INFINITY, |p| p.1),
        fold(f64::max, f64::NEG_INFINITY, |p| p.1),
    );
    if x1 - x0 < 1e-12 {
        (x0, x1) = (x0 - 1.0, x1 + 1.0);
    }
    if y1 - y0 < 1e-12 * y0.abs().max(1.0) {
        // A constant series (a fixed learning rate): a band of +-10% around it.
        let d = (0.1 * y0.abs()).max(1e-9);
        (y0, y1) = (y0 - d, y1 + d);
    }
    let pad = (y1 - y0) * 0.05;
    (y0, y1) = (y0 - pad, y1 + pad);
    let px = |x: f64| left + ((x - x0) / (x1 - x0) * (right - left) as f64).round() as i32;
    let py = |y: f64| bottom - ((y - y0) / (y1 - y0) * (bottom - top) as f64).round() as i32;
    let grey = Rgb888::new(225, 225, 225);
    for t in ticks(y0, y1) {
        canvas.line((left, py(t)), (right, py(t)), grey, 1);
        canvas.text(
            &label(t),
            (left - 4, py(t) + 3),
            Alignment::Right,
            Rgb888::BLACK,
        );
    }
    for t in ticks(x0, x1) {
        canvas.line((px(t), top), (px(t), bottom), grey, 1);
        canvas.text(
            &label(t),
            (px(t), bottom + 12),
            Alignment::Center,
            Rgb888::BLACK,
        );
    }
    canvas.line((left, bottom), (right, bottom), Rgb888::BLACK, 1);
    canvas.line((left, top), (left, bottom), Rgb888::BLACK, 1);
    canvas.text(
        x_label,
        ((left + right) / 2, bottom + 26),
        Alignment::Center,
        Rgb888::BLACK,
    );
    for (i, s) in series.iter().enumerate() {
        let c = PALETTE[i % PALETTE.len()];
        let pts: Vec<(i32, i32)> = s
            .points
            .iter()
            .filter(|(x, y)| x.is_finite() && y.is_finite())
            .map(|&(x, y)| (px(x), py(y)))
            .collect();
        for w in pts.windows(2) {
            canvas.line(w[0], w[1], c, 2);
        }
        for &p in &pts {
            canvas.fill((p.0 - 2, p.1 - 2), (5, 5), c);
        }
        let ly = top + 4 + 12 * i as i32;
        canvas.fill((right - 96, ly), (12, 3), c);
        canvas.text(
            &s.label,
            (right - 80, ly + 5),
            Alignment::Left,
            Rgb888::BLACK,
        );
    }
}
