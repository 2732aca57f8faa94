//! Pooling layers: max and average (1-d and 2-d, `ceil_mode`, `count_include_pad`) and global
//! average pooling (adaptive pooling: `adaptive_pool.rs`).

use sinew_tensor::{DType, Error, PadMode, Pool2dConfig, Result, Tensor};

use super::unbatched::{batch_of_one, batch_of_one_pair};
use crate::{Module, summary};

/// Options of 2-d max or average pooling, with PyTorch's defaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolOptions {
    /// Window (height, width).
    pub kernel: (usize, usize),
    /// Step between windows; `None` means the kernel (PyTorch's default).
    pub stride: Option<(usize, usize)>,
    /// Implicit padding on each side (at most half the kernel).
    pub padding: (usize, usize),
    /// Spacing of window taps (max pooling only).
    pub dilation: (usize, usize),
    /// Round the output size up instead of down; a window must still start inside the input
    /// or its left padding.
    pub ceil_mode: bool,
    /// Average pooling divides by the full window, padding included (default true).
    pub count_include_pad: bool,
}

impl PoolOptions {
    /// A square window `k`, stride `k`.
    pub fn new(k: usize) -> Self {
        PoolOptions {
            kernel: (k, k),
            stride: None,
            padding: (0, 0),
            dilation: (1, 1),
            ceil_mode: false,
            count_include_pad: true,
        }
    }
    /// Square stride.
    pub fn stride(mut self, s: usize) -> Self {
        self.stride = Some((s, s));
        self
    }
    /// Square padding.
    pub fn padding(mut self, p: usize) -> Self {
        self.padding = (p, p);
        self
    }
    /// Ceil mode.
    pub fn ceil_mode(mut self, on: bool) -> Self {
        self.ceil_mode = on;
        self
    }
    /// Whether average pooling counts padding.
    pub fn count_include_pad(mut self, on: bool) -> Self {
        self.count_include_pad = on;
        self
    }

    fn base(&self) -> Pool2dConfig {
        Pool2dConfig {
            kernel: self.kernel,
            stride: self.stride,
            padding: self.padding,
            dilation: self.dilation,
            count_include_pad: self.count_include_pad,
        }
    }
}

/// Output length of one pooled axis in ceil mode (PyTorch's `pooling_output_shape`) and the
/// extra padding its last window needs past the end of the padded input. The window was
/// checked first ([`Pool2dConfig::spec`]): positive sizes, padding at most half the kernel, and
/// `len + 2 * p` and the dilated window `span` without overflow.
fn ceil_axis(len: usize, span: usize, s: usize, p: usize) -> Result<(usize, usize)> {
    let overflow = || Error::Overflow {
        op: "pool",
        what: format!("the ceil-mode windows of a length {len} axis (window {span}, stride {s})"),
    };
    let padded = len + 2 * p;
    let room = padded.checked_sub(span).ok_or_else(|| {
        Error::invalid(
            "pool",
            format!("window {span} is larger than the padded input {padded}"),
        )
    })?;
    let mut out = room.div_ceil(s) + 1;
    // The last window must start inside the input or its left padding.
    if (out - 1).checked_mul(s).ok_or_else(overflow)? >= len + p {
        out -= 1;
    }
    let reach = ((out - 1) * s).checked_add(span).ok_or_else(overflow)?;
    Ok((out, reach.saturating_sub(padded)))
}

/// Geometry for ceil mode: output size and the extra padding at the end of each axis.
struct CeilPlan {
    out: (usize, usize),
    extra: (usize, usize),
}

