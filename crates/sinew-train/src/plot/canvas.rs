//! An RGB pixel buffer that embedded-graphics draws on (lines, rectangles, bitmap-font text:
//! no system fonts needed) and that saves as PNG, atomically.

use std::convert::Infallible;
use std::path::Path;

use embedded_graphics::mono_font::MonoTextStyle;
use embedded_graphics::mono_font::ascii::FONT_6X10;
use embedded_graphics::pixelcolor::Rgb888;
use embedded_graphics::prelude::*;
use embedded_graphics::primitives::{Line, PrimitiveStyle, Rectangle};
use embedded_graphics::text::{Alignment, Text};
use sinew_tensor::{Error, Result};

/// A white RGB image to draw on.
pub struct Canvas {
    width: u32,
    height: u32,
    pixels: Vec<u8>,
}

/// Colours of successive series: the colour-blind-safe Okabe-Ito colours, then two more.
pub const PALETTE: [Rgb888; 10] = [
    Rgb888::new(0, 114, 178),
    Rgb888::new(213, 94, 0),
    Rgb888::new(0, 158, 115),
    Rgb888::new(204, 121, 167),
    Rgb888::new(230, 159, 0),
    Rgb888::new(86, 180, 233),
    Rgb888::new(0, 0, 0),
    Rgb888::new(240, 228, 66),
    Rgb888::new(148, 103, 189),
    Rgb888::new(140, 86, 75),
];

impl Canvas {
    /// A white canvas of `width x height` pixels.
    pub fn new(width: u32, height: u32) -> Result<Self> {
        let n = (width as usize)
            .checked_mul(height as usize)
            .and_then(|n| n.checked_mul(3))
            .filter(|&n| n <= 1 << 28)
            .ok_or_else(|| Error::invalid("Canvas", format!("{width}x{height} is too large")))?;
        Ok(Canvas {
            width,
            height,
            pixels: vec![255; n],
        })
    }

    /// Sets one pixel (ignored outside the canvas).
    pub fn put(&mut self, x: i32, y: i32, c: Rgb888) {
        if x >= 0 && y >= 0 && (x as u32) < self.width && (y as u32) < self.height {
            let i = (y as usize * self.width as usize + x as usize) * 3;
            self.pixels[i..i + 3].copy_from_slice(&[c.r(), c.g(), c.b()]);
        }
    }

    /// A line of `width` pixels.
    pub fn line(&mut self, from: (i32, i32), to: (i32, i32), c: Rgb888, width: u32) {
        let _ = Line::new(Point::new(from.0, from.1), Point::new(to.0, to.1))
            .into_styled(PrimitiveStyle::with_stroke(c, width))
            .draw(self);
    }

    /// A filled rectangle.
    pub fn fill(&mut self, at: (i32, i32), size: (u32, u32), c: Rgb888) {
        let _ = Rectangle::new(Point::new(at.0, at.1), Size::new(size.0, size.1))
            .into_styled(PrimitiveStyle::with_fill(c))
            .draw(self);
    }

    /// Text in the built-in 6x10 font, its baseline at `at`, aligned left, centred or right.
    pub fn text(&mut self, s: &str, at: (i32, i32), align: Alignment, c: Rgb888) {
        let _ = Text::with_alignment(
            s,
            Point::new(at.0, at.1),
            MonoTextStyle::new(&FONT_6X10, c),
            align,
        )
        .draw(self);
    }

    /// Encodes as PNG and writes it atomically (temporary file, then rename).
    pub fn save_png(&self, path: impl AsRef<Path>) -> Result<()> {
        let path = path.as_ref();
        let mut bytes = Vec::new();
        image::codecs::png::PngEncoder::new(&mut bytes)
            .write_image(
                &self.pixels,
                self.width,
                self.height,
                image::ExtendedColorType::Rgb8,
            )
            .map_err(|e| Error::invalid("save_png", format!("{}: {e}", path.display())))?;
        sinew_nn::weights::write_atomic(path, &bytes)
            .map_err(|e| Error::invalid("save_png", format!("{}: {e}", path.display())))
    }

    /// The pixels, row-major RGB.
    pub fn pixels(&self) -> &[u8] {
        &self.pixels
    }
}

use image::ImageEncoder;

impl OriginDimensions for Canvas {
    fn size(&self) -> Size {
        Size::new(self.width, self.height)
    }
}

impl DrawTarget for Canvas {
    type Color = Rgb888;
    type Error = Infallible;

    fn draw_iter<I: IntoIterator<Item = Pixel<Rgb888>>>(
        &mut self,
        pixels: I,
    ) -> std::result::Result<(), Infallible> {
        for Pixel(p, c) in pixels {
            self.put(p.x, p.y, c);
        }
        Ok(())
    }
}
