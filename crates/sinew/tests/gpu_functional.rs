//! sinew-nn's layers and losses composed from tensor ops, on the GPU: every activation module,
//! the padding modes, instance norm, local response norm, unflatten, unfold/fold, 1-d adaptive
//! and power-average pooling and the resampling layers give the CPU's output and input
//! gradient (and their parameters' gradients) in f32 on an input holding every kink exactly,
//! values past the saturations, NaN and the infinities; the ranking and likelihood losses give
//! the CPU's loss and gradients; binary cross entropy's probability check comes back at the
//! next wait with the CPU's error; the 1-d transposed convolution matches to TF32's precision.
//! Run on a GPU machine, or the CPU emulator, with `--include-ignored`.

#![cfg(feature = "cuda")]

use sinew::nn::loss::*;
use sinew::nn::*;
use sinew::tensor::{DType, Device, Generator, Tensor};

fn gpu() -> Device {
    sinew_cuda::register();
    Device::cuda(0).expect("needs a CUDA GPU")
}

/// Every activation module and the shape layers that take a `[2, 4, 6]` input, by name.
fn modules() -> Vec<(&'static str, Box<dyn Module>)> {
    vec![
        ("relu", Box::new(ReLU)),
        ("leaky_relu", Box::new(LeakyReLU::default())),
        ("prelu", Box::new(PReLU::new(4, 0.25).unwrap())),
        ("elu", Box::new(ELU::default())),
        ("selu", Box::new(SELU)),
        ("celu", Box::new(CELU { alpha: 1.5 })),
        ("gelu", Box::new(GELU::default())),
        ("silu", Box::new(SiLU)),
        ("mish", Box::new(Mish)),
        ("sigmoid", Box::new(Sigmoid)),
        ("tanh", Box::new(Tanh)),
        ("hardtanh", Box::new(Hardtanh::default())),
        ("relu6", Box::new(ReLU6)),
        ("hardsigmoid", Box::new(Hardsigmoid)),
        ("hardswish", Box::new(Hardswish)),
        ("softshrink", Box::new(Softshrink::default())),
        ("hardshrink", Box::new(Hardshrink::default())),
        (
            "threshold",
            Box::new(Threshold {
                threshold: 0.1,
                value: 20.0,
            }),
        ),
        ("softsign", Box::new(Softsign)),
        ("tanhshrink", Box::new(Tanhshrink)),
        ("logsigmoid", Box::new(LogSigmoid)),
        ("glu", Box::new(GLU::default())),
        ("softmax", Box::new(Softmax { dim: 1 })),
        ("softmin", Box::new(Softmin { dim: 1 })),
        ("log_softmax", Box::new(LogSoftmax { dim: 1 })),
        ("softplus", Box::new(Softplus::default())),
        ("reflection_pad", Box::new(ReflectionPad1d::new([2, 1]))),
        ("replication_pad", Box::new(ReplicationPad1d::new([3, 2]))),
        ("circular_pad", Box::new(CircularPad1d::new([4, 6]))),
        (
            "instance_norm",
            Box::new(InstanceNorm1d::new(4, true).unwrap()),
        ),
        ("unflatten", Box::new(Unflatten::new(-1, &[3, 2]))),
        ("upsample", Box::new(Upsample::scale(1.5))),
        (
            "upsample_linear",
            Box::new(Upsample::scale(1.5).mode(Interpolation::Linear {
                align_corners: false,
            })),
        ),
        (
            "pixel_unshuffle",
            Box::new(PixelUnshuffle {
                downscale_factor: 2,
            }),
        ),
        (
            "local_response_norm",
            Box::new(LocalResponseNorm {
                alpha: 0.5,
                ..LocalResponseNorm::new(3)
            }),
        ),
        ("adaptive_avg_pool1d", Box::new(AdaptiveAvgPool1d::new(4))),
        ("adaptive_max_pool1d", Box::new(AdaptiveMaxPool1d::new(4))),
        // One [2, 4, 6] image's windows, and [2, 4, 6] columns back into [2, 1, 3, 4].
        ("unfold", Box::new(Unfold::new((2, 3)))),
        ("fold", Box::new(Fold::new((3, 4), (2, 2)))),
        ("lp_pool1d", Box::new(LPPool1d::new(2.0, 2))),
    ]
}

