//! Host side of `cuda/gemm.cu`: batched matrix products.
//!
//! Operands are read in place through their row and column strides (transposed views cost no
//! copy); broadcast batch dims reach the kernel as a [`Geometry`] of batch offsets. f16/bf16 run
//! on tensor cores with f32 accumulation; 16-byte loads are enabled per operand when its unit-stride
//! axis, other stride, offset and batch strides are all multiples of 8 elements. When both operands
//! allow them, n is a multiple of 128, m of 128 (f32) or 64 (f16/bf16) and k of 8 (f32) or 32
//! (f16/bf16), the `matmul_fast_*` kernels run instead: double-buffered float4 SIMT tiles for f32,
//! a cp.async + ldmatrix + `mma.sync` pipeline for f16/bf16. Both also take other sizes with edge
//! tiles (zero-filled loads, guarded stores) when k is a multiple of one 16-byte load (4 f32, 8
//! f16/bf16) and so is m (n) where A (B) is read along it.
//!
//! A [`MatmulSpec`]'s extras run inside every kernel: f16/bf16 operands may write f32 (the
//! accumulator, unrounded: `matmul_*_f32` kernels), and the epilogue (bias `[n]` of the output
//! dtype added to every row, then ReLU) is applied in the store stage, on the accumulator,
//! before the single rounding to the output dtype.

use sinew_tensor::{Activation, DType, Error, Layout, MatmulDims, MatmulSpec, Result, Shape};

use super::{LaunchConfig, need};
use crate::device::CudaBackend;
use crate::geometry::Geometry;
use crate::names;
use crate::storage::CudaStorage;

/// Output tile edge of every GEMM kernel.
const TILE: usize = 128;
/// K step of the `matmul_fast_*` kernels, which need n a multiple of [`TILE`], m of
/// [`fast_m_step`] and k of this.
fn fast_k_step(dtype: DType) -> usize {
    if dtype == DType::F32 { 8 } else { 32 }
}

/// Row step of the `matmul_fast_*` kernels: [`TILE`] for f32, 64 for f16/bf16 (whose fast
/// kernel also runs 64-row tiles).
fn fast_m_step(dtype: DType) -> usize {
    if dtype == DType::F32 { TILE } else { TILE / 2 }
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
    bias: u64,
    bias_stride: u64,
    epilogue: u32,
    edge: u32,
    batch_geom: Geometry,
}

/// Bit of `GemmArgs::epilogue`: add the bias.
const EPI_BIAS: u32 = 1;
/// Bit of `GemmArgs::epilogue`: ReLU last.
const EPI_RELU: u32 = 2;

/// What one GEMM computes: sizes, output dtype and epilogue (a [`MatmulSpec`] with the bias
/// resolved to a CUDA storage).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Epilogue<'a> {
    dims: MatmulDims,
    out_dtype: Option<DType>,
    bias: Option<(&'a CudaStorage, &'a Layout)>,
    activation: Option<Activation>,
}

impl<'a> Epilogue<'a> {
    /// The spec's sizes, dtype and epilogue, with its bias as `bias`.
    pub(crate) fn of(spec: &MatmulSpec<'_>, bias: Option<(&'a CudaStorage, &'a Layout)>) -> Self {
        Epilogue {
            dims: spec.dims,
            out_dtype: spec.out_dtype,
            bias,
            activation: spec.activation,
        }
    }
}

/// The epilogue's `(bias address, bias stride, flags)` after checking the bias: `[n]`, of the
/// output dtype, inside its storage.
fn epilogue_args(dev: &CudaBackend, spec: &Epilogue<'_>, out: DType) -> Result<(u64, u64, u32)> {
    const OP: &str = "matmul";
    let mut flags = match spec.activation {
        None => 0,
        Some(Activation::Relu) => EPI_RELU,
        Some(_) => {
            return Err(Error::NotImplemented {
                op: "matmul activation",
                device: dev.location(),
            });
        }
    };
    let Some((bias, layout)) = spec.bias else {
        return Ok((0, 0, flags));
    };
    let n = spec.dims.n;
    if layout.dims() != [n] {
        return Err(Error::invalid(
            OP,
            format!(
                "bias of shape {} for an output with {n} columns",
                layout.shape()
            ),
        ));
    }
    if bias.dtype_of() != out {
        return Err(Error::DTypeMismatch {
            op: OP,
            lhs: out,
            rhs: bias.dtype_of(),
        });
    }
    if layout.storage_extent() > bias.elem_count() {
        return Err(Error::invalid(OP, "bias view exceeds its storage"));
    }
    flags |= EPI_BIAS;
    Ok((
        bias.ptr_at(layout.offset()),
        layout.strides()[0] as u64,
        flags,
    ))
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
    axis && batch && layout.offset().is_multiple_of(8)
}

