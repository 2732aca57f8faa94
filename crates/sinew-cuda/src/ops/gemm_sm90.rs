//! Host side of `cuda/gemm_sm90.cu`: the Hopper GEMM (`wgmma.mma_async` from a 6-stage cp.async
//! ring, 128x128x64 tiles) for exact f16/bf16 shapes on compute capability 9.0.
//!
//! The kernel is chosen per GEMM ([`fits`]) once the GPU has passed [`ready`]: compute
//! capability 9.0 (its PTX targets sm_90a, which no other GPU loads), the switch
//! [`CudaBackend::set_wgmma_gemm`] on, the module loaded, 193 KiB of dynamic shared memory
//! allowed, and a check that the kernel's products equal the `mma.sync` kernel's. The check runs
//! once per GPU, at the first GEMM that could use the kernel, on integer-valued operands (whose
//! f32 sums are exact in any order, so both kernels must agree bit for bit), for each dtype,
//! operand orientation and output dtype. A GPU that fails it keeps the `mma.sync` kernel, with
//! one line on stderr saying so: the kernel has been checked on the CPU emulator, whose wgmma
//! follows the PTX ISA's description, but never on a GPU when it was written.

use half::{bf16, f16};
use sinew_tensor::{CpuStorage, DType, Device, Generator, Layout, MatmulDims, Result};

use super::gemm::{Launch, Plan, gemm_args, plan, run};
use crate::device::CudaBackend;
use crate::names;

/// Dynamic shared memory of one block: 6 stages of two 128x64 16-bit tiles, and 1 KiB to align
/// them to the swizzle pattern's period (`cuda/gemm_sm90.cu`); an H100 allows 227 KiB.
pub(super) const SHARED_BYTES: u32 = 6 * 2 * 128 * 64 * 2 + 1024;

/// `CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES`.
const MAX_DYNAMIC_SHARED: cust::sys::CUfunction_attribute =
    cust::sys::CUfunction_attribute::CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES;

/// Whether a GEMM planned as `plan` has the wgmma kernel's shape: both operands 16-byte loaded,
/// m and n multiples of 128, k a positive multiple of 64, and 128-row tiles (exact, and enough of
/// them to fill the GPU). The dtype is the caller's ([`names::matmul_sm90`]).
pub(super) fn fits(plan: &Plan, dims: MatmulDims) -> bool {
    plan.vector == 3
        && !plan.small_m
        && dims.k > 0
        && dims.k.is_multiple_of(64)
        && dims.m.is_multiple_of(128)
        && dims.n.is_multiple_of(128)
}

