//! Deterministic image operations on f32 CHW images, the building blocks of the random transforms.
//!
//! Coordinates follow torchvision: `top`/`left` index rows/columns; bilinear sampling uses pixel
//! centres (`align_corners = false`). Every function first checks the image (its public fields may
//! disagree) and its window arguments, and allocates outputs fallibly, so bad arguments give a
//! [`crate::DataError`], never a panic or an abort.

use crate::error::{DataError, Result};
use crate::sample::ImageF32;

/// Mirrors left-right in place. PyTorch equivalent: `F.hflip`.
pub fn hflip(img: &mut ImageF32) -> Result<()> {
    img.check()?;
    if img.width == 0 {
        return Ok(());
    }
    for row in img.data.chunks_exact_mut(img.width) {
        row.reverse();
    }
    Ok(())
}

/// Mirrors top-bottom in place. PyTorch equivalent: `F.vflip`.
pub fn vflip(img: &mut ImageF32) -> Result<()> {
    img.check()?;
    let (h, w) = (img.height, img.width);
    for c in 0..img.channels {
        let plane = img.chan_mut(c);
        for y in 0..h / 2 {
            let (top, bottom) = plane.split_at_mut((h - 1 - y) * w);
            top[y * w..(y + 1) * w].swap_with_slice(&mut bottom[..w]);
        }
    }
    Ok(())
}

/// The `height × width` window at (`top`, `left`), which may reach outside the image; pixels
/// outside are `fill` (constant padding).
pub fn crop(
    img: &ImageF32,
    top: isize,
    left: isize,
    height: usize,
    width: usize,
    fill: f32,
) -> Result<ImageF32> {
    img.check()?;
    let mut out = ImageF32::filled(img.channels, height, width, fill)?;
    let too_far = |v: usize| isize::try_from(v).is_err();
    if too_far(height) || too_far(width) || too_far(img.height) || too_far(img.width) {
        return Err(DataError::invalid("crop", "sizes over isize::MAX"));
    }
    let (ih, iw, wi) = (img.height as isize, img.width as isize, width as isize);
    // Output columns that map inside the source (saturating: far-away windows map nowhere).
    let x0 = left.saturating_neg().clamp(0, wi) as usize;
    let x1 = iw.saturating_sub(left).clamp(0, wi) as usize;
    if x0 >= x1 {
        return Ok(out);
    }
    for c in 0..img.channels {
        let src = img.chan(c);
        let dst = out.chan_mut(c);
        for y in 0..height {
            // `y < height <= isize::MAX`; a sum past isize::MAX lies outside the image.
            let Some(sy) = top.checked_add(y as isize) else {
                continue;
            };
            if sy < 0 || sy >= ih {
                continue;
            }
            // In range: 0 <= left + x0 and left + x1 <= iw by the clamps above.
            let s = sy as usize * img.width + (left + x0 as isize) as usize;
            dst[y * width + x0..y * width + x1].copy_from_slice(&src[s..s + (x1 - x0)]);
        }
    }
    Ok(out)
}

/// Source index pairs and weights for one axis of a bilinear resize of `len_in > 0` samples
/// starting at `start` into `len_out` samples (PyTorch `upsample_bilinear2d`,
/// `align_corners = false`).
fn axis_taps(start: usize, len_in: usize, len_out: usize) -> Result<Vec<(usize, usize, f32)>> {
    let scale = len_in as f32 / len_out as f32;
    let mut taps = crate::alloc::try_with_capacity("resize", len_out)?;
    taps.extend((0..len_out).map(|o| {
        let src = ((o as f32 + 0.5) * scale - 0.5).max(0.0);
        let i0 = (src.floor() as usize).min(len_in - 1);
        let i1 = (i0 + 1).min(len_in - 1);
        let lambda = src - i0 as f32;
        (start + i0, start + i1, lambda)
    }));
    Ok(taps)
}