/// Elements in one 16-byte load of the fast kernels.
fn chunk_elems(dtype: DType) -> usize {
    16 / dtype.size_in_bytes()
}

/// Whether the fast kernels can run `[m, k] @ [k, n]` with edge tiles: their 16-byte loads of
/// `chunk` elements must lie wholly inside or outside each operand, so k must be a multiple of
/// `chunk`, and so must m (n) when A (B) is read along m (n), i.e. its unit stride is not along
/// k. (Both operands have passed [`vector_ok`].)
fn edge_tiles_ok(a: &Layout, b: &Layout, (m, n, k): (usize, usize, usize), chunk: usize) -> bool {
    let unit_col = |l: &Layout| l.strides()[l.dims().len() - 1] == 1;
    let a_along_k = unit_col(a);
    let b_along_k = !unit_col(b);
    k % chunk == 0 && (a_along_k || m % chunk == 0) && (b_along_k || n % chunk == 0)
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
    spec: &Epilogue<'_>,
) -> Result<CudaStorage> {
    let dims = spec.dims;
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
    let out_dtype = spec.out_dtype.unwrap_or(dtype);
    let general = need(names::matmul(dtype, dtype), OP, dtype)?;
    let general = if out_dtype == dtype {
        general
    } else {
        names::matmul(dtype, out_dtype).ok_or_else(|| {
            Error::invalid(
                OP,
                format!(
                    "{dtype} operands cannot be written as {out_dtype} (f16/bf16 may write f32)"
                ),
            )
        })?
    };
    let (bias, bias_stride, epilogue) = epilogue_args(dev, spec, out_dtype)?;
    let vector = vector_ok(ll) as u32 | (vector_ok(rl) as u32) << 1;
    let tiles_fit = m % fast_m_step(dtype) == 0 && n % TILE == 0 && k % fast_k_step(dtype) == 0;
    let edge = !tiles_fit && edge_tiles_ok(ll, rl, (m, n, k), chunk_elems(dtype));
    let fast_kernel = names::matmul_fast(dtype, out_dtype)
        .filter(|_| vector == 3 && k > 0 && (tiles_fit || edge));
    // The f16/bf16 fast path (tensor cores) runs 4 warps of 64x64, and 64-row tiles when m is
    // not a multiple of 128 (a ResNet stage of 64 channels), when 128-row ones would leave SMs
    // idle, or at the edges of shapes that are not tile multiples; every other kernel runs 8
    // warps on 128x128 tiles.
    let tensor_fast = fast_kernel.is_some() && dtype != DType::F32;
    let small_m = tensor_fast
        && (edge
            || m % TILE != 0
            || (m / TILE) * (n / TILE) * batch < dev.multiprocessors() as usize);
    let kernel = fast_kernel.unwrap_or(general);
    let total = batch
        .checked_mul(m)
        .and_then(|bm| bm.checked_mul(n))
        .ok_or_else(|| Error::invalid(OP, format!("output size overflows ({dims:?})")))?;
    let out = dev.alloc(out_dtype, total)?;
    if total == 0 {
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
        bias,
        bias_stride,
        epilogue,
        edge: (fast_kernel.is_some() && edge) as u32,
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
        assert_eq!(std::mem::size_of::<GemmArgs>(), 80 + 256);
        assert_eq!(std::mem::offset_of!(GemmArgs, bias), 56);
        assert_eq!(std::mem::offset_of!(GemmArgs, epilogue), 72);
        assert_eq!(std::mem::offset_of!(GemmArgs, batch_geom), 80);
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
