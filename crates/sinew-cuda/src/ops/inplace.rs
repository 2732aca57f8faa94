//! Host side of `cuda/inplace.cu`: `Backend::inplace`, updating a strided destination view from
//! same-shape source views without allocating (one launch; the geometry travels by value).
//!
//! i64 `div_` and `pow_` have no in-place kernel: `div_` goes through the out-of-place kernel (which
//! detects zero divisors) and a copy back; `pow_` is unsupported for i64 as out of place. Axpy,
//! addcmul, addcdiv and lerp are float-only (`Error::UnsupportedDType` otherwise).

use sinew_tensor::{BinaryOp, DType, Element, Error, InplaceOp, Layout, Result, bf16, f16};

use super::{LaunchConfig, binary, cast, count_u32, need, unary};
use crate::device::CudaBackend;
use crate::geometry::Geometry;
use crate::names;
use crate::storage::CudaStorage;

/// The op's name in errors (the Tensor method it backs).
fn op_name(op: &InplaceOp) -> &'static str {
    match op {
        InplaceOp::Binary(_) => "inplace binary",
        InplaceOp::Unary(_) => "inplace unary",
        InplaceOp::Axpy(_) => "axpy_",
        InplaceOp::Addcmul(_) => "addcmul_",
        InplaceOp::Addcdiv(_) => "addcdiv_",
        InplaceOp::Lerp(_) => "lerp_",
        InplaceOp::Fill(_) => "fill_",
        InplaceOp::MulAxpy { .. } => "mul_axpy_",
        InplaceOp::MulAddcmul { .. } => "mul_addcmul_",
        InplaceOp::AddcdivSqrt { .. } => "addcdiv_sqrt_",
        InplaceOp::MulMaxAbs { .. } => "mul_max_abs_",
        _ => "inplace",
    }
}

/// The bits of `value` as an element of `dtype` (the CPU backend's conversion), in the low bytes.
pub(crate) fn fill_bits(dtype: DType, value: f64) -> u64 {
    match dtype {
        DType::F32 => f32::from_f64(value).to_bits() as u64,
        DType::F64 => value.to_bits(),
        DType::F16 => f16::from_f64(value).to_bits() as u64,
        DType::BF16 => bf16::from_f64(value).to_bits() as u64,
        DType::I64 => i64::from_f64(value) as u64,
        DType::U8 => u8::from_f64(value) as u64,
        DType::Bool => bool::from_f64(value) as u64,
    }
}

/// Checks the sources against the destination: count, dtype, shape; and that the destination
/// writes each element once (no broadcast dim).
fn validate(
    name: &'static str,
    op: &InplaceOp,
    dst: &CudaStorage,
    dl: &Layout,
    srcs: &[(&CudaStorage, &Layout)],
) -> Result<()> {
    if srcs.len() != op.num_sources() {
        return Err(Error::invalid(
            name,
            format!(
                "takes {} source views, got {}",
                op.num_sources(),
                srcs.len()
            ),
        ));
    }
    // The kernels write through the destination view: it must lie inside its storage.
    if dl.elem_count() > 0 && dl.storage_extent() > dst.elem_count() {
        return Err(Error::invalid(name, "destination view exceeds its storage"));
    }
    for (src, sl) in srcs {
        if sl.elem_count() > 0 && sl.storage_extent() > src.elem_count() {
            return Err(Error::invalid(name, "source view exceeds its storage"));
        }
        if src.dtype_of() != dst.dtype_of() {
            return Err(Error::DTypeMismatch {
                op: name,
                lhs: dst.dtype_of(),
                rhs: src.dtype_of(),
            });
        }
        if sl.dims() != dl.dims() {
            return Err(Error::ShapeMismatch {
                op: name,
                lhs: dl.shape().clone(),
                rhs: sl.shape().clone(),
            });
        }
    }
    let broadcast = dl
        .dims()
        .iter()
        .zip(dl.strides())
        .any(|(&d, &s)| d > 1 && s == 0);
    if broadcast {
        return Err(Error::invalid(
            name,
            format!(
                "the destination view {:?} (strides {:?}) repeats elements; write to a copy",
                dl.dims(),
                dl.strides()
            ),
        ));
    }
    Ok(())
}

