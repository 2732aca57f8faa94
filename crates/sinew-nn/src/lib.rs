//! # sinew-nn
//!
//! Modules, layers, losses, initialisation, a model zoo and PyTorch-compatible weights.
//!
//! - A module is a plain struct implementing [`Module`] (`forward` plus a `visit` that lists its
//!   parameters, buffers and children); [`ModuleExt`] derives the rest: `named_parameters()`,
//!   `state_dict()` with PyTorch's keys, `train()`/`eval()`, `freeze()`, `to_device()`, ...
//! - Layers use PyTorch's layouts (Linear weight `[out, in]`, conv weight
//!   `[out, in/groups, kh, kw]`), defaults and default initialisation, so a PyTorch state dict
//!   loads without renaming or transposing ([`load_safetensors`], [`load_pytorch`] for
//!   `torch.save` files, [`ModuleExt::load_state_dict`]).
//! - [`functional`] has the stateless forms (`linear`, `batch_norm`, `dropout`, `cross_entropy`,
//!   ...), [`loss`] the losses, [`init`] the initialisers, [`zoo`] the course's models.
//!
//! ```
//! use sinew_nn::{Conv2d, Flatten, Linear, MaxPool2d, ModuleExt, ReLU, Sequential};
//! let net = Sequential::new()
//!     .append(Conv2d::new(1, 4, 3)?)
//!     .append(ReLU)
//!     .append(MaxPool2d::new(2))
//!     .append(Flatten::new())
//!     .append(Linear::new(4 * 13 * 13, 10)?);
//! let keys: Vec<String> = net.state_dict().keys().map(String::from).collect();
//! assert_eq!(keys, ["0.weight", "0.bias", "4.weight", "4.bias"]);
//! # Ok::<(), sinew_tensor::Error>(())
//! ```

#[cfg(test)]
mod fused_testing;
#[cfg(feature = "testing")]
pub mod gradcheck_cases;
pub mod init;
pub mod layers;
pub mod loss;
pub mod module;
pub mod module_ext;
pub mod state_dict;
pub mod summary;
pub mod torch_file;
pub mod weights;
pub mod zoo;

pub use layers::activation::{
    ELU, GELU, Identity, LeakyReLU, LogSoftmax, ReLU, SiLU, Sigmoid, Softmax, Softmax2d, Softplus,
    Tanh,
};
pub use layers::activation_piecewise::{
    Hardshrink, Hardsigmoid, Hardswish, Hardtanh, ReLU6, Softshrink, Threshold,
};
pub use layers::activation_smooth::{
    CELU, GLU, LogSigmoid, Mish, SELU, Softmin, Softsign, Tanhshrink,
};
pub use layers::adaptive_pool::{
    AdaptiveAvgPool1d, AdaptiveAvgPool2d, AdaptiveMaxPool1d, AdaptiveMaxPool2d,
};
pub use layers::batch_norm::{BatchNorm, BatchNorm1d, BatchNorm2d, BatchNormConfig, BatchNormNd};
pub use layers::container::{Concat, Sequential};
pub use layers::conv::{Conv1d, Conv2d, Conv2dOptions, Padding};
pub use layers::conv_transpose::{ConvTranspose1d, ConvTranspose2d};
pub use layers::dropout::{Dropout, Dropout1d, Dropout2d, Dropout3d};
pub use layers::embedding::Embedding;
pub use layers::fold::{Fold, FoldOptions, Unfold};
pub use layers::group_norm::{GroupNorm, LayerNorm};
pub use layers::instance_norm::{InstanceNorm1d, InstanceNorm2d, InstanceNormNd};
pub use layers::linear::{Linear, LinearConfig};
pub use layers::local_response_norm::LocalResponseNorm;
pub use layers::lp_pool::{LPPool1d, LPPool2d};
pub use layers::padding::{
    CircularPad1d, CircularPad2d, ConstantPad2d, ReflectionPad1d, ReflectionPad2d,
    ReplicationPad1d, ReplicationPad2d, ZeroPad2d,
};
pub use layers::pool::{AvgPool1d, AvgPool2d, GlobalAvgPool2d, MaxPool1d, MaxPool2d, PoolOptions};
pub use layers::prelu::PReLU;
pub use layers::reshape::{Flatten, Unflatten};
pub use layers::unpool::MaxUnpool2d;
pub use layers::upsample::{Interpolation, PixelShuffle, PixelUnshuffle, Upsample, UpsampleTo};
pub use module::{Buffer, Entry, Mode, Module, Visit};
pub use module_ext::ModuleExt;
pub use state_dict::{LoadReport, StateDict};
pub use summary::{Summary, SummaryRow, summary};
pub use torch_file::{load_pytorch, save_pytorch};
pub use weights::{
    WeightsFileError, load_safetensors, load_weights, save_safetensors, save_weights,
};

/// Stateless forms of the layers and losses (PyTorch's `torch.nn.functional`).
pub mod functional {
    pub use crate::layers::activation::{gelu_tanh, silu};
    pub use crate::layers::activation_piecewise::{
        hardshrink, hardsigmoid, hardswish, hardtanh, relu6, softshrink, threshold,
    };
    pub use crate::layers::activation_smooth::{
        celu, glu, logsigmoid, mish, selu, softmin, softsign, tanhshrink,
    };
    pub use crate::layers::adaptive_pool::{
        adaptive_avg_pool1d, adaptive_avg_pool2d, adaptive_max_pool1d, adaptive_max_pool2d,
    };
    pub use crate::layers::batch_norm::batch_norm;
    pub use crate::layers::conv::{conv2d, conv2d_then};
    pub use crate::layers::conv_transpose::{conv_transpose1d, conv_transpose2d};
    pub use crate::layers::dropout::{dropout, dropout1d, dropout2d, dropout3d};
    pub use crate::layers::embedding::embedding;
    pub use crate::layers::fold::{fold, unfold};
    pub use crate::layers::group_norm::{group_norm, layer_norm};
    pub use crate::layers::instance_norm::instance_norm;
    pub use crate::layers::linear::{linear, linear_then};
    pub use crate::layers::local_response_norm::local_response_norm;
    pub use crate::layers::lp_pool::{lp_pool1d, lp_pool2d};
    pub use crate::layers::padding::{constant_pad2d, pad};
    pub use crate::layers::pool::{avg_pool2d, max_pool2d_with_indices};
    pub use crate::layers::prelu::prelu;
    pub use crate::layers::unpool::max_unpool2d;
    pub use crate::layers::upsample::{
        interpolate, pixel_shuffle, pixel_unshuffle, upsample_nearest,
    };
    pub use crate::loss::*;
}