fn ceil_plan(x: &Tensor, o: &PoolOptions) -> Result<CeilPlan> {
    let spec = o.base().spec("pool", x, 0.0)?;
    let (sh, sw) = spec.stride;
    let span = |k: usize, d: usize| d * (k - 1) + 1;
    let (oh, eh) = ceil_axis(
        spec.h,
        span(spec.kernel.0, spec.dilation.0),
        sh,
        spec.padding.0,
    )?;
    let (ow, ew) = ceil_axis(
        spec.w,
        span(spec.kernel.1, spec.dilation.1),
        sw,
        spec.padding.1,
    )?;
    Ok(CeilPlan {
        out: (oh, ow),
        extra: (eh, ew),
    })
}

/// 2-d max pooling: values and PyTorch's flat indices into each `h*w` plane. The input is
/// `[n, c, h, w]` or one unbatched sample `[c, h, w]`.
pub fn max_pool2d_with_indices(x: &Tensor, o: &PoolOptions) -> Result<(Tensor, Tensor)> {
    batch_of_one_pair(x, 4, |x| max_pool2d_batch(x, o))
}

/// [`max_pool2d_with_indices`] of a batch.
fn max_pool2d_batch(x: &Tensor, o: &PoolOptions) -> Result<(Tensor, Tensor)> {
    if !o.ceil_mode {
        return x.max_pool2d(o.base());
    }
    let plan = ceil_plan(x, o)?;
    if plan.extra == (0, 0) {
        return x.max_pool2d(o.base());
    }
    let (ph, pw) = o.padding;
    let padded = x.pad(
        &[(ph, ph + plan.extra.0), (pw, pw + plan.extra.1)],
        PadMode::Constant(f64::NEG_INFINITY),
    )?;
    let cfg = Pool2dConfig {
        padding: (0, 0),
        ..o.base()
    };
    let (values, idx) = padded.max_pool2d(cfg)?;
    // Indices into the padded plane -> indices into the input plane.
    let (w, wp) = (x.dims()[3], padded.dims()[3]);
    let wp_t = Tensor::full((), wp as f64, DType::I64, x.device())?;
    let rows = idx.div_trunc(&wp_t)?;
    let cols = idx.sub(&rows.mul_scalar(wp as f64)?)?;
    let fixed = rows
        .sub_scalar(ph as f64)?
        .mul_scalar(w as f64)?
        .add(&cols.sub_scalar(pw as f64)?)?;
    debug_assert_eq!(values.dims()[2..], [plan.out.0, plan.out.1]);
    Ok((values, fixed))
}

/// 2-d average pooling with `ceil_mode` and `count_include_pad` (PyTorch's `F.avg_pool2d`).
/// The input is `[n, c, h, w]` or one unbatched sample `[c, h, w]`.
pub fn avg_pool2d(x: &Tensor, o: &PoolOptions) -> Result<Tensor> {
    batch_of_one(x, 4, |x| avg_pool2d_batch(x, o))
}

/// [`avg_pool2d`] of a batch.
fn avg_pool2d_batch(x: &Tensor, o: &PoolOptions) -> Result<Tensor> {
    if o.dilation != (1, 1) {
        return Err(Error::invalid(
            "avg_pool2d",
            "average pooling has no dilation",
        ));
    }
    if !o.ceil_mode {
        return x.avg_pool2d(o.base());
    }
    let plan = ceil_plan(x, o)?;
    let (ph, pw) = o.padding;
    let (kh, kw) = o.kernel;
    let padded = x.pad(
        &[(ph, ph + plan.extra.0), (pw, pw + plan.extra.1)],
        PadMode::Constant(0.0),
    )?;
    let sums = padded
        .avg_pool2d(Pool2dConfig {
            padding: (0, 0),
            count_include_pad: true,
            ..o.base()
        })?
        .mul_scalar((kh * kw) as f64)?;
    // PyTorch's divisor: the window clipped to the padded input (count_include_pad) or to the
    // input itself.
    let (h, w) = (x.dims()[2], x.dims()[3]);
    let (sh, sw) = o.stride.unwrap_or(o.kernel);
    // In padded coordinates (shifted by `p`): window `i` covers [i * s, i * s + k), which
    // `ceil_plan` bounded, clipped to the padded input or to the input itself.
    let sizes = |out: usize, s: usize, k: usize, p: usize, len: usize| -> Vec<f64> {
        (0..out)
            .map(|i| {
                let start = i * s;
                let end = (start + k).min(len + 2 * p);
                let size = if o.count_include_pad {
                    end - start
                } else {
                    end.min(len + p).saturating_sub(start.max(p))
                };
                size as f64
            })
            .collect()
    };
    let rows = sizes(plan.out.0, sh, kh, ph, h);
    let cols = sizes(plan.out.1, sw, kw, pw, w);
    let divisor: Vec<f64> = rows
        .iter()
        .flat_map(|r| cols.iter().map(move |c| r * c))
        .collect();
    let divisor = Tensor::from_vec(divisor, [1, 1, plan.out.0, plan.out.1])?
        .to_dtype(x.dtype())?
        .to_device(x.device())?;
    sums.div(&divisor)
}

