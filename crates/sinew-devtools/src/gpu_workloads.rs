//! The workloads of `bench` (issue 14's table): GEMM, ResNet-shaped convolutions and whole
//! training steps in f32 and mixed precision, on any device. `scripts/torch_gpu_bench.py` has the
//! same workloads under the same names for the PyTorch column; both print the reference's line
//! format ([`crate::cpu_workloads::format_line`]).

use std::time::Instant;

use sinew_nn::functional::cross_entropy;
use sinew_nn::zoo::{lenet5, mlp, resnet18, vgg16};
use sinew_nn::{Conv2d, Conv2dOptions, Module, ModuleExt};
use sinew_optim::{GradScaler, GradScalerConfig, Optimizer, Sgd, SgdConfig, sgd};
use sinew_tensor::{DType, Device, Error, Generator, Result, Tensor, autocast, manual_seed};

use crate::cpu_workloads::{Stats, format_line, median};

/// The workload names, in table order.
pub const NAMES: [&str; 31] = [
    "gemm f32 1024",
    "gemm f32 2048",
    "gemm f32 4096",
    "gemm f16 1024",
    "gemm f16 2048",
    "gemm f16 4096",
    // Not tile multiples, k not a multiple of one 16-byte load: every operand loaded element-wise.
    "gemm f32 4095",
    "gemm f16 4095",
    "conv 64c 32x32 b128 f+b",
    "conv 128c 16x16 b128 f+b",
    "conv 256c 8x8 b128 f+b",
    "mlp step b64 f32",
    "mlp step b64 mixed",
    "lenet5 step b64 f32",
    "lenet5 step b64 mixed",
    "resnet18 step b128 f32",
    "resnet18 step b128 mixed",
    "vgg16 step b128 f32",
    "vgg16 step b128 mixed",
    "resnet18 infer b128 f32",
    "resnet18 infer b128 mixed",
    "conv 64c 32x32 b128 f+b im2col",
    "conv 128c 16x16 b128 f+b im2col",
    "conv 256c 8x8 b128 f+b im2col",
    "resnet18 step b128 f32 im2col",
    "resnet18 step b128 mixed im2col",
    "gemm f16 2048 mma.sync",
    "gemm f16 4096 mma.sync",
    "conv 64c 32x32 b128 f+b no-tf32",
    "resnet18 step b128 f32 no-tf32",
    "gemm f32 4096 tf32",
];

/// The suffix of a workload that runs with the GPU's convolutions on im2col and a GEMM
/// instead of the implicit-GEMM kernels (the side-by-side comparison of the two).
const IM2COL: &str = " im2col";

/// The suffix of a workload that runs f16/bf16 GEMMs on the `mma.sync` kernel where a Hopper
/// GPU would run the wgmma one (the side-by-side comparison of the two).
const MMA_SYNC: &str = " mma.sync";

/// The suffix of a workload whose f32 convolutions run in full f32 instead of TF32 (PyTorch's
/// default and ours: `CudaBackend::set_conv_tf32`), the side-by-side comparison of the two.
const NO_TF32: &str = " no-tf32";

/// The suffix of a workload whose f32 matrix products run in TF32 (off by default, in PyTorch
/// too: `CudaBackend::set_matmul_tf32`), the side-by-side comparison of the two.
const TF32: &str = " tf32";

/// Whether a workload is cheap enough for the CPU column by default (the whole-model steps at
/// batch 128 take seconds per run on a CPU).
pub fn cheap_on_cpu(name: &str) -> bool {
    !(name.starts_with("resnet18")
        || name.starts_with("vgg16")
        || name.ends_with("4096")
        || name.ends_with("4095")
        || name.ends_with(IM2COL)
        || name.ends_with(MMA_SYNC)
        || name.ends_with(NO_TF32)
        || name.ends_with(TF32))
}

/// Run counts: the real ones, or one untimed and one timed run in `quick` mode (where the
/// workloads also shrink to batch 2 and 64-sized GEMMs, to check that everything runs).
#[derive(Clone, Copy, Debug)]
pub struct Plan {
    /// Untimed runs first.
    pub warm: usize,
    /// Timed runs.
    pub reps: usize,
}

impl Plan {
    /// The timing plan for `name` on `device` (fewer runs on a CPU), or the quick one.
    pub fn for_workload(name: &str, device: &Device, quick: bool) -> Plan {
        if quick {
            return Plan { warm: 1, reps: 1 };
        }
        let heavy = name.contains("resnet18")
            || name.contains("vgg16")
            || name.ends_with("4096")
            || name.ends_with("4095");
        let (warm, reps) = match (device.is_cpu(), heavy) {
            (true, true) => (1, 3),
            (true, false) => (2, 10),
            (false, true) => (5, 20),
            (false, false) => (10, 50),
        };
        Plan { warm, reps }
    }
}

