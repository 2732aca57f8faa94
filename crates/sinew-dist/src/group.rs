//! [`ProcessGroup`]: rank, world size and the collectives, run in order on one communication
//! thread so that a collective can proceed while the caller computes (gradient buckets are
//! reduced while backward is still running), with a timeout on every wait.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use sinew_tensor::{Result, Tensor, with_no_grad};

use crate::backend::{Backend, ReduceOp};
use crate::buffer::CommBuffer;
use crate::error::DistError;

/// Default time a collective may take before the waiting rank gives up (PyTorch's default).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(1800);

enum Collective {
    Barrier,
    Broadcast(usize),
    AllReduce(ReduceOp),
    AllGather,
    /// Reduces the (contiguous, detached) tensor where it lives, in place.
    AllReduceTensor(ReduceOp, Tensor),
    /// Broadcasts into the (contiguous, detached) tensor where it lives, in place.
    BroadcastTensor(usize, Tensor),
}

struct Job {
    collective: Collective,
    buffer: CommBuffer,
    reply: Sender<Result<Done>>,
}

/// A finished collective: its buffers and when the communication thread finished it.
struct Done {
    buffers: Vec<CommBuffer>,
    finished: Instant,
}

struct Inner {
    rank: usize,
    world_size: usize,
    backend: &'static str,
    timeout: Duration,
    jobs: Mutex<Option<Sender<Job>>>,
    thread: Mutex<Option<JoinHandle<()>>>,
    seq: AtomicU64,
    failure: Mutex<Option<String>>,
}

/// The processes of one job and the collectives between them (PyTorch's
/// `torch.distributed` default group). Cheap to clone; the last clone shuts the backend down.
#[derive(Clone)]
pub struct ProcessGroup {
    inner: Arc<Inner>,
}

/// A collective in flight ([`ProcessGroup::all_reduce_async`]); [`wait`](Work::wait) for it.
#[must_use = "a collective's result is only available through wait()"]
pub struct Work {
    reply: Receiver<Result<Done>>,
    op: &'static str,
    seq: u64,
    group: ProcessGroup,
}