/// 2-d max pooling (`MaxPool2d`); `forward_with_indices` also returns the argmax indices.
pub struct MaxPool2d {
    /// Window options.
    pub options: PoolOptions,
}

impl MaxPool2d {
    /// Square window `k`, stride `k`.
    pub fn new(k: usize) -> Self {
        MaxPool2d {
            options: PoolOptions::new(k),
        }
    }
    /// With options.
    pub fn with_options(options: PoolOptions) -> Self {
        MaxPool2d { options }
    }
    /// Values and flat indices (PyTorch's `return_indices=True`).
    pub fn forward_with_indices(&self, x: &Tensor) -> Result<(Tensor, Tensor)> {
        max_pool2d_with_indices(x, &self.options)
    }
}

impl Module for MaxPool2d {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let y = max_pool2d_with_indices(x, &self.options)?.0;
        summary::note(self, &y);
        Ok(y)
    }
}

/// 2-d average pooling (`AvgPool2d`).
pub struct AvgPool2d {
    /// Window options.
    pub options: PoolOptions,
}

impl AvgPool2d {
    /// Square window `k`, stride `k`.
    pub fn new(k: usize) -> Self {
        AvgPool2d {
            options: PoolOptions::new(k),
        }
    }
    /// With options.
    pub fn with_options(options: PoolOptions) -> Self {
        AvgPool2d { options }
    }
}

impl Module for AvgPool2d {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let y = avg_pool2d(x, &self.options)?;
        summary::note(self, &y);
        Ok(y)
    }
}

/// 1-d options from a 2-d window of height 1.
fn one_d(k: usize, stride: Option<usize>, padding: usize) -> PoolOptions {
    PoolOptions {
        kernel: (1, k),
        stride: stride.map(|s| (1, s)),
        padding: (0, padding),
        ..PoolOptions::new(1)
    }
}

/// 1-d max pooling over `[n, c, l]` or `[c, l]` (`MaxPool1d`).
pub struct MaxPool1d {
    /// As a 2-d window of height 1.
    pub options: PoolOptions,
}

impl MaxPool1d {
    /// Window `k`, stride (default `k`), padding.
    pub fn new(k: usize, stride: Option<usize>, padding: usize) -> Self {
        MaxPool1d {
            options: one_d(k, stride, padding),
        }
    }
}

impl Module for MaxPool1d {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        // `[n, c, l]` or `[c, l]` -> a row of height 1 (`-2`, to serve both).
        let y = max_pool2d_with_indices(&x.unsqueeze(-2)?, &self.options)?
            .0
            .squeeze(-2)?;
        summary::note(self, &y);
        Ok(y)
    }
}

/// 1-d average pooling over `[n, c, l]` or `[c, l]` (`AvgPool1d`).
pub struct AvgPool1d {
    /// As a 2-d window of height 1.
    pub options: PoolOptions,
}