/// `warm` + `reps` runs of `f`, each followed by a device synchronisation (inside the timed
/// region, so queued GPU work is counted); milliseconds.
pub fn time_synced(
    device: &Device,
    plan: Plan,
    mut f: impl FnMut() -> Result<()>,
) -> Result<Stats> {
    for _ in 0..plan.warm {
        f()?;
        device.synchronize()?;
    }
    let mut ts = Vec::with_capacity(plan.reps);
    for _ in 0..plan.reps {
        let t = Instant::now();
        f()?;
        device.synchronize()?;
        ts.push(t.elapsed().as_secs_f64() * 1e3);
    }
    Ok(Stats {
        median: median(&ts),
        min: ts.iter().copied().fold(f64::INFINITY, f64::min),
        max: ts.iter().copied().fold(f64::NEG_INFINITY, f64::max),
    })
}

fn unknown(name: &str) -> Error {
    Error::invalid("bench", format!("unknown workload {name:?}"))
}

/// The GPU's kernel choices a workload runs under (each on by default; the CPU has one kernel
/// for each).
#[derive(Clone, Copy, Debug)]
// Only a GPU build reads the fields (the CPU has one kernel for each).
#[cfg_attr(not(feature = "cuda"), allow(dead_code))]
struct Choices {
    /// Implicit-GEMM convolutions (off: im2col and a GEMM).
    implicit_conv: bool,
    /// The wgmma GEMM on a Hopper GPU (off: `mma.sync`).
    wgmma: bool,
    /// TF32 f32 convolutions (off: full f32).
    tf32: bool,
    /// TF32 f32 matrix products (off, the default: full f32).
    matmul_tf32: bool,
}

/// Runs workload `name` on `device` and returns its line in the reference format.
pub fn run(name: &str, device: &Device, quick: bool) -> Result<String> {
    let on = Choices {
        implicit_conv: true,
        wgmma: true,
        tf32: true,
        matmul_tf32: false,
    };
    // (base workload, kernel choices) of a comparison row.
    let (base, choices) = if let Some(base) = name.strip_suffix(IM2COL) {
        let implicit_conv = false;
        (
            base,
            Choices {
                implicit_conv,
                ..on
            },
        )
    } else if let Some(base) = name.strip_suffix(MMA_SYNC) {
        (base, Choices { wgmma: false, ..on })
    } else if let Some(base) = name.strip_suffix(NO_TF32) {
        (base, Choices { tf32: false, ..on })
    } else if let Some(base) = name.strip_suffix(TF32) {
        let matmul_tf32 = true;
        (base, Choices { matmul_tf32, ..on })
    } else {
        return run_workload(name, device, quick);
    };
    let line = with_kernel_choices(device, choices, || run_workload(base, device, quick))?;
    Ok(line.replacen(base, name, 1))
}

/// Runs `f` under the GPU kernel `choices` (no switches elsewhere: the CPU has one kernel for
/// each), restoring the GPU's own after.
fn with_kernel_choices<R>(
    device: &Device,
    choices: Choices,
    f: impl FnOnce() -> Result<R>,
) -> Result<R> {
    #[cfg(feature = "cuda")]
    if let Some(backend) = sinew_cuda::CudaBackend::of(device) {
        let set = |c: Choices| {
            backend.set_implicit_gemm_conv(c.implicit_conv);
            backend.set_wgmma_gemm(c.wgmma);
            backend.set_conv_tf32(c.tf32);
            backend.set_matmul_tf32(c.matmul_tf32);
        };
        let before = Choices {
            implicit_conv: backend.implicit_gemm_conv(),
            wgmma: backend.wgmma_gemm(),
            tf32: backend.conv_tf32(),
            matmul_tf32: backend.matmul_tf32(),
        };
        set(choices);
        let result = f();
        set(before);
        return result;
    }
    let _ = (device, choices);
    f()
}

