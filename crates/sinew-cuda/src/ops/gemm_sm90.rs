//! Host side of `cuda/gemm_sm90.cu`: the Hopper GEMM (TMA loads into a 4-stage ring, a producer
//! warpgroup and two consumer warpgroups of `wgmma.mma_async`, 128x256x64 tiles on a persistent
//! grid) for f16/bf16 operands TMA can load, on compute capability 9.0.
//!
//! The kernel is chosen per GEMM ([`fits`], then [`launch`] encodes the operands' tensor maps)
//! once the GPU has passed [`ready`]: compute capability 9.0 (its PTX targets sm_90a, which no
//! other GPU loads), the switch [`CudaBackend::set_wgmma_gemm`] on, the driver's
//! `cuTensorMapEncodeTiled` found, a check that the kernel's products are exact, then the module
//! loaded and its dynamic shared memory allowed. The check (`ops::gemm_sm90_check`) runs once per
//! GPU, at the first GEMM that could use the kernel, in a CUDA context of its own (a fault there
//! cannot poison the backend's), on integer-valued operands (whose f32 sums are exact in any
//! order) of a shape with edges in m, n and k, for each dtype, operand orientation and output
//! dtype. A GPU that fails it keeps the `mma.sync` kernel, with one line on stderr saying so: the
//! kernel has been checked on the CPU emulator, whose wgmma, TMA and mbarriers follow the PTX
//! ISA's description, but never on a GPU when it was written.

use sinew_tensor::{DType, Layout, MatmulDims, Result};

use super::gemm::{GemmArgs, Plan};
use super::tensor_map::{self, TensorMap, TiledView};
use super::{LaunchConfig, gemm_sm90_check};
use crate::device::CudaBackend;
use crate::names::{self, Kernel};

/// Rows and columns of one block tile, and the k of one stage.
const TILE_M: usize = 128;
const TILE_N: usize = 256;
const TILE_K: u32 = 64;
/// Threads of one block: the producer warpgroup and two consumer warpgroups.
pub(super) const THREADS: u32 = 384;

/// Dynamic shared memory of one block: 4 stages of a 128x64 and a 256x64 16-bit tile, 8
/// mbarriers, and 1 KiB to align the ring to the swizzle pattern's period
/// (`cuda/gemm_sm90.cu`); an H100 allows 227 KiB.
pub(super) const SHARED_BYTES: u32 = 4 * (128 + 256) * 64 * 2 + 8 * 8 + 1024;

/// `CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES`.
pub(super) const MAX_DYNAMIC_SHARED: cust::sys::CUfunction_attribute =
    cust::sys::CUfunction_attribute::CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES;

/// Whether a GEMM planned as `plan` may take the wgmma kernel on a GPU of `multiprocessors`
/// SMs: both operands 16-byte loadable (aligned, a unit stride, the other strides multiples of
/// 16 bytes), each with one batch stride or none ([`batch_stride`]), k > 0, and enough 128x256
/// tiles to keep at least half the SMs busy (smaller products run the `mma.sync` kernel's
/// 64-row tiles). m, n and k need not be tile multiples. The dtype is the caller's
/// ([`names::matmul_sm90`]).
pub(super) fn fits(
    plan: &Plan,
    a: &Layout,
    b: &Layout,
    dims: MatmulDims,
    multiprocessors: usize,
) -> bool {
    let tiles = tiles(dims);
    plan.vector == 3
        && dims.k > 0
        && tiles.saturating_mul(2) >= multiprocessors
        && tiles <= i32::MAX as usize
        && batch_stride(a).is_some()
        && batch_stride(b).is_some()
}

/// Output tiles of the product (saturating).
fn tiles(dims: MatmulDims) -> usize {
    dims.m
        .div_ceil(TILE_M)
        .saturating_mul(dims.n.div_ceil(TILE_N))
        .saturating_mul(dims.batch)
}

