//! The Hopper GEMM's first-use check (`ops::gemm_sm90::ready`): every wgmma kernel, in every
//! operand orientation, against the `mma.sync` kernel on integer-valued operands, whose f32
//! sums both kernels compute exactly, so they must agree bit for bit.

use half::{bf16, f16};
use sinew_tensor::{CpuStorage, DType, Device, Generator, Layout, MatmulDims, Result};

use super::gemm::{Launch, gemm_args, plan, run};
use super::gemm_sm90::{KERNELS, launch};
use crate::device::CudaBackend;
use crate::names;

/// Sizes of the check's products: two tiles of rows and of columns, the second of each with
/// only 8 in the operands, and 9 k-tiles (the last with 8 k; more than the ring's 4 stages, so
/// stages are reused), so loads past every edge and the guarded stores are checked too.
const CHECK: MatmulDims = MatmulDims {
    batch: 1,
    m: 136,
    n: 264,
    k: 520,
};

/// Runs every wgmma kernel in every operand orientation beside the `mma.sync` kernel on the same
/// integer-valued operands; `Err(why)` on the first difference. `Err` of the outer result: a
/// device error (allocation, launch, copy).
pub(super) fn self_check(dev: &CudaBackend) -> Result<std::result::Result<(), String>> {
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
                    let c = dev.alloc(out, m * n)?;
                    let ptrs = [a_store.device_ptr(), b_store.device_ptr(), c.device_ptr()];
                    if kernel.family == names::Family::GemmSm90 {
                        if !launch(dev, &kernel, (al, bl), args, CHECK, ptrs)? {
                            return Ok(Err(format!(
                                "the driver encoded no tensor maps for the check's operands \
                                 (A strides {:?}, B strides {:?})",
                                al.strides(),
                                bl.strides()
                            )));
                        }
                    } else {
                        let launch = Launch {
                            kernel,
                            rows: plan.rows(),
                            threads: 128,
                        };
                        run(dev, &launch, args, CHECK, ptrs)?;
                    }
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
