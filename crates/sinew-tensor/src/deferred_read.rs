//! [`DeferredScalar`]: the value of a one-element tensor that the device computes, fetched by
//! the host the next time it waits for that device anyway (any download, such as `loss.item()`,
//! or a synchronize) instead of costing a wait of its own.
//!
//! The loss scaler's inf/NaN flag is the use: it is computed on the GPU every step, but the host
//! only needs it at the next step (to pick the scale), by which time `loss.item()` has waited for
//! the device; read in that same wait, it costs no synchronisation (issue 14: `loss.item()` is
//! the only sync in a training step). A backend that queues work asynchronously implements
//! [`DeferredOps::defer_read`](crate::DeferredOps::defer_read); on one that does not (the CPU, whose
//! reads cost nothing) the value is read when the [`DeferredScalar`] is made.

use std::sync::{Arc, Mutex};

use crate::{Result, Tensor};

/// Where a backend delivers a deferred read: the value once read, and the tensor read, held
/// until then (its storage must outlive the queued copy).
#[derive(Debug)]
pub struct ReadTarget {
    tensor: Tensor,
    value: Mutex<Option<f64>>,
}

impl ReadTarget {
    /// Stores the value read (a backend calls it once its copy has landed).
    pub fn deliver(&self, value: f64) {
        *self.value.lock().unwrap_or_else(|e| e.into_inner()) = Some(value);
    }

    /// The value, if delivered.
    fn value(&self) -> Option<f64> {
        *self.value.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A one-element tensor's value, read at its device's next wait (see the module docs). Clones
/// share the value.
///
/// ```
/// use sinew_tensor::{DType, DeferredScalar, Device, Tensor};
/// let flag = Tensor::full([1], 1.0, DType::F32, &Device::cpu())?;
/// let read = DeferredScalar::new(&flag)?;
/// assert_eq!(read.try_get(), Some(1.0)); // the CPU reads at once
/// assert_eq!(read.get()?, 1.0);
/// # Ok::<(), sinew_tensor::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct DeferredScalar {
    target: Arc<ReadTarget>,
}

impl DeferredScalar {
    /// Queues the read of `tensor`'s value as it will be once the work queued so far has run
    /// (later writes to `tensor` may or may not be seen: do not write it again before reading).
    /// An error unless `tensor` has exactly one element.
    pub fn new(tensor: &Tensor) -> Result<Self> {
        tensor.check_one_element("DeferredScalar::new")?;
        let target = Arc::new(ReadTarget {
            tensor: tensor.clone(),
            value: Mutex::new(None),
        });
        let start = tensor.layout().offset();
        let backend = tensor.device().backend();
        let queued =
            tensor.with_storage(|storage, _| backend.defer_read(storage, start, target.clone()))?;
        if !queued {
            target.deliver(tensor.item()?);
        }
        Ok(DeferredScalar { target })
    }

    /// The value if the host has waited for the device since (never waits).
    pub fn try_get(&self) -> Option<f64> {
        self.target.value()
    }

    /// The value, waiting for the device (one download) if no wait has fetched it yet.
    pub fn get(&self) -> Result<f64> {
        if let Some(v) = self.target.value() {
            return Ok(v);
        }
        let v = self.target.tensor.item()?;
        self.target.deliver(v);
        Ok(v)
    }

    /// The tensor read (a kernel may take it: the optimizer's skip flag).
    pub fn tensor(&self) -> &Tensor {
        &self.target.tensor
    }
}