/// The one stride (in elements) that steps through `layout`'s batch dimensions in order, `Some(0)`
/// when none has more than one element or all are broadcast, `None` when they do not form one
/// progression (the kernel's tensor maps have a single batch dimension).
fn batch_stride(layout: &Layout) -> Option<usize> {
    let rank = layout.dims().len();
    let batch: Vec<(usize, usize)> = layout.dims()[..rank - 2]
        .iter()
        .zip(&layout.strides()[..rank - 2])
        .filter(|&(&d, _)| d > 1)
        .map(|(&d, &s)| (d, s))
        .collect();
    if batch.iter().all(|&(_, s)| s == 0) {
        return Some(0);
    }
    let inner = batch.last()?.1;
    let mut step = inner;
    for &(d, s) in batch.iter().rev() {
        if s != step {
            return None;
        }
        step = step.checked_mul(d)?;
    }
    Some(inner)
}

/// The TMA view of one operand of `[batch.., rows, k]` (A, `rows` = m) or `[batch.., k, rows]`
/// (B, `rows` = n) at device address `ptr`: `[k, rows, batch]` when k is its unit stride (boxes
/// of 64 k by all the tile's rows), else `[rows, k, batch]` (boxes of 64 rows by 64 k). A
/// dimension of one element gets a packed stride (the layout's is arbitrary there), and so does
/// the batch of an operand every batch shares.
fn view(ptr: u64, layout: &Layout, is_b: bool, tile_rows: u32, batch: usize) -> Option<TiledView> {
    let rank = layout.dims().len();
    let (d, s) = (&layout.dims()[rank - 2..], &layout.strides()[rank - 2..]);
    // (rows, k) and their strides, whichever operand this is.
    let (rows, k, rs, ks) = if is_b {
        (d[1], d[0], s[1], s[0])
    } else {
        (d[0], d[1], s[0], s[1])
    };
    let k_major = if is_b { s[1] != 1 } else { s[1] == 1 };
    let (inner, outer, outer_stride, boxed) = if k_major {
        (k, rows, rs, [TILE_K, tile_rows, 1])
    } else {
        (rows, k, ks, [64, TILE_K, 1])
    };
    let packed = (inner as u64 * 2).div_ceil(16) * 16;
    let stride1 = if outer == 1 {
        packed
    } else {
        outer_stride as u64 * 2
    };
    let step = batch_stride(layout)?;
    let (batches, stride2) = if step == 0 || batch == 1 {
        (1, stride1.checked_mul(outer as u64)?)
    } else {
        (batch as u64, step as u64 * 2)
    };
    Some(TiledView {
        address: ptr.checked_add(layout.offset() as u64 * 2)?,
        dims: [inner as u64, outer as u64, batches],
        strides: [stride1, stride2],
        boxed,
    })
}

/// The kernel's parameters for operands at device addresses `a`, `b` with `layouts`: A's and B's
/// tensor maps and the batched bits (bit 0: A has a batch stride, bit 1: B), or `None` when the
/// driver will not encode a map for them.
pub(super) fn maps(
    a: u64,
    b: u64,
    (a_layout, b_layout): (&Layout, &Layout),
    batch: usize,
) -> Option<(TensorMap, TensorMap, u32)> {
    let av = view(a, a_layout, false, TILE_M as u32, batch)?;
    let bv = view(b, b_layout, true, TILE_N as u32, batch)?;
    let (ta, tb) = (tensor_map::encode(&av).ok()?, tensor_map::encode(&bv).ok()?);
    Some((
        ta,
        tb,
        (av.dims[2] > 1) as u32 | ((bv.dims[2] > 1) as u32) << 1,
    ))
}

/// Blocks of the persistent grid: one per SM (each uses most of its shared memory), or one per
/// tile when there are fewer. `fits` checked the tile count fits the kernel's 32 bits.
pub(super) fn blocks(dims: MatmulDims, multiprocessors: u32) -> u32 {
    tiles(dims).min(multiprocessors.max(1) as usize) as u32
}

