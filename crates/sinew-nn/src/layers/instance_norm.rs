//! Instance normalisation (`InstanceNorm1d`, `InstanceNorm2d`): each sample's channels
//! normalised over their own positions (group norm with one channel per group), with an
//! optional per-channel affine. As PyTorch's defaults: no affine, eps 1e-5, and no running
//! statistics (PyTorch's `track_running_stats=True` is not offered).

use sinew_tensor::{DType, Device, Error, Parameter, Result, Tensor};

use super::group_norm::group_norm;
use super::unbatched::batch_of_one;
use crate::{Module, Visit, summary};

/// `[n, C, ...]` normalised per sample and channel over the positions, then `weight` and
/// `bias` per channel. PyTorch: `F.instance_norm` without running statistics.
pub fn instance_norm(
    x: &Tensor,
    weight: Option<&Tensor>,
    bias: Option<&Tensor>,
    eps: f64,
) -> Result<Tensor> {
    // PyTorch: "Expected more than 1 spatial element when training".
    if x.rank() < 3 || x.dims()[2..].iter().product::<usize>() < 2 {
        return Err(Error::invalid(
            "instance_norm",
            format!(
                "expects [n, C, ...] with more than one position, got {}",
                x.shape()
            ),
        ));
    }
    group_norm(x, x.dims()[1].max(1), weight, bias, eps)
}

/// Instance normalisation of `[n, C, L]` (1-d) or `[n, C, H, W]` (2-d) inputs, or one
/// unbatched sample of either.
pub struct InstanceNorm {
    /// `[C]` scale (with `affine`).
    pub weight: Option<Parameter>,
    /// `[C]` shift (with `affine`).
    pub bias: Option<Parameter>,
    /// Channels.
    pub num_features: usize,
    /// Added to the variance (default 1e-5).
    pub eps: f64,
    /// Rank of a batch: 3 for `InstanceNorm1d`, 4 for `InstanceNorm2d`.
    batched_rank: usize,
}

/// PyTorch's `InstanceNorm1d` (inputs `[n, C, L]` or `[C, L]`).
pub type InstanceNorm1d = InstanceNorm;
/// PyTorch's `InstanceNorm2d` (inputs `[n, C, H, W]` or `[C, H, W]`).
pub type InstanceNorm2d = InstanceNorm;

impl InstanceNorm {
    fn with_rank(num_features: usize, affine: bool, batched_rank: usize) -> Result<Self> {
        if num_features == 0 {
            return Err(Error::invalid(
                "InstanceNorm",
                "num_features must be at least 1",
            ));
        }
        let cpu = Device::cpu();
        let param = |fill: f64| -> Result<Option<Parameter>> {
            affine
                .then(|| Tensor::full([num_features], fill, DType::F32, &cpu).map(Parameter::new))
                .transpose()
        };
        Ok(InstanceNorm {
            weight: param(1.0)?,
            bias: param(0.0)?,
            num_features,
            eps: 1e-5,
            batched_rank,
        })
    }

    /// `InstanceNorm1d(num_features, affine=affine)`.
    pub fn new_1d(num_features: usize, affine: bool) -> Result<Self> {
        Self::with_rank(num_features, affine, 3)
    }

    /// `InstanceNorm2d(num_features, affine=affine)`.
    pub fn new_2d(num_features: usize, affine: bool) -> Result<Self> {
        Self::with_rank(num_features, affine, 4)
    }
}

impl Module for InstanceNorm {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let rank = self.batched_rank;
        if x.rank() != rank && x.rank() + 1 != rank {
            return Err(Error::invalid(
                "InstanceNorm",
                format!(
                    "expects a {rank}-d batch or a {}-d sample, got {}",
                    rank - 1,
                    x.shape()
                ),
            ));
        }
        let w = self.weight.as_ref().map(Parameter::value);
        let b = self.bias.as_ref().map(Parameter::value);
        let y = batch_of_one(x, rank, |x| {
            if x.dims()[1] != self.num_features {
                return Err(Error::invalid(
                    "InstanceNorm",
                    format!(
                        "expects {} channels in dim 1, got {}",
                        self.num_features,
                        x.shape()
                    ),
                ));
            }
            instance_norm(x, w.as_ref(), b.as_ref(), self.eps)
        })?;
        summary::note(self, &y);
        Ok(y)
    }

    fn visit<'a>(&'a self, v: &mut Visit<'a, '_>) {
        v.optional_parameter("weight", &self.weight);
        v.optional_parameter("bias", &self.bias);
    }

    fn type_name(&self) -> &'static str {
        if self.batched_rank == 3 {
            "InstanceNorm1d"
        } else {
            "InstanceNorm2d"
        }
    }
}
