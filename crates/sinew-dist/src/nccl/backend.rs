//! [`NcclBackend`]: collectives through NCCL on the GPU of this rank (`LOCAL_RANK`), queued on
//! sinew-cuda's stream so they are ordered with the tensor work.
//!
//! The process group hands collectives host [`CommBuffer`]s (as to every backend): each one is
//! uploaded, reduced in place on the device by NCCL and downloaded. Waits poll the stream and
//! NCCL's asynchronous error with the group's timeout, and abort the communicator when a peer
//! fails or the time runs out, so a dead rank ends the others with an error instead of a hang.

use std::ffi::{c_int, c_void};
use std::time::{Duration, Instant};

use sinew_cuda::{CudaBackend, CudaStorage};
use sinew_tensor::{CpuStorage, DType, Device, Result};

use super::library::{NcclComm, NcclLibrary, NcclResult, SUCCESS, UniqueId, error};
use crate::backend::{Backend, ReduceOp};
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
}

/// `ncclDataType_t` of a buffer's dtype.
fn nccl_dtype(buffer: &CommBuffer) -> c_int {
    match buffer {
        CommBuffer::F16(_) => 6,
        CommBuffer::F32(_) => 7,
        CommBuffer::F64(_) => 8,
        CommBuffer::BF16(_) => 9,
    }
}

fn to_storage(buffer: &CommBuffer) -> CpuStorage {
    match buffer {
        CommBuffer::F32(v) => CpuStorage::F32(v.clone()),
        CommBuffer::F64(v) => CpuStorage::F64(v.clone()),
        CommBuffer::F16(v) => CpuStorage::F16(v.clone()),
        CommBuffer::BF16(v) => CpuStorage::BF16(v.clone()),
    }
}

fn from_storage(storage: CpuStorage) -> Result<CommBuffer> {
    Ok(match storage {
        CpuStorage::F32(v) => CommBuffer::F32(v),
        CpuStorage::F64(v) => CommBuffer::F64(v),
        CpuStorage::F16(v) => CommBuffer::F16(v),
        CpuStorage::BF16(v) => CommBuffer::BF16(v),
        other => return Err(error(format!("unexpected {} buffer", other.dtype()))),
    })
}

/// The dtype of a buffer (for allocating the all-gather output).
fn dtype_of(buffer: &CommBuffer) -> DType {
    match buffer {
        CommBuffer::F32(_) => DType::F32,
        CommBuffer::F64(_) => DType::F64,
        CommBuffer::F16(_) => DType::F16,
        CommBuffer::BF16(_) => DType::BF16,
    }
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
        Ok(NcclBackend {
            lib,
            comm,
            device,
            rank: info.rank,
            world_size: info.world_size,
            timeout,
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

    /// Waits for the queued collective `what`: polls the stream and NCCL's asynchronous error
    /// until it is done; on a failure or after the timeout, aborts the communicator.
    fn wait(&mut self, what: &str) -> Result<()> {
        let stream = cuda(&self.device)?.raw_stream();
        let start = Instant::now();
        loop {
            // SAFETY: the stream handle belongs to the live backend; querying has no effects.
            let status = unsafe { cust::sys::cuStreamQuery(stream) };
            match status {
                cust::sys::cudaError_enum::CUDA_SUCCESS => return Ok(()),
                cust::sys::cudaError_enum::CUDA_ERROR_NOT_READY => {}
                other => {
                    self.abort_comm();
                    return Err(error(format!("{what}: the CUDA stream failed ({other:?})")));
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

    /// Uploads `buffer`, runs `collective(device pointer, count, dtype, comm, stream)` on it in
    /// place, waits and downloads the result into `buffer`.
    fn in_place(
        &mut self,
        what: &str,
        buffer: &mut CommBuffer,
        collective: impl FnOnce(*mut c_void, usize, c_int, NcclComm, *mut c_void) -> NcclResult,
    ) -> Result<()> {
        let comm = self.live(what)?;
        let device = self.device.clone();
        let cuda = cuda(&device)?;
        let on_device = cuda.upload(&to_storage(buffer))?;
        cuda.bind()?;
        let ptr = on_device.device_ptr() as *mut c_void;
        let code = collective(
            ptr,
            buffer.len(),
            nccl_dtype(buffer),
            comm,
            cuda.raw_stream().cast(),
        );
        self.lib.check(code, what)?;
        self.wait(what)?;
        *buffer = from_storage(cuda.download(&on_device)?)?;
        Ok(())
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
        let (lib, root) = (self.lib, c_int_of(root)?);
        self.in_place(
            "ncclBroadcast",
            buffer,
            |ptr, count, dtype, comm, stream| {
                // SAFETY: `ptr` holds `count` elements of `dtype` on this rank's device (uploaded
                // by in_place, alive until it downloads), used as both send and receive buffer.
                unsafe { (lib.broadcast)(ptr, ptr, count, dtype, root, comm, stream) }
            },
        )
    }

    fn all_reduce(&mut self, buffer: &mut CommBuffer, op: ReduceOp) -> Result<()> {
        let op: c_int = match op {
            ReduceOp::Sum | ReduceOp::Mean => 0,
            ReduceOp::Max => 2,
            ReduceOp::Min => 3,
        };
        let lib = self.lib;
        self.in_place(
            "ncclAllReduce",
            buffer,
            |ptr, count, dtype, comm, stream| {
                // SAFETY: as in broadcast: `count` elements of `dtype` on the device, in place.
                unsafe { (lib.all_reduce)(ptr, ptr, count, dtype, op, comm, stream) }
            },
        )
    }

    fn all_gather(&mut self, buffer: &CommBuffer) -> Result<Vec<CommBuffer>> {
        const WHAT: &str = "ncclAllGather";
        let comm = self.live(WHAT)?;
        let device = self.device.clone();
        let cuda = cuda(&device)?;
        let count = buffer.len();
        let total = count
            .checked_mul(self.world_size)
            .ok_or_else(|| error("all_gather: the gathered size overflows"))?;
        let send = cuda.upload(&to_storage(buffer))?;
        let recv: CudaStorage = cuda.alloc(dtype_of(buffer), total)?;
        cuda.bind()?;
        // SAFETY: `send` holds `count` elements and `recv` `count * world_size` of the buffer's
        // dtype on this rank's device; both live until after the wait and download below.
        let code = unsafe {
            (self.lib.all_gather)(
                send.device_ptr() as *const c_void,
                recv.device_ptr() as *mut c_void,
                count,
                nccl_dtype(buffer),
                comm,
                cuda.raw_stream().cast(),
            )
        };
        self.lib.check(code, WHAT)?;
        self.wait(WHAT)?;
        let all = from_storage(cuda.download(&recv)?)?;
        Ok((0..self.world_size)
            .map(|r| match &all {
                CommBuffer::F32(v) => CommBuffer::F32(v[r * count..(r + 1) * count].to_vec()),
                CommBuffer::F64(v) => CommBuffer::F64(v[r * count..(r + 1) * count].to_vec()),
                CommBuffer::F16(v) => CommBuffer::F16(v[r * count..(r + 1) * count].to_vec()),
                CommBuffer::BF16(v) => CommBuffer::BF16(v[r * count..(r + 1) * count].to_vec()),
            })
            .collect())
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
