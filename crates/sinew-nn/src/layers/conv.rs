//! Convolutions: `Conv1d` and `Conv2d` (stride, padding incl. `same`, dilation, groups, bias),
//! with PyTorch's weight layouts and default initialisation (the transposed ones are in
//! `conv_transpose.rs`).

use sinew_tensor::{
    Activation, Conv1dConfig, Conv2dConfig, DType, Device, Error, PadMode, Parameter, Result,
    Tensor,
};

use super::unbatched::batch_of_one;
use crate::{Module, Visit, init, summary};

/// Padding of a convolution (PyTorch's `padding=` argument).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Padding {
    /// Zeros on each side (height, width); for 1-d layers only the width is used.
    Explicit(usize, usize),
    /// `'valid'`: no padding.
    Valid,
    /// `'same'`: the output keeps the input's size (stride 1 only). An even total is split
    /// evenly; an odd one puts the extra zero on the right/bottom, as PyTorch does.
    Same,
}

impl Default for Padding {
    fn default() -> Self {
        Padding::Explicit(0, 0)
    }
}

/// Options of [`Conv2d`], with PyTorch's defaults (stride 1, no padding, dilation 1, 1 group,
/// a bias).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Conv2dOptions {
    /// Step between windows.
    pub stride: (usize, usize),
    /// Padding.
    pub padding: Padding,
    /// Spacing of kernel taps.
    pub dilation: (usize, usize),
    /// Channel groups.
    pub groups: usize,
    /// Whether there is a bias.
    pub bias: bool,
}

impl Default for Conv2dOptions {
    fn default() -> Self {
        Conv2dOptions {
            stride: (1, 1),
            padding: Padding::default(),
            dilation: (1, 1),
            groups: 1,
            bias: true,
        }
    }
}

impl Conv2dOptions {
    /// Square stride.
    pub fn stride(mut self, s: usize) -> Self {
        self.stride = (s, s);
        self
    }
    /// Square explicit padding.
    pub fn padding(mut self, p: usize) -> Self {
        self.padding = Padding::Explicit(p, p);
        self
    }
    /// `'same'` padding.
    pub fn same(mut self) -> Self {
        self.padding = Padding::Same;
        self
    }
    /// Square dilation.
    pub fn dilation(mut self, d: usize) -> Self {
        self.dilation = (d, d);
        self
    }
    /// Channel groups.
    pub fn groups(mut self, g: usize) -> Self {
        self.groups = g;
        self
    }
    /// With or without bias.
    pub fn bias(mut self, bias: bool) -> Self {
        self.bias = bias;
        self
    }
}

/// A 2-d convolution over `[n, c, h, w]` (or one unbatched sample `[c, h, w]`): weight
/// `[out, in/groups, kh, kw]`, bias `[out]`.
///
/// ```
/// use sinew_nn::{Conv2d, Conv2dOptions, Module};
/// use sinew_tensor::{DType, Device, Tensor};
///
/// // PyTorch: nn.Conv2d(3, 16, 3, stride=2, padding=1)
/// let conv = Conv2d::with_options(3, 16, (3, 3), Conv2dOptions::default().stride(2).padding(1))?;
/// assert_eq!(conv.weight.value().dims(), &[16, 3, 3, 3]);
/// let y = conv.forward(&Tensor::zeros([8, 3, 32, 32], DType::F32, &Device::cpu())?)?;
/// assert_eq!(y.dims(), &[8, 16, 16, 16]);
/// let one = conv.forward(&Tensor::zeros([3, 32, 32], DType::F32, &Device::cpu())?)?;
/// assert_eq!(one.dims(), &[16, 16, 16]);
/// # Ok::<(), sinew_tensor::Error>(())
/// ```
pub struct Conv2d {
    /// `[out_channels, in_channels / groups, kh, kw]`.
    pub weight: Parameter,
    /// `[out_channels]`, if enabled.
    pub bias: Option<Parameter>,
    /// Stride, padding, dilation and groups.
    pub options: Conv2dOptions,
}

