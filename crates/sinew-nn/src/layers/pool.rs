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

/// Output length of one pooled axis (PyTorch's `pooling_output_shape`).
fn pooled_len(len: usize, k: usize, s: usize, p: usize, d: usize, ceil: bool) -> Result<usize> {
    let span = d * (k.max(1) - 1) + 1;
    let room = (len + 2 * p).checked_sub(span).ok_or_else(|| {
        Error::invalid(
            "pool",
            format!(
                "window {span} is larger than the padded input {}",
                len + 2 * p
            ),
        )
    })?;
    let mut out = if ceil { room.div_ceil(s) } else { room / s } + 1;
    if ceil && (out - 1) * s >= len + p {
        out -= 1;
    }
    Ok(out)
}

/// Geometry for ceil mode: output size and the extra padding at the end of each axis.
struct CeilPlan {
    out: (usize, usize),
    extra: (usize, usize),
}

fn ceil_plan(x: &Tensor, o: &PoolOptions) -> Result<CeilPlan> {
    let &[_, _, h, w] = x.dims() else {
        return Err(Error::invalid(
            "pool",
            format!("expects [n, c, h, w], got {}", x.shape()),
        ));
    };
    let (sh, sw) = o.stride.unwrap_or(o.kernel);
    if sh == 0 || sw == 0 {
        return Err(Error::invalid("pool", "stride must be positive"));
    }
    let oh = pooled_len(h, o.kernel.0, sh, o.padding.0, o.dilation.0, true)?;
    let ow = pooled_len(w, o.kernel.1, sw, o.padding.1, o.dilation.1, true)?;
    let need = |out: usize, s: usize, k: usize, d: usize, len: usize, p: usize| {
        ((out - 1) * s + d * (k - 1) + 1).saturating_sub(len + 2 * p)
    };
    Ok(CeilPlan {
        out: (oh, ow),
        extra: (
            need(oh, sh, o.kernel.0, o.dilation.0, h, o.padding.0),
            need(ow, sw, o.kernel.1, o.dilation.1, w, o.padding.1),
        ),
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
    let sizes = |out: usize, s: usize, k: usize, p: usize, len: usize| -> Vec<f64> {
        (0..out)
            .map(|i| {
                let start = (i * s) as i64 - p as i64;
                let end = (start + k as i64).min((len + p) as i64);
                if o.count_include_pad {
                    (end - start) as f64
                } else {
                    (end.min(len as i64) - start.max(0)) as f64
                }
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