/// Whether exact f16/bf16 GEMMs on `dev` run the wgmma kernel (see the module docs). Decided at
/// the first call and kept; an error (out of memory during the check) is returned and decides
/// nothing.
pub(super) fn ready(dev: &CudaBackend) -> Result<bool> {
    if !dev.wgmma_gemm() || dev.compute_capability() != (9, 0) {
        return Ok(false);
    }
    if let Some(&ok) = dev.wgmma_ok.get() {
        return Ok(ok);
    }
    let verdict = match allow_shared(dev) {
        Ok(()) => self_check(dev)?,
        Err(e) => Err(format!("cannot load it: {e}")),
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
const KERNELS: [(DType, DType); 4] = [
    (DType::F16, DType::F16),
    (DType::F16, DType::F32),
    (DType::BF16, DType::BF16),
    (DType::BF16, DType::F32),
];

/// Sizes of the check's products: one block tile of rows and columns, 8 k-tiles (more than the
/// ring's 6 stages, so stages are reused).
const CHECK: MatmulDims = MatmulDims {
    batch: 1,
    m: 128,
    n: 128,
    k: 512,
};

/// Runs every wgmma kernel in every operand orientation beside the `mma.sync` kernel on the same
/// integer-valued operands; `Err(why)` on the first difference. `Err` of the outer result: a
/// device error (allocation, launch, copy).
fn self_check(dev: &CudaBackend) -> Result<std::result::Result<(), String>> {
    let MatmulDims { m, n, k, .. } = CHECK;
    // Values in {-2, ..., 2} from a fixed seed: sums of at most 512 * 4 are exact in f32.
    let values = |len: usize, seed: u64| -> Result<Vec<f32>> {
        let ints = Generator::new(seed).randint([len], -2, 3, &Device::cpu())?;
        Ok(ints
            .to_vec::<i64>()?
            .into_iter()
            .map(|v| v as f32)
            .collect())
    };
    let (a, b) = (values(m * k, 1)?, values(k * n, 2)?);
    // A as [m, k] and as its transpose stored [k, m]; B as [k, n] and stored [n, k].
    let transpose = |x: &[f32], rows: usize, cols: usize| -> Vec<f32> {
        (0..rows * cols)
            .map(|i| x[(i % rows) * cols + i / rows])
            .collect()
    };
    let (a_t, b_t) = (transpose(&a, m, k), transpose(&b, k, n));
    for (dtype, out) in KERNELS {
        let upload = |x: &[f32]| {
            dev.upload(&match dtype {
                DType::F16 => CpuStorage::F16(x.iter().map(|&v| f16::from_f32(v)).collect()),
                _ => CpuStorage::BF16(x.iter().map(|&v| bf16::from_f32(v)).collect()),
            })
        };
        let (a_km, a_mn, b_mn, b_km) = (upload(&a)?, upload(&a_t)?, upload(&b)?, upload(&b_t)?);
        let a_layouts = [
            (&a_km, Layout::contiguous([m, k])),
            (&a_mn, Layout::contiguous([k, m]).permute(&[1, 0])?),
        ];
        let b_layouts = [
            (&b_mn, Layout::contiguous([k, n])),
            (&b_km, Layout::contiguous([n, k]).permute(&[1, 0])?),
        ];
        for (a_store, al) in &a_layouts {
            for (b_store, bl) in &b_layouts {
                let plan = plan(dtype, al, bl, CHECK, 1);
                let args = gemm_args(al, bl, CHECK, plan, (0, 0, 0))?;
                let mut products = Vec::new();
                for kernel in [names::matmul_sm90(dtype, out), names::matmul(dtype, out)] {
                    let Some(kernel) = kernel else { continue };
                    let hopper = kernel.family == names::Family::GemmSm90;
                    let launch = Launch {
                        kernel,
                        rows: if hopper { 128 } else { plan.rows() },
                        threads: if hopper { 256 } else { 128 },
                        shared_bytes: if hopper { SHARED_BYTES } else { 0 },
                    };
                    let c = dev.alloc(out, m * n)?;
                    let ptrs = [a_store.device_ptr(), b_store.device_ptr(), c.device_ptr()];
                    run(dev, &launch, args, CHECK, ptrs)?;
                    products.push(dev.download(&c)?.to_f64_vec());
                }
                if products.len() != 2 || products[0] != products[1] {
                    let at = products
                        .get(1)
                        .and_then(|p| p.iter().zip(&products[0]).position(|(x, y)| x != y));
                    return Ok(Err(format!(
                        "self-check: {dtype} -> {out}, A strides {:?}, B strides {:?}: \
                         product differs from the mma.sync kernel's at element {at:?}",
                        al.strides(),
                        bl.strides()
                    )));
                }
            }
        }
    }
    Ok(Ok(()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_exact_aligned_shapes_that_fill_the_gpu_take_the_wgmma_kernel() {
        let dims = |m, k, n| MatmulDims { batch: 1, m, n, k };
        // (A's storage, (m, k, n), fits) on 132 SMs; B is a contiguous [k, n].
        let cases = [
            (Stored::Rows, (1536, 512, 1408), true),
            (Stored::Transposed, (1536, 512, 1408), true),
            // k a multiple of 32 but not of 64: the mma.sync kernel's 128-row tiles.
            (Stored::Rows, (1536, 96, 1408), false),
            // Exact but too few tiles to fill 132 SMs: the 64-row tiles.
            (Stored::Rows, (256, 512, 256), false),
            // Not tile multiples.
            (Stored::Rows, (1536, 512, 1400), false),
            (Stored::Rows, (1500, 512, 1408), false),
            // A loaded element-wise: its rows 513 elements apart, not whole 16-byte loads.
            (Stored::Padded, (1536, 512, 1408), false),
        ];
        for (stored, (m, k, n), want) in cases {
            let a = match stored {
                Stored::Rows => Layout::contiguous([m, k]),
                Stored::Transposed => Layout::contiguous([k, m]).permute(&[1, 0]).unwrap(),
                Stored::Padded => Layout::contiguous([m, k + 1]).slice(1, 0, k, 1).unwrap(),
            };
            let b = Layout::contiguous([k, n]);
            let p = plan(DType::F16, &a, &b, dims(m, k, n), 132);
            assert_eq!(fits(&p, dims(m, k, n)), want, "{m}x{k}x{n} {stored:?}");
        }
    }

    /// How a test stores A.
    #[derive(Debug, Clone, Copy)]
    enum Stored {
        Rows,
        Transposed,
        Padded,
    }
}
