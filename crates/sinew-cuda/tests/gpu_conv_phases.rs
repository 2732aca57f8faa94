//! A strided convolution's input gradient on the GPU, in stride phases (`ops/conv_phase.rs`):
//! each phase's positions take only the taps the stride leaves, up to four phases a launch, and
//! positions no tap reaches are zeros. Values against the CPU's autograd on poisoned memory, with
//! and without a gradient to add, and the launches counted.

#![cfg(feature = "cuda")]

mod common;

use common::{FullF32Conv, check, conv_tol, gpu, kernel_launches, poison, randn};
use sinew_tensor::{Conv2dConfig, DType, Device, Tensor, Unfold2d};

/// The backend's input gradient of `spec` (one group) from the output gradient `g` and the
/// weight `w`, plus `add` when given.
fn dgrad(g: &Tensor, w: &Tensor, spec: &Unfold2d, add: Option<&Tensor>) -> Tensor {
    let backend = g.device().backend();
    let dx = g
        .with_storage(|gs, gl| {
            w.with_storage(|ws, wl| match add {
                None => backend.conv2d_input_grad((gs, gl), (ws, wl), spec, 1, None),
                Some(a) => a.with_storage(|st, al| {
                    backend.conv2d_input_grad((gs, gl), (ws, wl), spec, 1, Some((st, al)))
                }),
            })
        })
        .unwrap()
        .expect("an input-gradient kernel");
    Tensor::from_storage(dx, [spec.n, spec.c, spec.h, spec.w], g.device().clone()).unwrap()
}

/// The CPU's input gradient of `x.conv2d(w, cfg)` for the output gradient `g`, through autograd.
fn cpu_grad(x: &Tensor, w: &Tensor, g: &Tensor, cfg: Conv2dConfig) -> Tensor {
    let xt = x.clone().requires_grad_();
    let y = xt.conv2d(w, None, cfg).unwrap();
    y.backward_with(Some(g.clone()), Default::default())
        .unwrap();
    xt.grad().unwrap()
}

/// Input gradients of strided windows (dilation 1) on a [3, 16, 33, 33] input: with 33 rows the
/// phases have 17 or 16 rows and columns, so the (0, 0) phase spans 7 column tiles and the
/// (1, 1) phase 6, and a launch's blocks past a smaller phase's columns have nothing to do.
#[test]
#[ignore = "needs a CUDA GPU"]
fn a_strided_input_gradient_runs_up_to_four_phases_a_launch() {
    let dev = gpu();
    let _f32 = FullF32Conv::new(&dev);
    let cpu = Device::cpu();
    // (kernel, stride, padding, launches without and with an addend). Where every position is
    // some phase's, the kernels add the addend in their store; otherwise an add follows them.
    let cases = [
        // A ResNet downsampling 3x3: four phases, one launch.
        ((3, 3), (2, 2), (1, 1), [1u64, 1]),
        // Stride 3: nine phases, each with one tap, in three launches (4, 4, 1).
        ((3, 3), (3, 3), (1, 1), [3, 3]),
        // A 2x3 window at strides 3 and 2: four of six phases have taps, so a zero fill first,
        // then one launch.
        ((2, 3), (3, 2), (0, 1), [2, 3]),
    ];
    for dtype in [DType::F32, DType::F16, DType::BF16] {
        for (i, (kernel, stride, padding, launches)) in cases.into_iter().enumerate() {
            let x = randn(90, &[3, 16, 33, 33], dtype);
            let spec = x
                .unfold_spec("test", kernel, stride, padding, (1, 1), 0.0)
                .unwrap();
            let (oh, ow) = spec.out_hw();
            let g = randn(91 + i as u64, &[3, 24, oh, ow], dtype);
            let w = randn(94 + i as u64, &[24, 16, kernel.0, kernel.1], dtype)
                .mul_scalar(0.2)
                .unwrap();
            let add = randn(97, &[3, 16, 33, 33], dtype);
            let cfg = Conv2dConfig {
                stride,
                padding,
                ..Conv2dConfig::default()
            };
            let want = cpu_grad(&x, &w, &g, cfg);
            let want_added = want.add(&add).unwrap();
            let on_gpu = |t: &Tensor| t.to_device(&dev).unwrap();
            let (gg, gw, ga) = (on_gpu(&g), on_gpu(&w), on_gpu(&add));
            let what = format!("{dtype} kernel {kernel:?} stride {stride:?}");
            for (addend, want, launches) in [
                (None, &want, launches[0]),
                (Some(&ga), &want_added, launches[1]),
            ] {
                let what = format!("{what}, adding: {}", addend.is_some());
                poison(&dev, x.elem_count() * dtype.size_in_bytes());
                let before = kernel_launches(&dev);
                let got = dgrad(&gg, &gw, &spec, addend);
                assert_eq!(kernel_launches(&dev) - before, launches, "{what}: kernels");
                check(&what, want, &got.to_device(&cpu).unwrap(), conv_tol(dtype));
            }
        }
    }
}

/// A 1x1 stride-2 shortcut's input gradient (only the even positions have a tap) is one kernel
/// that also writes the zeros of the odd positions (no fill first), on poisoned memory, with the
/// CPU's values, for even and odd sizes; with padding 1 the only phase with taps starts at
/// (1, 1) and the gradient is filled with zeros first (two launches).
#[test]
#[ignore = "needs a CUDA GPU"]
fn a_strided_shortcuts_input_gradient_writes_its_own_zeros() {
    let dev = gpu();
    let _f32 = FullF32Conv::new(&dev);
    let cpu = Device::cpu();
    for dtype in [DType::F32, DType::F16] {
        for (side, padding, launches) in [(8usize, 0usize, 1u64), (9, 0, 1), (9, 1, 2)] {
            let x = randn(95, &[3, 16, side, side], dtype);
            let spec = x
                .unfold_spec("test", (1, 1), (2, 2), (padding, padding), (1, 1), 0.0)
                .unwrap();
            let (oh, ow) = spec.out_hw();
            let g = randn(96, &[3, 24, oh, ow], dtype);
            let w = randn(97, &[24, 16, 1, 1], dtype);
            let cfg = Conv2dConfig {
                stride: (2, 2),
                padding: (padding, padding),
                ..Conv2dConfig::default()
            };
            let want = cpu_grad(&x, &w, &g, cfg);
            let (gg, gw) = (g.to_device(&dev).unwrap(), w.to_device(&dev).unwrap());
            let what = format!("{dtype} side {side} padding {padding}");
            poison(&dev, x.elem_count() * dtype.size_in_bytes());
            let before = kernel_launches(&dev);
            let got = dgrad(&gg, &gw, &spec, None);
            assert_eq!(kernel_launches(&dev) - before, launches, "{what}: kernels");
            let got = got.to_device(&cpu).unwrap();
            check(&what, &want, &got, conv_tol(dtype));
            // The positions no tap reaches are exactly 0.
            let values = got.to_vec_f64().unwrap();
            let odd = (0..values.len()).filter(|i| {
                let (y, x) = ((i / side) % side, i % side);
                (y + padding) % 2 == 1 || (x + padding) % 2 == 1
            });
            assert!(odd.clone().count() > 0, "{what}: positions without taps");
            assert!(odd.map(|i| values[i]).all(|v| v == 0.0), "{what}: zeros");
        }
    }
}
