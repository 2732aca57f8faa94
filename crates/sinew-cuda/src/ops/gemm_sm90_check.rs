//! The Hopper GEMM's first-use check (`ops::gemm_sm90::ready`): every wgmma kernel, in every
//! operand orientation, on integer-valued operands whose exact product is computed here (f32
//! sums of small integers are exact in any order, so the kernel must match it bit for bit, once
//! rounded to the output dtype). It runs in a CUDA context of its own, destroyed after: the
//! kernel had never run on a GPU when it was written, and a fault in it (an address or
//! instruction the GPU rejects) poisons only that context, not the backend's, which runs the
//! kernel only once it has passed.

use cust::context::legacy::{Context, ContextFlags, ContextStack};
use cust::function::{Function, FunctionAttribute};
use cust::memory::{CopyDestination, DeviceBuffer, DeviceCopy};
use cust::module::Module;
use cust::sys::CUresult;
use half::{bf16, f16};
use sinew_tensor::{DType, Device, Generator, Layout, MatmulDims, Result};

use super::gemm::{gemm_args, plan};
use super::gemm_sm90::{KERNELS, MAX_DYNAMIC_SHARED, SHARED_BYTES, THREADS, blocks, maps};
use crate::device::CudaBackend;
use crate::names::{self, Family, Kernel};

/// Registers a thread the kernel must be launched with: what the producer (40) and the two
/// consumer warpgroups (232) hold after `setmaxnreg`, over 384 threads.
const MIN_REGISTERS: i32 = (128 * 40 + 256 * 232) / 384;

/// Sizes of the check's products: two tiles of rows and of columns, the second of each with
/// only 8 in the operands, and 9 k-tiles (the last with 8 k; more than the ring's 4 stages, so
/// stages are reused), so loads past every edge and the guarded stores are checked too.
const CHECK: MatmulDims = MatmulDims {
    batch: 1,
    m: 136,
    n: 264,
    k: 520,
};

/// Runs the check on `dev`'s GPU: `Ok(Err(why))` when a kernel's product differs from the exact
/// one, or the probe's context, module, memory or launch failed. `Err`: only host-side errors.
pub(super) fn self_check(dev: &CudaBackend) -> Result<std::result::Result<(), String>> {
    let MatmulDims { m, n, k, .. } = CHECK;
    // Values in {-2, ..., 2} from a fixed seed: sums of at most 520 * 4 are exact in f32.
    let values = |len: usize, seed: u64| -> Result<Vec<f32>> {
        let ints = Generator::new(seed).randint([len], -2, 3, &Device::cpu())?;
        Ok(ints
            .to_vec::<i64>()?
            .into_iter()
            .map(|v| v as f32)
            .collect())
    };
    let (a, b) = (values(m * k, 1)?, values(k * n, 2)?);
    let mut exact = vec![0.0f32; m * n];
    for (i, row) in exact.chunks_mut(n).enumerate() {
        for (kk, &x) in a[i * k..(i + 1) * k].iter().enumerate() {
            for (o, &y) in row.iter_mut().zip(&b[kk * n..(kk + 1) * n]) {
                *o += x * y;
            }
        }
    }
    Ok(probe(dev, &a, &b, &exact))
}

/// A context of the check's own, current on this thread while it lives; dropping it makes the
/// backend's context current again, then destroys it (with whatever a fault left in it).
struct ProbeContext {
    _context: Context,
}

impl Drop for ProbeContext {
    fn drop(&mut self) {
        let _ = ContextStack::pop();
    }
}

