//! The data loader: seeded shuffling, batching, parallel workers with prefetch, in-order delivery.
//!
//! Batch `b` of epoch `e` is a pure function of (dataset, transform, seed, `e`, `b`): its sample
//! positions come from the epoch's permutation and each sample's augmentation generator from
//! (seed, `e`, position). Workers claim batch numbers, build them (the samples of a batch in
//! parallel on the rayon pool), and a reorder buffer hands them out in order, so every worker
//! count yields the same batches in the same order. At most `num_workers * prefetch` batches are
//! in flight ahead of the consumer.
//! PyTorch equivalent: `torch.utils.data.DataLoader(ds, batch_size, shuffle, num_workers,
//! prefetch_factor, drop_last, generator, sampler)`.

use std::collections::BTreeMap;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;

use rayon::prelude::*;
use sinew_tensor::Device;

use crate::collate::{Batch, collate_on};
use crate::dataset::Dataset;
use crate::distributed::DistributedSampler;
use crate::error::{DataError, Result};
use crate::rng::{epoch_rng, permutation, sample_rng};
use crate::sample::Sample;
use crate::sampler::Sampler;
use crate::transforms::Transform;

/// Loader settings.
#[derive(Clone, Debug)]
pub struct LoaderConfig {
    /// Examples per batch.
    pub batch_size: usize,
    /// Whether each epoch visits the examples in a seeded random order (exclusive with
    /// [`LoaderConfig::sampler`]).
    pub shuffle: bool,
    /// Seed of the shuffle and of every augmentation.
    pub seed: u64,
    /// Whether to drop a last, smaller batch.
    pub drop_last: bool,
    /// Worker threads (0 builds batches on the caller's thread when asked for; at most
    /// [`MAX_WORKERS`]).
    pub num_workers: usize,
    /// Batches each worker may prepare ahead of the consumer (positive when there are workers).
    pub prefetch: usize,
    /// Device the workers copy each batch to before handing it over (`None`: stay on the CPU).
    ///
    /// The copy happens on the worker thread, off the training loop, and on the GPU beside the
    /// training step's kernels (sinew-cuda queues batch-sized uploads on its copy stream).
    /// Page-locked (pinned) staging is the backend's job: `sinew-cuda` uploads through pinned
    /// buffers; `sinew-tensor` has no API for collating straight into pinned host memory, so the
    /// batch is built in pageable memory.
    pub device: Option<Device>,
    /// Which indices each epoch visits, and how often (`None`: each example once, in order or
    /// shuffled). PyTorch: `DataLoader(ds, sampler=WeightedRandomSampler(w, n))`; see
    /// [`crate::sampler`].
    pub sampler: Option<Arc<dyn Sampler>>,
    /// This process's shard of every epoch in data-parallel training (`None`: the whole epoch).
    /// PyTorch: `DataLoader(ds, sampler=DistributedSampler(ds))`; here it shards what the
    /// epoch's order or [`LoaderConfig::sampler`] gives.
    pub shard: Option<DistributedSampler>,
}

/// The most worker threads a loader may start.
pub const MAX_WORKERS: usize = 1024;

impl LoaderConfig {
    /// Checks the settings: a positive batch size, at most [`MAX_WORKERS`] workers, a positive
    /// prefetch when there are workers, and `num_workers * prefetch` without overflow (the number
    /// of batches in flight), and not both `shuffle` and a `sampler`. PyTorch raises the same
    /// kinds of `ValueError`.
    pub fn validate(&self) -> Result<()> {
        let bad = |detail: String| Err(DataError::invalid("LoaderConfig", detail));
        if self.batch_size == 0 {
            return bad("batch_size must be positive, got 0".into());
        }
        if self.shuffle && self.sampler.is_some() {
            return bad("a sampler draws the epoch's order itself: set shuffle to false".into());
        }
        if self.num_workers > MAX_WORKERS {
            return bad(format!(
                "num_workers {} exceeds the limit of {MAX_WORKERS} threads",
                self.num_workers
            ));
        }
        if self.num_workers > 0 && self.prefetch == 0 {
            return bad(format!(
                "prefetch must be positive with {} workers, got 0",
                self.num_workers
            ));
        }
        if self.num_workers.checked_mul(self.prefetch).is_none() {
            return bad(format!(
                "num_workers {} x prefetch {} overflows usize",
                self.num_workers, self.prefetch
            ));
        }
        Ok(())
    }
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
            sampler: None,
            shard: None,
        }
    }
}

