//! The data loader: seeded shuffling, batching, parallel workers with prefetch, in-order delivery.
//!
//! Batch `b` of epoch `e` is a pure function of (dataset, transform, seed, `e`, `b`): its sample
//! positions come from the epoch's permutation and each sample's augmentation generator from
//! (seed, `e`, position). Workers claim batch numbers, build them (the samples of a batch in
//! parallel on the rayon pool), and a reorder buffer hands them out in order, so every worker
//! count yields the same batches in the same order. At most `num_workers * prefetch` batches are
//! in flight ahead of the consumer.
//! PyTorch equivalent: `torch.utils.data.DataLoader(ds, batch_size, shuffle, num_workers,
//! prefetch_factor, drop_last, generator)`.

use std::collections::BTreeMap;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;

use rayon::prelude::*;
use sinew_tensor::Device;

use crate::collate::{Batch, collate};
use crate::dataset::Dataset;
use crate::error::{DataError, Result};
use crate::rng::{permutation, sample_rng};
use crate::sample::Sample;
use crate::transforms::Transform;

/// Loader settings.
#[derive(Clone, Debug)]
pub struct LoaderConfig {
    /// Examples per batch.
    pub batch_size: usize,
    /// Whether each epoch visits the examples in a seeded random order.
    pub shuffle: bool,
    /// Seed of the shuffle and of every augmentation.
    pub seed: u64,
    /// Whether to drop a last, smaller batch.
    pub drop_last: bool,
    /// Worker threads (0 builds batches on the caller's thread when asked for).
    pub num_workers: usize,
    /// Batches each worker may prepare ahead of the consumer.
    pub prefetch: usize,
    /// Device the workers copy each batch to before handing it over (`None`: stay on the CPU).
    ///
    /// The copy happens on the worker thread, off the training loop. Page-locked (pinned) staging
    /// is the backend's job: `sinew-cuda` uploads through pinned buffers; `sinew-tensor` has no
    /// API for collating straight into pinned host memory, so the batch is built in pageable memory.
    pub device: Option<Device>,
}

impl Default for LoaderConfig {
    fn default() -> Self {
        LoaderConfig {
            batch_size: 64,
            shuffle: false,
            seed: 0,
            drop_last: false,
            num_workers: 2,
            prefetch: 2,
            device: None,
        }
    }
}

/// Batches of a dataset of [`Sample`]s, optionally transformed, shared with workers by `Arc`.
pub struct DataLoader<D> {
    dataset: Arc<D>,
    transform: Option<Arc<dyn Transform>>,
    config: LoaderConfig,
}

/// What workers need to build any batch of one epoch.
struct EpochPlan<D> {
    dataset: Arc<D>,
    transform: Option<Arc<dyn Transform>>,
    order: Vec<usize>,
    batch_size: usize,
    num_batches: usize,
    seed: u64,
    epoch: u64,
    device: Option<Device>,
}

impl<D: Dataset<Item = Sample>> EpochPlan<D> {
    /// Builds batch `b`.
    fn build(&self, b: usize) -> Result<Batch> {
        let start = b * self.batch_size;
        let end = (start + self.batch_size).min(self.order.len());
        let samples: Vec<Sample> = (start..end)
            .into_par_iter()
            .map(|pos| {
                let sample = self.dataset.get(self.order[pos])?;
                match &self.transform {
                    Some(t) => t.apply(sample, &mut sample_rng(self.seed, self.epoch, pos as u64)),
                    None => Ok(sample),
                }
            })
            .collect::<Result<_>>()?;
        let batch = collate(&samples, self.order[start..end].to_vec())?;
        match &self.device {
            Some(device) => batch.to_device(device),
            None => Ok(batch),
        }
    }

    /// Builds batch `b`, turning a panic into an error.
    fn build_caught(&self, b: usize) -> Result<Batch> {
        catch_unwind(AssertUnwindSafe(|| self.build(b))).unwrap_or_else(|_| {
            Err(DataError::invalid(
                "DataLoader",
                format!("building batch {b} panicked"),
            ))
        })
    }
}

