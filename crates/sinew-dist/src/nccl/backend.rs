//! [`NcclBackend`]: collectives through NCCL on the GPU of this rank (`LOCAL_RANK`), on a
//! communication stream of their own, as PyTorch does: each waits (with an event) for the work
//! queued so far on sinew-cuda's kernel stream, so it sees its tensor's values, and then runs
//! beside the kernels queued after it; a gradient bucket is reduced while backward computes the
//! next one. Its result is used only after the host has seen it complete (`wait`).
//!
//! A tensor on this rank's GPU (a gradient bucket, a parameter being broadcast) is reduced in
//! place in its own device memory, with no copy: NCCL is handed the address of its elements.
//! Host [`CommBuffer`]s (the trainer's metric totals) and tensors on other devices are uploaded
//! first and downloaded after. An event recorded behind each collective is polled with the
//! group's timeout together with NCCL's asynchronous error, and the communicator is aborted
//! when a peer fails or the time runs out, so a dead rank ends the others with an error instead
//! of a hang; the poll waits for the collective only, not for work queued after it.

use std::ffi::{c_int, c_void};
use std::time::{Duration, Instant};

use cust::event::{Event, EventFlags, EventStatus};
use cust::stream::{Stream as CudaStream, StreamFlags, StreamWaitEventFlags};
use sinew_cuda::{CudaBackend, CudaStorage};
use sinew_tensor::{DType, Device, Result, Tensor};

use super::library::{NcclComm, NcclLibrary, NcclResult, SUCCESS, Stream, UniqueId, error};
use crate::backend::{Backend, ReduceOp, all_reduce_through_host, broadcast_through_host};
use crate::buffer::CommBuffer;
use crate::env::LaunchInfo;
use crate::rendezvous;

/// Where ranks meet when the launcher set no `MASTER_ADDR`/`MASTER_PORT` (one machine).
pub const DEFAULT_MASTER: &str = "127.0.0.1:29500";

/// One rank of an NCCL communicator, on `cuda:LOCAL_RANK`.
pub struct NcclBackend {
    lib: &'static NcclLibrary,
    comm: NcclComm,
    device: Device,
    rank: usize,
    world_size: usize,
    timeout: Duration,
    /// Where the collectives run, beside sinew-cuda's kernel stream.
    comm_stream: CudaStream,
    /// Recorded on the communication stream behind each collective; polled by
    /// [`NcclBackend::wait`].
    done: Event,
}

/// `ncclDataType_t` of a float dtype.
fn nccl_dtype(dtype: DType) -> Result<c_int> {
    Ok(match dtype {
        DType::F16 => 6,
        DType::F32 => 7,
        DType::F64 => 8,
        DType::BF16 => 9,
        other => {
            return Err(error(format!(
                "NCCL collectives take float tensors, not {other}"
            )));
        }
    })
}

/// `ncclRedOp_t` of a reduction (a mean is a sum, divided by the process group).
fn nccl_op(op: ReduceOp) -> c_int {
    match op {
        ReduceOp::Sum | ReduceOp::Mean => 0,
        ReduceOp::Max => 2,
        ReduceOp::Min => 3,
    }
}

/// What a collective is handed: the device address of the elements, their count and NCCL
/// dtype, the communicator and the stream.
struct Operand {
    ptr: *mut c_void,
    count: usize,
    dtype: c_int,
    comm: NcclComm,
    stream: Stream,
}

impl NcclBackend {
    /// Joins the job described by `info`: rank 0 makes the NCCL id and shares it over the TCP
    /// rendezvous at `MASTER_ADDR:MASTER_PORT` (default [`DEFAULT_MASTER`]), then every rank
    /// creates its communicator on `cuda:LOCAL_RANK`. Waits at most `timeout` for the others.
    pub fn init(info: &LaunchInfo, timeout: Duration) -> Result<NcclBackend> {
        let lib = NcclLibrary::load()?;
        sinew_cuda::register();
        let device = Device::cuda(info.local_rank)?;
        let master = info.master.as_deref().unwrap_or(DEFAULT_MASTER);
        let id = match info.rank {
            0 => Some(lib.unique_id()?),
            _ => None,
        };
        let shared = rendezvous::share_from_root(
            master,
            info.rank,
            info.world_size,
            id.as_ref().map(|id| &id.internal[..]),
            timeout,
        )?;
        let id = UniqueId::from_bytes(&shared)?;
        let cuda = cuda(&device)?;
        cuda.bind()?;
        let (world, rank) = (c_int_of(info.world_size)?, c_int_of(info.rank)?);
        let mut comm: NcclComm = std::ptr::null_mut();
        // SAFETY: `comm` is a valid out-pointer, the id came from ncclGetUniqueId on rank 0, and
        // this thread has the device's context current (bind above).
        let code = unsafe { (lib.comm_init_rank)(&mut comm, world, id, rank) };
        lib.check(code, "ncclCommInitRank")?;
        let done = Event::new(EventFlags::DISABLE_TIMING)
            .map_err(|e| error(format!("cuEventCreate on {device}: {e}")))?;
        let comm_stream = CudaStream::new(StreamFlags::NON_BLOCKING, None)
            .map_err(|e| error(format!("cuStreamCreate on {device}: {e}")))?;
        Ok(NcclBackend {
            lib,
            comm,
            device,
            rank: info.rank,
            world_size: info.world_size,
            timeout,
            comm_stream,
            done,
        })
    }

