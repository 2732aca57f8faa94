//! `Unfold` and `Fold` (PyTorch's `nn.Unfold` / `nn.Fold`, `F.unfold` / `F.fold`): an image's
//! sliding windows as columns (im2col) and columns summed back into an image (col2im), the pair
//! convolution is built from, each the other's backward.

use sinew_tensor::{Error, Result, Tensor, Unfold2d};

use super::unbatched::batch_of_one;
use crate::{Module, summary};

/// The windows of [`Unfold`] and [`Fold`]: PyTorch's `kernel_size`, `dilation` (default 1),
/// `padding` (default 0, zeros) and `stride` (default 1), each (height, width).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FoldOptions {
    /// Window height and width.
    pub kernel_size: (usize, usize),
    /// Spacing between a window's taps.
    pub dilation: (usize, usize),
    /// Zeros added on each side.
    pub padding: (usize, usize),
    /// Step between windows.
    pub stride: (usize, usize),
}

impl FoldOptions {
    /// Windows of `kernel_size` with PyTorch's defaults for the rest.
    pub fn new(kernel_size: (usize, usize)) -> Self {
        FoldOptions {
            kernel_size,
            dilation: (1, 1),
            padding: (0, 0),
            stride: (1, 1),
        }
    }
    /// With `dilation`.
    pub fn dilation(mut self, dilation: (usize, usize)) -> Self {
        self.dilation = dilation;
        self
    }
    /// With `padding`.
    pub fn padding(mut self, padding: (usize, usize)) -> Self {
        self.padding = padding;
        self
    }
    /// With `stride`.
    pub fn stride(mut self, stride: (usize, usize)) -> Self {
        self.stride = stride;
        self
    }

    /// The geometry over an `[n, c, h, w]` image, and its windows' grid, checked.
    fn spec(&self, op: &'static str, [n, c, h, w]: [usize; 4]) -> Result<(Unfold2d, usize)> {
        let spec = Unfold2d {
            n,
            c,
            h,
            w,
            kernel: self.kernel_size,
            stride: self.stride,
            padding: self.padding,
            dilation: self.dilation,
            pad_value: 0.0,
        };
        let (oh, ow) = spec.check(op)?;
        if oh == 0 || ow == 0 {
            return Err(Error::invalid(
                op,
                format!(
                    "no window (kernel {:?}, dilation {:?}, padding {:?}) fits the {h}x{w} image",
                    self.kernel_size, self.dilation, self.padding
                ),
            ));
        }
        // Both are at least 1 and their product was checked with the column shape.
        Ok((spec, oh * ow))
    }
}

/// PyTorch's `F.unfold`: `[n, c, h, w]` (or one `[c, h, w]` image) to its windows as columns,
/// `[n, c * kh * kw, l]` with `l` windows in row-major order (or `[c * kh * kw, l]`).
pub fn unfold(x: &Tensor, options: &FoldOptions) -> Result<Tensor> {
    const OP: &str = "unfold";
    batch_of_one(x, 4, |x| {
        let &[n, c, h, w] = x.dims() else {
            return Err(Error::invalid(
                OP,
                format!("expects [n, c, h, w] or [c, h, w], got {}", x.shape()),
            ));
        };
        let (spec, _) = options.spec(OP, [n, c, h, w])?;
        x.unfold2d(&spec)
    })
}

/// PyTorch's `F.fold`: columns `[n, c * kh * kw, l]` (or `[c * kh * kw, l]`) summed back into
/// `[n, c, h, w]` images (or `[c, h, w]`) of `output_size` `(h, w)`, where `l` must be the
/// number of windows that fit them; overlapping windows add up.
pub fn fold(x: &Tensor, output_size: (usize, usize), options: &FoldOptions) -> Result<Tensor> {
    const OP: &str = "fold";
    batch_of_one(x, 3, |x| {
        let &[n, rows, l] = x.dims() else {
            return Err(Error::invalid(
                OP,
                format!(
                    "expects [n, c * kh * kw, l] or [c * kh * kw, l], got {}",
                    x.shape()
                ),
            ));
        };
        let (kh, kw) = options.kernel_size;
        let taps = kh.checked_mul(kw).filter(|&k| k > 0 && rows % k == 0);
        let Some(taps) = taps else {
            return Err(Error::invalid(
                OP,
                format!("dim 1 ({rows}) must be a multiple of the kernel's {kh}x{kw} taps"),
            ));
        };
        let (h, w) = output_size;
        let (spec, windows) = options.spec(OP, [n, rows / taps, h, w])?;
        if windows != l {
            return Err(Error::invalid(
                OP,
                format!("{l} columns, but {windows} windows fit the {h}x{w} output"),
            ));
        }
        x.fold2d(&spec)
    })
}