/// Batches of a dataset of [`Sample`]s, optionally transformed, shared with workers by `Arc`.
///
/// ```
/// use std::sync::Arc;
/// use sinew_data::{DataLoader, LoaderConfig, Sample, VecDataset};
///
/// let rows = (0..10).map(|i| Sample::features(vec![i as f32, 1.0], i % 2)).collect();
/// let config = LoaderConfig { batch_size: 4, ..Default::default() };
/// let loader = DataLoader::new(Arc::new(VecDataset::new(rows)), config)?;
/// assert_eq!(loader.num_batches(), 3); // 4 + 4 + 2 (the last batch is kept)
/// for batch in &loader {
///     // The next epoch, as PyTorch's `for x, y in loader` (`loader.epoch(e)` for a given one).
///     let batch = batch?;
///     assert_eq!(batch.inputs.dims()[1], 2); // [batch, features]
/// }
/// # Ok::<(), sinew_data::DataError>(())
/// ```
pub struct DataLoader<D> {
    dataset: Arc<D>,
    transform: Option<Arc<dyn Transform>>,
    config: LoaderConfig,
    /// Epochs started by `for batch in &loader` (the next such loop runs this epoch).
    passes: AtomicU64,
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
    shard: Option<DistributedSampler>,
}

impl<D: Dataset<Item = Sample>> EpochPlan<D> {
    /// Builds batch `b`: its samples in parallel on rayon's pool when `parallel` (the calling
    /// thread, with no workers), else on this thread. A loader worker builds its batch alone, as
    /// PyTorch's do: workers are the parallelism, and handing their samples to the shared pool
    /// would only add contention (2 workers were slower than the calling thread this way).
    fn build(&self, b: usize, parallel: bool) -> Result<Batch> {
        // `b < num_batches`, so `start < order.len()`; the end saturates for huge batch sizes.
        let start = b * self.batch_size;
        let end = start.saturating_add(self.batch_size).min(self.order.len());
        let one = |pos: usize| {
            let sample = self.dataset.get(self.order[pos])?;
            match &self.transform {
                Some(t) => {
                    // Under a shard, the position in the whole epoch: ranks never share a
                    // random stream.
                    let stream = self.shard.map_or(pos as u64, |s| s.global_position(pos));
                    t.apply(sample, &mut sample_rng(self.seed, self.epoch, stream))
                }
                None => Ok(sample),
            }
        };
        let samples: Vec<Sample> = if parallel {
            (start..end)
                .into_par_iter()
                .map(one)
                .collect::<Result<_>>()?
        } else {
            (start..end).map(one).collect::<Result<_>>()?
        };
        let batch = collate_on(&samples, self.order[start..end].to_vec(), parallel)?;
        match &self.device {
            Some(device) => batch.to_device(device),
            None => Ok(batch),
        }
    }

    /// Builds batch `b`, turning a panic into an error that keeps the panic's message.
    fn build_caught(&self, b: usize, parallel: bool) -> Result<Batch> {
        catch_unwind(AssertUnwindSafe(|| self.build(b, parallel))).unwrap_or_else(|payload| {
            Err(DataError::invalid(
                "DataLoader",
                format!(
                    "building batch {b} panicked: {}",
                    panic_message(payload.as_ref())
                ),
            ))
        })
    }
}

/// The message of a panic payload (`&str` or `String`, as `panic!` makes them).
fn panic_message(payload: &(dyn std::any::Any + Send)) -> &str {
    if let Some(s) = payload.downcast_ref::<&str>() {
        s
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s
    } else {
        "(non-string panic payload)"
    }
}