impl ProcessGroup {
    /// Starts the communication thread, creates the backend on it with `create`, and returns
    /// once it has joined the job. Collectives wait at most `timeout`.
    pub fn new<F>(create: F, timeout: Duration) -> Result<ProcessGroup>
    where
        F: FnOnce() -> Result<Box<dyn Backend>> + Send + 'static,
    {
        let (job_tx, job_rx) = mpsc::channel::<Job>();
        let (ready_tx, ready_rx) = mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("sinew-dist-comm".into())
            .spawn(move || {
                let mut backend = match create() {
                    Ok(b) => b,
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                        return;
                    }
                };
                let _ = ready_tx.send(Ok((backend.rank(), backend.world_size(), backend.name())));
                serve(backend.as_mut(), &job_rx);
            })
            .map_err(|e| DistError::Backend {
                backend: "process group",
                msg: format!("cannot start the communication thread: {e}"),
            })?;
        let (rank, world_size, backend) = ready_rx.recv().map_err(|_| DistError::Backend {
            backend: "process group",
            msg: "the communication thread ended while starting the backend".into(),
        })??;
        Ok(ProcessGroup {
            inner: Arc::new(Inner {
                rank,
                world_size,
                backend,
                timeout,
                jobs: Mutex::new(Some(job_tx)),
                thread: Mutex::new(Some(thread)),
                seq: AtomicU64::new(0),
                failure: Mutex::new(None),
            }),
        })
    }

    /// The world of one process ([`SingleProcess`](crate::SingleProcess)).
    pub fn single() -> Result<ProcessGroup> {
        ProcessGroup::new(
            || Ok(Box::new(crate::SingleProcess) as Box<dyn Backend>),
            DEFAULT_TIMEOUT,
        )
    }

    /// This process's rank, `0..world_size()`.
    pub fn rank(&self) -> usize {
        self.inner.rank
    }

    /// Number of processes.
    pub fn world_size(&self) -> usize {
        self.inner.world_size
    }

    /// Whether this is rank 0, the one that prints, saves checkpoints and plots.
    pub fn is_main(&self) -> bool {
        self.inner.rank == 0
    }

    /// The backend's name (`mpi`, `single`).
    pub fn backend(&self) -> &'static str {
        self.inner.backend
    }

    /// How long a collective may take.
    pub fn timeout(&self) -> Duration {
        self.inner.timeout
    }

    fn submit(&self, op: &'static str, collective: Collective, buffer: CommBuffer) -> Result<Work> {
        if let Some(why) = self
            .inner
            .failure
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
        {
            return Err(DistError::Failed(why).into());
        }
        let (reply, rx) = mpsc::channel();
        let seq = self.inner.seq.fetch_add(1, Ordering::Relaxed);
        let sent = self
            .inner
            .jobs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
            .is_some_and(|tx| {
                tx.send(Job {
                    collective,
                    buffer,
                    reply,
                })
                .is_ok()
            });
        if !sent {
            return Err(self.fail(format!("{op}: the communication thread has ended")));
        }
        Ok(Work {
            reply: rx,
            op,
            seq,
            group: self.clone(),
        })
    }

    /// Marks the group failed (every later collective errors at once) and returns the error.
    fn fail(&self, why: String) -> sinew_tensor::Error {
        *self.inner.failure.lock().unwrap_or_else(|e| e.into_inner()) = Some(why.clone());
        DistError::Failed(why).into()
    }

    /// Starts an all-reduce of `buffer`; the result comes from [`Work::wait`].
    pub fn all_reduce_async(&self, buffer: CommBuffer, op: ReduceOp) -> Result<Work> {
        self.submit("all_reduce", Collective::AllReduce(op), buffer)
    }

    /// All-reduces `buffer` and returns the result.
    pub fn all_reduce_buffer(&self, buffer: CommBuffer, op: ReduceOp) -> Result<CommBuffer> {
        self.all_reduce_async(buffer, op)?.wait()
    }

    /// Returns once every rank has called it. PyTorch: `dist.barrier()`.
    pub fn barrier(&self) -> Result<()> {
        self.submit("barrier", Collective::Barrier, CommBuffer::F32(Vec::new()))?
            .wait()
            .map(|_| ())
    }

    /// Rank `root`'s `buffer` (every rank passes one of the same length and dtype).
    pub fn broadcast_buffer(&self, buffer: CommBuffer, root: usize) -> Result<CommBuffer> {
        self.submit("broadcast", Collective::Broadcast(root), buffer)?
            .wait()
    }

    /// Replaces `tensor`'s values (in place, any float dtype and device) with rank `root`'s.
    /// PyTorch: `dist.broadcast(tensor, src=root)`.
    pub fn broadcast(&self, tensor: &Tensor, root: usize) -> Result<()> {
        in_contiguous(tensor, |t| {
            self.submit(
                "broadcast",
                Collective::BroadcastTensor(root, t),
                CommBuffer::F32(Vec::new()),
            )?
            .wait()
            .map(drop)
        })
    }

    /// Combines `tensor` over all ranks, in place: every rank ends with the same result.
    /// PyTorch: `dist.all_reduce(tensor, op)` (with `ReduceOp::Mean` as `AVG`).
    ///
    /// The backend reduces the tensor where it lives when it can (NCCL on its GPU, MPI on host
    /// memory; see [`Backend::all_reduce_tensor`]); a strided view goes through a contiguous copy.
    pub fn all_reduce(&self, tensor: &Tensor, op: ReduceOp) -> Result<()> {
        in_contiguous(tensor, |t| {
            self.all_reduce_tensor_async(&t, op)?.wait().map(drop)
        })
    }

    /// Starts an in-place all-reduce of a contiguous `tensor` and returns at once; the values
    /// are final after [`Work::wait`]. Until then the tensor belongs to the collective: reading
    /// it blocks while the backend holds it, and writing it races with the reduction.
    /// PyTorch: `dist.all_reduce(tensor, op, async_op=True)`.
    pub fn all_reduce_tensor_async(&self, tensor: &Tensor, op: ReduceOp) -> Result<Work> {
        if !tensor.is_contiguous() {
            return Err(sinew_tensor::Error::invalid(
                "all_reduce_tensor_async",
                "the tensor must be contiguous (reduce `tensor.contiguous()` and copy it back)",
            ));
        }
        self.submit(
            "all_reduce",
            Collective::AllReduceTensor(op, tensor.detach()),
            CommBuffer::F32(Vec::new()),
        )
    }

    /// Sums (or averages, or maximises) host values over all ranks, in place: the trainer's
    /// losses, counts and metric totals.
    pub fn all_reduce_f64(&self, values: &mut [f64], op: ReduceOp) -> Result<()> {
        let out = self.all_reduce_buffer(CommBuffer::F64(values.to_vec()), op)?;
        if let CommBuffer::F64(v) = out {
            values.copy_from_slice(&v);
        }
        Ok(())
    }

    /// Every rank's `tensor` (all ranks must pass the same shape), in rank order.
    /// PyTorch: `dist.all_gather(list, tensor)`.
    pub fn all_gather(&self, tensor: &Tensor) -> Result<Vec<Tensor>> {
        // Agree on the element count first: MPI would truncate or abort on a mismatch.
        let mut lens = vec![0.0; self.world_size()];
        lens[self.rank()] = tensor.dims().iter().product::<usize>() as f64;
        self.all_reduce_f64(&mut lens, ReduceOp::Sum)?;
        if lens.iter().any(|&l| l != lens[0]) {
            return Err(DistError::Mismatch {
                op: "all_gather",
                msg: format!("element counts per rank are {lens:?}"),
            }
            .into());
        }
        let buffer = CommBuffer::from_tensor(tensor)?;
        let parts = self
            .submit("all_gather", Collective::AllGather, buffer)?
            .wait_all()?;
        parts
            .iter()
            .map(|p| p.to_tensor(tensor.dims(), tensor.device()))
            .collect()
    }

    /// Ends the whole job at once (every rank) with `code`: for a fatal error on one rank,
    /// where waiting for the others would hang. Returns only if the backend cannot abort.
    pub fn abort(&self, code: i32) {
        let tx = self
            .inner
            .jobs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        drop(tx);
        eprintln!(
            "sinew-dist: rank {} aborts the job (code {code})",
            self.rank()
        );
        std::process::exit(code);
    }
}

