//! Helpers shared by the GPU parity tests: the device, random inputs, poisoned outputs and
//! tolerance checks against the CPU backend.

#![allow(dead_code)]

use sinew_tensor::{DType, Device, Generator, Result, Tensor};

/// The first GPU (panics with the driver's message when there is none: these tests are ignored
/// unless run on a GPU machine with `--include-ignored`).
pub fn gpu() -> Device {
    sinew_cuda::register();
    Device::cuda(0).expect("needs a CUDA GPU")
}

/// Kernels launched on `device` so far (0 on the CPU): the difference over a piece of work is
/// how many kernels it queued.
pub fn kernel_launches(device: &Device) -> u64 {
    sinew_cuda::CudaBackend::of(device).map_or(0, |c| c.kernel_launches())
}

/// Full-f32 convolutions while it lives (TF32 off: [`sinew_cuda::CudaBackend::set_conv_tf32`]),
/// for comparisons with the CPU at f32 tolerances; dropping it restores the default (TF32 on),
/// also when a failed assertion unwinds.
pub struct FullF32Conv(Device);

impl FullF32Conv {
    /// Switches TF32 convolutions off on `dev`.
    pub fn new(dev: &Device) -> Self {
        sinew_cuda::CudaBackend::of(dev)
            .expect("a CUDA device")
            .set_conv_tf32(false);
        FullF32Conv(dev.clone())
    }
}

impl Drop for FullF32Conv {
    fn drop(&mut self) {
        if let Some(backend) = sinew_cuda::CudaBackend::of(&self.0) {
            backend.set_conv_tf32(true);
        }
    }
}

/// `t` (f32) rounded to TF32 as `cvt.rna.tf32.f32` rounds it for the tensor cores: 10 mantissa
/// bits, to nearest, ties away from zero; infinities and NaNs unchanged.
pub fn tf32_rounded(t: &Tensor) -> Tensor {
    let bits = |x: f32| {
        let b = x.to_bits();
        if b & 0x7f80_0000 == 0x7f80_0000 {
            x
        } else {
            f32::from_bits((b + 0x1000) & 0xffff_e000)
        }
    };
    let values: Vec<f32> = t.to_vec::<f32>().unwrap().into_iter().map(bits).collect();
    Tensor::from_vec(values, t.shape().clone()).unwrap()
}

/// The operands of an `[m, k] @ [k, n]` product in its four orientations, as `(name, lhs, rhs)`
/// from seeds `seed..seed + 4`: row-major, or stored transposed and viewed back by `f` on each
/// device by [`oriented`] (the GPU kernels then read column-major operands in place, as a linear
/// layer's `weight.t()`).
pub fn orientations(seed: u64, (m, k, n): (usize, usize, usize), dtype: DType) -> [Oriented; 4] {
    let a = randn(seed, &[m, k], dtype);
    let b = randn(seed + 1, &[k, n], dtype);
    let at = randn(seed + 2, &[k, m], dtype);
    let bt = randn(seed + 3, &[n, k], dtype);
    [
        ("nn", [a.clone(), b.clone()], [false, false]),
        ("tn", [at.clone(), b], [true, false]),
        ("nt", [a, bt.clone()], [false, true]),
        ("tt", [at, bt], [true, true]),
    ]
}