/// The check proper, in a fresh context of `dev`'s GPU: `a` `[m, k]` and `b` `[k, n]`, their
/// exact product `exact`.
fn probe(
    dev: &CudaBackend,
    a: &[f32],
    b: &[f32],
    exact: &[f32],
) -> std::result::Result<(), String> {
    let MatmulDims { m, n, k, .. } = CHECK;
    let device = cust::device::Device::get_device(dev.ordinal() as u32)
        .map_err(|e| in_probe("cuDeviceGet", &e))?;
    // Declared first, so dropped last: everything below lives in this context.
    let _probe = ProbeContext {
        _context: Context::create_and_push(ContextFlags::SCHED_AUTO, device)
            .map_err(|e| in_probe("cuCtxCreate", &e))?,
    };
    let module = Module::from_ptx(crate::ptx::ptx(Family::GemmSm90), &[])
        .map_err(|e| in_probe("loading the PTX", &e))?;
    let transpose = |x: &[f32], rows: usize, cols: usize| -> Vec<f32> {
        (0..rows * cols)
            .map(|i| x[(i % rows) * cols + i / rows])
            .collect()
    };
    // A as [m, k] and as its transpose stored [k, m]; B as [k, n] and stored [n, k].
    let stored = [
        a.to_vec(),
        transpose(a, m, k),
        b.to_vec(),
        transpose(b, k, n),
    ];
    let layout = |t: bool, rows: usize, cols: usize| -> std::result::Result<Layout, String> {
        if t {
            Layout::contiguous([cols, rows])
                .permute(&[1, 0])
                .map_err(|e| e.to_string())
        } else {
            Ok(Layout::contiguous([rows, cols]))
        }
    };
    for (dtype, out) in KERNELS {
        let Some(kernel) = names::matmul_sm90(dtype, out) else {
            continue;
        };
        let function = module
            .get_function(kernel.name())
            .map_err(|e| in_probe("cuModuleGetFunction", &e))?;
        prepare(&function, &kernel)?;
        let buffers = stored
            .iter()
            .map(|x| DeviceBuffer::from_slice(&bits(dtype, x)))
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(|e| in_probe("uploading the operands", &e))?;
        for (a_t, b_t) in [(false, false), (true, false), (false, true), (true, true)] {
            let layouts = (layout(a_t, m, k)?, layout(b_t, k, n)?);
            let what = format!(
                "{dtype} -> {out}, A strides {:?}, B strides {:?}",
                layouts.0.strides(),
                layouts.1.strides()
            );
            let operands = [
                buffers[a_t as usize].as_device_ptr().as_raw(),
                buffers[2 + b_t as usize].as_device_ptr().as_raw(),
            ];
            let run = |c: u64| {
                let [a, b] = operands;
                launch(
                    &function,
                    (&layouts.0, &layouts.1),
                    [a, b, c],
                    dtype,
                    dev.multiprocessors(),
                )
                .map_err(|e| format!("{what}: {e}"))
            };
            let got = product(out, m * n, run)?;
            let want = |v: f32| match out {
                DType::F16 => f16::from_f32(v).to_f32(),
                DType::BF16 => bf16::from_f32(v).to_f32(),
                _ => v,
            };
            if let Some(i) = (0..m * n).find(|&i| got[i].to_bits() != want(exact[i]).to_bits()) {
                return Err(format!(
                    "self-check: {what}: element {i} is {}, the exact product {}",
                    got[i],
                    want(exact[i])
                ));
            }
        }
    }
    Ok(())
}

/// What failed in the check's context, and the driver's answer.
fn in_probe(what: &str, e: &dyn std::fmt::Debug) -> String {
    format!("{what} in the check's context: {e:?}")
}

/// `x` as the 16-bit patterns of `dtype` (f16 or bf16).
fn bits(dtype: DType, x: &[f32]) -> Vec<u16> {
    match dtype {
        DType::F16 => x.iter().map(|&v| f16::from_f32(v).to_bits()).collect(),
        _ => x.iter().map(|&v| bf16::from_f32(v).to_bits()).collect(),
    }
}