fn run_workload(name: &str, device: &Device, quick: bool) -> Result<String> {
    let plan = Plan::for_workload(name, device, quick);
    manual_seed(0);
    let mut g = Generator::new(0);
    let words: Vec<&str> = name.split(' ').collect();
    match words.as_slice() {
        ["gemm", dtype, n] => {
            let n: usize = n.parse().map_err(|_| unknown(name))?;
            let n = if quick { 64 } else { n };
            let dtype = if *dtype == "f16" {
                DType::F16
            } else {
                DType::F32
            };
            let cpu = Device::cpu();
            let a = g.randn([n, n], DType::F32, &cpu)?.to_dtype(dtype)?;
            let b = g.randn([n, n], DType::F32, &cpu)?.to_dtype(dtype)?;
            let (a, b) = (a.to_device(device)?, b.to_device(device)?);
            let s = time_synced(device, plan, || a.matmul(&b).map(drop))?;
            let tflops = 2.0 * (n as f64).powi(3) / s.median / 1e9;
            Ok(format_line(name, s, &format!("{tflops:.2} TFLOP/s")))
        }
        ["conv", channels, hw, _, _] => {
            let c: usize = channels
                .trim_end_matches('c')
                .parse()
                .map_err(|_| unknown(name))?;
            let side: usize = hw
                .split('x')
                .next()
                .unwrap_or("")
                .parse()
                .map_err(|_| unknown(name))?;
            let (bs, c) = if quick { (2, c.min(8)) } else { (128, c) };
            conv_fwd_bwd(name, &mut g, device, plan, bs, c, side)
        }
        [model, "step", batch, precision] => {
            let bs = batch_size(name, batch, quick)?;
            training_step(name, model, bs, *precision == "mixed", &mut g, device, plan)
        }
        [model, "infer", batch, precision] => {
            let bs = batch_size(name, batch, quick)?;
            inference(name, model, bs, *precision == "mixed", &mut g, device, plan)
        }
        _ => Err(unknown(name)),
    }
}

fn batch_size(name: &str, word: &str, quick: bool) -> Result<usize> {
    let bs: usize = word
        .strip_prefix('b')
        .and_then(|b| b.parse().ok())
        .ok_or_else(|| unknown(name))?;
    Ok(if quick { 2 } else { bs })
}

/// A 3x3, padding-1 convolution of `c` to `c` channels on `[bs, c, side, side]`: forward, then
/// backward of the output's sum (input and weight gradients).
fn conv_fwd_bwd(
    name: &str,
    g: &mut Generator,
    device: &Device,
    plan: Plan,
    bs: usize,
    c: usize,
    side: usize,
) -> Result<String> {
    let conv = Conv2d::with_options(c, c, (3, 3), Conv2dOptions::default().padding(1))?;
    conv.to_device(device)?;
    let x = g
        .randn([bs, c, side, side], DType::F32, &Device::cpu())?
        .to_device(device)?
        .requires_grad_();
    let s = time_synced(device, plan, || {
        conv.zero_grad();
        conv.forward(&x)?.sum_all()?.backward()
    })?;
    // Forward, input gradient and weight gradient: three GEMMs of 2 * bs*side^2 * c * 9c.
    let flops = 3.0 * 2.0 * (bs * side * side) as f64 * (c * c * 9) as f64;
    let tflops = flops / s.median / 1e9;
    Ok(format_line(name, s, &format!("{tflops:.2} TFLOP/s")))
}

/// The model called `model` for `[bs, ...]` inputs, and that input shape. ResNet-18 and
/// VGG-16 (with batch norm) are torchvision's, with 10 classes, on 32x32 CIFAR images.
fn model_and_input(name: &str, model: &str, bs: usize) -> Result<(Box<dyn Module>, Vec<usize>)> {
    Ok(match model {
        "mlp" => (Box::new(mlp(&[784, 512, 512, 10])?), vec![bs, 1, 28, 28]),
        "lenet5" => (Box::new(lenet5(10)?), vec![bs, 1, 28, 28]),
        "resnet18" => (Box::new(resnet18(10)?), vec![bs, 3, 32, 32]),
        "vgg16" => (Box::new(vgg16(true, 10)?), vec![bs, 3, 32, 32]),
        _ => return Err(unknown(name)),
    })
}

/// The autocast type of mixed precision: f16 on a GPU, bf16 on the CPU (as PyTorch's CPU
/// autocast; its f32 range needs no loss scaling).
pub(crate) fn half_type(device: &Device) -> DType {
    if device.is_cpu() {
        DType::BF16
    } else {
        DType::F16
    }
}

/// Model `model` on `device` and a standard-normal batch of `bs` inputs for it.
pub(crate) fn model_on(
    name: &str,
    model: &str,
    bs: usize,
    device: &Device,
    g: &mut Generator,
) -> Result<(Box<dyn Module>, Tensor)> {
    let (model, input) = model_and_input(name, model, bs)?;
    model.to_device(device)?;
    let x = g
        .randn(input, DType::F32, &Device::cpu())?
        .to_device(device)?;
    Ok((model, x))
}

/// SGD with momentum 0.9 at lr 0.01 over `model`, and the loss scaler of the precision: on
/// with PyTorch's defaults for f16 mixed precision, a pass-through otherwise.
pub(crate) fn sgd_and_scaler(
    model: &dyn Module,
    device: &Device,
    mixed: bool,
) -> (Sgd, GradScaler) {
    let opt = sgd(model.named_parameters(), SgdConfig::new(0.01).momentum(0.9));
    let scaler = GradScaler::with_config(GradScalerConfig {
        enabled: mixed && half_type(device) == DType::F16,
        ..GradScalerConfig::default()
    });
    (opt, scaler)
}

