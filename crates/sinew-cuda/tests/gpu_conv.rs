//! GPU parity with the CPU backend of im2col/col2im and of convolutions (the implicit-GEMM
//! kernels and the im2col path, with stride, padding, dilation and groups; forward and
//! gradients). Pooling: `gpu_pool.rs`; the input gradient's stride phases:
//! `gpu_conv_phases.rs`.

#![cfg(feature = "cuda")]

mod common;

use common::{
    FullF32Conv, both, check, conv_tol, gpu, kernel_launches, max_error, poison, randn,
    tf32_rounded,
};
use sinew_tensor::{Conv2dConfig, DType, Device, Tensor, Unfold2d};

const FLOATS: [DType; 4] = [DType::F32, DType::F16, DType::BF16, DType::F64];

/// (height, width) of a window's kernel, stride, padding or dilation.
type Pair = (usize, usize);

/// (kernel, stride, padding, dilation) windows, the last one spanning the whole image.
const WINDOWS: [(Pair, Pair, Pair, Pair); 6] = [
    ((3, 3), (1, 1), (0, 0), (1, 1)),
    ((3, 2), (2, 1), (1, 1), (1, 2)),
    ((1, 1), (3, 2), (0, 0), (1, 1)),
    ((5, 3), (2, 3), (2, 1), (2, 1)),
    ((2, 2), (2, 2), (1, 0), (3, 3)),
    ((6, 7), (1, 1), (0, 0), (2, 2)),
];

/// A [2, 5, 11, 13] image as a contiguous tensor and as a channels-last view.
fn images(seed: u64, dtype: DType) -> [Tensor; 2] {
    let x = randn(seed, &[2, 5, 11, 13], DType::F64)
        .mul_scalar(20.0)
        .unwrap();
    let nhwc = randn(seed + 1, &[2, 11, 13, 5], DType::F64)
        .mul_scalar(20.0)
        .unwrap()
        .permute(&[0, 3, 1, 2])
        .unwrap();
    [x, nhwc].map(|t| match dtype {
        DType::U8 => t.abs().unwrap().to_dtype(dtype).unwrap(),
        _ => t.to_dtype(dtype).unwrap(),
    })
}

fn spec(x: &Tensor, w: usize, pad_value: f64) -> Unfold2d {
    let (kernel, stride, padding, dilation) = WINDOWS[w];
    x.unfold_spec("test", kernel, stride, padding, dilation, pad_value)
        .unwrap()
}

#[test]
#[ignore = "needs a CUDA GPU"]
fn unfold_and_fold_match_the_cpu_exactly() {
    let dev = gpu();
    for dtype in FLOATS.into_iter().chain([DType::I64, DType::U8]) {
        let mut cases = 0;
        for (v, x) in images(1, dtype).iter().enumerate() {
            for w in 0..WINDOWS.len() {
                for pad in [0.0, f64::NEG_INFINITY] {
                    let s = spec(x, w, pad);
                    let (c, g) = both(&dev, &[x], |t| t[0].unfold2d(&s));
                    check(
                        &format!("unfold2d {dtype} view {v} window {w}"),
                        &c,
                        &g,
                        0.0,
                    );
                    cases += 1;
                }
                if dtype == DType::U8 {
                    continue; // fold sums: floats and i64 only, as on the CPU
                }
                let s = spec(x, w, 0.0);
                let (oh, ow) = s.out_hw();
                let rows = s.c * s.kernel.0 * s.kernel.1;
                let cols = randn(7 + w as u64, &[s.n, rows, oh * ow], dtype);
                let cols_t = randn(8 + w as u64, &[s.n, oh * ow, rows], dtype)
                    .permute(&[0, 2, 1])
                    .unwrap();
                for (name, y) in [("contiguous", &cols), ("transposed", &cols_t)] {
                    let (c, g) = both(&dev, &[y], |t| t[0].fold2d(&s));
                    check(&format!("fold2d {dtype} {name} window {w}"), &c, &g, 0.0);
                    cases += 1;
                }
            }
        }
        println!("unfold2d/fold2d {dtype}: max error 0 (exact) over {cases} cases");
    }
    let bools = Tensor::ones([1, 1, 3, 3], DType::Bool, &gpu()).unwrap();
    assert!(bools.fold2d(&spec(&bools, 0, 0.0)).is_err(), "bool fold2d");
}