impl<D: Dataset<Item = Sample> + 'static> DataLoader<D> {
    /// A loader over `dataset`; the settings are checked with [`LoaderConfig::validate`] and
    /// the sampler against the dataset's length ([`Sampler::check`]).
    pub fn new(dataset: Arc<D>, config: LoaderConfig) -> Result<Self> {
        config.validate()?;
        let n = dataset.len();
        if let Some(sampler) = &config.sampler {
            sampler.check(n)?;
        }
        // Each epoch holds its visiting order: one index per drawn example.
        let drawn = config.sampler.as_ref().map_or(n, |s| s.num_samples(n));
        crate::alloc::check_buffer::<usize>("DataLoader", drawn)?;
        Ok(DataLoader {
            dataset,
            transform: None,
            config,
            passes: AtomicU64::new(0),
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

    /// Examples this process reads per epoch (its shard under a [`DistributedSampler`]).
    pub fn num_samples(&self) -> usize {
        let n = self.dataset.len();
        let drawn = self.config.sampler.as_ref().map_or(n, |s| s.num_samples(n));
        match &self.config.shard {
            Some(shard) => shard.num_samples(drawn),
            None => drawn,
        }
    }

    /// Batches per epoch.
    pub fn num_batches(&self) -> usize {
        let n = self.num_samples();
        if self.config.drop_last {
            n / self.config.batch_size
        } else {
            n.div_ceil(self.config.batch_size)
        }
    }

    /// Dataset indices in the order epoch `epoch` visits them (this process's shard of it under
    /// a [`DistributedSampler`]).
    pub fn order(&self, epoch: u64) -> Vec<usize> {
        let n = self.dataset.len();
        let (seed, shuffle) = (self.config.seed, self.config.shuffle);
        let order = match &self.config.sampler {
            Some(sampler) => sampler.indices(n, &mut epoch_rng(seed, epoch)),
            None if shuffle => permutation(n, seed, epoch),
            None => (0..n).collect(),
        };
        match &self.config.shard {
            Some(shard) => shard.shard(&order),
            None => order,
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
            shard: self.config.shard,
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
        self.plan(epoch).build(b, true)
    }

    /// The batches of `epoch`, in order; workers start at once and stop when this is dropped.
    ///
    /// If the system refuses to start a worker thread, the epoch runs with those it started (or
    /// on the calling thread when none started).
    pub fn epoch(&self, epoch: u64) -> EpochIter<D> {
        let plan = self.plan(epoch);
        let workers = self.config.num_workers.min(plan.num_batches);
        // Checked in `LoaderConfig::validate`; saturating all the same, so it can never wrap.
        let capacity = workers.saturating_mul(self.config.prefetch).max(1);
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                next_claim: 0,
                next_yield: 0,
                ready: BTreeMap::new(),
                stop: false,
                live: 0,
            }),
            wake: Condvar::new(),
            capacity,
        });
        let mut handles = Vec::with_capacity(workers);
        for k in 0..workers {
            let (plan, shared2) = (plan.clone(), shared.clone());
            shared.lock().live += 1;
            let spawned = std::thread::Builder::new()
                .name(format!("sinew-loader-{k}"))
                .spawn(move || worker(&plan, &shared2));
            match spawned {
                Ok(handle) => handles.push(handle),
                Err(_) => {
                    shared.lock().live -= 1;
                    break;
                }
            }
        }
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
    /// Worker threads that have not exited.
    live: usize,
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

/// Counts a worker out when it exits, even by unwinding, and wakes the consumer.
struct LiveGuard<'a>(&'a Shared);

impl Drop for LiveGuard<'_> {
    fn drop(&mut self) {
        self.0.lock().live -= 1;
        self.0.wake.notify_all();
    }
}

/// A worker: claims the next batch number while the prefetch window allows, builds it, posts it.
fn worker<D: Dataset<Item = Sample>>(plan: &EpochPlan<D>, shared: &Shared) {
    let _live = LiveGuard(shared);
    loop {
        let b = {
            let mut st = shared.lock();
            // `next_yield <= next_claim` always: the consumer only passes batches it received.
            while !st.stop
                && st.next_claim < plan.num_batches
                && st.next_claim - st.next_yield >= shared.capacity
            {
                st = shared.wait(st);
            }
            if st.stop || st.next_claim >= plan.num_batches {
                return;
            }
            st.next_claim += 1;
            st.next_claim - 1
        };
        let batch = plan.build_caught(b, false);
        shared.lock().ready.insert(b, batch);
        shared.wake.notify_all();
    }
}

/// `for batch in &loader`, as PyTorch's `for x, y in loader`: each loop runs the loader's next
/// epoch (0, then 1, ...), so a shuffled loader visits a new order every pass, the same orders
/// on every run with the same seed. [`DataLoader::epoch`] runs a given epoch (resuming a run).
impl<D: Dataset<Item = Sample> + 'static> IntoIterator for &DataLoader<D> {
    type Item = Result<Batch>;
    type IntoIter = EpochIter<D>;

    fn into_iter(self) -> EpochIter<D> {
        self.epoch(self.passes.fetch_add(1, Ordering::Relaxed))
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
            return Some(self.plan.build_caught(b, true));
        }
        let mut st = self.shared.lock();
        let batch = loop {
            if let Some(batch) = st.ready.remove(&b) {
                break batch;
            }
            if st.live == 0 {
                // Every worker is gone (they only exit early by dying): never wait forever.
                break Err(DataError::invalid(
                    "DataLoader",
                    format!("all workers exited before batch {b} was built"),
                ));
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
