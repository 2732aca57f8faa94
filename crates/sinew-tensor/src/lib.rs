//! # sinew-tensor
//!
//! N-dimensional tensors for the Sinew deep learning framework: shapes, strides and views over
//! shared storage, run-time dtypes (f32, f64, f16, bf16, i64, u8, bool), an object-safe
//! [`Backend`] interface that devices implement, the CPU backend with its kernels, and seeded
//! random numbers that do not depend on the thread count.
//!
//! ```
//! use sinew_tensor::{DType, Device, Tensor};
//! let x = Tensor::arange(0.0, 6.0, 1.0, DType::F32, &Device::cpu())?.reshape([2, 3])?;
//! let y = x.matmul(&x.t()?)?;
//! assert_eq!(y.to_vec::<f32>()?, vec![5.0, 14.0, 14.0, 50.0]);
//! # Ok::<(), sinew_tensor::Error>(())
//! ```
//!
//! Layout of the crate (see `docs/adding-an-op.md`): `ops/<family>.rs` holds the public methods
//! and their checks, `cpu/<family>.rs` the CPU kernels, [`op_table`] the list every test walks.

#[macro_use]
mod host;
pub mod autocast;
pub mod autograd;
pub mod backend;
mod backend_deferred;
mod backend_multi;
mod backend_ops;
mod composite;
mod composite_conv;
mod composite_pool;
pub mod cpu;
mod deferred_read;
mod device;
mod display;
mod dtype;
mod error;
mod grad;
mod layout;
mod new_shape;
pub mod op_table;
pub mod ops;
pub mod philox;
mod random;
mod shape;
mod tensor;
mod unfold2d;

pub use autocast::{AutocastGuard, autocast, autocast_off, with_autocast};
pub use backend::{
    Activation, Backend, BackendStorage, BoxedStorage, DeferredOps, InplaceOp, MaskedLincomb,
    MatmulDims, MatmulSpec, MultiTensorOps, RunningStorages, ScatterMode, Unfold2d,
};
pub use cpu::{CpuBackend, CpuStorage};
pub use deferred_read::{DeferredScalar, ReadTarget};
pub use device::{Device, DeviceFactory, DeviceLocation, register_backend};
pub use dtype::{DType, Element};
pub use error::{Error, ExternalError, Result};
pub use layout::{Layout, StridedOffsets};
pub use new_shape::NewShape;
pub use ops::channel_norm::ChannelNormStep;
pub use ops::custom::{CustomInplaceOp, CustomOp};
pub use ops::fused_step::{
    AdadeltaStep, AdafactorStep, AdagradStep, AdamStep, AdamaxStep, AsgdStep, AverageStep,
    FusedStep, NadamStep, RadamStep, RmspropStep, RpropStep, SgdStep, StepOperands,
};
pub use ops::index::PadMode;
pub use ops::matmul_with::MatmulOptions;
pub use ops::running_stats::RunningStats;
pub use ops::softmax_xent::{SoftmaxXentOptions, XentOperands, xent_stats_dtype};
pub use ops::{
    ArgReduceOp, BinaryOp, CmpOp, Conv1dConfig, Conv2dConfig, Pool2dConfig, ReduceOp, UnaryOp,
};
pub use random::{
    Generator, default_generator_state, manual_seed, set_default_generator_state,
    with_default_generator,
};
pub use shape::{Shape, resolve_dim};
pub use tensor::Tensor;

pub use autograd::{
    BackwardCtx, BackwardFn, BackwardOptions, GradModeGuard, HookHandle, Parameter, Save,
    enable_grad, is_grad_enabled, no_grad, with_no_grad,
};

/// Half-precision float types, re-exported from the `half` crate.
pub use half::{bf16, f16};