/// Crops the in-bounds window (`top`, `left`, `height`, `width`) and resizes it bilinearly to
/// `out_h × out_w`. PyTorch equivalent: `F.resized_crop(..., antialias=False)`.
///
/// The window must be non-empty and inside the image; a huge output size gives
/// [`DataError::TooLarge`].
pub fn resized_crop(
    img: &ImageF32,
    top: usize,
    left: usize,
    height: usize,
    width: usize,
    out_h: usize,
    out_w: usize,
) -> Result<ImageF32> {
    img.check()?;
    let inside = |start: usize, len: usize, size: usize| {
        len > 0 && start.checked_add(len).is_some_and(|end| end <= size)
    };
    if !inside(top, height, img.height) || !inside(left, width, img.width) {
        return Err(DataError::invalid(
            "resized_crop",
            format!(
                "window {height}x{width} at ({top}, {left}) is empty or outside the {}x{} image",
                img.height, img.width
            ),
        ));
    }
    if out_h == 0 || out_w == 0 {
        return Err(DataError::invalid("resize", "output size must be non-zero"));
    }
    let mut out = ImageF32::filled(img.channels, out_h, out_w, 0.0)?;
    let ys = axis_taps(top, height, out_h)?;
    let xs = axis_taps(left, width, out_w)?;
    for c in 0..img.channels {
        let src = img.chan(c);
        let dst = out.chan_mut(c);
        for (oy, &(y0, y1, ly)) in ys.iter().enumerate() {
            let (r0, r1) = (&src[y0 * img.width..], &src[y1 * img.width..]);
            for (ox, &(x0, x1, lx)) in xs.iter().enumerate() {
                let top = r0[x0] + (r0[x1] - r0[x0]) * lx;
                let bottom = r1[x0] + (r1[x1] - r1[x0]) * lx;
                dst[oy * out_w + ox] = top + (bottom - top) * ly;
            }
        }
    }
    Ok(out)
}

/// Bilinear resize of the whole (non-empty) image. PyTorch equivalent:
/// `F.resize(..., antialias=False)`.
pub fn resize(img: &ImageF32, out_h: usize, out_w: usize) -> Result<ImageF32> {
    resized_crop(img, 0, 0, img.height, img.width, out_h, out_w)
}

/// Parameters of an affine warp about the image centre.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AffineParams {
    /// Counter-clockwise rotation in degrees.
    pub angle: f32,
    /// Translation in pixels (x, y).
    pub translate: (f32, f32),
    /// Isotropic scale.
    pub scale: f32,
}

/// Rotates (counter-clockwise), scales and translates about the centre with bilinear sampling;
/// pixels that come from outside the image are `fill`. PyTorch equivalent: torchvision's
/// `F.rotate` / `F.affine(img, -angle, translate, scale, shear=0, BILINEAR, fill)` (its `affine`
/// turns clockwise). The same values inside the image; where a pixel's bilinear taps reach
/// outside, the taps outside read `fill` here, where torchvision blends with a sampled mask
/// (`v * m + fill * (1 - m)` over zero padding), so border pixels differ slightly.
pub fn affine(img: &ImageF32, params: AffineParams, fill: f32) -> Result<ImageF32> {
    img.check()?;
    let (h, w) = (img.height, img.width);
    let (sin, cos) = params.angle.to_radians().sin_cos();
    let (tx, ty) = params.translate;
    let inv_s = 1.0 / params.scale;
    let (cx, cy) = (w as f32 * 0.5, h as f32 * 0.5);
    let mut out = ImageF32::filled(img.channels, h, w, fill)?;
    // Float-to-int casts saturate (NaN gives 0), so any parameters stay in bounds here.
    let sample = |plane: &[f32], x: isize, y: isize| -> f32 {
        if x < 0 || y < 0 || x as usize >= w || y as usize >= h {
            fill
        } else {
            plane[y as usize * w + x as usize]
        }
    };
    for y in 0..h {
        for x in 0..w {
            // Output pixel centre relative to the image centre, minus the translation.
            let u = x as f32 + 0.5 - cx - tx;
            let v = y as f32 + 0.5 - cy - ty;
            // Inverse of the (y-down) counter-clockwise rotation, then of the scale.
            let su = (cos * u - sin * v) * inv_s + cx - 0.5;
            let sv = (sin * u + cos * v) * inv_s + cy - 0.5;
            let (fx, fy) = (su.floor(), sv.floor());
            let (lx, ly) = (su - fx, sv - fy);
            let (x0, y0) = (fx as isize, fy as isize);
            for c in 0..img.channels {
                let plane = img.chan(c);
                let a = sample(plane, x0, y0);
                let b = sample(plane, x0.saturating_add(1), y0);
                let d = sample(plane, x0, y0.saturating_add(1));
                let e = sample(plane, x0.saturating_add(1), y0.saturating_add(1));
                let top = a * (1.0 - lx) + b * lx;
                let bottom = d * (1.0 - lx) + e * lx;
                out.data[(c * h + y) * w + x] = top * (1.0 - ly) + bottom * ly;
            }
        }
    }
    Ok(out)
}