/// Queues `[batch.., m, k] @ [batch.., k, n]` on the wgmma kernel `kernel`, `[a, b, c]` the
/// operands' and the contiguous output's device addresses. `Ok(false)`: the driver would not
/// encode a tensor map for these operands (nothing was queued; the caller runs the `mma.sync`
/// kernel).
pub(super) fn launch(
    dev: &CudaBackend,
    kernel: &Kernel,
    layouts: (&Layout, &Layout),
    args: GemmArgs,
    dims: MatmulDims,
    [a, b, c]: [u64; 3],
) -> Result<bool> {
    let Some((ta, tb, batched)) = maps(a, b, layouts, dims.batch) else {
        return Ok(false);
    };
    let cfg = LaunchConfig {
        grid: (blocks(dims, dev.multiprocessors()), 1, 1),
        block: (THREADS, 1, 1),
    };
    dev.launch_with_shared(
        kernel,
        cfg,
        SHARED_BYTES,
        crate::kernel_args![ta, tb, c, args, batched],
    )?;
    Ok(true)
}

/// Whether f16/bf16 GEMMs on `dev` may run the wgmma kernel (see the module docs). Decided at
/// the first call and kept; an error (out of memory during the check) is returned and decides
/// nothing.
pub(super) fn ready(dev: &CudaBackend) -> Result<bool> {
    if !dev.wgmma_gemm() || dev.compute_capability() != (9, 0) {
        return Ok(false);
    }
    if let Some(&ok) = dev.wgmma_ok.get() {
        return Ok(ok);
    }
    // The check first, in a context of its own; only then is the kernel loaded here.
    let verdict = match gemm_sm90_check::self_check(dev)? {
        Ok(()) => allow_shared(dev).map_err(|e| format!("cannot load it: {e}")),
        Err(why) => Err(why),
    };
    if let Err(why) = &verdict {
        eprintln!(
            "sinew-cuda: {}: the sm_90a wgmma GEMM is off ({why}); f16/bf16 GEMMs run the \
             mma.sync kernel",
            dev.location()
        );
    }
    // A racing thread may have decided too; both decide alike.
    let _ = dev.wgmma_ok.set(verdict.is_ok());
    Ok(verdict.is_ok())
}

/// Loads the four kernels and allows each [`SHARED_BYTES`] of dynamic shared memory.
fn allow_shared(dev: &CudaBackend) -> Result<()> {
    for (dtype, out) in KERNELS {
        let Some(kernel) = names::matmul_sm90(dtype, out) else {
            continue;
        };
        let function = dev.function(&kernel)?;
        // SAFETY: `function` is a live function of a module this backend keeps loaded; the
        // attribute takes a byte count, which the launch then stays within.
        let code = unsafe {
            cust::sys::cuFuncSetAttribute(function.0, MAX_DYNAMIC_SHARED, SHARED_BYTES as i32)
        };
        crate::driver::check_with(code, dev.location(), || {
            format!("allowing {kernel} {SHARED_BYTES} bytes of shared memory")
        })?;
    }
    Ok(())
}

/// `(operand dtype, output dtype)` of each wgmma kernel.
pub(super) const KERNELS: [(DType, DType); 4] = [
    (DType::F16, DType::F16),
    (DType::F16, DType::F32),
    (DType::BF16, DType::BF16),
    (DType::BF16, DType::F32),
];

#[cfg(test)]
mod tests {
    use super::super::gemm::plan;
    use super::*;

