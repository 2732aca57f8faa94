//! The table of a multi-tensor launch (`StepTable` of `cuda/step_table.cuh`, field for field):
//! up to [`TABLE_LEN`] dense runs, each with its blocks, for the fused optimizer steps, the loss
//! scaler's unscale, gradient clipping's norm and scaling (`fused_step.cu`) and autocast's
//! weight casts (`cast.cu`).

use sinew_tensor::{BackendStorage, DType, Error, Result};

use super::{LaunchConfig, count_u32};
use crate::device::CudaBackend;
use crate::storage::{CudaStorage, cuda};

/// Device address of element `start` of `storage`, after checking that `len` elements from
/// there lie inside it and that it holds `dtype` (what the kernel reads and writes).
pub(crate) fn run_at(
    storage: &CudaStorage,
    start: usize,
    len: usize,
    dtype: DType,
    op: &'static str,
) -> Result<u64> {
    let end = start.checked_add(len);
    if storage.dtype_of() != dtype || end.is_none_or(|e| e > storage.elem_count()) {
        return Err(Error::invalid(
            op,
            format!(
                "a {} storage of {} elements cannot hold {len} {dtype} elements from {start}",
                storage.dtype_of(),
                storage.elem_count()
            ),
        ));
    }
    Ok(storage.ptr_at(start))
}

/// A dense run of a multi-tensor launch: its device address and its length in elements.
pub(crate) type Run = (u64, usize);

/// The runs a multi-tensor kernel reads, `(storage, start)` of `lens[i]` elements each, as
/// `(address, length)` after [`run_at`]'s checks, all in the first one's dtype; that dtype is
/// `None` for no runs. An error when the lengths are not one a run, or a storage is not on
/// `dev`.
pub(crate) fn read_runs(
    dev: &CudaBackend,
    runs: &[(&dyn BackendStorage, usize)],
    lens: &[usize],
    op: &'static str,
) -> Result<(Vec<Run>, Option<DType>)> {
    if runs.len() != lens.len() {
        return Err(Error::invalid(op, "one length a run"));
    }
    let loc = dev.location();
    let mut ptrs = Vec::with_capacity(runs.len());
    let mut dtype = None;
    for (&(storage, start), &len) in runs.iter().zip(lens) {
        let storage = cuda(storage, loc)?;
        let d = *dtype.get_or_insert(storage.dtype_of());
        ptrs.push((run_at(storage, start, len, d, op)?, len));
    }
    Ok((ptrs, dtype))
}

/// The most runs one multi-tensor launch takes (`STEP_TABLE_LEN` in the kernels).
pub(crate) const TABLE_LEN: usize = 32;

/// The most state slots a step kernel takes (Adam's `m`, `v`, `vmax`; RMSprop's `v`, `buf`,
/// `ga`).
pub(crate) const SLOTS: usize = 3;

/// `StepTable` of `cuda/step_table.cuh` (1,552 bytes, passed by value as a kernel parameter):
/// run `j` has `n[j]` elements at `p[j]` (a step's parameter, a cast's output), its state
/// buffers in `slots`, its gradient (a cast's input) at `g[j]`, and blocks `start[j]` to
/// `start[j + 1] - 1`; `skip`, when not 0, the address of the f32 flag that makes the launch
/// write nothing when set.
#[repr(C)]
#[derive(Clone, Copy)]
pub(crate) struct StepTable {
    pub(crate) p: [u64; TABLE_LEN],
    pub(crate) slots: [[u64; TABLE_LEN]; SLOTS],
    pub(crate) g: [u64; TABLE_LEN],
    pub(crate) skip: u64,
    pub(crate) n: [u32; TABLE_LEN],
    pub(crate) start: [u32; TABLE_LEN + 1],
    pub(crate) count: u32,
}

const _: () = assert!(std::mem::size_of::<StepTable>() == 1552);

impl StepTable {
    /// A table of no runs.
    pub(crate) fn empty() -> StepTable {
        StepTable {
            p: [0; TABLE_LEN],
            slots: [[0; TABLE_LEN]; SLOTS],
            g: [0; TABLE_LEN],
            skip: 0,
            n: [0; TABLE_LEN],
            start: [0; TABLE_LEN + 1],
            count: 0,
        }
    }

    /// Appends run `(p, g, len)` with `blocks` blocks (at most 2^20 each, so 32 of them never
    /// overflow). The caller keeps to [`TABLE_LEN`] runs.
    pub(crate) fn push(
        &mut self,
        op: &'static str,
        (p, g, len): (u64, u64, usize),
        blocks: u32,
    ) -> Result<()> {
        let j = self.count as usize;
        self.p[j] = p;
        self.g[j] = g;
        self.n[j] = count_u32(op, len)?;
        self.start[j + 1] = self.start[j] + blocks;
        self.count += 1;
        Ok(())
    }

    /// The blocks of all its runs.
    pub(crate) fn blocks(&self) -> u32 {
        self.start[self.count as usize]
    }

    /// The launch of a filled table: its blocks, of the elementwise launches' size.
    pub(crate) fn config(&self) -> LaunchConfig {
        LaunchConfig {
            grid: (self.blocks(), 1, 1),
            block: LaunchConfig::elementwise(1).block,
        }
    }
}

/// The elementwise launches' blocks for a run of `len` elements.
pub(crate) fn elementwise_blocks(len: usize) -> u32 {
    LaunchConfig::elementwise(len).grid.0
}