/// Luminance of an RGB pixel (ITU-R 601-2, as torchvision's `rgb_to_grayscale`).
pub fn luma(r: f32, g: f32, b: f32) -> f32 {
    0.2989 * r + 0.587 * g + 0.114 * b
}

/// Per-pixel grayscale plane (the image itself for one channel, empty for none).
pub fn grayscale(img: &ImageF32) -> Result<Vec<f32>> {
    img.check()?;
    match img.channels {
        0 => Ok(Vec::new()),
        1 | 2 => Ok(img.chan(0).to_vec()),
        _ => {
            let (r, g, b) = (img.chan(0), img.chan(1), img.chan(2));
            let mut out = crate::alloc::try_with_capacity("grayscale", r.len())?;
            out.extend((0..r.len()).map(|i| luma(r[i], g[i], b[i])));
            Ok(out)
        }
    }
}

/// Multiplies by `factor`, clamped to `[0, 1]`. PyTorch equivalent: `F.adjust_brightness`.
pub fn adjust_brightness(img: &mut ImageF32, factor: f32) -> Result<()> {
    img.check()?;
    for v in &mut img.data {
        *v = (*v * factor).clamp(0.0, 1.0);
    }
    Ok(())
}

/// Blends with the mean grayscale value. PyTorch equivalent: `F.adjust_contrast`.
pub fn adjust_contrast(img: &mut ImageF32, factor: f32) -> Result<()> {
    let gray = grayscale(img)?;
    let mean = gray.iter().map(|&v| f64::from(v)).sum::<f64>() / gray.len().max(1) as f64;
    let offset = (1.0 - factor) * mean as f32;
    for v in &mut img.data {
        *v = (factor * *v + offset).clamp(0.0, 1.0);
    }
    Ok(())
}

/// Blends with the per-pixel grayscale image (no-op for fewer than three channels).
/// PyTorch equivalent: `F.adjust_saturation`.
pub fn adjust_saturation(img: &mut ImageF32, factor: f32) -> Result<()> {
    img.check()?;
    if img.channels < 3 {
        return Ok(());
    }
    let gray = grayscale(img)?;
    for c in 0..3 {
        for (v, &g) in img.chan_mut(c).iter_mut().zip(&gray) {
            *v = (factor * *v + (1.0 - factor) * g).clamp(0.0, 1.0);
        }
    }
    Ok(())
}

