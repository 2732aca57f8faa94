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

/// Instance normalisation of `[n, C, L]` ([`InstanceNorm1d`], `D = 1`) or `[n, C, H, W]`
/// ([`InstanceNorm2d`], `D = 2`) inputs, or one unbatched sample of either.
pub struct InstanceNormNd<const D: usize> {
    /// `[C]` scale (with `affine`).
    pub weight: Option<Parameter>,
    /// `[C]` shift (with `affine`).
    pub bias: Option<Parameter>,
    /// Channels.
    pub num_features: usize,
    /// Added to the variance (default 1e-5).
    pub eps: f64,
}

/// PyTorch's `InstanceNorm1d` (inputs `[n, C, L]` or `[C, L]`).
pub type InstanceNorm1d = InstanceNormNd<1>;
/// PyTorch's `InstanceNorm2d` (inputs `[n, C, H, W]` or `[C, H, W]`).
pub type InstanceNorm2d = InstanceNormNd<2>;

impl<const D: usize> InstanceNormNd<D> {
    /// The rank of a batch; another `D` does not compile.
    const BATCHED_RANK: usize = match D {
        1 => 3,
        2 => 4,
        _ => panic!("InstanceNormNd<D>: D is 1 or 2"),
    };

    /// PyTorch's class name.
    const NAME: &'static str = if D == 1 {
        "InstanceNorm1d"
    } else {
        "InstanceNorm2d"
    };

    /// `InstanceNorm2d::new(c, affine)` is `nn.InstanceNorm2d(c, affine=affine)`.
    pub fn new(num_features: usize, affine: bool) -> Result<Self> {
        if num_features == 0 {
            return Err(Error::invalid(
                Self::NAME,
                "num_features must be at least 1",
            ));
        }
        let cpu = Device::cpu();
        let param = |fill: f64| -> Result<Option<Parameter>> {
            affine
                .then(|| Tensor::full([num_features], fill, DType::F32, &cpu).map(Parameter::new))
                .transpose()
        };
        Ok(InstanceNormNd {
            weight: param(1.0)?,
            bias: param(0.0)?,
            num_features,
            eps: 1e-5,
        })
    }
}

impl<const D: usize> Module for InstanceNormNd<D> {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let rank = Self::BATCHED_RANK;
        if x.rank() != rank && x.rank() + 1 != rank {
            return Err(Error::invalid(
                Self::NAME,
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
                    Self::NAME,
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
        Self::NAME
    }
}
