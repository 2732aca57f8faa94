//! Host side of `cuda/cast.cu`: fills, uploads and downloads, strided copies and dtype casts
//! (of one view, or of many dense runs in one launch).

use cust::sys::{CUdeviceptr, cuMemcpyDtoDAsync_v2};
use sinew_tensor::{Backend, BackendStorage, CpuBackend, CpuStorage, DType, Error, Layout, Result};

use super::step_table::{StepTable, TABLE_LEN, elementwise_blocks, read_runs};
use super::{LaunchConfig, count_u32};
use crate::device::CudaBackend;
use crate::driver::check;
use crate::geometry::Geometry;
use crate::names;
use crate::storage::CudaStorage;
use crate::stream::{COPY_STREAM_MIN, STAGING_LIMIT};

/// `len` elements equal to `value` converted as the CPU backend converts it.
pub(crate) fn full(dev: &CudaBackend, dtype: DType, len: usize, value: f64) -> Result<CudaStorage> {
    fill_pattern(dev, dtype, len, bit_pattern(dtype, value)?)
}

/// The bits of `value` converted to `dtype` as the CPU backend converts it, in the low bytes.
pub(crate) fn bit_pattern(dtype: DType, value: f64) -> Result<u64> {
    let one = CpuBackend.full(dtype, 1, value)?;
    let host = one
        .as_any()
        .downcast_ref::<CpuStorage>()
        .expect("the CPU backend returns CPU storage");
    let mut pattern = [0u8; 8];
    pattern[..dtype.size_in_bytes()].copy_from_slice(host.as_bytes());
    Ok(u64::from_le_bytes(pattern))
}

/// `len` elements of `dtype` whose bytes are the low bytes of `pattern`.
pub(crate) fn fill_pattern(
    dev: &CudaBackend,
    dtype: DType,
    len: usize,
    pattern: u64,
) -> Result<CudaStorage> {
    let out = dev.alloc(dtype, len)?;
    if len == 0 {
        return Ok(out);
    }
    let (ptr, n) = (out.device_ptr(), count_u32("full", len)?);
    dev.launch(
        &names::fill(dtype),
        LaunchConfig::elementwise(len),
        kernel_args![ptr, n, pattern],
    )?;
    Ok(out)
}

/// A device copy of host data (queued; the host data may be dropped on return).
pub(crate) fn upload(dev: &CudaBackend, data: &CpuStorage) -> Result<CudaStorage> {
    let bytes = data.as_bytes();
    if (COPY_STREAM_MIN..=STAGING_LIMIT).contains(&bytes.len()) {
        // A batch: copied beside the kernels already queued instead of after them.
        let out = dev.alloc_for_copy(data.dtype(), data.len())?;
        dev.stream().upload_beside(out.device_ptr(), bytes)?;
        return Ok(out);
    }
    let out = dev.alloc(data.dtype(), data.len())?;
    dev.stream().upload(out.device_ptr(), bytes)?;
    Ok(out)
}

/// The elements of a view, row-major, on the host; reports the pending index checks' first
/// fault, read in the same wait (`deferred.rs`).
pub(crate) fn download(
    dev: &CudaBackend,
    src: &CudaStorage,
    layout: &Layout,
) -> Result<CpuStorage> {
    let dtype = src.dtype_of();
    let n = layout.elem_count();
    let mut bytes = vec![0u8; n * dtype.size_in_bytes()];
    if let Some((start, _)) = layout.contiguous_offset() {
        dev.download_checked(&mut [(src.ptr_at(start), &mut bytes)])?;
    } else {
        let dense = copy_strided(dev, src, layout)?;
        dev.download_checked(&mut [(dense.device_ptr(), &mut bytes)])?;
    }
    CpuStorage::from_bytes(dtype, &bytes)
}

/// A contiguous copy of a view.
pub(crate) fn copy_strided(
    dev: &CudaBackend,
    src: &CudaStorage,
    layout: &Layout,
) -> Result<CudaStorage> {
    let out = dev.alloc(src.dtype_of(), layout.elem_count())?;
    copy_view(
        dev,
        src,
        layout,
        out.device_ptr(),
        &Layout::contiguous(layout.shape().clone()),
    )?;
    Ok(out)
}

