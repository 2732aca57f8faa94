//! Transposed convolutions: `ConvTranspose1d` and `ConvTranspose2d`, grouped or not, with
//! PyTorch's `[in, out / groups, k...]` weight layout and default initialisation; the 1-d one is
//! the 2-d one over a height of 1.

use sinew_tensor::{Conv2dConfig, Error, Parameter, Result, Tensor};

use super::conv::{Conv2dOptions, Padding, conv_parameters};
use super::unbatched::batch_of_one;
use crate::{Module, Visit, summary};

/// A transposed 2-d convolution (the gradient of `Conv2d` with respect to its input):
/// weight `[in, out / groups, kh, kw]` as in PyTorch.
pub struct ConvTranspose2d {
    /// `[in_channels, out_channels / groups, kh, kw]`.
    pub weight: Parameter,
    /// `[out_channels]`, if enabled.
    pub bias: Option<Parameter>,
    /// Stride, padding (explicit only), dilation, groups and bias.
    pub options: Conv2dOptions,
    /// Extra rows/columns on the bottom/right of the output (PyTorch's `output_padding`).
    pub output_padding: (usize, usize),
}

impl ConvTranspose2d {
    /// `in -> out` channels with a square kernel; `options.groups` splits both channel counts,
    /// which it must divide.
    pub fn new(
        in_channels: usize,
        out_channels: usize,
        kernel: usize,
        options: Conv2dOptions,
        output_padding: usize,
    ) -> Result<ConvTranspose2d> {
        if !matches!(options.padding, Padding::Explicit(..)) {
            return Err(Error::invalid(
                "ConvTranspose2d",
                "only explicit padding is supported",
            ));
        }
        let (s, d) = (options.stride, options.dilation);
        if output_padding >= s.0.max(d.0) || output_padding >= s.1.max(d.1) {
            return Err(Error::invalid(
                "ConvTranspose2d",
                format!("output_padding {output_padding} must be smaller than stride or dilation"),
            ));
        }
        let (weight, bias) = transposed_parameters(
            "ConvTranspose2d",
            (in_channels, out_channels),
            &[kernel, kernel],
            &options,
        )?;
        Ok(ConvTranspose2d {
            weight,
            bias,
            options,
            output_padding: (output_padding, output_padding),
        })
    }
}

/// The weight `[in, out / groups, k...]` and bias `[out]` of a transposed convolution, with
/// PyTorch's initialisation (its fans are those of the weight as stored). `conv_parameters`
/// refuses groups that do not divide both channel counts, zero among them.
fn transposed_parameters(
    op: &'static str,
    (in_channels, out_channels): (usize, usize),
    kernel: &[usize],
    options: &Conv2dOptions,
) -> Result<(Parameter, Option<Parameter>)> {
    let out_per_group = out_channels.checked_div(options.groups).unwrap_or(0);
    let mut shape = vec![in_channels, out_per_group];
    shape.extend_from_slice(kernel);
    conv_parameters(
        op,
        shape,
        options.bias.then_some(out_channels),
        (in_channels, out_channels),
        options.groups,
    )
}

/// Transposed convolution (PyTorch's `F.conv_transpose2d`, weight `[in, out / groups, kh, kw]`):
/// every input pixel scatters its group's `weight` into the output; [`Tensor::conv_transpose2d`]
/// (the input gradient of a convolution, with no column buffer where the backend has a direct
/// kernel). The input is `[n, c, h, w]` or one unbatched sample `[c, h, w]`.
pub fn conv_transpose2d(
    x: &Tensor,
    weight: &Tensor,
    bias: Option<&Tensor>,
    options: &Conv2dOptions,
    output_padding: (usize, usize),
) -> Result<Tensor> {
    const OP: &str = "conv_transpose2d";
    let Padding::Explicit(ph, pw) = options.padding else {
        return Err(Error::invalid(OP, "only explicit padding is supported"));
    };
    let cfg = Conv2dConfig {
        stride: options.stride,
        padding: (ph, pw),
        dilation: options.dilation,
        groups: options.groups,
    };
    batch_of_one(x, 4, |x| {
        x.conv_transpose2d(weight, bias, cfg, output_padding)
    })
}