/// Splits a `'same'` padding total into (before, after), PyTorch's way.
fn same_split(dilation: usize, kernel: usize) -> (usize, usize) {
    let total = dilation * (kernel - 1);
    (total / 2, total - total / 2)
}

/// Checks channel counts against groups and builds the parameters with PyTorch's init.
pub(super) fn conv_parameters(
    op: &'static str,
    weight_shape: Vec<usize>,
    bias_len: Option<usize>,
    channels: (usize, usize),
    groups: usize,
) -> Result<(Parameter, Option<Parameter>)> {
    let (cin, cout) = channels;
    if groups == 0 || cin % groups != 0 || cout % groups != 0 {
        return Err(Error::invalid(
            op,
            format!("in_channels {cin} and out_channels {cout} must divide by groups {groups}"),
        ));
    }
    let cpu = Device::cpu();
    let weight = Tensor::zeros(weight_shape, DType::F32, &cpu)?;
    init::default_weight_(&weight)?;
    let bias = match bias_len {
        Some(n) => {
            let b = Tensor::zeros([n], DType::F32, &cpu)?;
            // PyTorch takes the bias bound from the weight's fan-in as stored.
            let (fan_in, _) = init::fans(&weight)?;
            init::default_bias_(&b, fan_in)?;
            Some(Parameter::new(b))
        }
        None => None,
    };
    Ok((Parameter::new(weight), bias))
}

impl Conv2d {
    /// `in -> out` channels with a square `kernel` and default options.
    pub fn new(in_channels: usize, out_channels: usize, kernel: usize) -> Result<Conv2d> {
        Conv2d::with_options(
            in_channels,
            out_channels,
            (kernel, kernel),
            Conv2dOptions::default(),
        )
    }

    /// A convolution with explicit options.
    pub fn with_options(
        in_channels: usize,
        out_channels: usize,
        kernel: (usize, usize),
        options: Conv2dOptions,
    ) -> Result<Conv2d> {
        if options.padding == Padding::Same && options.stride != (1, 1) {
            return Err(Error::invalid(
                "Conv2d",
                "padding 'same' is not supported for strided convolutions (as in PyTorch)",
            ));
        }
        let g = options.groups.max(1);
        let (weight, bias) = conv_parameters(
            "Conv2d",
            vec![out_channels, in_channels / g, kernel.0, kernel.1],
            options.bias.then_some(out_channels),
            (in_channels, out_channels),
            options.groups,
        )?;
        Ok(Conv2d {
            weight,
            bias,
            options,
        })
    }
}

/// 2-d convolution with [`Padding`] (PyTorch's `F.conv2d`).
pub fn conv2d(
    x: &Tensor,
    weight: &Tensor,
    bias: Option<&Tensor>,
    options: &Conv2dOptions,
) -> Result<Tensor> {
    conv2d_then(x, weight, bias, options, None)
}

/// [`conv2d`] followed by `activation`, in the convolution's epilogue where the backend has one
/// (`Tensor::conv2d_then`); the values of the two ops. The input is `[n, c, h, w]` or one
/// unbatched sample `[c, h, w]`, as in PyTorch.
pub fn conv2d_then(
    x: &Tensor,
    weight: &Tensor,
    bias: Option<&Tensor>,
    options: &Conv2dOptions,
    activation: Option<Activation>,
) -> Result<Tensor> {
    batch_of_one(x, 4, |x| {
        conv2d_batch_then(x, weight, bias, options, activation)
    })
}

/// [`conv2d_then`] of a batch.
fn conv2d_batch_then(
    x: &Tensor,
    weight: &Tensor,
    bias: Option<&Tensor>,
    options: &Conv2dOptions,
    activation: Option<Activation>,
) -> Result<Tensor> {
    let (kh, kw) = match weight.dims() {
        [_, _, kh, kw] => (*kh, *kw),
        _ => {
            return Err(Error::invalid(
                "conv2d",
                format!(
                    "weight must be [out, in/groups, kh, kw], got {}",
                    weight.shape()
                ),
            ));
        }
    };
    let mut cfg = Conv2dConfig {
        stride: options.stride,
        padding: (0, 0),
        dilation: options.dilation,
        groups: options.groups,
    };
    let input = match options.padding {
        Padding::Explicit(ph, pw) => {
            cfg.padding = (ph, pw);
            x.clone()
        }
        Padding::Valid => x.clone(),
        Padding::Same => {
            let (t, b) = same_split(options.dilation.0, kh.max(1));
            let (l, r) = same_split(options.dilation.1, kw.max(1));
            if t == b && l == r {
                cfg.padding = (t, l);
                x.clone()
            } else {
                x.pad(&[(t, b), (l, r)], PadMode::Constant(0.0))?
            }
        }
    };
    input.conv2d_then(weight, bias, cfg, activation)
}