/// Writes the view `src` into the view `dst_layout` of `dst`.
pub(crate) fn copy_into(
    dev: &CudaBackend,
    dst: &mut CudaStorage,
    dst_layout: &Layout,
    src: &CudaStorage,
    src_layout: &Layout,
) -> Result<()> {
    if dst.dtype_of() != src.dtype_of() {
        return Err(Error::DTypeMismatch {
            op: "copy_",
            lhs: dst.dtype_of(),
            rhs: src.dtype_of(),
        });
    }
    copy_view(dev, src, src_layout, dst.device_ptr(), dst_layout)
}

/// Copies the view `(src, sl)` into the view `dl` of the storage starting at `dst_base`.
fn copy_view(
    dev: &CudaBackend,
    src: &CudaStorage,
    sl: &Layout,
    dst_base: CUdeviceptr,
    dl: &Layout,
) -> Result<()> {
    let n = sl.elem_count();
    if n == 0 {
        return Ok(());
    }
    let dtype = src.dtype_of();
    let size = dtype.size_in_bytes();
    if let (Some((s, _)), Some((d, _))) = (sl.contiguous_offset(), dl.contiguous_offset()) {
        dev.bind()?;
        let dst = dst_base + (d * size) as CUdeviceptr;
        // SAFETY: both ranges lie inside live allocations (layouts are validated by sinew-tensor).
        let code = unsafe {
            cuMemcpyDtoDAsync_v2(dst, src.ptr_at(s), n * size, dev.stream().stream.as_inner())
        };
        return check(code, dev.location(), "cuMemcpyDtoDAsync");
    }
    let g = Geometry::new("copy", &[sl, dl])?;
    let (count, src_ptr) = (count_u32("copy", n)?, src.device_ptr());
    dev.launch(
        &names::copy(dtype),
        LaunchConfig::elementwise(n),
        kernel_args![count, g, src_ptr, dst_base],
    )
}

/// A view converted to `dtype` (Rust `as` rules, like the CPU backend).
pub(crate) fn cast(
    dev: &CudaBackend,
    src: &CudaStorage,
    layout: &Layout,
    dtype: DType,
) -> Result<CudaStorage> {
    if src.dtype_of() == dtype {
        return copy_strided(dev, src, layout);
    }
    let n = layout.elem_count();
    let out = dev.alloc(dtype, n)?;
    if n == 0 {
        return Ok(out);
    }
    let g = Geometry::new("to_dtype", &[layout])?;
    let (count, in_ptr, out_ptr) = (
        count_u32("to_dtype", n)?,
        src.device_ptr(),
        out.device_ptr(),
    );
    let kernel = names::cast(src.dtype_of(), dtype);
    dev.launch(
        &kernel,
        LaunchConfig::elementwise(n),
        kernel_args![count, g, in_ptr, out_ptr],
    )?;
    Ok(out)
}

/// Dense runs of one dtype (`srcs[i]` holds `lens[i]` elements from the given element)
/// converted to `to`, each into a new contiguous storage, in one launch per [`TABLE_LEN`] runs
/// (`cast_many_<from>_<to>`: autocast's f32 weights to f16/bf16), with [`cast`]'s values.
/// `None` for a pair of dtypes without a kernel.
pub(crate) fn cast_many(
    dev: &CudaBackend,
    srcs: &[(&dyn BackendStorage, usize)],
    lens: &[usize],
    to: DType,
) -> Result<Option<Vec<CudaStorage>>> {
    const OP: &str = "cast_many";
    let (ins, from) = read_runs(dev, srcs, lens, OP)?;
    let Some(from) = from else {
        return Ok(Some(Vec::new()));
    };
    let Some(kernel) = names::cast_many(from, to) else {
        return Ok(None);
    };
    let outs = lens
        .iter()
        .map(|&len| dev.alloc(to, len))
        .collect::<Result<Vec<_>>>()?;
    for (runs, chunk) in ins.chunks(TABLE_LEN).zip(outs.chunks(TABLE_LEN)) {
        let mut table = StepTable::empty();
        for (&(src, len), out) in runs.iter().zip(chunk) {
            table.push(OP, (out.device_ptr(), src, len), elementwise_blocks(len))?;
        }
        dev.launch(&kernel, table.config(), kernel_args![table])?;
    }
    Ok(Some(outs))
}