/// Shifts hue by `shift` turns (in `[-0.5, 0.5]`) through HSV (no-op for fewer than three
/// channels). PyTorch equivalent: `F.adjust_hue`.
pub fn adjust_hue(img: &mut ImageF32, shift: f32) -> Result<()> {
    img.check()?;
    if img.channels < 3 {
        return Ok(());
    }
    let hw = img.height * img.width;
    let (r, rest) = img.data.split_at_mut(hw);
    let (g, b) = rest.split_at_mut(hw);
    for i in 0..hw {
        let (h, s, v) = rgb_to_hsv(r[i], g[i], b[i]);
        let (nr, ng, nb) = hsv_to_rgb((h + shift).rem_euclid(1.0), s, v);
        (r[i], g[i], b[i]) = (nr, ng, nb);
    }
    Ok(())
}
/// RGB in `[0, 1]` to (hue in turns, saturation, value).
pub fn rgb_to_hsv(r: f32, g: f32, b: f32) -> (f32, f32, f32) {
    let max = r.max(g).max(b);
    let min = r.min(g).min(b);
    let delta = max - min;
    let s = if max > 0.0 { delta / max } else { 0.0 };
    if delta <= 0.0 {
        return (0.0, s, max);
    }
    let h = if max == r {
        ((g - b) / delta).rem_euclid(6.0)
    } else if max == g {
        (b - r) / delta + 2.0
    } else {
        (r - g) / delta + 4.0
    };
    (h / 6.0, s, max)
}

/// (hue in turns, saturation, value) to RGB.
pub fn hsv_to_rgb(h: f32, s: f32, v: f32) -> (f32, f32, f32) {
    let h6 = (h * 6.0).rem_euclid(6.0);
    let sector = h6.floor();
    let f = h6 - sector;
    let p = v * (1.0 - s);
    let q = v * (1.0 - s * f);
    let t = v * (1.0 - s * (1.0 - f));
    match sector as u32 {
        0 => (v, t, p),
        1 => (q, v, p),
        2 => (p, v, t),
        3 => (p, q, v),
        4 => (t, p, v),
        _ => (v, p, q),
    }
}

