//! The gradient reducer behind [`DistributedDataParallel`](crate::DistributedDataParallel):
//! parameters grouped into buckets in reverse registration order (the order backward produces
//! their gradients), each bucket all-reduced (averaged) as soon as its last gradient arrives,
//! in bucket order, while backward goes on; the averaged gradients are written back when the
//! last bucket is done.
//!
//! A bucket is a flat tensor on its parameters' device (PyTorch's bucket views): gradients are
//! copied into it there, the backend reduces it where it lives (NCCL in GPU memory, MPI in host
//! memory) and each parameter's averaged gradient is a view of it, so a GPU gradient never
//! travels through the host.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use sinew_tensor::{DType, Device, Parameter, Result, Tensor, with_no_grad};

use crate::backend::ReduceOp;
use crate::buffer::CommBuffer;
use crate::group::{ProcessGroup, Work};

/// Cap of the first bucket (the last layers' gradients), PyTorch's
/// `_DEFAULT_FIRST_BUCKET_BYTES`: 1 MiB.
pub(crate) const FIRST_BUCKET_BYTES: usize = 1 << 20;

/// One parameter's place in its bucket.
pub(crate) struct Slot {
    pub(crate) name: String,
    pub(crate) param: Parameter,
    bucket: usize,
    offset: usize,
    dims: Vec<usize>,
    device: Device,
}

impl Slot {
    /// This parameter's part of its bucket, shaped like the parameter (a view: it shares the
    /// bucket's storage).
    fn view_of(&self, bucket: &Tensor) -> Result<Tensor> {
        let numel = self.dims.iter().product::<usize>();
        bucket
            .narrow(0, self.offset, numel)?
            .reshape(self.dims.as_slice())
    }
}

/// Parameters reduced together, by index into the slots.
pub(crate) struct Bucket {
    pub(crate) slots: Vec<usize>,
    dtype: DType,
    len: usize,
}

/// What happened when, in one step (for the overlap timeline).
#[derive(Clone, Debug, PartialEq)]
pub enum StepEvent {
    /// Forward started (the step's time origin).
    Forward,
    /// Backward produced this parameter's gradient.
    GradReady(String),
    /// A bucket's all-reduce was handed to the communication thread.
    BucketLaunched {
        /// Bucket number (0 holds the last-registered parameters).
        bucket: usize,
        /// Its size in bytes.
        bytes: usize,
    },
    /// The communication thread finished a bucket's all-reduce.
    BucketReduced(usize),
    /// Averaged gradients are written back; the optimizer may step.
    Synced,
}

#[derive(Default)]
struct State {
    ready: Vec<bool>,
    pending: Vec<usize>,
    buffers: Vec<Option<Tensor>>,
    next_launch: usize,
    in_flight: Vec<(usize, Tensor, Work)>,
    events: Vec<(Instant, StepEvent)>,
    last_events: Vec<(Instant, StepEvent)>,
}

pub(crate) struct Reducer {
    group: ProcessGroup,
    pub(crate) slots: Vec<Slot>,
    pub(crate) buckets: Vec<Bucket>,
    state: Mutex<State>,
    pub(crate) no_sync: AtomicBool,
}