/// One orientation of [`orientations`]: its name, the stored operands and which are transposed.
pub type Oriented = (&'static str, [Tensor; 2], [bool; 2]);

/// The product of stored operands `t` (on any device) in the orientation `transposed`.
pub fn oriented(t: &[Tensor], transposed: [bool; 2]) -> Result<Tensor> {
    let view = |x: &Tensor, tr: bool| if tr { x.t() } else { Ok(x.clone()) };
    view(&t[0], transposed[0])?.matmul(&view(&t[1], transposed[1])?)
}

/// Standard-normal values of `dtype` on the CPU, from a fixed seed.
pub fn randn(seed: u64, shape: &[usize], dtype: DType) -> Tensor {
    let t = Generator::new(seed)
        .randn(shape.to_vec(), DType::F64, &Device::cpu())
        .unwrap();
    t.to_dtype(dtype).unwrap()
}

/// Fills the GPU allocator's cache with 0xFF blocks of `bytes` so that the next outputs of that
/// size start out as NaN (floats), -1 (i64) or an invalid bool, and unwritten elements show up.
/// Whole 8-byte words are written as i64 -1 (all ones): a fill has a thread per element, and
/// the CPU emulator runs each as a fiber.
pub fn poison(dev: &Device, bytes: usize) {
    let ones = || match bytes {
        0 => Tensor::full([1], 255.0, DType::U8, dev),
        b if b % 8 == 0 => Tensor::full([b / 8], -1.0, DType::I64, dev),
        b => Tensor::full([b], 255.0, DType::U8, dev),
    };
    let blocks: Vec<Tensor> = (0..4).map(|_| ones().unwrap()).collect();
    dev.synchronize().unwrap();
    drop(blocks);
}

/// Runs `f` on the CPU and on the GPU (inputs moved there, output poisoned first) and returns
/// both results on the host.
pub fn both(
    dev: &Device,
    inputs: &[&Tensor],
    f: impl Fn(&[Tensor]) -> Result<Tensor>,
) -> (Tensor, Tensor) {
    let cpu_out = f(&inputs.iter().map(|t| (*t).clone()).collect::<Vec<_>>()).unwrap();
    let on_gpu: Vec<Tensor> = inputs.iter().map(|t| t.to_device(dev).unwrap()).collect();
    poison(dev, cpu_out.elem_count() * cpu_out.dtype().size_in_bytes());
    let gpu_out = f(&on_gpu).unwrap();
    assert_eq!(gpu_out.device(), dev);
    (cpu_out, gpu_out.to_device(&Device::cpu()).unwrap())
}

/// Largest `|gpu - cpu| / max(1, |cpu|)` (NaNs must match, infinities must be equal).
pub fn max_error(cpu: &Tensor, gpu: &Tensor) -> f64 {
    assert_eq!(cpu.dims(), gpu.dims(), "shapes differ");
    assert_eq!(cpu.dtype(), gpu.dtype(), "dtypes differ");
    let (a, b) = (cpu.to_vec_f64().unwrap(), gpu.to_vec_f64().unwrap());
    let mut worst = 0.0f64;
    for (i, (&x, &y)) in a.iter().zip(&b).enumerate() {
        if x.is_nan() || y.is_nan() {
            assert!(x.is_nan() && y.is_nan(), "element {i}: cpu {x}, gpu {y}");
            continue;
        }
        if x.is_infinite() || y.is_infinite() {
            assert_eq!(x, y, "element {i}: cpu {x}, gpu {y}");
            continue;
        }
        worst = worst.max((x - y).abs() / x.abs().max(1.0));
    }
    worst
}

/// Tolerance for elementwise results of a dtype.
pub fn tol(dtype: DType) -> f64 {
    match dtype {
        DType::F16 | DType::BF16 => 1e-2,
        DType::F32 => 1e-5,
        DType::F64 => 1e-12,
        _ => 0.0,
    }
}

/// Tolerance for convolutions of a dtype (sums of hundreds of products, rounded differently on
/// each backend).
pub fn conv_tol(dtype: DType) -> f64 {
    match dtype {
        DType::F32 => 1e-4,
        DType::F64 => 1e-10,
        DType::F16 => 2e-2,
        _ => 4e-2,
    }
}

/// Asserts the GPU result is within `tol` of the CPU one and returns the error (for the log).
pub fn check(what: &str, cpu: &Tensor, gpu: &Tensor, tol: f64) -> f64 {
    let err = max_error(cpu, gpu);
    assert!(err <= tol, "{what}: max error {err:e} > {tol:e}");
    err
}

/// The bits of each element (as f64, on the host), for bit-for-bit comparisons.
pub fn bits(t: &Tensor) -> Vec<u64> {
    let v = t.to_device(&Device::cpu()).unwrap().to_vec_f64().unwrap();
    v.iter().map(|x| x.to_bits()).collect()
}

/// Autocast's parameters and their stand-ins, for checking that an op writes a cast
/// parameter's f32 gradient itself: f32 leaves with `values`, leaves in `dtype` holding the same
/// values rounded, and what the op is given: the f32 leaves cast to `dtype` (autocast's form,
/// when `cast`) or the narrow leaves.
pub struct CastParams<const N: usize> {
    pub f32_leaves: [Tensor; N],
    pub narrow_leaves: [Tensor; N],
    pub used: [Tensor; N],
    cast: bool,
}

impl<const N: usize> CastParams<N> {
    pub fn new(values: [&Tensor; N], dtype: DType, cast: bool) -> Self {
        let f32_leaves = values.map(|t| t.detach().requires_grad_());
        let narrow_leaves = f32_leaves
            .each_ref()
            .map(|p| p.to_dtype(dtype).unwrap().detach().requires_grad_());
        let used = if cast {
            f32_leaves.each_ref().map(|p| p.to_dtype(dtype).unwrap())
        } else {
            narrow_leaves.clone()
        };
        CastParams {
            f32_leaves,
            narrow_leaves,
            used,
            cast,
        }
    }

    /// The gradients backward left in the leaves the op's inputs came from.
    pub fn grads(&self) -> [Tensor; N] {
        let leaves = if self.cast {
            &self.f32_leaves
        } else {
            &self.narrow_leaves
        };
        leaves.each_ref().map(|p| p.grad().unwrap())
    }
}
