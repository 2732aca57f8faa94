//! Copies and dtype conversions of strided views.

use half::{bf16, f16};

use super::inplace_walk::Walk;
use super::{CpuStorage, map_view};
use crate::{DType, Element, Layout, Result, StridedOffsets};

/// Contiguous copy of a view, same dtype, allocated fallibly (errors name `op`).
pub(super) fn copy_view(op: &'static str, src: &CpuStorage, layout: &Layout) -> Result<CpuStorage> {
    Ok(with_cpu_storage!(src, v => Element::into_storage(map_view(op, v, layout, |x| x)?)))
}

/// Writes the view `src` into the view `dst_layout` of `dst`; dtypes match (checked by the caller).
pub(super) fn copy_into(
    dst: &mut CpuStorage,
    dst_layout: &Layout,
    src: &CpuStorage,
    src_layout: &Layout,
) -> Result<()> {
    fn write<T: Copy + Send + Sync + Default>(dst: &mut [T], dl: &Layout, src: &[T], sl: &Layout) {
        if let (Some((ds, de)), Some((ss, se))) = (dl.contiguous_offset(), sl.contiguous_offset()) {
            dst[ds..de].copy_from_slice(&src[ss..se]);
            return;
        }
        // Row by row (rows in parallel when large), e.g. a transposed block into a slice of a
        // batch; checked above: same dims, both views inside their storages.
        if let Some(walk) = Walk::new(dl, [sl]) {
            walk.run(dst, [src], &|_, [s]| s);
            return;
        }
        for (d, s) in StridedOffsets::starting_at(dl, 0).zip(StridedOffsets::starting_at(sl, 0)) {
            dst[d] = src[s];
        }
    }
    if dst_layout.dims() != src_layout.dims() {
        return Err(crate::Error::ShapeMismatch {
            op: "copy_",
            lhs: dst_layout.shape().clone(),
            rhs: src_layout.shape().clone(),
        });
    }
    if dst_layout.storage_extent() > dst.len() || src_layout.storage_extent() > src.len() {
        return Err(crate::Error::invalid("copy_", "a view exceeds its storage"));
    }
    if dst_layout.elem_count() == 0 {
        return Ok(());
    }
    match (dst, src) {
        (CpuStorage::F32(d), CpuStorage::F32(s)) => write(d, dst_layout, s, src_layout),
        (CpuStorage::F64(d), CpuStorage::F64(s)) => write(d, dst_layout, s, src_layout),
        (CpuStorage::F16(d), CpuStorage::F16(s)) => write(d, dst_layout, s, src_layout),
        (CpuStorage::BF16(d), CpuStorage::BF16(s)) => write(d, dst_layout, s, src_layout),
        (CpuStorage::I64(d), CpuStorage::I64(s)) => write(d, dst_layout, s, src_layout),
        (CpuStorage::U8(d), CpuStorage::U8(s)) => write(d, dst_layout, s, src_layout),
        (CpuStorage::Bool(d), CpuStorage::Bool(s)) => write(d, dst_layout, s, src_layout),
        (d, s) => {
            return Err(crate::Error::DTypeMismatch {
                op: "copy_",
                lhs: d.dtype(),
                rhs: s.dtype(),
            });
        }
    }
    Ok(())
}

const CAST: &str = "to_dtype";

fn convert<T: Element + Default>(src: &CpuStorage, layout: &Layout) -> Result<Vec<T>> {
    match src {
        // Direct paths for the conversions mixed precision uses.
        CpuStorage::F32(v) if T::DTYPE == DType::F16 || T::DTYPE == DType::BF16 => {
            map_view(CAST, v, layout, |x| T::from_f64(x as f64))
        }
        CpuStorage::F16(v) => map_view(CAST, v, layout, |x| T::from_f64(x.to_f32() as f64)),
        CpuStorage::BF16(v) => map_view(CAST, v, layout, |x| T::from_f64(x.to_f32() as f64)),
        other => {
            with_cpu_storage!(other, v => map_view(CAST, v, layout, |x| T::from_f64(x.to_f64())))
        }
    }
}

/// Converts a view to `dtype`. Floats to integers truncate toward zero and saturate; NaN becomes 0.
pub(super) fn cast(src: &CpuStorage, layout: &Layout, dtype: DType) -> Result<CpuStorage> {
    Ok(match (src, dtype) {
        (CpuStorage::I64(v), DType::I64) => CpuStorage::I64(map_view(CAST, v, layout, |x| x)?),
        (CpuStorage::F32(v), DType::F16) => {
            CpuStorage::F16(map_view(CAST, v, layout, f16::from_f32)?)
        }
        (CpuStorage::F32(v), DType::BF16) => {
            CpuStorage::BF16(map_view(CAST, v, layout, bf16::from_f32)?)
        }
        (CpuStorage::F16(v), DType::F32) => {
            CpuStorage::F32(map_view(CAST, v, layout, f16::to_f32)?)
        }
        (CpuStorage::BF16(v), DType::F32) => {
            CpuStorage::F32(map_view(CAST, v, layout, bf16::to_f32)?)
        }
        (_, DType::F32) => CpuStorage::F32(convert(src, layout)?),
        (_, DType::F64) => CpuStorage::F64(convert(src, layout)?),
        (_, DType::F16) => CpuStorage::F16(convert(src, layout)?),
        (_, DType::BF16) => CpuStorage::BF16(convert(src, layout)?),
        (_, DType::I64) => CpuStorage::I64(convert(src, layout)?),
        (_, DType::U8) => CpuStorage::U8(convert(src, layout)?),
        (_, DType::Bool) => CpuStorage::Bool(convert(src, layout)?),
    })
}