    /// The GPU this rank uses.
    pub fn device(&self) -> &Device {
        &self.device
    }

    /// The NCCL library in use.
    pub fn library(&self) -> &'static NcclLibrary {
        self.lib
    }

    /// Waits for the queued collective `what`: records [`done`](Self::done) behind it and polls
    /// it and NCCL's asynchronous error until it is done; on a failure or after the timeout,
    /// aborts the communicator.
    fn wait(&mut self, what: &str) -> Result<()> {
        if let Err(e) = self.done.record(&self.comm_stream) {
            self.abort_comm();
            return Err(error(format!("{what}: cuEventRecord failed ({e})")));
        }
        let start = Instant::now();
        loop {
            match self.done.query() {
                Ok(EventStatus::Ready) => return Ok(()),
                Ok(EventStatus::NotReady) => {}
                Err(other) => {
                    self.abort_comm();
                    return Err(error(format!("{what}: the CUDA stream failed ({other})")));
                }
            }
            let mut async_error: NcclResult = SUCCESS;
            // SAFETY: `comm` is live (not aborted: abort_comm nulls it and we return after).
            let code = unsafe { (self.lib.comm_get_async_error)(self.comm, &mut async_error) };
            if code != SUCCESS || async_error != SUCCESS {
                let why = self
                    .lib
                    .describe(if code != SUCCESS { code } else { async_error });
                self.abort_comm();
                return Err(error(format!("{what}: {why} (a peer probably failed)")));
            }
            if start.elapsed() > self.timeout {
                self.abort_comm();
                return Err(error(format!(
                    "rank {}: {what} did not complete within {:.1} s; the communicator was \
                     aborted (another rank has probably died)",
                    self.rank,
                    self.timeout.as_secs_f64()
                )));
            }
            std::thread::sleep(Duration::from_micros(50));
        }
    }

    fn abort_comm(&mut self) {
        if !self.comm.is_null() {
            // SAFETY: a live communicator, aborted once (nulled right after).
            unsafe { (self.lib.comm_abort)(self.comm) };
            self.comm = std::ptr::null_mut();
        }
    }

    fn live(&self, what: &str) -> Result<NcclComm> {
        if self.comm.is_null() {
            return Err(error(format!(
                "{what}: the communicator was aborted after a failure"
            )));
        }
        Ok(self.comm)
    }

    /// Runs `collective` in place on the elements of `tensor` (contiguous, on this rank's GPU)
    /// where they live, on the communication stream after the kernel stream's work queued so
    /// far (which computed the values), then waits for it. The storage is write-locked while
    /// NCCL is handed its address.
    fn in_place(
        &mut self,
        what: &str,
        tensor: &Tensor,
        collective: impl FnOnce(Operand) -> NcclResult,
    ) -> Result<()> {
        let comm = self.live(what)?;
        let dtype = nccl_dtype(tensor.dtype())?;
        let device = self.device.clone();
        let cuda = cuda(&device)?;
        cuda.bind()?;
        // The values are final once the kernel stream's work queued so far has run.
        Event::new(EventFlags::DISABLE_TIMING)
            .and_then(|computed| computed.record(cuda.cuda_stream()).map(|()| computed))
            .and_then(|computed| {
                self.comm_stream
                    .wait_event(computed, StreamWaitEventFlags::DEFAULT)
            })
            .map_err(|e| error(format!("{what}: ordering after the kernel stream: {e}")))?;
        let stream: Stream = self.comm_stream.as_inner().cast();
        let code = tensor.with_storage_mut(|storage, layout| {
            let (start, end) = layout
                .contiguous_offset()
                .ok_or_else(|| error(format!("{what}: the tensor is not contiguous")))?;
            let storage = CudaStorage::downcast_mut(storage)
                .ok_or_else(|| error(format!("{what}: the tensor has no CUDA storage")))?;
            if end > storage.elem_count() {
                return Err(error(format!("{what}: the view lies outside its storage")));
            }
            Ok(collective(Operand {
                ptr: storage.ptr_at(start) as *mut c_void,
                count: end - start,
                dtype,
                comm,
                stream,
            }))
        })?;
        self.lib.check(code, what)?;
        self.wait(what)
    }

    /// Whether `tensor` can be handed to NCCL as it is: on this rank's GPU.
    fn is_local(&self, tensor: &Tensor) -> bool {
        tensor.device() == &self.device
    }

    /// `buffer` as a one-dimensional tensor on this rank's GPU.
    fn upload(&self, buffer: &CommBuffer) -> Result<Tensor> {
        buffer.to_tensor(&[buffer.len()], &self.device)
    }
}