/// The distance from 1 to the next float of `dtype` (f16 or bf16).
fn eps(dtype: DType) -> f64 {
    if dtype == DType::F16 {
        2f64.powi(-10)
    } else {
        2f64.powi(-7)
    }
}

#[test]
#[ignore = "needs a CUDA GPU"]
fn conv2d_matches_the_cpu() {
    let dev = gpu();
    let _f32 = FullF32Conv::new(&dev);
    // (kernel, stride, padding, dilation, groups) on a [3, 6, 17, 19] input.
    let configs = [
        ((3, 3), (1, 1), (0, 0), (1, 1), 1),
        ((3, 2), (2, 1), (1, 2), (1, 1), 1),
        ((3, 3), (1, 2), (2, 1), (2, 1), 3),
        ((3, 3), (2, 2), (1, 1), (2, 2), 6),
        ((1, 1), (1, 1), (0, 0), (1, 1), 2),
    ];
    for dtype in FLOATS {
        let mut worst = 0.0f64;
        let x = randn(20, &[3, 6, 17, 19], dtype);
        let x_nhwc = randn(21, &[3, 17, 19, 6], dtype)
            .permute(&[0, 3, 1, 2])
            .unwrap();
        for (i, (kernel, stride, padding, dilation, groups)) in configs.into_iter().enumerate() {
            let cfg = Conv2dConfig {
                stride,
                padding,
                dilation,
                groups,
            };
            let w = randn(30 + i as u64, &[12, 6 / groups, kernel.0, kernel.1], dtype)
                .mul_scalar(0.3)
                .unwrap();
            let b = randn(40 + i as u64, &[12], dtype);
            for (name, input) in [("nchw", &x), ("nhwc view", &x_nhwc)] {
                let (c, g) = both(&dev, &[input, &w, &b], |t| {
                    t[0].conv2d(&t[1], Some(&t[2]), cfg)
                });
                let what = format!("conv2d {dtype} {name} config {i}");
                worst = worst.max(check(&what, &c, &g, conv_tol(dtype)));
            }
        }
        println!("conv2d {dtype}: max error {worst:e}");
    }
}

/// The output and the input and weight gradients of a cosine-weighted sum of `x.conv2d(w)`,
/// the cosines rounded to `round` (the dtype under test, also for an f64 reference).
fn conv_and_grads(x: &Tensor, w: &Tensor, cfg: Conv2dConfig, round: DType) -> [Tensor; 3] {
    let (x, w) = (x.detach().requires_grad_(), w.detach().requires_grad_());
    let y = x.conv2d(&w, None, cfg).unwrap();
    let n = y.elem_count() as f64;
    let weights = Tensor::arange(0.0, n, 1.0, DType::F32, y.device())
        .unwrap()
        .cos()
        .unwrap()
        .to_dtype(round)
        .unwrap()
        .to_dtype(y.dtype())
        .unwrap()
        .reshape(y.shape().clone())
        .unwrap();
    y.mul(&weights)
        .unwrap()
        .sum_all()
        .unwrap()
        .backward()
        .unwrap();
    [y.detach(), x.grad().unwrap(), w.grad().unwrap()]
}

