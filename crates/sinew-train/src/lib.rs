//! # sinew-train
//!
//! The training loop: [`Trainer`] (`fit`, `evaluate`, `predict`) with [`metrics`],
//! [`callbacks`] (early stopping, checkpoints, CSV logs, learning-rate schedules), progress
//! output, [`TrainingCheckpoint`]s that resume bit-identically, and k-fold
//! [`cross_validate`].
//!
//! ```no_run
//! use sinew_nn::{ModuleExt, functional as F, zoo::lenet5};
//! use sinew_optim::{SgdConfig, sgd};
//! use sinew_train::{Trainer, callbacks::EarlyStopping, metrics::accuracy};
//! # fn run(train: &sinew_data::DataLoader<sinew_data::Mnist>, test: &sinew_data::DataLoader<sinew_data::Mnist>) -> sinew_tensor::Result<()> {
//! let model = lenet5(10)?;
//! let opt = sgd(model.named_parameters(), SgdConfig::new(0.05).momentum(0.9));
//! let mut trainer = Trainer::new(&model, opt, F::cross_entropy)
//!     .metric(accuracy())
//!     .callback(EarlyStopping::new("val_loss", 2).restore_best_weights(true));
//! let history = trainer.fit(train, Some(test), 10)?;
//! println!("best val accuracy {:?}", history.get("val_accuracy"));
//! # Ok(()) }
//! ```

pub mod callbacks;
mod checkpoint;
mod cross_validation;
mod device_sum;
mod distributed;
mod history;
pub mod metrics;
pub mod plot;
mod precision;
mod progress;
mod trainer;
mod update_bn;

pub use checkpoint::{CheckpointExtras, TrainingCheckpoint};
pub use cross_validation::{CvReport, FoldLoaders, cross_validate};
pub use distributed::Distributed;
pub use history::{History, Logs};
pub use precision::Precision;
pub use progress::Verbosity;
pub use trainer::{LossFn, Trainer, Validation};
pub use update_bn::update_bn;