impl AvgPool1d {
    /// Window `k`, stride (default `k`), padding.
    pub fn new(k: usize, stride: Option<usize>, padding: usize) -> Self {
        AvgPool1d {
            options: one_d(k, stride, padding),
        }
    }
}

impl Module for AvgPool1d {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let y = avg_pool2d(&x.unsqueeze(-2)?, &self.options)?.squeeze(-2)?;
        summary::note(self, &y);
        Ok(y)
    }
}

/// Mean over height and width: `[n, c, h, w] -> [n, c]` (Keras' `GlobalAveragePooling2D`).
pub struct GlobalAvgPool2d;

impl Module for GlobalAvgPool2d {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let y = super::adaptive_pool::pooled_mean(x, &[-2, -1], false)?;
        summary::note(self, &y);
        Ok(y)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn x6() -> Tensor {
        Tensor::arange(0.0, 36.0, 1.0, DType::F32, &sinew_tensor::Device::cpu())
            .and_then(|t| t.reshape([1, 1, 6, 6]))
            .unwrap()
    }

    fn close(got: Vec<f32>, want: &[f32]) {
        assert_eq!(got.len(), want.len());
        for (g, w) in got.iter().zip(want) {
            assert!((g - w).abs() < 1e-4, "{got:?} vs {want:?}");
        }
    }

    #[test]
    fn ceil_mode_with_padding_matches_pytorch() {
        // x = torch.arange(36.).reshape(1, 1, 6, 6); k 3, stride 2, padding 1, ceil_mode: the
        // last window reaches one past the padded input.
        let o = PoolOptions::new(3).stride(2).padding(1).ceil_mode(true);
        // F.avg_pool2d(x, 3, 2, 1, ceil_mode=True)
        close(
            avg_pool2d(&x6(), &o).unwrap().to_vec::<f32>().unwrap(),
            &[
                1.55556, 3.33333, 4.66667, 2.66667, 8.33333, 14.0, 16.0, 8.5, 16.33333, 26.0, 28.0,
                14.5, 10.16667, 16.0, 17.0, 8.75,
            ],
        );
        // ... count_include_pad=False
        close(
            avg_pool2d(&x6(), &o.count_include_pad(false))
                .unwrap()
                .to_vec::<f32>()
                .unwrap(),
            &[
                3.5, 5.0, 7.0, 8.0, 12.5, 14.0, 16.0, 17.0, 24.5, 26.0, 28.0, 29.0, 30.5, 32.0,
                34.0, 35.0,
            ],
        );
        // F.max_pool2d(-x, 3, 2, 1, ceil_mode=True, return_indices=True)[1]
        let (_, idx) = max_pool2d_with_indices(&x6().neg().unwrap(), &o).unwrap();
        assert_eq!(
            idx.to_vec::<i64>().unwrap(),
            vec![0, 1, 3, 5, 6, 7, 9, 11, 18, 19, 21, 23, 30, 31, 33, 35]
        );
    }

    #[test]
    fn bad_ceil_mode_windows_are_errors() {
        let x = x6();
        let bad = [
            PoolOptions::new(0).ceil_mode(true),
            PoolOptions::new(2).stride(0).ceil_mode(true),
            // Padding over half the kernel.
            PoolOptions::new(2).padding(2).ceil_mode(true),
            // Sizes whose window arithmetic overflows.
            PoolOptions::new(usize::MAX)
                .padding(usize::MAX / 2)
                .ceil_mode(true),
        ];
        for o in bad {
            assert!(max_pool2d_with_indices(&x, &o).is_err(), "{o:?}");
            assert!(avg_pool2d(&x, &o).is_err(), "{o:?}");
        }
        // The largest stride leaves one window, as in PyTorch.
        let o = PoolOptions::new(3)
            .stride(usize::MAX)
            .padding(1)
            .ceil_mode(true);
        assert_eq!(avg_pool2d(&x, &o).unwrap().dims(), &[1, 1, 1, 1]);
    }
}