/// (kernel, stride, padding, dilation, groups) of the implicit-GEMM tests, on [2, 40, 12, 13]
/// inputs with 72 output channels.
const CONFIGS: [(Pair, Pair, Pair, Pair, usize); 7] = [
    ((3, 3), (1, 1), (1, 1), (1, 1), 1),
    ((3, 2), (2, 1), (1, 0), (2, 1), 2),
    ((1, 1), (1, 1), (0, 0), (1, 1), 1),
    ((5, 5), (1, 1), (2, 2), (1, 1), 4),
    // Strided, dilation 1: the input gradient in phases (a ResNet downsampling 3x3, a 1x1
    // shortcut whose odd positions no tap reaches, a 2x3 window at strides 3 and 2).
    ((3, 3), (2, 2), (1, 1), (1, 1), 1),
    ((1, 1), (2, 2), (0, 0), (1, 1), 2),
    ((2, 3), (3, 2), (0, 1), (1, 1), 1),
];

/// The implicit-GEMM tests' input as `(name, cpu, gpu)`: contiguous, and a channels-last view
/// (made on each device).
fn implicit_inputs(dev: &Device, dtype: DType) -> [(&'static str, Tensor, Tensor); 2] {
    let x = randn(60, &[2, 40, 12, 13], dtype);
    let x_nhwc = randn(61, &[2, 12, 13, 40], dtype);
    let nchw = |t: Tensor| t.permute(&[0, 3, 1, 2]).unwrap();
    [
        ("nchw", x.clone(), x.to_device(dev).unwrap()),
        (
            "nhwc view",
            nchw(x_nhwc.clone()),
            nchw(x_nhwc.to_device(dev).unwrap()),
        ),
    ]
}

/// The implicit-GEMM tests' config `i` and its weight.
fn implicit_case(i: usize, dtype: DType) -> (Conv2dConfig, Tensor) {
    let (kernel, stride, padding, dilation, groups) = CONFIGS[i];
    let cfg = Conv2dConfig {
        stride,
        padding,
        dilation,
        groups,
    };
    let w = randn(70 + i as u64, &[72, 40 / groups, kernel.0, kernel.1], dtype)
        .mul_scalar(0.2)
        .unwrap();
    (cfg, w)
}

#[test]
#[ignore = "needs a CUDA GPU"]
fn implicit_gemm_conv_matches_the_cpu_and_im2col() {
    // Implicit-GEMM kernels (cuda/conv_gemm.cu, conv_wgrad.cu) over several tiles of every
    // axis: 72 output channels (two 64-row tensor-core tiles; 18 per group in 4 groups: a
    // 32-row tile), 2*12*13 = 312 columns (three 128-column tiles), 40-channel inputs (360
    // taps: 16-byte weight loads in f16/bf16; 250 taps with 5x5 in 4 groups: element loads),
    // read in place from a channels-last view made on the device; the input gradients by
    // conv_gemm_dgrad (strides 2 and 1, groups, dilation; 40 rows or, grouped, 20 and 10 in
    // 32-row tiles; in stride phases, four a launch, without dilation) and the weight gradients by
    // conv_wgrad (two position splits).
    let dev = gpu();
    let _f32 = FullF32Conv::new(&dev);
    let backend = sinew_cuda::CudaBackend::of(&dev).unwrap();
    for dtype in [DType::F32, DType::F16, DType::BF16] {
        let mut worst = 0.0f64;
        let inputs = implicit_inputs(&dev, dtype);
        for i in 0..CONFIGS.len() {
            let (cfg, w) = implicit_case(i, dtype);
            let w_gpu = w.to_device(&dev).unwrap();
            for (name, x_cpu, x_gpu) in inputs.iter() {
                let what = format!("{dtype} {name} config {i}");
                let f64_of = |t: &Tensor| t.to_dtype(DType::F64).unwrap();
                let exact = conv_and_grads(&f64_of(x_cpu), &f64_of(&w), cfg, dtype);
                let cpu = conv_and_grads(x_cpu, &w, cfg, dtype);
                // Input-sized blocks start as NaN: a position no phase writes shows up.
                poison(&dev, x_cpu.elem_count() * dtype.size_in_bytes());
                let implicit = conv_and_grads(x_gpu, &w_gpu, cfg, dtype);
                backend.set_implicit_gemm_conv(false);
                let im2col = conv_and_grads(x_gpu, &w_gpu, cfg, dtype);
                backend.set_implicit_gemm_conv(true);
                for (t, part) in ["output", "input grad", "weight grad"].iter().enumerate() {
                    let got = implicit[t].to_device(&Device::cpu()).unwrap();
                    let other = im2col[t].to_device(&Device::cpu()).unwrap();
                    let what = format!("conv2d {what} {part}");
                    // f32 accumulation and one rounding: f16/bf16 results within a few units
                    // of the last place of the exact result (the CPU and the im2col path
                    // round partial sums too, so they get looser bounds); f32 within its
                    // accumulated rounding.
                    let exact = exact[t].to_dtype(dtype).unwrap();
                    let bound = if dtype == DType::F32 {
                        3e-5
                    } else {
                        4.0 * eps(dtype)
                    };
                    worst = worst.max(check(&what, &exact, &got, bound));
                    check(&format!("{what} (cpu)"), &cpu[t], &got, conv_tol(dtype));
                    check(&format!("{what} (im2col)"), &other, &got, conv_tol(dtype));
                }
            }
        }
        println!("implicit-GEMM conv2d {dtype}: max error {worst:e} (output and gradients)");
    }
}

#[test]
#[ignore = "needs a CUDA GPU"]
fn tf32_conv_rounds_its_inputs_and_sums_in_f32() {
    // f32 convolutions with TF32 allowed (the default, as PyTorch's cudnn.allow_tf32) run the
    // *_tf32_f32 kernels on the implicit-GEMM tests' shapes (64- and 32-row tiles, 16-deep
    // stages, edges on every axis, the input-gradient phases, two weight-gradient splits). Each
    // result must be the exact one of the TF32-rounded input and weight (the output gradient's
    // cosines are f16 values, exact in TF32) up to f32 accumulation, and differ from the exact
    // result of the unrounded operands by about TF32's rounding, which shows the tensor cores ran.
    let dev = gpu();
    assert!(sinew_cuda::CudaBackend::of(&dev).unwrap().conv_tf32());
    let (mut worst, mut rounding) = (0.0f64, 0.0f64);
    let inputs = implicit_inputs(&dev, DType::F32);
    for i in 0..CONFIGS.len() {
        let (cfg, w) = implicit_case(i, DType::F32);
        let w_gpu = w.to_device(&dev).unwrap();
        for (name, x_cpu, x_gpu) in inputs.iter() {
            let f64_of = |t: &Tensor| t.to_dtype(DType::F64).unwrap();
            let exact = conv_and_grads(&f64_of(x_cpu), &f64_of(&w), cfg, DType::F16);
            let (x_tf32, w_tf32) = (tf32_rounded(x_cpu), tf32_rounded(&w));
            let of_tf32 = conv_and_grads(&f64_of(&x_tf32), &f64_of(&w_tf32), cfg, DType::F16);
            poison(&dev, x_cpu.elem_count() * 4);
            let got = conv_and_grads(x_gpu, &w_gpu, cfg, DType::F16);
            for (t, part) in ["output", "input grad", "weight grad"].iter().enumerate() {
                let got = got[t].to_device(&Device::cpu()).unwrap();
                let what = format!("tf32 conv2d {name} config {i} {part}");
                let f32_of = |t: &Tensor| t.to_dtype(DType::F32).unwrap();
                worst = worst.max(check(&what, &f32_of(&of_tf32[t]), &got, 3e-5));
                rounding = rounding.max(max_error(&f32_of(&exact[t]), &got));
            }
        }
    }
    println!(
        "TF32 conv2d: max error {worst:e} against the rounded operands' exact result, \
         {rounding:e} against the unrounded ones'"
    );
    assert!(
        (1e-4..2e-2).contains(&rounding),
        "TF32 results differ from the exact f32 ones by {rounding:e}: not TF32's rounding"
    );
}

#[test]
#[ignore = "needs a CUDA GPU"]
fn implicit_gemm_conv_needs_no_column_buffer() {
    // A training step's convolution (forward, input and weight gradients) of [4, 32, 24, 24]
    // f32 with 32 3x3 filters: im2col makes 4 * 288 * 576 * 4 bytes = 2.65 MB of columns (and a
    // transposed copy of the output), the implicit GEMM none; everything else (input, output,
    // gradients, 1.2 MB together, and the weight gradient's partial sums) is shared.
    let dev = gpu();
    let _f32 = FullF32Conv::new(&dev);
    let backend = sinew_cuda::CudaBackend::of(&dev).unwrap();
    let x = randn(80, &[4, 32, 24, 24], DType::F32)
        .to_device(&dev)
        .unwrap();
    let w = randn(81, &[32, 32, 3, 3], DType::F32)
        .to_device(&dev)
        .unwrap();
    let cfg = Conv2dConfig {
        padding: (1, 1),
        ..Conv2dConfig::default()
    };
    let mut peaks = Vec::new();
    let mut grads = Vec::new();
    for implicit in [true, false] {
        backend.set_implicit_gemm_conv(implicit);
        backend.synchronize_stream().unwrap();
        let before = backend.memory_stats().allocated;
        backend.reset_peak_memory_stats();
        let out = conv_and_grads(&x, &w, cfg, DType::F32);
        backend.synchronize_stream().unwrap();
        peaks.push(backend.memory_stats().peak_allocated - before);
        grads.push(out.map(|t| t.to_device(&Device::cpu()).unwrap()));
    }
    backend.set_implicit_gemm_conv(true);
    let (implicit, im2col) = (peaks[0], peaks[1]);
    println!("conv step peak memory: implicit GEMM {implicit} B, im2col {im2col} B");
    let columns = 4 * 288 * 576 * 4;
    assert!(
        implicit + columns <= im2col,
        "implicit GEMM peak {implicit} B is not a column buffer ({columns} B) below im2col's {im2col} B"
    );
    for (t, (a, b)) in grads[0].iter().zip(&grads[1]).enumerate() {
        check(&format!("conv step tensor {t}"), b, a, 1e-4);
    }
}

/// The weight gradient is one kernel however many blocks split the output positions (the last
/// block of each weight tile adds the splits' partial sums, in order), with the same bits on
/// every run and the CPU's values.
#[test]
#[ignore = "needs a CUDA GPU"]
fn weight_gradient_is_one_deterministic_kernel() {
    let dev = gpu();
    let _f32 = FullF32Conv::new(&dev);
    let cpu = Device::cpu();
    // One weight tile (16 filters x 72 taps) over 8,192 positions: split into several ranges.
    let w_dims = [16usize, 8, 3, 3];
    let wgrad_in = |x: &Tensor, g: &Tensor, spec: &Unfold2d, out: DType| {
        let backend = x.device().backend();
        let dw = x
            .with_storage(|xs, xl| {
                g.with_storage(|gs, gl| {
                    backend.conv2d_weight_grad((xs, xl), (gs, gl), (&w_dims, out), spec, 1)
                })
            })
            .unwrap()
            .expect("a weight-gradient kernel");
        Tensor::from_storage(dw, w_dims, x.device().clone()).unwrap()
    };
    let wgrad = |x: &Tensor, g: &Tensor, spec: &Unfold2d| wgrad_in(x, g, spec, x.dtype());
    let bits = |t: &Tensor| t.to_dtype(DType::F64).unwrap().to_vec::<f64>().unwrap();
    for dtype in [DType::F32, DType::F16, DType::BF16] {
        let x = randn(90, &[32, 8, 16, 16], dtype);
        let g = randn(91, &[32, 16, 16, 16], dtype);
        let spec = x
            .unfold_spec("test", (3, 3), (1, 1), (1, 1), (1, 1), 0.0)
            .unwrap();
        let (gx, gg) = (x.to_device(&dev).unwrap(), g.to_device(&dev).unwrap());
        let first = wgrad(&gx, &gg, &spec).to_device(&cpu).unwrap();
        for _ in 0..2 {
            let before = kernel_launches(&dev);
            let again = wgrad(&gx, &gg, &spec);
            assert_eq!(kernel_launches(&dev) - before, 1, "{dtype}: kernels");
            let again = again.to_device(&cpu).unwrap();
            assert_eq!(bits(&first), bits(&again), "{dtype}: run to run");
        }
        if dtype != DType::F32 {
            // The gradient of an f32 weight cast down for the product: the same kernel writes
            // its rounded values widened to f32 (no cast after it).
            let before = kernel_launches(&dev);
            let wide = wgrad_in(&gx, &gg, &spec, DType::F32);
            assert_eq!(
                kernel_launches(&dev) - before,
                1,
                "{dtype}: widened kernels"
            );
            let wide = wide.to_device(&cpu).unwrap();
            assert_eq!(wide.dtype(), DType::F32);
            assert_eq!(bits(&first), bits(&wide), "{dtype}: widened");
        }
        if dtype == DType::F32 {
            check("weight gradient", &wgrad(&x, &g, &spec), &first, 1e-3);
        }
    }
}

#[test]
#[ignore = "needs a CUDA GPU"]
fn conv_transpose2d_matches_the_cpu() {
    // Forward by the implicit-GEMM input-gradient kernel, backward by the forward and
    // weight-gradient kernels; stride 2 with output padding, dilation and groups.
    let dev = gpu();
    let _f32 = FullF32Conv::new(&dev);
    // (stride, padding, dilation, groups, output_padding)
    let configs = [
        ((2, 2), (1, 1), (1, 1), 1, (1, 1)),
        ((2, 1), (0, 1), (2, 1), 2, (1, 0)),
        ((1, 1), (1, 1), (1, 1), 1, (0, 0)),
    ];
    for dtype in [DType::F32, DType::F16, DType::BF16] {
        let mut worst = 0.0f64;
        for (i, (stride, padding, dilation, groups, out_pad)) in configs.into_iter().enumerate() {
            let cfg = Conv2dConfig {
                stride,
                padding,
                dilation,
                groups,
            };
            let x = randn(100 + i as u64, &[2, 8, 6, 7], dtype);
            let w = randn(110 + i as u64, &[8, 12 / groups, 3, 3], dtype)
                .mul_scalar(0.3)
                .unwrap();
            let b = randn(120 + i as u64, &[12], dtype);
            let run = |dev: &Device| {
                let leaf = |t: &Tensor| t.to_device(dev).unwrap().requires_grad_();
                let (x, w, b) = (leaf(&x), leaf(&w), leaf(&b));
                let y = x.conv_transpose2d(&w, Some(&b), cfg, out_pad).unwrap();
                let n = y.elem_count() as f64;
                let weights = Tensor::arange(0.0, n, 1.0, DType::F32, dev)
                    .unwrap()
                    .cos()
                    .unwrap()
                    .to_dtype(dtype)
                    .unwrap()
                    .reshape(y.shape().clone())
                    .unwrap();
                y.mul(&weights)
                    .unwrap()
                    .sum_all()
                    .unwrap()
                    .backward()
                    .unwrap();
                [
                    y.detach(),
                    x.grad().unwrap(),
                    w.grad().unwrap(),
                    b.grad().unwrap(),
                ]
                .map(|t| t.to_device(&Device::cpu()).unwrap())
            };
            let (cpu, gpu_out) = (run(&Device::cpu()), run(&dev));
            for (t, (c, g)) in cpu.iter().zip(&gpu_out).enumerate() {
                let what = format!("conv_transpose2d {dtype} config {i} tensor {t}");
                worst = worst.max(check(&what, c, g, conv_tol(dtype)));
            }
        }
        println!("conv_transpose2d {dtype}: max error {worst:e} (output and gradients)");
    }
}