impl Module for ConvTranspose2d {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let bias = self.bias.as_ref().map(Parameter::value);
        let y = conv_transpose2d(
            x,
            &self.weight.value(),
            bias.as_ref(),
            &self.options,
            self.output_padding,
        )?;
        summary::note(self, &y);
        Ok(y)
    }

    fn visit<'a>(&'a self, v: &mut Visit<'a, '_>) {
        v.parameter("weight", &self.weight);
        v.optional_parameter("bias", &self.bias);
    }
}

/// A transposed 1-d convolution over `[n, c, l]` (or `[c, l]`): weight `[in, out / groups, k]`
/// as in PyTorch. The options' width components are used, as [`super::conv::Conv1d`] reads
/// them.
pub struct ConvTranspose1d {
    /// `[in_channels, out_channels / groups, k]`.
    pub weight: Parameter,
    /// `[out_channels]`, if enabled.
    pub bias: Option<Parameter>,
    /// Stride, padding (`Padding::Explicit(_, p)` uses `p`), dilation along the length;
    /// groups and bias.
    pub options: Conv2dOptions,
    /// Extra positions at the end of the output (PyTorch's `output_padding`).
    pub output_padding: usize,
}

impl ConvTranspose1d {
    /// `in -> out` channels, kernel `k`; `options.groups` must divide both channel counts.
    pub fn new(
        in_channels: usize,
        out_channels: usize,
        kernel: usize,
        options: Conv2dOptions,
        output_padding: usize,
    ) -> Result<ConvTranspose1d> {
        const OP: &str = "ConvTranspose1d";
        if !matches!(options.padding, Padding::Explicit(..)) {
            return Err(Error::invalid(OP, "only explicit padding is supported"));
        }
        if output_padding >= options.stride.1.max(options.dilation.1) {
            return Err(Error::invalid(
                OP,
                format!("output_padding {output_padding} must be smaller than stride or dilation"),
            ));
        }
        let (weight, bias) =
            transposed_parameters(OP, (in_channels, out_channels), &[kernel], &options)?;
        Ok(ConvTranspose1d {
            weight,
            bias,
            options,
            output_padding,
        })
    }
}

/// Transposed 1-d convolution (PyTorch's `F.conv_transpose1d`): `[n, c, l]` (or `[c, l]`) with
/// a `[in, out / groups, k]` weight, as [`conv_transpose2d`] over a height of 1 (the options'
/// width components: stride, padding, dilation; and the groups).
pub fn conv_transpose1d(
    x: &Tensor,
    weight: &Tensor,
    bias: Option<&Tensor>,
    options: &Conv2dOptions,
    output_padding: usize,
) -> Result<Tensor> {
    const OP: &str = "conv_transpose1d";
    let Padding::Explicit(_, padding) = options.padding else {
        return Err(Error::invalid(OP, "only explicit padding is supported"));
    };
    if weight.rank() != 3 {
        return Err(Error::invalid(
            OP,
            format!(
                "weight must be [in, out / groups, k], got {}",
                weight.shape()
            ),
        ));
    }
    let flat = Conv2dOptions {
        stride: (1, options.stride.1),
        padding: Padding::Explicit(0, padding),
        dilation: (1, options.dilation.1),
        ..*options
    };
    let weight = weight.unsqueeze(2)?;
    batch_of_one(x, 3, |x| {
        if x.rank() != 3 {
            return Err(Error::invalid(
                OP,
                format!("expects [n, c, l] or [c, l], got {}", x.shape()),
            ));
        }
        conv_transpose2d(&x.unsqueeze(2)?, &weight, bias, &flat, (0, output_padding))?.squeeze(2)
    })
}

impl Module for ConvTranspose1d {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let bias = self.bias.as_ref().map(Parameter::value);
        let y = conv_transpose1d(
            x,
            &self.weight.value(),
            bias.as_ref(),
            &self.options,
            self.output_padding,
        )?;
        summary::note(self, &y);
        Ok(y)
    }

    fn visit<'a>(&'a self, v: &mut Visit<'a, '_>) {
        v.parameter("weight", &self.weight);
        v.optional_parameter("bias", &self.bias);
    }
}