impl<D: Dataset<Item = Sample> + 'static> DataLoader<D> {
    /// A loader over `dataset` (batch size must be positive).
    pub fn new(dataset: Arc<D>, config: LoaderConfig) -> Result<Self> {
        if config.batch_size == 0 {
            return Err(DataError::invalid(
                "DataLoader",
                "batch_size must be positive",
            ));
        }
        Ok(DataLoader {
            dataset,
            transform: None,
            config,
        })
    }

    /// Applies `transform` to every sample (with the loader's per-sample generators).
    pub fn with_transform(mut self, transform: impl Transform + 'static) -> Self {
        self.transform = Some(Arc::new(transform));
        self
    }

    /// The settings.
    pub fn config(&self) -> &LoaderConfig {
        &self.config
    }

    /// The dataset.
    pub fn dataset(&self) -> &Arc<D> {
        &self.dataset
    }

    /// Batches per epoch.
    pub fn num_batches(&self) -> usize {
        let n = self.dataset.len();
        if self.config.drop_last {
            n / self.config.batch_size
        } else {
            n.div_ceil(self.config.batch_size)
        }
    }

    /// Dataset indices in the order epoch `epoch` visits them.
    pub fn order(&self, epoch: u64) -> Vec<usize> {
        let n = self.dataset.len();
        if self.config.shuffle {
            permutation(n, self.config.seed, epoch)
        } else {
            (0..n).collect()
        }
    }

    fn plan(&self, epoch: u64) -> Arc<EpochPlan<D>> {
        Arc::new(EpochPlan {
            dataset: self.dataset.clone(),
            transform: self.transform.clone(),
            order: self.order(epoch),
            batch_size: self.config.batch_size,
            num_batches: self.num_batches(),
            seed: self.config.seed,
            epoch,
            device: self.config.device.clone(),
        })
    }

    /// Builds batch `b` of `epoch` on the calling thread (what a worker would produce).
    pub fn batch(&self, epoch: u64, b: usize) -> Result<Batch> {
        if b >= self.num_batches() {
            return Err(DataError::IndexOutOfRange {
                index: b,
                len: self.num_batches(),
            });
        }
        self.plan(epoch).build(b)
    }

    /// The batches of `epoch`, in order; workers start at once and stop when this is dropped.
    pub fn epoch(&self, epoch: u64) -> EpochIter<D> {
        let plan = self.plan(epoch);
        let workers = self.config.num_workers.min(plan.num_batches);
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                next_claim: 0,
                next_yield: 0,
                ready: BTreeMap::new(),
                stop: false,
            }),
            wake: Condvar::new(),
            capacity: (workers * self.config.prefetch.max(1)).max(1),
        });
        let handles = (0..workers)
            .map(|_| {
                let (plan, shared) = (plan.clone(), shared.clone());
                std::thread::spawn(move || worker(&plan, &shared))
            })
            .collect();
        EpochIter {
            plan,
            shared,
            handles,
            next: 0,
        }
    }
}

/// The reorder buffer and the claim counter, shared by workers and the consumer.
struct State {
    next_claim: usize,
    next_yield: usize,
    ready: BTreeMap<usize, Result<Batch>>,
    stop: bool,
}

struct Shared {
    state: Mutex<State>,
    wake: Condvar,
    capacity: usize,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn wait<'a>(&self, guard: MutexGuard<'a, State>) -> MutexGuard<'a, State> {
        self.wake.wait(guard).unwrap_or_else(|e| e.into_inner())
    }
}

/// A worker: claims the next batch number while the prefetch window allows, builds it, posts it.
fn worker<D: Dataset<Item = Sample>>(plan: &EpochPlan<D>, shared: &Shared) {
    loop {
        let b = {
            let mut st = shared.lock();
            while !st.stop
                && st.next_claim < plan.num_batches
                && st.next_claim >= st.next_yield + shared.capacity
            {
                st = shared.wait(st);
            }
            if st.stop || st.next_claim >= plan.num_batches {
                return;
            }
            st.next_claim += 1;
            st.next_claim - 1
        };
        let batch = plan.build_caught(b);
        shared.lock().ready.insert(b, batch);
        shared.wake.notify_all();
    }
}

/// Iterator over one epoch's batches, in order.
pub struct EpochIter<D> {
    plan: Arc<EpochPlan<D>>,
    shared: Arc<Shared>,
    handles: Vec<JoinHandle<()>>,
    next: usize,
}

impl<D: Dataset<Item = Sample>> Iterator for EpochIter<D> {
    type Item = Result<Batch>;

    fn next(&mut self) -> Option<Result<Batch>> {
        if self.next >= self.plan.num_batches {
            return None;
        }
        let b = self.next;
        self.next += 1;
        if self.handles.is_empty() {
            return Some(self.plan.build_caught(b));
        }
        let mut st = self.shared.lock();
        let batch = loop {
            if let Some(batch) = st.ready.remove(&b) {
                break batch;
            }
            st = self.shared.wait(st);
        };
        st.next_yield = b + 1;
        drop(st);
        self.shared.wake.notify_all();
        Some(batch)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = self.plan.num_batches - self.next;
        (left, Some(left))
    }
}

impl<D: Dataset<Item = Sample>> ExactSizeIterator for EpochIter<D> {}

impl<D> Drop for EpochIter<D> {
    fn drop(&mut self) {
        self.shared.lock().stop = true;
        self.shared.wake.notify_all();
        for handle in self.handles.drain(..) {
            let _ = handle.join();
        }
    }
}