fn cuda(device: &Device) -> Result<&CudaBackend> {
    CudaBackend::of(device).ok_or_else(|| error(format!("{device} is not a CUDA device")))
}

fn c_int_of(v: usize) -> Result<c_int> {
    c_int::try_from(v).map_err(|_| error(format!("{v} does not fit NCCL's int")))
}

impl Backend for NcclBackend {
    fn name(&self) -> &'static str {
        "nccl"
    }
    fn rank(&self) -> usize {
        self.rank
    }
    fn world_size(&self) -> usize {
        self.world_size
    }

    fn barrier(&mut self) -> Result<()> {
        let mut one = CommBuffer::F32(vec![0.0]);
        self.all_reduce(&mut one, ReduceOp::Sum)
    }

    fn broadcast(&mut self, buffer: &mut CommBuffer, root: usize) -> Result<()> {
        let on_device = self.upload(buffer)?;
        self.broadcast_tensor(&on_device, root)?;
        *buffer = CommBuffer::from_tensor(&on_device)?;
        Ok(())
    }

    fn all_reduce(&mut self, buffer: &mut CommBuffer, op: ReduceOp) -> Result<()> {
        let on_device = self.upload(buffer)?;
        self.all_reduce_tensor(&on_device, op)?;
        *buffer = CommBuffer::from_tensor(&on_device)?;
        Ok(())
    }

    fn all_reduce_tensor(&mut self, tensor: &Tensor, op: ReduceOp) -> Result<()> {
        if !self.is_local(tensor) {
            return all_reduce_through_host(self, tensor, op);
        }
        let (lib, op) = (self.lib, nccl_op(op));
        self.in_place("ncclAllReduce", tensor, |x| {
            // SAFETY: `x.ptr` addresses `x.count` elements of dtype `x.dtype` in this rank's
            // device memory (the tensor's contiguous view, bounds checked in in_place, write-
            // locked there), used as both send and receive buffer; `x.comm` is live (checked).
            unsafe { (lib.all_reduce)(x.ptr, x.ptr, x.count, x.dtype, op, x.comm, x.stream) }
        })
    }

    fn broadcast_tensor(&mut self, tensor: &Tensor, root: usize) -> Result<()> {
        if !self.is_local(tensor) {
            return broadcast_through_host(self, tensor, root);
        }
        let (lib, root) = (self.lib, c_int_of(root)?);
        self.in_place("ncclBroadcast", tensor, |x| {
            // SAFETY: as in all_reduce_tensor: the tensor's elements on this rank's device.
            unsafe { (lib.broadcast)(x.ptr, x.ptr, x.count, x.dtype, root, x.comm, x.stream) }
        })
    }

    fn all_gather(&mut self, buffer: &CommBuffer) -> Result<Vec<CommBuffer>> {
        const WHAT: &str = "ncclAllGather";
        let count = buffer.len();
        let total = count
            .checked_mul(self.world_size)
            .ok_or_else(|| error("all_gather: the gathered size overflows"))?;
        let send = self.upload(buffer)?;
        let gathered = Tensor::zeros([total], buffer.dtype(), &self.device)?;
        let lib = self.lib;
        send.with_storage(|storage, layout| {
            let send = CudaStorage::downcast(storage)
                .filter(|s| layout.offset() == 0 && s.elem_count() == count)
                .ok_or_else(|| error("all_gather: the upload is not a whole CUDA buffer"))?;
            let send_ptr = send.device_ptr() as *const c_void;
            self.in_place(WHAT, &gathered, |x| {
                // SAFETY: `send_ptr` holds `count` elements (checked above) and `x.ptr`
                // `count * world_size` = `x.count` of the same dtype on this rank's device;
                // `send` is read-locked and `gathered` write-locked while NCCL is queued.
                unsafe { (lib.all_gather)(send_ptr, x.ptr, count, x.dtype, x.comm, x.stream) }
            })
        })?;
        (0..self.world_size)
            .map(|r| CommBuffer::from_tensor(&gathered.narrow(0, r * count, count)?))
            .collect()
    }

    fn abort(&mut self, code: i32) {
        let _ = code;
        self.abort_comm();
    }
}

impl Drop for NcclBackend {
    fn drop(&mut self) {
        if !self.comm.is_null() {
            // SAFETY: a live communicator, destroyed once, after its last collective's wait.
            unsafe { (self.lib.comm_destroy)(self.comm) };
        }
    }
}