/// Runs the in-place collective `run` on `tensor`, or on a contiguous copy of a strided view
/// that is then written back, without recording anything for autograd.
fn in_contiguous(tensor: &Tensor, run: impl FnOnce(Tensor) -> Result<()>) -> Result<()> {
    if tensor.is_contiguous() {
        return run(tensor.detach());
    }
    let copy = with_no_grad(|| tensor.detach().force_contiguous())?;
    run(copy.clone())?;
    with_no_grad(|| tensor.copy_(&copy))
}

impl Work {
    fn wait_done(self) -> Result<Done> {
        let timeout = self.group.inner.timeout;
        match self.reply.recv_timeout(timeout) {
            Ok(done) => done,
            Err(RecvTimeoutError::Timeout) => {
                let e = DistError::Timeout {
                    rank: self.group.rank(),
                    op: self.op,
                    seq: self.seq,
                    seconds: timeout.as_secs_f64(),
                };
                self.group.fail(e.to_string());
                Err(e.into())
            }
            Err(RecvTimeoutError::Disconnected) => Err(self.group.fail(format!(
                "{} #{}: the communication thread ended",
                self.op, self.seq
            ))),
        }
    }

    /// Waits for the result (at most the group's timeout).
    pub fn wait(self) -> Result<CommBuffer> {
        let mut done = self.wait_done()?;
        Ok(done.buffers.pop().unwrap_or(CommBuffer::F32(Vec::new())))
    }

    /// Waits, and also returns when the communication thread finished the collective (for
    /// timelines of how communication overlaps computation).
    pub fn wait_timed(self) -> Result<(CommBuffer, Instant)> {
        let mut done = self.wait_done()?;
        let buffer = done.buffers.pop().unwrap_or(CommBuffer::F32(Vec::new()));
        Ok((buffer, done.finished))
    }