/// One SGD (momentum 0.9) training step with cross-entropy: f32, or mixed precision (forward
/// and loss under autocast, and on a GPU the loss scaled by a [`GradScaler`] with PyTorch's
/// defaults).
/// `loss.item()` is the step's one host synchronisation, as in a real loop.
fn training_step(
    name: &str,
    model: &str,
    bs: usize,
    mixed: bool,
    g: &mut Generator,
    device: &Device,
    plan: Plan,
) -> Result<String> {
    let (model, x) = model_on(name, model, bs, device, g)?;
    let y = g.randint([bs], 0, 10, &Device::cpu())?.to_device(device)?;
    let (mut opt, mut scaler) = sgd_and_scaler(model.as_ref(), device, mixed);
    let half = half_type(device);
    let mut casts = Vec::new();
    let s = time_synced(device, plan, || {
        opt.zero_grad();
        let loss = {
            let _autocast = mixed_scope(mixed, half, &casts)?;
            let loss = cross_entropy(&model.forward(&x)?, &y)?;
            casts = autocast::cached_sources();
            loss
        };
        scaler.backward(&loss)?;
        scaler.step(&mut opt)?;
        scaler.update();
        loss.item().map(drop)
    })?;
    let rate = bs as f64 / s.median * 1e3;
    Ok(format_line(name, s, &format!("{rate:.0} samples/s")))
}

/// The autocast scope of a mixed-precision forward pass (`None` in f32) with `casts`, the
/// weights the last one cast, cast ahead in one multi-tensor launch (as the `Trainer` does).
pub fn mixed_scope(
    mixed: bool,
    half: DType,
    casts: &[Tensor],
) -> Result<Option<sinew_tensor::AutocastGuard>> {
    if !mixed {
        return Ok(None);
    }
    let guard = autocast(half)?;
    autocast::cast_ahead(&casts.iter().collect::<Vec<_>>())?;
    Ok(Some(guard))
}

/// A forward pass in eval mode without a graph (f32, or under autocast).
fn inference(
    name: &str,
    model: &str,
    bs: usize,
    mixed: bool,
    g: &mut Generator,
    device: &Device,
    plan: Plan,
) -> Result<String> {
    let (model, x) = model_on(name, model, bs, device, g)?;
    model.eval();
    let half = half_type(device);
    let _no_grad = sinew_tensor::no_grad();
    let mut casts = Vec::new();
    let s = time_synced(device, plan, || {
        let _autocast = mixed_scope(mixed, half, &casts)?;
        model.forward(&x)?;
        casts = autocast::cached_sources();
        Ok(())
    })?;
    let rate = bs as f64 / s.median * 1e3;
    Ok(format_line(name, s, &format!("{rate:.0} samples/s")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vs_torch::parse_line;

    /// Every cheap workload runs in quick mode on the CPU and prints a parseable line under its
    /// own name (the whole-model ones are run by `bench --quick`).
    #[test]
    fn cheap_workloads_run_on_the_cpu_in_quick_mode() {
        for name in NAMES.iter().filter(|n| cheap_on_cpu(n)) {
            let line = run(name, &Device::cpu(), true).unwrap();
            let parsed = parse_line(&line).unwrap();
            assert_eq!(parsed.name, *name);
            assert!(parsed.stats.median > 0.0, "{line}");
        }
    }

    #[test]
    fn comparison_variants_run_under_their_own_name() {
        for name in [
            "conv 64c 32x32 b128 f+b im2col",
            "conv 64c 32x32 b128 f+b no-tf32",
            "gemm f16 2048 mma.sync",
            "gemm f32 4096 tf32",
        ] {
            let line = run(name, &Device::cpu(), true).unwrap();
            let parsed = parse_line(&line).unwrap();
            assert_eq!(parsed.name, name);
            assert!(parsed.extra.ends_with("TFLOP/s"), "{line}");
        }
    }

    #[test]
    fn unknown_names_are_errors() {
        for name in ["gemm f32 x", "conv 64c", "mlp step bx f32", "nothing"] {
            assert!(run(name, &Device::cpu(), true).is_err(), "{name}");
        }
    }

    #[test]
    fn only_whole_models_4096_4095_and_comparison_rows_skip_the_cpu() {
        let skipped: Vec<_> = NAMES.iter().filter(|n| !cheap_on_cpu(n)).collect();
        assert_eq!(skipped.len(), 20, "{skipped:?}");
    }
}
