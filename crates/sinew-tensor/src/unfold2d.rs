//! The geometry of a 2-d sliding window ([`Unfold2d`]): im2col's shapes and the checked
//! arithmetic of its output size, shared by convolution, pooling and the backends' kernels.

use crate::{Error, Result};

/// Geometry of a 2-d sliding window (im2col): input `[n, c, h, w]`, output
/// `[n, c * kernel_h * kernel_w, out_h * out_w]`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Unfold2d {
    /// Batch size.
    pub n: usize,
    /// Channels.
    pub c: usize,
    /// Input height.
    pub h: usize,
    /// Input width.
    pub w: usize,
    /// Window height and width.
    pub kernel: (usize, usize),
    /// Step between windows (height, width).
    pub stride: (usize, usize),
    /// Implicit padding on each side (height, width).
    pub padding: (usize, usize),
    /// Spacing between window taps (height, width).
    pub dilation: (usize, usize),
    /// Value read from the padding (0 for convolution, -inf for max pooling).
    pub pad_value: f64,
}

#[cfg(test)]
impl Unfold2d {
    /// Windows at stride 1 without padding or dilation (the direct kernels' test geometry).
    pub(crate) fn dense(n: usize, c: usize, h: usize, w: usize, kernel: (usize, usize)) -> Self {
        Unfold2d {
            n,
            c,
            h,
            w,
            kernel,
            stride: (1, 1),
            padding: (0, 0),
            dilation: (1, 1),
            pad_value: 0.0,
        }
    }
}

impl Unfold2d {
    /// Output height and width, as PyTorch computes them (floor mode).
    ///
    /// For a spec that passed [`Unfold2d::check`] (every spec built by the tensor ops) this is
    /// exact; for an invalid one (zero stride, sizes that overflow) it is `(0, 0)`, never a
    /// wrapped value.
    pub fn out_hw(&self) -> (usize, usize) {
        self.try_out_hw("unfold2d").unwrap_or((0, 0))
    }

    /// Output height and width with checked arithmetic: an error names `op` when the kernel,
    /// stride or dilation is zero or `size + 2 * padding` / the dilated window overflows.
    /// A window larger than the padded input gives 0.
    pub fn try_out_hw(&self, op: &'static str) -> Result<(usize, usize)> {
        let out = |axis: &str, size: usize, k: usize, s: usize, p: usize, d: usize| {
            if k == 0 || s == 0 || d == 0 {
                return Err(Error::invalid(
                    op,
                    format!(
                        "kernel size, stride and dilation must be positive, got kernel {:?}, stride {:?}, dilation {:?}",
                        self.kernel, self.stride, self.dilation
                    ),
                ));
            }
            let overflow = || Error::Overflow {
                op,
                what: format!(
                    "the {axis} window arithmetic (size {size}, kernel {k}, padding {p}, dilation {d})"
                ),
            };
            let span = d
                .checked_mul(k - 1)
                .and_then(|x| x.checked_add(1))
                .ok_or_else(overflow)?;
            let padded = p
                .checked_mul(2)
                .and_then(|x| x.checked_add(size))
                .ok_or_else(overflow)?;
            Ok(padded.checked_sub(span).map_or(0, |r| r / s + 1))
        };
        Ok((
            out(
                "height",
                self.h,
                self.kernel.0,
                self.stride.0,
                self.padding.0,
                self.dilation.0,
            )?,
            out(
                "width",
                self.w,
                self.kernel.1,
                self.stride.1,
                self.padding.1,
                self.dilation.1,
            )?,
        ))
    }

    /// Validates the whole geometry: positive window parameters, no overflow in the output
    /// sizes, and addressable input `[n, c, h, w]` and column `[n, c*kh*kw, oh*ow]` shapes.
    /// Returns `(oh, ow)`. Every op that builds or receives a spec runs this first.
    pub fn check(&self, op: &'static str) -> Result<(usize, usize)> {
        let (oh, ow) = self.try_out_hw(op)?;
        crate::Shape::new([self.n, self.c, self.h, self.w]).checked_elem_count(op)?;
        self.cols_shape(op, oh, ow)?.checked_elem_count(op)?;
        Ok((oh, ow))
    }

    /// Shape `[n, c*kh*kw, oh*ow]` of the columns, with checked products.
    pub fn cols_shape(&self, op: &'static str, oh: usize, ow: usize) -> Result<crate::Shape> {
        let overflow = || Error::Overflow {
            op,
            what: format!(
                "the column count of {} channels x kernel {:?} / {oh} x {ow} windows",
                self.c, self.kernel
            ),
        };
        let rows = self
            .c
            .checked_mul(self.kernel.0)
            .and_then(|x| x.checked_mul(self.kernel.1))
            .ok_or_else(overflow)?;
        let cols = oh.checked_mul(ow).ok_or_else(overflow)?;
        Ok(crate::Shape::new([self.n, rows, cols]))
    }

    /// Shape `[c*kh*kw, n*oh*ow]` of the wide columns
    /// ([`crate::Backend::unfold2d_wide`]), with checked products.
    pub fn wide_cols_shape(&self, op: &'static str, oh: usize, ow: usize) -> Result<crate::Shape> {
        let cols = self.cols_shape(op, oh, ow)?;
        let (rows, l) = (cols.dims()[1], cols.dims()[2]);
        let wide = self.n.checked_mul(l).ok_or_else(|| Error::Overflow {
            op,
            what: format!("the wide column count of {} images x {l} windows", self.n),
        })?;
        Ok(crate::Shape::new([rows, wide]))
    }
}
