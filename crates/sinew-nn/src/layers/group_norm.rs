//! Normalisation over features of each sample: `LayerNorm` and `GroupNorm` (biased variance,
//! the same in training and evaluation).

use sinew_tensor::{DType, Device, Error, Parameter, Result, Tensor, autocast};

use super::batch_norm::half_in_f32;
use crate::{Module, Visit, summary};

/// Normalises over the last `normalized_shape.len()` dims (PyTorch's `F.layer_norm`).
pub fn layer_norm(
    x: &Tensor,
    normalized_shape: &[usize],
    weight: Option<&Tensor>,
    bias: Option<&Tensor>,
    eps: f64,
) -> Result<Tensor> {
    // Under autocast the statistics and the normalisation run in f32 (the output is f32);
    // outside it an f16/bf16 input too, with the output rounded back.
    let x = &autocast::full_precision(x)?;
    if let Some(y) = half_in_f32(x, |x| layer_norm(x, normalized_shape, weight, bias, eps))? {
        return Ok(y);
    }
    let k = normalized_shape.len();
    if k == 0 || x.rank() < k || x.dims()[x.rank() - k..] != *normalized_shape {
        return Err(Error::invalid(
            "layer_norm",
            format!(
                "input {} does not end with the normalized shape {normalized_shape:?}",
                x.shape()
            ),
        ));
    }
    if let Some(y) = super::layer_norm_fused::layer_norm_rows(x, k, weight, bias, eps)? {
        return Ok(y);
    }
    layer_norm_op_by_op(x, k, weight, bias, eps)
}

/// [`layer_norm`] written op by op (other dtypes and backends; the reference of the fused
/// form's tests).
pub(crate) fn layer_norm_op_by_op(
    x: &Tensor,
    k: usize,
    weight: Option<&Tensor>,
    bias: Option<&Tensor>,
    eps: f64,
) -> Result<Tensor> {
    let dims: Vec<isize> = (-(k as isize)..0).collect();
    let mean = x.mean(&dims, true)?;
    let var = x.var(&dims, 0, true)?;
    let mut y = x.sub(&mean)?.mul(&var.add_scalar(eps)?.rsqrt()?)?;
    if let Some(w) = weight {
        y = y.mul(w)?;
    }
    if let Some(b) = bias {
        y = y.add(b)?;
    }
    Ok(y)
}

/// Layer normalisation with an elementwise affine (`weight` ones, `bias` zeros, both shaped like
/// `normalized_shape`).
pub struct LayerNorm {
    /// Scale, if affine.
    pub weight: Option<Parameter>,
    /// Shift, if affine.
    pub bias: Option<Parameter>,
    /// The trailing shape normalised over.
    pub normalized_shape: Vec<usize>,
    /// Added to the variance (default 1e-5).
    pub eps: f64,
}

impl LayerNorm {
    /// PyTorch's defaults: eps 1e-5, elementwise affine.
    pub fn new(normalized_shape: &[usize]) -> Result<Self> {
        let cpu = Device::cpu();
        Ok(LayerNorm {
            weight: Some(Parameter::new(Tensor::ones(
                normalized_shape,
                DType::F32,
                &cpu,
            )?)),
            bias: Some(Parameter::new(Tensor::zeros(
                normalized_shape,
                DType::F32,
                &cpu,
            )?)),
            normalized_shape: normalized_shape.to_vec(),
            eps: 1e-5,
        })
    }
}

impl Module for LayerNorm {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let w = self.weight.as_ref().map(Parameter::value);
        let b = self.bias.as_ref().map(Parameter::value);
        let y = layer_norm(x, &self.normalized_shape, w.as_ref(), b.as_ref(), self.eps)?;
        summary::note(self, &y);
        Ok(y)
    }

    fn visit<'a>(&'a self, v: &mut Visit<'a, '_>) {
        v.optional_parameter("weight", &self.weight);
        v.optional_parameter("bias", &self.bias);
    }
}

/// Group normalisation of `[n, C, ...]`: statistics over each group of `C / groups` channels
/// and all positions; a per-channel affine (PyTorch's `F.group_norm`).
pub fn group_norm(
    x: &Tensor,
    groups: usize,
    weight: Option<&Tensor>,
    bias: Option<&Tensor>,
    eps: f64,
) -> Result<Tensor> {
    // Under autocast the statistics and the normalisation run in f32 (the output is f32);
    // outside it an f16/bf16 input too, with the output rounded back.
    let x = &autocast::full_precision(x)?;
    if let Some(y) = half_in_f32(x, |x| group_norm(x, groups, weight, bias, eps))? {
        return Ok(y);
    }
    if x.rank() < 2 || groups == 0 || x.dims()[1] % groups != 0 {
        return Err(Error::invalid(
            "group_norm",
            format!(
                "cannot split the channels of {} into {groups} groups",
                x.shape()
            ),
        ));
    }
    let n = x.dims()[0];
    let grouped = x.reshape([n, groups, x.elem_count() / n.max(1) / groups])?;
    let mean = grouped.mean(&[2], true)?;
    let var = grouped.var(&[2], 0, true)?;
    let mut y = grouped
        .sub(&mean)?
        .mul(&var.add_scalar(eps)?.rsqrt()?)?
        .reshape(x.shape().clone())?;
    let mut channel_shape = vec![1; x.rank()];
    channel_shape[1] = x.dims()[1];
    if let Some(w) = weight {
        y = y.mul(&w.reshape(channel_shape.clone())?)?;
    }
    if let Some(b) = bias {
        y = y.add(&b.reshape(channel_shape)?)?;
    }
    Ok(y)
}

/// Group normalisation with per-channel `weight` (ones) and `bias` (zeros).
pub struct GroupNorm {
    /// `[C]` scale.
    pub weight: Option<Parameter>,
    /// `[C]` shift.
    pub bias: Option<Parameter>,
    /// Number of groups.
    pub num_groups: usize,
    /// Added to the variance (default 1e-5).
    pub eps: f64,
}

impl GroupNorm {
    /// `num_groups` groups over `num_channels` channels, affine.
    pub fn new(num_groups: usize, num_channels: usize) -> Result<Self> {
        if num_groups == 0 || !num_channels.is_multiple_of(num_groups) {
            return Err(Error::invalid(
                "GroupNorm",
                format!("num_channels {num_channels} must divide by num_groups {num_groups}"),
            ));
        }
        let cpu = Device::cpu();
        Ok(GroupNorm {
            weight: Some(Parameter::new(Tensor::ones(
                [num_channels],
                DType::F32,
                &cpu,
            )?)),
            bias: Some(Parameter::new(Tensor::zeros(
                [num_channels],
                DType::F32,
                &cpu,
            )?)),
            num_groups,
            eps: 1e-5,
        })
    }
}

impl Module for GroupNorm {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let w = self.weight.as_ref().map(Parameter::value);
        let b = self.bias.as_ref().map(Parameter::value);
        let y = group_norm(x, self.num_groups, w.as_ref(), b.as_ref(), self.eps)?;
        summary::note(self, &y);
        Ok(y)
    }

    fn visit<'a>(&'a self, v: &mut Visit<'a, '_>) {
        v.optional_parameter("weight", &self.weight);
        v.optional_parameter("bias", &self.bias);
    }
}