impl Module for Conv2d {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let bias = self.bias.as_ref().map(Parameter::value);
        let y = conv2d(x, &self.weight.value(), bias.as_ref(), &self.options)?;
        summary::note(self, &y);
        Ok(y)
    }

    /// ReLU in the convolution's epilogue.
    fn forward_relu(&self, x: &Tensor) -> Result<Tensor> {
        let bias = self.bias.as_ref().map(Parameter::value);
        let relu = Some(Activation::Relu);
        let y = conv2d_then(x, &self.weight.value(), bias.as_ref(), &self.options, relu)?;
        summary::note(self, &y);
        Ok(y)
    }

    fn visit<'a>(&'a self, v: &mut Visit<'a, '_>) {
        v.parameter("weight", &self.weight);
        v.optional_parameter("bias", &self.bias);
    }
}

/// A 1-d convolution over `[n, c, l]` (or `[c, l]`): weight `[out, in/groups, k]`.
pub struct Conv1d {
    /// `[out_channels, in_channels / groups, k]`.
    pub weight: Parameter,
    /// `[out_channels]`, if enabled.
    pub bias: Option<Parameter>,
    /// Stride, padding (`Padding::Explicit(_, p)` uses `p`), dilation, groups and bias, read
    /// along the length.
    pub options: Conv2dOptions,
}

impl Conv1d {
    /// `in -> out` channels, kernel `k`, with options (only the width components are used).
    pub fn new(
        in_channels: usize,
        out_channels: usize,
        kernel: usize,
        options: Conv2dOptions,
    ) -> Result<Conv1d> {
        let g = options.groups.max(1);
        let (weight, bias) = conv_parameters(
            "Conv1d",
            vec![out_channels, in_channels / g, kernel],
            options.bias.then_some(out_channels),
            (in_channels, out_channels),
            options.groups,
        )?;
        Ok(Conv1d {
            weight,
            bias,
            options,
        })
    }
}

impl Module for Conv1d {
    /// `[n, c, l]`, or one unbatched sample `[c, l]`.
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let y = batch_of_one(x, 3, |x| self.forward_batch(x))?;
        summary::note(self, &y);
        Ok(y)
    }

    fn visit<'a>(&'a self, v: &mut Visit<'a, '_>) {
        v.parameter("weight", &self.weight);
        v.optional_parameter("bias", &self.bias);
    }
}

impl Conv1d {
    /// The forward of a batch `[n, c, l]`.
    fn forward_batch(&self, x: &Tensor) -> Result<Tensor> {
        let o = &self.options;
        let padding = match o.padding {
            Padding::Explicit(_, p) => p,
            Padding::Valid => 0,
            Padding::Same => {
                let k = self.weight.value().dims()[2];
                let (l, r) = same_split(o.dilation.1, k.max(1));
                if l != r {
                    let w = self.weight.value().unsqueeze(2)?;
                    let b = self.bias.as_ref().map(Parameter::value);
                    let opts = Conv2dOptions {
                        padding: Padding::Same,
                        ..*o
                    };
                    return conv2d(&x.unsqueeze(2)?, &w, b.as_ref(), &opts)?.squeeze(2);
                }
                l
            }
        };
        let cfg = Conv1dConfig {
            stride: o.stride.1,
            padding,
            dilation: o.dilation.1,
            groups: o.groups,
        };
        let bias = self.bias.as_ref().map(Parameter::value);
        x.conv1d(&self.weight.value(), bias.as_ref(), cfg)
    }
}