impl Reducer {
    /// Buckets of at most `cap_bytes`, the first of at most [`FIRST_BUCKET_BYTES`] so that
    /// communication starts early even in small models (a larger parameter gets its own
    /// bucket), one dtype and device
    /// each, filled in reverse registration order.
    pub(crate) fn new(
        group: ProcessGroup,
        params: Vec<(String, Parameter)>,
        cap_bytes: usize,
    ) -> Result<Reducer> {
        let mut slots: Vec<Slot> = Vec::with_capacity(params.len());
        let mut buckets: Vec<Bucket> = Vec::new();
        let mut bucket_bytes = 0usize;
        for (name, param) in params.into_iter().rev() {
            let value = param.value();
            let dtype = value.dtype();
            CommBuffer::zeros(dtype, 0).map_err(|_| {
                sinew_tensor::Error::invalid(
                    "DistributedDataParallel",
                    format!("parameter {name} is {dtype:?}: gradients are reduced in float dtypes"),
                )
            })?;
            let numel = value.dims().iter().product::<usize>();
            let bytes = numel.saturating_mul(dtype.size_in_bytes());
            let fits = buckets.last().is_some_and(|b| {
                b.dtype == dtype
                    && slots[b.slots[0]].device == *value.device()
                    && bucket_bytes.saturating_add(bytes)
                        <= if buckets.len() == 1 {
                            cap_bytes.min(FIRST_BUCKET_BYTES)
                        } else {
                            cap_bytes
                        }
            });
            if !fits {
                buckets.push(Bucket {
                    slots: Vec::new(),
                    dtype,
                    len: 0,
                });
                bucket_bytes = 0;
            }
            let b = buckets.len() - 1;
            let bucket = &mut buckets[b];
            slots.push(Slot {
                name,
                param,
                bucket: b,
                offset: bucket.len,
                dims: value.dims().to_vec(),
                device: value.device().clone(),
            });
            bucket.slots.push(slots.len() - 1);
            bucket.len = bucket.len.checked_add(numel).ok_or_else(|| {
                sinew_tensor::Error::invalid("DistributedDataParallel", "bucket size overflows")
            })?;
            bucket_bytes = bucket_bytes.saturating_add(bytes);
        }
        let reducer = Reducer {
            group,
            slots,
            buckets,
            state: Mutex::new(State::default()),
            no_sync: AtomicBool::new(false),
        };
        reducer.reset(&mut reducer.lock());
        Ok(reducer)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn reset(&self, st: &mut State) {
        st.ready = vec![false; self.slots.len()];
        st.pending = self.buckets.iter().map(|b| b.slots.len()).collect();
        st.buffers = self.buckets.iter().map(|_| None).collect();
        st.next_launch = 0;
        st.in_flight.clear();
    }

    /// Called by each forward: starts a step. An earlier step left half-synchronised (some
    /// gradients arrived, some never did) is an error naming the parameters that got none.
    pub(crate) fn prepare_for_forward(&self) -> Result<()> {
        let mut st = self.lock();
        let arrived = st.ready.iter().filter(|r| **r).count();
        if arrived > 0 && arrived < self.slots.len() {
            let missing: Vec<&str> = self
                .slots
                .iter()
                .zip(&st.ready)
                .filter(|(_, r)| !**r)
                .map(|(s, _)| s.name.as_str())
                .take(8)
                .collect();
            let names = missing.join(", ");
            self.reset(&mut st);
            return Err(sinew_tensor::Error::invalid(
                "DistributedDataParallel",
                format!(
                    "the previous backward produced no gradient for {names}: call \
                     finish_gradient_sync() after backward when some parameters are unused"
                ),
            ));
        }
        st.events.clear();
        st.events.push((Instant::now(), StepEvent::Forward));
        Ok(())
    }

    /// The gradient hook of slot `i`.
    pub(crate) fn grad_ready(&self, i: usize, grad: &Tensor) -> Result<()> {
        if self.no_sync.load(Ordering::Relaxed) {
            return Ok(());
        }
        let mut st = self.lock();
        if st.ready[i] {
            return Err(sinew_tensor::Error::invalid(
                "DistributedDataParallel",
                format!(
                    "parameter {} received a second gradient in one step (a second backward \
                     through the same graph): use no_sync() for all but the last",
                    self.slots[i].name
                ),
            ));
        }
        self.add(&mut st, i, Some(grad))?;
        st.events.push((
            Instant::now(),
            StepEvent::GradReady(self.slots[i].name.clone()),
        ));
        self.launch_ready(&mut st)?;
        if st.next_launch == self.buckets.len() {
            self.write_back(&mut st)?;
        }
        Ok(())
    }

    /// Puts slot `i`'s gradient (zeros when `None`) into its bucket and marks it ready.
    fn add(&self, st: &mut State, i: usize, grad: Option<&Tensor>) -> Result<()> {
        let slot = &self.slots[i];
        let bucket = &self.buckets[slot.bucket];
        if st.buffers[slot.bucket].is_none() {
            st.buffers[slot.bucket] =
                Some(Tensor::zeros([bucket.len], bucket.dtype, &slot.device)?);
        }
        if let (Some(buffer), Some(grad)) = (st.buffers[slot.bucket].as_ref(), grad) {
            with_no_grad(|| slot.view_of(buffer)?.copy_(grad))?;
        }
        st.ready[i] = true;
        st.pending[slot.bucket] -= 1;
        Ok(())
    }

    /// Launches, in order, every bucket whose gradients have all arrived.
    fn launch_ready(&self, st: &mut State) -> Result<()> {
        while st.next_launch < self.buckets.len() && st.pending[st.next_launch] == 0 {
            let b = st.next_launch;
            let buffer = st.buffers[b].take().ok_or_else(|| {
                sinew_tensor::Error::invalid("DistributedDataParallel", "bucket without buffer")
            })?;
            let bytes = self.buckets[b].len * self.buckets[b].dtype.size_in_bytes();
            let launched = Instant::now();
            let work = self
                .group
                .all_reduce_tensor_async(&buffer, ReduceOp::Mean)?;
            st.in_flight.push((b, buffer, work));
            st.events
                .push((launched, StepEvent::BucketLaunched { bucket: b, bytes }));
            st.next_launch += 1;
        }
        Ok(())
    }

    /// Waits for every bucket and stores the averaged gradients.
    fn write_back(&self, st: &mut State) -> Result<()> {
        for (b, buffer, work) in std::mem::take(&mut st.in_flight) {
            let (_, finished) = work.wait_timed()?;
            st.events.push((finished, StepEvent::BucketReduced(b)));
            for &i in &self.buckets[b].slots {
                let slot = &self.slots[i];
                let grad = with_no_grad(|| slot.view_of(&buffer))?;
                slot.param.value().set_grad(Some(grad))?;
            }
        }
        st.events.push((Instant::now(), StepEvent::Synced));
        st.last_events = std::mem::take(&mut st.events);
        self.reset(st);
        Ok(())
    }

    /// Completes a step in which some parameters got no gradient on this rank: they count as
    /// zeros. Does nothing when the step is already synchronised or nothing arrived yet.
    pub(crate) fn finish(&self) -> Result<()> {
        let mut st = self.lock();
        let arrived = st.ready.iter().filter(|r| **r).count();
        if arrived == 0 && st.in_flight.is_empty() {
            return Ok(());
        }
        for i in 0..self.slots.len() {
            if !st.ready[i] {
                self.add(&mut st, i, None)?;
            }
        }
        self.launch_ready(&mut st)?;
        self.write_back(&mut st)
    }

    /// The events of the last synchronised step, in milliseconds from its forward.
    pub(crate) fn timeline(&self) -> Vec<(f64, StepEvent)> {
        let st = self.lock();
        let Some(&(origin, _)) = st.last_events.first() else {
            return Vec::new();
        };
        let mut events: Vec<(f64, StepEvent)> = st
            .last_events
            .iter()
            .map(|(t, e)| (t.duration_since(origin).as_secs_f64() * 1e3, e.clone()))
            .collect();
        events.sort_by(|a, b| a.0.total_cmp(&b.0));
        events
    }

    pub(crate) fn group(&self) -> &ProcessGroup {
        &self.group
    }
}
