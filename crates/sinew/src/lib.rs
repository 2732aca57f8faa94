//! # Sinew
//!
//! A deep learning framework in Rust with the habits of PyTorch: tensors on the CPU or an NVIDIA
//! GPU, reverse-mode autograd with `backward()`, and data loaders. This facade re-exports the
//! layered crates:
//!
//! - [`tensor`] (`sinew-tensor`): tensors, dtypes, devices, CPU kernels, random numbers;
//! - [`autograd`] (`sinew-autograd`): `backward`, `no_grad`, gradient hooks, gradcheck (autograd
//!   is built into [`Tensor`]: `requires_grad_()`, `backward()`, `grad()`);
//! - [`data`] (`sinew-data`): datasets, readers, the data loader, augmentation;
//! - [`nn`] (`sinew-nn`): modules and layers, losses, initialisation, the model zoo and
//!   safetensors weights with PyTorch's names and layouts;
//! - [`optim`] (`sinew-optim`): optimizers, learning-rate schedules and gradient clipping;
//! - [`train`] (`sinew-train`): `Trainer` (`fit`, `evaluate`, `predict`), metrics, callbacks,
//!   checkpoints that resume bit-identically.
//!
//! ```
//! use sinew::prelude::*;
//! let w = Tensor::from_vec(vec![0.5f32, -1.0], [2, 1])?.requires_grad_();
//! let x = Tensor::ones([3, 2], DType::F32, &Device::cpu())?;
//! let loss = x.matmul(&w)?.square()?.mean_all()?;
//! loss.backward()?;
//! assert_eq!(w.grad().unwrap().dims(), &[2, 1]);
//! # Ok::<(), sinew::Error>(())
//! ```
//!
//! Feature flags: `cuda` turns on the GPU backend (see the `cuda` module when enabled).

pub use sinew_autograd as autograd;
pub use sinew_data as data;
pub use sinew_dist as dist;
pub use sinew_nn as nn;
pub use sinew_optim as optim;
pub use sinew_tensor as tensor;
pub use sinew_train as train;

pub use sinew_tensor::{
    DType, Device, Error, Generator, Parameter, Result, Shape, Tensor, autocast, no_grad,
    with_no_grad,
};

/// The names most programs need: `use sinew::prelude::*;`.
pub mod prelude {
    pub use sinew_tensor::{
        BackwardOptions, Conv1dConfig, Conv2dConfig, DType, Device, Error, Generator, PadMode,
        Parameter, Pool2dConfig, Result, Shape, Tensor, autocast, manual_seed, no_grad,
        with_no_grad,
    };

    // Modules: `nn::Linear`, `F::cross_entropy` as in PyTorch, plus the traits every model uses.
    pub use sinew_nn::functional as F;
    pub use sinew_nn::{
        self as nn, BatchNorm2d, Conv2d, Dropout, Flatten, Linear, MaxPool2d, Module, ModuleExt,
        ReLU, Sequential, Visit,
    };

    // Optimizers: `let mut opt = sgd(model.named_parameters(), SgdConfig::new(0.1).momentum(0.9));`
    pub use sinew_optim::{
        self as optim, AdamConfig, GradScaler, LrSchedule, Optimizer, SgdConfig, adam, adamw, sgd,
    };

    // Training: `Trainer::new(&model, opt, F::cross_entropy).metric(accuracy()).fit(...)`.
    pub use sinew_train::callbacks::{EarlyStopping, ModelCheckpoint};
    pub use sinew_train::metrics::accuracy;
    pub use sinew_train::{History, Precision, Trainer};

    // Data: datasets, readers, the loader and the common transforms. `DataError` converts into
    // `Error` with `?`, so a training program can use one `Result` throughout.
    pub use sinew_data::transforms::{
        CenterCrop, ColorJitter, Compose, Normalize, RandomAffine, RandomCrop,
        RandomHorizontalFlip, RandomResizedCrop, RandomRotation, Resize, ToTensor, Transform,
    };
    pub use sinew_data::{
        Batch, Cifar, CifarLabels, CsvDataset, CsvOptions, DataError, DataLoader, Dataset,
        DatasetExt, ImageFolder, LoaderConfig, Mnist, Sample, Split, random_split, train_val_split,
    };
}

/// The CUDA backend (feature `cuda`): `sinew::cuda::register()` makes `Device::cuda(n)` work.
#[cfg(feature = "cuda")]
pub mod cuda {
    pub use sinew_cuda::*;
}

// The user guide (docs/guide.md), one section per concept of the course. It is included here so
// that `cargo test -p sinew --doc` compiles and runs every code block in it.
#[doc = include_str!("../../../docs/guide.md")]
pub mod guide {}

// The README's Rust blocks, compiled (and run, except the `no_run` training program) by
// `cargo test -p sinew --doc`, so the README cannot drift from the API.
#[cfg(doctest)]
#[doc = include_str!("../../../README.md")]
pub struct ReadmeDoctests;