/// `module`'s output, input gradient and parameter gradients for `x` on `device`, with a
/// seeded upstream gradient (the same on both devices).
fn run(module: &dyn Module, x: &Tensor, device: &Device) -> Vec<Vec<f32>> {
    module.to_device(device).unwrap();
    module.zero_grad();
    let x = x.to_device(device).unwrap().requires_grad_();
    let y = module.forward(&x).unwrap();
    let gy = Generator::new(9)
        .randn(y.dims(), DType::F32, &Device::cpu())
        .unwrap()
        .to_device(device)
        .unwrap();
    y.mul(&gy).unwrap().sum_all().unwrap().backward().unwrap();
    let mut out = vec![y.to_vec().unwrap(), x.grad().unwrap().to_vec().unwrap()];
    for p in module.parameters() {
        out.push(p.grad().unwrap().to_vec().unwrap());
    }
    out
}

/// Equal, both NaN, or within 2e-6 relative.
fn assert_close(what: &str, want: &[f32], got: &[f32]) {
    assert_eq!(want.len(), got.len(), "{what}");
    for (a, b) in want.iter().zip(got) {
        let close =
            a == b || (a.is_nan() && b.is_nan()) || (a - b).abs() <= 2e-6 * a.abs().max(1.0);
        assert!(close, "{what}: cpu {want:?}, gpu {got:?}");
    }
}

#[test]
#[ignore = "needs a CUDA GPU"]
fn every_activation_and_shape_layer_matches_the_cpu() {
    let device = gpu();
    let cpu = Device::cpu();
    let mut g = Generator::new(5);
    let x = g
        .randn([2, 4, 6], DType::F32, &cpu)
        .unwrap()
        .mul_scalar(3.0)
        .unwrap();
    let special = [
        -3.0f32,
        3.0,
        -1.0,
        1.0,
        0.0,
        6.0,
        0.5,
        -0.5,
        0.1,
        25.0,
        -25.0,
        f32::NAN,
        f32::INFINITY,
        f32::NEG_INFINITY,
    ];
    let mut values = x.to_vec::<f32>().unwrap();
    values[..special.len()].copy_from_slice(&special);
    let x = Tensor::from_vec(values, [2, 4, 6]).unwrap();
    for (name, module) in modules() {
        let want = run(module.as_ref(), &x, &cpu);
        let got = run(module.as_ref(), &x, &device);
        assert_eq!(want.len(), got.len(), "{name}");
        for (w, g) in want.iter().zip(&got) {
            assert_close(name, w, g);
        }
    }
}

/// A loss of three float inputs (the last a target or a variance).
type Loss = fn(&Tensor, &Tensor, &Tensor) -> sinew::tensor::Result<Tensor>;

#[test]
#[ignore = "needs a CUDA GPU"]
fn ranking_and_likelihood_losses_match_the_cpu() {
    let device = gpu();
    let cpu = Device::cpu();
    let mut g = Generator::new(6);
    let a = g.randn([4, 5], DType::F32, &cpu).unwrap();
    let b = g.randn([4, 5], DType::F32, &cpu).unwrap();
    let signs = g.randn([4, 5], DType::F32, &cpu).unwrap().sign().unwrap();
    let losses: [(&str, Loss, &Tensor); 7] = [
        (
            "margin_ranking",
            |x, y, t| margin_ranking_loss(x, y, t, 0.3, Reduction::Sum),
            &signs,
        ),
        (
            "triplet",
            |x, y, n| triplet_margin_loss(x, y, n, 1.0, 2.0, Reduction::Mean),
            &signs,
        ),
        (
            "soft_margin",
            |x, _, t| soft_margin_loss(x, t, Reduction::Mean),
            &signs,
        ),
        (
            "multilabel",
            |x, _, t| multilabel_soft_margin_loss(x, &t.relu()?, None, Reduction::Sum),
            &signs,
        ),
        (
            "poisson",
            |x, _, t| poisson_nll_loss(x, &t.abs()?, true, true, 1e-8, Reduction::Mean),
            &b,
        ),
        (
            "gaussian",
            |x, v, t| gaussian_nll_loss(x, t, &v.abs()?, true, 1e-6, Reduction::Mean),
            &b,
        ),
        (
            "pairwise",
            |x, y, _| pairwise_distance(x, y, 2.0, 1e-6)?.sum_all(),
            &b,
        ),
    ];
    for (name, loss, third) in losses {
        let run = |device: &Device| {
            let x = a.to_device(device).unwrap().requires_grad_();
            let y = b
                .mul_scalar(0.5)
                .unwrap()
                .to_device(device)
                .unwrap()
                .requires_grad_();
            let t = third.to_device(device).unwrap();
            let l = loss(&x, &y, &t).unwrap();
            l.backward().unwrap();
            let grad = |v: &Tensor| v.grad().map_or(vec![], |g| g.to_vec().unwrap());
            [l.to_vec::<f32>().unwrap(), grad(&x), grad(&y)]
        };
        let (want, got) = (run(&cpu), run(&device));
        for (w, g) in want.iter().zip(&got) {
            assert_close(name, w, g);
        }
    }
}