    #[test]
    fn aligned_products_that_fill_half_the_gpu_take_the_wgmma_kernel_at_any_size() {
        let dims = |batch, m, k, n| MatmulDims { batch, m, n, k };
        // (A's storage, (batch, m, k, n), fits) on 132 SMs; B is a contiguous [k, n] (shared by
        // every batch).
        let cases = [
            (Stored::Rows, (1, 1536, 512, 1408), true),
            (Stored::Transposed, (1, 1536, 512, 1408), true),
            // Not tile multiples: TMA zero-fills past the edges.
            (Stored::Rows, (1, 1500, 520, 1400), true),
            (Stored::Rows, (1, 1536, 96, 1408), true),
            // 16 x 8 = 128 tiles: on 132 SMs, enough.
            (Stored::Rows, (1, 2048, 2048, 2048), true),
            // 8 x 4 = 32 tiles: too few; the mma.sync kernel's 64-row tiles.
            (Stored::Rows, (1, 1024, 1024, 1024), false),
            // ... unless batches make up the rest.
            (Stored::Rows, (4, 1024, 1024, 1024), true),
            // A loaded element-wise: its rows 513 elements apart, not whole 16-byte loads.
            (Stored::Padded, (1, 1536, 512, 1408), false),
            // A's batches in no one progression.
            (Stored::Gapped, (4, 1536, 512, 1408), false),
        ];
        for (stored, (batch, m, k, n), want) in cases {
            let a = match stored {
                Stored::Rows => Layout::contiguous([batch, m, k]),
                Stored::Transposed => Layout::contiguous([batch, k, m])
                    .permute(&[0, 2, 1])
                    .unwrap(),
                Stored::Padded => Layout::contiguous([batch, m, k + 1])
                    .slice(2, 0, k, 1)
                    .unwrap(),
                Stored::Gapped => Layout::from_parts(
                    sinew_tensor::Shape::new(vec![2, 2, m, k]),
                    vec![3 * m * k, m * k, k, 1],
                    0,
                ),
            };
            let b = Layout::from_parts(
                sinew_tensor::Shape::new(vec![batch, k, n]),
                vec![0, n, 1],
                0,
            );
            let d = dims(batch, m, k, n);
            let p = plan(DType::F16, &a, &b, d, 132);
            assert_eq!(
                fits(&p, &a, &b, d, 132),
                want,
                "{batch}x{m}x{k}x{n} {stored:?}"
            );
        }
    }

    #[test]
    fn tensor_map_views_follow_each_operands_unit_stride_and_batch() {
        let (m, k, n) = (136, 520, 264);
        // A [2, m, k] contiguous: k-major boxes of 64 k by 128 rows, batch stride m * k.
        let a = Layout::contiguous([2, m, k]);
        let v = view(4096, &a, false, 128, 2).unwrap();
        assert_eq!(v.dims, [k as u64, m as u64, 2]);
        assert_eq!(v.strides, [k as u64 * 2, (m * k) as u64 * 2]);
        assert_eq!(v.boxed, [64, 128, 1]);
        // B [k, n] (n its unit stride) shared by 2 batches: MN-major boxes of 64 by 64, one batch
        // with a packed stride.
        let b = Layout::from_parts(sinew_tensor::Shape::new(vec![2, k, n]), vec![0, n, 1], 8);
        let v = view(4096, &b, true, 256, 2).unwrap();
        assert_eq!(v.address, 4096 + 16);
        assert_eq!(v.dims, [n as u64, k as u64, 1]);
        assert_eq!(v.strides, [n as u64 * 2, (k * n) as u64 * 2]);
        assert_eq!(v.boxed, [64, 64, 1]);
        // B stored [n, k] and transposed: k-major boxes of 64 k by 256 columns.
        let bt = Layout::contiguous([n, k]).permute(&[1, 0]).unwrap();
        let v = view(0, &bt, true, 256, 1).unwrap();
        assert_eq!(v.dims, [k as u64, n as u64, 1]);
        assert_eq!(v.boxed, [64, 256, 1]);
        // One row: its (arbitrary) stride is replaced by a packed one.
        let row = Layout::from_parts(sinew_tensor::Shape::new(vec![1, 12]), vec![7, 1], 0);
        assert_eq!(view(0, &row, false, 128, 1).unwrap().strides, [32, 32]);
    }

    /// How a test stores A.
    #[derive(Debug, Clone, Copy)]
    enum Stored {
        Rows,
        Transposed,
        Padded,
        Gapped,
    }
}