/// Sets the `height × width` rectangle at (`top`, `left`) of every channel to `values(c, k)`,
/// where `k` counts the rectangle's pixels of that channel.
pub fn erase(
    img: &mut ImageF32,
    top: usize,
    left: usize,
    height: usize,
    width: usize,
    mut values: impl FnMut(usize, usize) -> f32,
) -> Result<()> {
    img.check()?;
    let inside = |start: usize, len: usize, size: usize| {
        start.checked_add(len).is_some_and(|end| end <= size)
    };
    if !inside(top, height, img.height) || !inside(left, width, img.width) {
        return Err(DataError::invalid(
            "erase",
            format!(
                "rectangle {height}x{width} at ({top}, {left}) is outside the {}x{} image",
                img.height, img.width
            ),
        ));
    }
    let w = img.width;
    for c in 0..img.channels {
        let plane = img.chan_mut(c);
        let mut k = 0;
        for y in top..top + height {
            for v in &mut plane[y * w + left..y * w + left + width] {
                *v = values(c, k);
                k += 1;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ramp(c: usize, h: usize, w: usize) -> ImageF32 {
        let data = (0..c * h * w)
            .map(|i| i as f32 / (c * h * w) as f32)
            .collect();
        ImageF32::new(c, h, w, data).unwrap()
    }

    #[test]
    fn flips_move_pixels() {
        let mut img = ramp(2, 3, 4);
        let orig = img.clone();
        hflip(&mut img).unwrap();
        assert_eq!(img.at(1, 2, 0), orig.at(1, 2, 3));
        vflip(&mut img).unwrap();
        assert_eq!(img.at(1, 0, 0), orig.at(1, 2, 3));
        assert_eq!(img.at(0, 1, 1), orig.at(0, 1, 2));
    }

    #[test]
    fn crop_pads_with_fill() {
        let img = ramp(1, 3, 3);
        let out = crop(&img, -1, 1, 3, 3, -5.0).unwrap();
        assert_eq!(out.at(0, 0, 0), Some(-5.0));
        assert_eq!(out.at(0, 1, 0), img.at(0, 0, 1));
        assert_eq!(out.at(0, 2, 1), img.at(0, 1, 2));
        assert_eq!(out.at(0, 2, 2), Some(-5.0));
        assert_eq!(crop(&img, 0, 0, 3, 3, 0.0).unwrap(), img);
    }

    #[test]
    fn resize_matches_pytorch_bilinear() {
        // torch.nn.functional.interpolate(torch.tensor([[[[0.,1.],[2.,3.]]]]), size=(4,4),
        //   mode='bilinear', align_corners=False)[0,0,0] == [0.0, 0.25, 0.75, 1.0]
        let img = ImageF32::new(1, 2, 2, vec![0.0, 1.0, 2.0, 3.0]).unwrap();
        let up = resize(&img, 4, 4).unwrap();
        assert_eq!(&up.data[..4], &[0.0, 0.25, 0.75, 1.0]);
        assert_eq!(&up.data[12..], &[2.0, 2.25, 2.75, 3.0]);
        assert_eq!(resize(&up, 4, 4).unwrap(), up);
        // Downscaling 4 -> 2 samples at 0.5 and 2.5: the mean of each pair.
        let down = resize(
            &ImageF32::new(1, 1, 4, vec![0.0, 2.0, 4.0, 6.0]).unwrap(),
            1,
            2,
        )
        .unwrap();
        assert_eq!(down.data, vec![1.0, 5.0]);
    }

    #[test]
    fn affine_quarter_turn_rotates_counter_clockwise() {
        let img = ramp(1, 4, 4);
        let out = affine(
            &img,
            AffineParams {
                angle: 90.0,
                translate: (0.0, 0.0),
                scale: 1.0,
            },
            0.0,
        )
        .unwrap();
        // A counter-clockwise quarter turn sends the top-right corner to the top-left.
        for y in 0..4 {
            for x in 0..4 {
                assert!(
                    (out.at(0, y, x).unwrap() - img.at(0, x, 3 - y).unwrap()).abs() < 1e-5,
                    "({y},{x})"
                );
            }
        }
        let shifted = affine(
            &img,
            AffineParams {
                angle: 0.0,
                translate: (1.0, 0.0),
                scale: 1.0,
            },
            9.0,
        )
        .unwrap();
        assert_eq!(shifted.at(0, 2, 0), Some(9.0));
        assert_eq!(shifted.at(0, 2, 1), img.at(0, 2, 0));
    }

    #[test]
    fn hsv_round_trip() {
        for &(r, g, b) in &[
            (0.2, 0.4, 0.9),
            (1.0, 0.0, 0.0),
            (0.5, 0.5, 0.5),
            (0.1, 0.9, 0.3),
        ] {
            let (h, s, v) = rgb_to_hsv(r, g, b);
            let (r2, g2, b2) = hsv_to_rgb(h, s, v);
            assert!((r - r2).abs() < 1e-6 && (g - g2).abs() < 1e-6 && (b - b2).abs() < 1e-6);
        }
        // Pure red shifted by a third of a turn is pure green.
        let mut img = ImageF32::new(3, 1, 1, vec![1.0, 0.0, 0.0]).unwrap();
        adjust_hue(&mut img, 1.0 / 3.0).unwrap();
        assert!((img.data[0]).abs() < 1e-5 && (img.data[1] - 1.0).abs() < 1e-5);
    }

    #[test]
    fn contrast_and_saturation_blend() {
        let mut img = ImageF32::new(1, 1, 2, vec![0.2, 0.6]).unwrap();
        adjust_contrast(&mut img, 0.0).unwrap();
        assert!((img.data[0] - 0.4).abs() < 1e-6 && (img.data[1] - 0.4).abs() < 1e-6);
        let mut rgb = ImageF32::new(3, 1, 1, vec![1.0, 0.0, 0.0]).unwrap();
        adjust_saturation(&mut rgb, 0.0).unwrap();
        assert!(rgb.data.iter().all(|&v| (v - 0.2989).abs() < 1e-6));
    }
}