/// `Backend::inplace` on the GPU (see [`InplaceOp`]).
pub(crate) fn inplace(
    dev: &CudaBackend,
    op: InplaceOp,
    dst: &mut CudaStorage,
    dl: &Layout,
    srcs: &[(&CudaStorage, &Layout)],
) -> Result<()> {
    let name = op_name(&op);
    validate(name, &op, dst, dl, srcs)?;
    let dtype = dst.dtype_of();
    let n = dl.elem_count();
    if n == 0 {
        return Ok(());
    }
    let count = count_u32(name, n)?;
    let cfg = LaunchConfig::elementwise(n);
    let d = dst.device_ptr();
    match op {
        InplaceOp::Binary(bop) => {
            let (src, sl) = srcs[0];
            let Some(kernel) = names::inplace_binary(bop, dtype) else {
                if bop == BinaryOp::Div && dtype == DType::I64 {
                    // Zero divisors are found on the device by the out-of-place kernel.
                    let out = binary::binary(dev, bop, dst, dl, src, sl)?;
                    let dense = Layout::contiguous(dl.shape().clone());
                    return cast::copy_into(dev, dst, dl, &out, &dense);
                }
                return Err(Error::UnsupportedDType {
                    op: bop.name(),
                    dtype,
                });
            };
            let g = Geometry::new(name, &[dl, sl])?;
            let s = src.device_ptr();
            dev.launch(&kernel, cfg, kernel_args![count, g, d, s])
        }
        InplaceOp::Unary(uop) => {
            let kernel = need(names::inplace_unary(&uop, dtype), uop.name(), dtype)?;
            let [p0, p1] = unary::params(uop, dtype)?;
            let g = Geometry::new(name, &[dl])?;
            dev.launch(&kernel, cfg, kernel_args![count, g, d, p0, p1])
        }
        InplaceOp::Axpy(s) | InplaceOp::Lerp(s) => {
            let kernel = need(names::inplace_scaled(op, dtype), name, dtype)?;
            let (src, sl) = srcs[0];
            let g = Geometry::new(name, &[dl, sl])?;
            let p = src.device_ptr();
            dev.launch(&kernel, cfg, kernel_args![count, g, d, p, s])
        }
        InplaceOp::Addcmul(v) | InplaceOp::Addcdiv(v) => {
            let kernel = need(names::inplace_scaled(op, dtype), name, dtype)?;
            let ((s0, l0), (s1, l1)) = (srcs[0], srcs[1]);
            let g = Geometry::new(name, &[dl, l0, l1])?;
            let (p0, p1) = (s0.device_ptr(), s1.device_ptr());
            dev.launch(&kernel, cfg, kernel_args![count, g, d, p0, p1, v])
        }
        InplaceOp::MulAxpy { .. } | InplaceOp::MulMaxAbs { .. } => {
            let kernel = need(names::inplace_scaled(op, dtype), name, dtype)?;
            let [s0, s1] = match op {
                InplaceOp::MulAxpy { scale, alpha } => [scale, alpha],
                InplaceOp::MulMaxAbs { scale, eps } => [scale, eps],
                _ => unreachable!("matched above"),
            };
            let (src, sl) = srcs[0];
            let g = Geometry::new(name, &[dl, sl])?;
            let p = src.device_ptr();
            dev.launch(&kernel, cfg, kernel_args![count, g, d, p, s0, s1])
        }
        InplaceOp::MulAddcmul { .. } | InplaceOp::AddcdivSqrt { .. } => {
            let kernel = need(names::inplace_scaled(op, dtype), name, dtype)?;
            let [s0, s1, s2] = match op {
                InplaceOp::MulAddcmul { scale, value } => [scale, value, 0.0],
                InplaceOp::AddcdivSqrt { value, scale, eps } => [value, scale, eps],
                _ => unreachable!("matched above"),
            };
            let ((a, la), (b, lb)) = (srcs[0], srcs[1]);
            let g = Geometry::new(name, &[dl, la, lb])?;
            let (pa, pb) = (a.device_ptr(), b.device_ptr());
            dev.launch(&kernel, cfg, kernel_args![count, g, d, pa, pb, s0, s1, s2])
        }
        InplaceOp::Fill(v) => {
            let bits = fill_bits(dtype, v);
            let g = Geometry::new(name, &[dl])?;
            dev.launch(
                &names::inplace_fill(dtype),
                cfg,
                kernel_args![count, g, d, bits],
            )
        }
        _ => Err(Error::NotImplemented {
            op: name,
            device: dev.location(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fill_bits_match_the_cpu_conversion() {
        for dtype in DType::ALL {
            for v in [0.0, 1.0, -2.5, 300.7, f64::NAN, f64::INFINITY, -1e300, 1e-9] {
                assert_eq!(
                    fill_bits(dtype, v),
                    cast::bit_pattern(dtype, v).unwrap(),
                    "{dtype} {v}"
                );
            }
        }
    }
}