/// Readies `function` (the kernel `kernel`) to launch: its compiled register count leaves the
/// warpgroups' split room, and it may use [`SHARED_BYTES`] of dynamic shared memory.
fn prepare(function: &Function<'_>, kernel: &Kernel) -> std::result::Result<(), String> {
    // The producer hands back registers (setmaxnreg 40) that the consumers take (232): a
    // block launched with fewer than 168 a thread would leave `setmaxnreg.inc` waiting for
    // ever (128 x 40 + 256 x 232 = 168 x 384).
    let regs = function
        .get_attribute(FunctionAttribute::NumRegisters)
        .map_err(|e| in_probe("cuFuncGetAttribute", &e))?;
    if regs < MIN_REGISTERS {
        return Err(format!(
            "the driver compiled {kernel} to {regs} registers a thread; its warpgroups' \
             split needs {MIN_REGISTERS}"
        ));
    }
    // SAFETY: `function` belongs to a module loaded in the current (probe) context; the
    // attribute takes a byte count, which the launches stay within.
    let code = unsafe {
        cust::sys::cuFuncSetAttribute(function.to_raw(), MAX_DYNAMIC_SHARED, SHARED_BYTES as i32)
    };
    if code != CUresult::CUDA_SUCCESS {
        return Err(in_probe("cuFuncSetAttribute", &code));
    }
    Ok(())
}

/// Runs `function` on `dtype` operands at `[a, b]` with `layouts` into `c`, on the check's
/// shape, and waits for it.
fn launch(
    function: &Function<'_>,
    (al, bl): (&Layout, &Layout),
    [a, b, c]: [u64; 3],
    dtype: DType,
    multiprocessors: u32,
) -> std::result::Result<(), String> {
    let args = gemm_args(al, bl, CHECK, plan(dtype, al, bl, CHECK, 1), (0, 0, 0))
        .map_err(|e| e.to_string())?;
    let (ta, tb, batched) =
        maps(a, b, (al, bl), 1).ok_or_else(|| "the driver encoded no tensor maps".to_string())?;
    let params = crate::kernel_args![ta, tb, c, args, batched];
    // SAFETY: one pointer per kernel parameter, each to a value of its C type (two CUtensorMaps
    // of the caller's live buffers, the output's address, GemmArgs, the batch bits); the
    // output holds the check's m * n elements of the kernel's output dtype; the function's
    // context is current and the stream is its default one.
    let code = unsafe {
        cust::sys::cuLaunchKernel(
            function.to_raw(),
            blocks(CHECK, multiprocessors),
            1,
            1,
            THREADS,
            1,
            1,
            SHARED_BYTES,
            std::ptr::null_mut(),
            params.as_ptr() as *mut *mut std::ffi::c_void,
            std::ptr::null_mut(),
        )
    };
    // SAFETY: a plain synchronisation of the current (probe) context.
    let sync = unsafe { cust::sys::cuCtxSynchronize() };
    match (code, sync) {
        (CUresult::CUDA_SUCCESS, CUresult::CUDA_SUCCESS) => Ok(()),
        _ => Err(format!("the kernel failed (launch {code:?}, run {sync:?})")),
    }
}

/// The `len` outputs of `run` (which writes them at the address it is given) as f32, read as
/// `out` values, into an output poisoned with NaN first.
fn product(
    out: DType,
    len: usize,
    run: impl FnOnce(u64) -> std::result::Result<(), String>,
) -> std::result::Result<Vec<f32>, String> {
    if out == DType::F32 {
        return download(&vec![f32::NAN; len], run);
    }
    let raw = download(&vec![0xffffu16; len], run)?;
    Ok(match out {
        DType::F16 => raw.iter().map(|&v| f16::from_bits(v).to_f32()).collect(),
        _ => raw.iter().map(|&v| bf16::from_bits(v).to_f32()).collect(),
    })
}

/// Uploads `poison` as the output, runs `run` on its device address, and downloads it.
fn download<T: DeviceCopy + Default + Clone>(
    poison: &[T],
    run: impl FnOnce(u64) -> std::result::Result<(), String>,
) -> std::result::Result<Vec<T>, String> {
    let c =
        DeviceBuffer::from_slice(poison).map_err(|e| format!("allocating the output: {e:?}"))?;
    run(c.as_device_ptr().as_raw())?;
    let mut host = vec![T::default(); poison.len()];
    c.copy_to(&mut host[..])
        .map_err(|e| format!("downloading the output: {e:?}"))?;
    Ok(host)
}