/// Binary cross entropy on the GPU: the CPU's loss for probabilities in `[0, 1]`; for one
/// outside, no error at the call (no wait) and the CPU's error from `item()`, the next wait.
#[test]
#[ignore = "needs a CUDA GPU"]
fn binary_cross_entropy_reports_bad_probabilities_at_the_next_wait() {
    let dev = gpu();
    let p = Tensor::from_vec(vec![0.0f32, 0.25, 0.5, 0.75, 1.0, 0.125], [2, 3]).unwrap();
    let t = Tensor::from_vec(vec![1.0f32, 0.0, 1.0, 1.0, 0.0, 0.5], [2, 3]).unwrap();
    let want = binary_cross_entropy(&p, &t).unwrap().item().unwrap();
    let on = |x: &Tensor| x.to_device(&dev).unwrap();
    let got = binary_cross_entropy(&on(&p), &on(&t))
        .unwrap()
        .item()
        .unwrap();
    assert!((got - want).abs() <= 1e-6 * want.abs(), "{got} vs {want}");
    let bad = p.mul_scalar(1.5).unwrap();
    let cpu_err = binary_cross_entropy(&bad, &t).unwrap_err().to_string();
    assert!(cpu_err.contains("all elements of input should be between 0 and 1"));
    let loss = binary_cross_entropy(&on(&bad), &on(&t)).expect("no error at the call");
    let err = loss.item().unwrap_err().to_string();
    assert_eq!(err, cpu_err);
    let bad_target = t.sub_scalar(0.75).unwrap();
    let cpu_err = binary_cross_entropy(&p, &bad_target)
        .unwrap_err()
        .to_string();
    let loss = binary_cross_entropy(&on(&p), &on(&bad_target)).expect("no error at the call");
    assert_eq!(loss.item().unwrap_err().to_string(), cpu_err);
}

/// The 1-d transposed convolution (the 2-d one over a height of 1), with one group and with
/// two, gives the CPU's output and gradients to TF32's precision: the GPU's convolutions
/// multiply in TF32, as PyTorch's cuDNN default does.
#[test]
#[ignore = "needs a CUDA GPU"]
fn conv_transpose1d_matches_the_cpu_to_tf32() {
    let dev = gpu();
    let cpu = Device::cpu();
    let x = Generator::new(5)
        .randn([2, 4, 6], DType::F32, &cpu)
        .unwrap();
    for (groups, out) in [(1, 3), (2, 6)] {
        let options = Conv2dOptions::default().stride(2).padding(1).groups(groups);
        let module = ConvTranspose1d::new(4, out, 3, options, 1).unwrap();
        let want = run(&module, &x, &cpu);
        let got = run(&module, &x, &dev);
        assert_eq!(want[0].len(), 2 * out * 12, "[2, {out}, 12] out");
        for (k, (w, g)) in want.iter().zip(&got).enumerate() {
            assert_eq!(w.len(), g.len(), "groups {groups}, entry {k}");
            for (a, b) in w.iter().zip(g) {
                assert!(
                    (a - b).abs() <= 1e-2 * (1.0 + a.abs()),
                    "groups {groups}, entry {k}: {a} vs {b}"
                );
            }
        }
    }
}
