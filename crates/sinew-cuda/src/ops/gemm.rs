//! Host side of `cuda/gemm.cu`: batched matrix products.
//!
//! Operands are read in place through their row and column strides (transposed views cost no
//! copy); broadcast batch dims reach the kernel as a [`Geometry`] of batch offsets. f16/bf16 run
//! on tensor cores with f32 accumulation; 16-byte loads are enabled per operand when its unit-stride
//! axis, other stride, offset and batch strides are all multiples of 8 elements. When both operands
//! allow them and m, n are multiples of 128 (k of 8 for f32, 32 for f16/bf16), the `matmul_fast_*`
//! kernels run instead: double-buffered float4 SIMT tiles for f32, a cp.async + ldmatrix +
//! `mma.sync` pipeline for f16/bf16.

use sinew_tensor::{DType, Error, Layout, MatmulDims, Result, Shape};

use super::{LaunchConfig, kernel_args, need};
use crate::device::CudaBackend;
use crate::geometry::Geometry;
use crate::names;
use crate::storage::CudaStorage;

/// Output tile edge of every GEMM kernel.
const TILE: usize = 128;
/// K step of the `matmul_fast_*` kernels, which need m, n multiples of [`TILE`] and k of this.
fn fast_k_step(dtype: DType) -> usize {
    if dtype == DType::F32 { 8 } else { 32 }
}

/// Kernel arguments (mirrors `GemmArgs` in `cuda/gemm.cu`).
#[repr(C)]
#[derive(Debug, Clone, Copy)]
struct GemmArgs {
    m: u32,
    n: u32,
    k: u32,
    batch: u32,
    a_rs: u64,
    a_cs: u64,
    b_rs: u64,
    b_cs: u64,
    vector: u32,
    small_m: u32,
    batch_geom: Geometry,
}

/// Whether an operand of `rows x cols` may be loaded 8 elements at a time along its unit stride,
/// with the kernel's preference for a unit column stride.
fn vector_ok(layout: &Layout) -> bool {
    let rank = layout.dims().len();
    let (rows, cols) = (layout.dims()[rank - 2], layout.dims()[rank - 1]);
    let (rs, cs) = (layout.strides()[rank - 2], layout.strides()[rank - 1]);
    let axis = if cs == 1 {
        rows == 1 || rs % 8 == 0
    } else if rs == 1 {
        cols == 1 || cs % 8 == 0
    } else {
        false
    };
    let batch = layout.dims()[..rank - 2]
        .iter()
        .zip(&layout.strides()[..rank - 2])
        .all(|(&d, &s)| d == 1 || s % 8 == 0);
    axis && batch && layout.offset() % 8 == 0
}

fn batch_layout(layout: &Layout) -> Layout {
    let rank = layout.dims().len();
    Layout::from_parts(
        Shape::new(layout.dims()[..rank - 2].to_vec()),
        layout.strides()[..rank - 2].to_vec(),
        layout.offset(),
    )
}

/// `[batch.., m, k] @ [batch.., k, n]` into a contiguous `[batch.., m, n]`.
pub(crate) fn matmul(
    dev: &CudaBackend,
    lhs: &CudaStorage,
    ll: &Layout,
    rhs: &CudaStorage,
    rl: &Layout,
    dims: MatmulDims,
) -> Result<CudaStorage> {
    const OP: &str = "matmul";
    let dtype = lhs.dtype_of();
    if rhs.dtype_of() != dtype {
        return Err(Error::DTypeMismatch {
            op: OP,
            lhs: dtype,
            rhs: rhs.dtype_of(),
        });
    }
    let MatmulDims { batch, m, n, k } = dims;
    let vector = vector_ok(ll) as u32 | (vector_ok(rl) as u32) << 1;
    let fast_kernel = names::matmul_fast(dtype).filter(|_| {
        vector == 3 && m % TILE == 0 && n % TILE == 0 && k > 0 && k % fast_k_step(dtype) == 0
    });
    // The f16/bf16 fast path (tensor cores) runs 4 warps of 64x64, and 64-row tiles when 128-row
    // ones would leave SMs idle; every other kernel runs 8 warps on 128x128 tiles.
    let tensor_fast = fast_kernel.is_some() && dtype != DType::F32;
    let small_m = tensor_fast && (m / TILE) * (n / TILE) * batch < dev.multiprocessors() as usize;
    let kernel = match fast_kernel {
        Some(fast) => fast,
        None => need(names::matmul(dtype), OP, dtype)?,
    };
    let out = dev.alloc(dtype, batch * m * n)?;
    if batch * m * n == 0 {
        return Ok(out);
    }
    let too_big =
        |what: &str| Error::invalid(OP, format!("{what} too large for the CUDA GEMM ({dims:?})"));
    let u32_of = |v: usize, what: &str| u32::try_from(v).map_err(|_| too_big(what));
    if m.div_ceil(TILE) > 65535 {
        return Err(too_big("m"));
    }
    let mut batch_geom = Geometry::new(OP, &[&batch_layout(ll), &batch_layout(rl)])?;
    batch_geom.contiguous = 0; // batch offsets always go through the strides
    let rank = ll.dims().len();
    let args = GemmArgs {
        m: u32_of(m, "m")?,
        n: u32_of(n, "n")?,
        k: u32_of(k, "k")?,
        batch: u32_of(batch, "batch")?,
        a_rs: ll.strides()[rank - 2] as u64,
        a_cs: ll.strides()[rank - 1] as u64,
        b_rs: rl.strides()[rank - 2] as u64,
        b_cs: rl.strides()[rank - 1] as u64,
        vector,
        small_m: small_m as u32,
        batch_geom,
    };
    let cfg = LaunchConfig {
        grid: (
            n.div_ceil(TILE) as u32,
            m.div_ceil(if small_m { TILE / 2 } else { TILE }) as u32,
            batch.min(65535) as u32,
        ),
        block: (if tensor_fast { 128 } else { 256 }, 1, 1),
    };
    let (a, b, c) = (lhs.device_ptr(), rhs.device_ptr(), out.device_ptr());
    dev.launch(&kernel, cfg, kernel_args![a, b, c, args])?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gemm_args_match_the_c_layout() {
        assert_eq!(std::mem::size_of::<GemmArgs>(), 56 + 256);
        assert_eq!(std::mem::offset_of!(GemmArgs, batch_geom), 56);
    }

    #[test]
    fn vector_loads_need_aligned_strides() {
        let l = Layout::contiguous([4, 64, 32]);
        assert!(vector_ok(&l));
        assert!(vector_ok(&l.permute(&[0, 2, 1]).unwrap()));
        assert!(!vector_ok(&Layout::contiguous([4, 64, 30])));
        assert!(!vector_ok(&l.slice(2, 1, 16, 1).unwrap()));
        assert!(!vector_ok(&l.slice(2, 0, 16, 2).unwrap()));
    }
}