    fn wait_all(self) -> Result<Vec<CommBuffer>> {
        Ok(self.wait_done()?.buffers)
    }
}

/// The communication thread: runs jobs in submission order until every sender is gone.
fn serve(backend: &mut dyn Backend, jobs: &Receiver<Job>) {
    let world = backend.world_size() as f64;
    while let Ok(job) = jobs.recv() {
        let Job {
            collective,
            mut buffer,
            reply,
        } = job;
        let result = match collective {
            Collective::Barrier => backend.barrier().map(|()| vec![]),
            Collective::Broadcast(root) => {
                backend.broadcast(&mut buffer, root).map(|()| vec![buffer])
            }
            Collective::AllReduce(op) => backend.all_reduce(&mut buffer, op).map(|()| {
                if op == ReduceOp::Mean {
                    buffer.scale(1.0 / world);
                }
                vec![buffer]
            }),
            Collective::AllGather => backend.all_gather(&buffer),
            Collective::AllReduceTensor(op, tensor) => backend
                .all_reduce_tensor(&tensor, op)
                .and_then(|()| match op {
                    ReduceOp::Mean => with_no_grad(|| tensor.mul_scalar_(1.0 / world)),
                    _ => Ok(()),
                })
                .map(|()| vec![]),
            Collective::BroadcastTensor(root, tensor) => {
                backend.broadcast_tensor(&tensor, root).map(|()| vec![])
            }
        };
        let _ = reply.send(result.map(|buffers| Done {
            buffers,
            finished: Instant::now(),
        }));
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        // Closing the queue ends the thread, which drops (finalizes) the backend. After a
        // failure the thread may be stuck inside a collective: leave it, the process is ending.
        self.jobs
            .get_mut()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        let failed = self
            .failure
            .get_mut()
            .unwrap_or_else(|e| e.into_inner())
            .is_some();
        if let Some(handle) = self
            .thread
            .get_mut()
            .unwrap_or_else(|e| e.into_inner())
            .take()
            && !failed
        {
            let _ = handle.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sinew_tensor::DType;

    #[test]
    fn a_world_of_one_keeps_values_and_gathers_itself() {
        let g = ProcessGroup::single().unwrap();
        assert_eq!((g.rank(), g.world_size(), g.backend()), (0, 1, "single"));
        let t = Tensor::from_vec(vec![1.0f32, -2.0], [2]).unwrap();
        g.all_reduce(&t, ReduceOp::Mean).unwrap();
        g.broadcast(&t, 0).unwrap();
        g.barrier().unwrap();
        assert_eq!(t.to_vec::<f32>().unwrap(), vec![1.0, -2.0]);
        let all = g.all_gather(&t.to_dtype(DType::F64).unwrap()).unwrap();
        assert_eq!(all.len(), 1);
        assert_eq!(all[0].to_vec::<f64>().unwrap(), vec![1.0, -2.0]);
    }

    /// Two ranks holding the same values, on the host path only (no tensor overrides): a
    /// sum doubles, a broadcast from rank 1 adds one.
    struct Mirrored;
    impl Backend for Mirrored {
        fn name(&self) -> &'static str {
            "mirrored"
        }
        fn rank(&self) -> usize {
            0
        }
        fn world_size(&self) -> usize {
            2
        }
        fn barrier(&mut self) -> Result<()> {
            Ok(())
        }
        fn broadcast(&mut self, b: &mut CommBuffer, root: usize) -> Result<()> {
            if let (1, CommBuffer::F32(v)) = (root, b) {
                v.iter_mut().for_each(|x| *x += 1.0);
            }
            Ok(())
        }
        fn all_reduce(&mut self, b: &mut CommBuffer, op: ReduceOp) -> Result<()> {
            assert!(matches!(op, ReduceOp::Sum | ReduceOp::Mean));
            b.scale(2.0);
            Ok(())
        }
        fn all_gather(&mut self, b: &CommBuffer) -> Result<Vec<CommBuffer>> {
            Ok(vec![b.clone(), b.clone()])
        }
    }

    #[test]
    fn tensors_reach_a_host_only_backend_in_place_and_views_are_written_back() {
        let g = ProcessGroup::new(
            || Ok(Box::new(Mirrored) as Box<dyn Backend>),
            DEFAULT_TIMEOUT,
        )
        .unwrap();
        let t = Tensor::from_vec(vec![1.0f32, -2.0, 3.0, 4.0], [2, 2]).unwrap();
        g.all_reduce(&t, ReduceOp::Sum).unwrap();
        assert_eq!(t.to_vec::<f32>().unwrap(), vec![2.0, -4.0, 6.0, 8.0]);
        g.all_reduce(&t, ReduceOp::Mean).unwrap();
        assert_eq!(t.to_vec::<f32>().unwrap(), vec![2.0, -4.0, 6.0, 8.0]);
        // A strided view (a column) is reduced through a copy and written back into place.
        let column = t.narrow(1, 1, 1).unwrap();
        assert!(!column.is_contiguous());
        g.all_reduce(&column, ReduceOp::Sum).unwrap();
        assert_eq!(t.to_vec::<f32>().unwrap(), vec![2.0, -8.0, 6.0, 16.0]);
        g.broadcast(&column, 1).unwrap();
        assert_eq!(t.to_vec::<f32>().unwrap(), vec![2.0, -7.0, 6.0, 17.0]);
        // The asynchronous form: the tensor holds the result once the work is waited for.
        let bf = Tensor::from_vec(vec![0.5f32, 1.5], [2])
            .unwrap()
            .to_dtype(DType::BF16)
            .unwrap();
        let work = g.all_reduce_tensor_async(&bf, ReduceOp::Sum).unwrap();
        work.wait().unwrap();
        assert_eq!(bf.to_vec_f64().unwrap(), vec![1.0, 3.0]);
        let err = g
            .all_reduce_tensor_async(&column, ReduceOp::Sum)
            .err()
            .unwrap();
        assert!(err.to_string().contains("contiguous"), "{err}");
    }

    /// A backend whose collectives never finish, like a peer that stopped.
    struct Stuck;
    impl Backend for Stuck {
        fn name(&self) -> &'static str {
            "stuck"
        }
        fn rank(&self) -> usize {
            0
        }
        fn world_size(&self) -> usize {
            2
        }
        fn barrier(&mut self) -> Result<()> {
            std::thread::sleep(Duration::from_secs(3600));
            Ok(())
        }
        fn broadcast(&mut self, _: &mut CommBuffer, _: usize) -> Result<()> {
            self.barrier()
        }
        fn all_reduce(&mut self, _: &mut CommBuffer, _: ReduceOp) -> Result<()> {
            self.barrier()
        }
        fn all_gather(&mut self, b: &CommBuffer) -> Result<Vec<CommBuffer>> {
            self.barrier().map(|()| vec![b.clone()])
        }
    }

    #[test]
    fn a_collective_that_never_finishes_times_out_with_a_clear_error() {
        let g = ProcessGroup::new(
            || Ok(Box::new(Stuck) as Box<dyn Backend>),
            Duration::from_millis(200),
        )
        .unwrap();
        let t = Tensor::from_vec(vec![1.0f32], [1]).unwrap();
        let start = Instant::now();
        let err = g.all_reduce(&t, ReduceOp::Sum).unwrap_err().to_string();
        assert!(start.elapsed() < Duration::from_secs(5));
        assert!(
            err.contains("rank 0: all_reduce #0 did not complete within 0.2 s"),
            "{err}"
        );
        // The group is now unusable, and says why at once.
        let again = g.barrier().unwrap_err().to_string();
        assert!(
            again.contains("failed earlier") && again.contains("all_reduce #0"),
            "{again}"
        );
    }

    #[test]
    fn a_backend_that_cannot_start_is_an_error() {
        let err = ProcessGroup::new(
            || {
                Err(DistError::Backend {
                    backend: "test",
                    msg: "no network".into(),
                }
                .into())
            },
            DEFAULT_TIMEOUT,
        )
        .err()
        .unwrap();
        assert!(err.to_string().contains("no network"));
    }
}