/// PyTorch's `nn.Unfold`: see [`unfold`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unfold {
    /// The windows.
    pub options: FoldOptions,
}

impl Unfold {
    /// Windows of `kernel_size`, PyTorch's defaults for the rest.
    pub fn new(kernel_size: (usize, usize)) -> Self {
        Unfold {
            options: FoldOptions::new(kernel_size),
        }
    }
}

impl Module for Unfold {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let y = unfold(x, &self.options)?;
        summary::note(self, &y);
        Ok(y)
    }
}

/// PyTorch's `nn.Fold`: see [`fold`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fold {
    /// The images' `(h, w)`.
    pub output_size: (usize, usize),
    /// The windows.
    pub options: FoldOptions,
}

impl Fold {
    /// Into `output_size` images from windows of `kernel_size`, PyTorch's defaults for the rest.
    pub fn new(output_size: (usize, usize), kernel_size: (usize, usize)) -> Self {
        Fold {
            output_size,
            options: FoldOptions::new(kernel_size),
        }
    }
}

impl Module for Fold {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let y = fold(x, self.output_size, &self.options)?;
        summary::note(self, &y);
        Ok(y)
    }
}

#[cfg(test)]
mod tests {
    use sinew_tensor::{DType, Device, Generator};

    use super::*;

    /// Fold of unfold multiplies each pixel by the number of windows covering it (PyTorch's
    /// documented identity `fold(unfold(x)) == x * fold(unfold(ones))`), here for 2x2 windows
    /// at stride 1 over 3x4 images: corners 1, edges 2, inside 4.
    #[test]
    fn fold_of_unfold_counts_the_windows_over_each_pixel() -> Result<()> {
        let x = Generator::new(2).randn([2, 3, 3, 4], DType::F64, &Device::cpu())?;
        let opts = FoldOptions::new((2, 2));
        let cols = unfold(&x, &opts)?;
        assert_eq!(cols.dims(), [2, 12, 6]);
        let back = fold(&cols, (3, 4), &opts)?;
        let counts = [1.0, 2.0, 2.0, 1.0, 2.0, 4.0, 4.0, 2.0, 1.0, 2.0, 2.0, 1.0];
        let (x, back) = (x.to_vec::<f64>()?, back.to_vec::<f64>()?);
        for (i, (a, b)) in x.iter().zip(&back).enumerate() {
            assert_eq!(*b, a * counts[i % 12], "pixel {i}");
        }
        Ok(())
    }

    #[test]
    fn shapes_that_do_not_fit_are_errors() {
        let cpu = Device::cpu();
        let opts = FoldOptions::new((2, 2));
        let image = Tensor::zeros([1, 2, 3, 3], DType::F32, &cpu).unwrap();
        let err = unfold(&image, &FoldOptions::new((4, 1))).unwrap_err();
        assert!(err.to_string().contains("fits the 3x3 image"), "{err}");
        let flat = Tensor::zeros([4, 4], DType::F32, &cpu).unwrap();
        assert!(unfold(&flat, &opts).is_err());
        let cols = Tensor::zeros([1, 7, 4], DType::F32, &cpu).unwrap();
        let err = fold(&cols, (3, 3), &opts).unwrap_err();
        assert!(
            err.to_string().contains("multiple of the kernel's 2x2"),
            "{err}"
        );
        let cols = Tensor::zeros([1, 8, 5], DType::F32, &cpu).unwrap();
        let err = fold(&cols, (3, 3), &opts).unwrap_err();
        assert!(
            err.to_string().contains("5 columns, but 4 windows"),
            "{err}"
        );
        let zero = FoldOptions::new((0, 2));
        assert!(fold(&cols, (3, 3), &zero).is_err());
        assert_eq!(
            unfold(&image.squeeze(0).unwrap(), &opts).unwrap().dims(),
            [8, 4]
        );
    }
}
