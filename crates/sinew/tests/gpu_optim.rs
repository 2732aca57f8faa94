//! The fused optimizer steps on the GPU (issue 14, item 1: one multi-tensor launch per
//! group): every optimizer of sinew-optim, in each of its variants, steps a group of parameters
//! in one kernel (one per 32 parameters), and gives the CPU's values (the op-by-op in-place
//! form) bit for bit in every float dtype over seven steps (RAdam's rectified
//! update starts at the sixth). Run on a GPU machine, or the CPU
//! emulator, with `--include-ignored`.

#![cfg(feature = "cuda")]

use sinew::optim::{
    AdadeltaConfig, AdadeltaRule, AdafactorConfig, AdafactorRule, AdagradConfig, AdagradRule,
    AdamConfig, AdamRule, AdamWRule, AdamaxRule, AsgdConfig, AsgdRule, NadamConfig, NadamRule,
    Optim, Optimizer, RadamConfig, RadamRule, RmspropConfig, RmspropRule, RpropConfig, RpropRule,
    SgdConfig, SgdRule, UpdateRule, sgd,
};
use sinew::tensor::{DType, Device, Generator, Parameter, Tensor};

fn gpu() -> Device {
    sinew_cuda::register();
    Device::cuda(0).expect("needs a CUDA GPU")
}

/// Builds an optimizer over the named parameters.
type Build = Box<dyn Fn(Vec<(String, Parameter)>) -> Box<dyn Optimizer>>;

/// Seven steps of the optimizer `build` makes over parameters of `shapes` and `dtype` on
/// `device`, from fixed values and per-step gradients (those of matrices transposed views
/// when `strided`); the parameters' and the optimizer state's values after them, and the
/// kernels the last step launched. Asserts that no step waits for the GPU.
fn run_shapes(
    build: &Build,
    shapes: &[&[usize]],
    dtype: DType,
    device: &Device,
    strided: bool,
) -> (Vec<Vec<f64>>, u64) {
    let mut g = Generator::new(7);
    let cpu = Device::cpu();
    let params: Vec<(String, Parameter)> = shapes
        .iter()
        .enumerate()
        .map(|(i, &shape)| {
            let value = g.randn(shape.to_vec(), DType::F32, &cpu).unwrap();
            let value = value.to_dtype(dtype).unwrap().to_device(device).unwrap();
            (format!("p{i}"), Parameter::new(value))
        })
        .collect();
    let mut opt = build(params.clone());
    let cuda = sinew_cuda::CudaBackend::of(device);
    let mut launches = 0;
    for _ in 0..7 {
        for (_, p) in &params {
            let dims = p.value().dims().to_vec();
            let on_device = |t: Tensor| t.to_dtype(dtype).unwrap().to_device(device).unwrap();
            let grad = match (strided, dims.as_slice()) {
                (true, &[a, b]) => on_device(g.randn([b, a], DType::F32, &cpu).unwrap())
                    .t()
                    .unwrap(),
                _ => on_device(g.randn(dims, DType::F32, &cpu).unwrap()),
            };
            p.value().set_grad(Some(grad)).unwrap();
        }
        let before = cuda.map_or(0, |c| c.kernel_launches());
        let waits = cuda.map_or(0, |c| c.stream_synchronizations());
        opt.step().unwrap();
        launches = cuda.map_or(0, |c| c.kernel_launches()) - before;
        // No step reads anything back (Adafactor's norms stay on the device too).
        let waited = cuda.map_or(0, |c| c.stream_synchronizations()) - waits;
        assert_eq!(waited, 0, "the step waited for the GPU");
    }
    let mut values: Vec<Vec<f64>> = params
        .iter()
        .map(|(_, p)| p.value().to_device(&cpu).unwrap().to_vec_f64().unwrap())
        .collect();
    for state in opt.state_dict().unwrap().params.values() {
        for (_, buffer) in &state.buffers {
            values.push(buffer.to_device(&cpu).unwrap().to_vec_f64().unwrap());
        }
    }
    (values, launches)
}

/// [`run_shapes`] over three parameters: a matrix, a vector and a scalar.
fn run(build: &Build, dtype: DType, device: &Device) -> (Vec<Vec<f64>>, u64) {
    run_shapes(build, &[&[13, 7], &[29], &[]], dtype, device, false)
}

/// Asserts that `got` equals `want` bit for bit, entry by entry.
fn assert_same_bits(want: &[Vec<f64>], got: &[Vec<f64>], what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: state entries");
    for (k, (w, g)) in want.iter().zip(got).enumerate() {
        let same = w.len() == g.len() && w.iter().zip(g).all(|(a, b)| a.to_bits() == b.to_bits());
        assert!(same, "{what}: entry {k} differs: cpu {w:?}, gpu {g:?}");
    }
}

/// An optimizer of rule `R` with `config`.
fn with<R: UpdateRule>(config: R::Config) -> Build
where
    R::Config: 'static,
{
    Box::new(move |p| Box::new(Optim::<R>::new(p, config.clone())))
}

/// Every optimizer in the variants whose fused kernels take different paths.
fn cases() -> Vec<(&'static str, Build)> {
    let sgd = SgdConfig::new(0.1);
    let adam = AdamConfig {
        lr: 0.01,
        ..AdamConfig::default()
    };
    let decayed_adam = AdamConfig {
        weight_decay: 0.1,
        ..adam.clone()
    };
    let rmsprop = RmspropConfig::default();
    let nadam = NadamConfig::default();
    vec![
        ("sgd", with::<SgdRule>(sgd.clone())),
        ("sgd momentum", with::<SgdRule>(sgd.clone().momentum(0.9))),
        (
            "sgd nesterov + weight decay",
            with::<SgdRule>(sgd.clone().momentum(0.9).nesterov(true).weight_decay(5e-4)),
        ),
        (
            "sgd dampening + maximize",
            with::<SgdRule>(SgdConfig {
                dampening: 0.3,
                maximize: true,
                ..SgdConfig::new(0.05).momentum(0.8)
            }),
        ),
        ("adam", with::<AdamRule>(adam.clone())),
        (
            "adam weight decay + maximize",
            with::<AdamRule>(AdamConfig {
                maximize: true,
                ..decayed_adam.clone()
            }),
        ),
        ("adam amsgrad", with::<AdamRule>(adam.clone().amsgrad(true))),
        ("adamw", with::<AdamWRule>(decayed_adam.clone())),
        (
            "adamw amsgrad + maximize",
            with::<AdamWRule>(AdamConfig {
                maximize: true,
                ..decayed_adam.clone().amsgrad(true)
            }),
        ),
        ("adamax", with::<AdamaxRule>(adam.clone())),
        (
            "adamax weight decay + maximize",
            with::<AdamaxRule>(AdamConfig {
                maximize: true,
                ..decayed_adam.clone()
            }),
        ),
        (
            "adagrad lr decay + initial accumulator",
            with::<AdagradRule>(AdagradConfig {
                lr_decay: 0.1,
                initial_accumulator_value: 0.1,
                ..AdagradConfig::default()
            }),
        ),
        (
            "adagrad weight decay + maximize",
            with::<AdagradRule>(AdagradConfig {
                weight_decay: 0.1,
                maximize: true,
                ..AdagradConfig::default()
            }),
        ),
        ("rmsprop", with::<RmspropRule>(rmsprop.clone())),
        (
            "rmsprop momentum",
            with::<RmspropRule>(RmspropConfig {
                momentum: 0.9,
                ..rmsprop.clone()
            }),
        ),
        (
            "rmsprop centred",
            with::<RmspropRule>(RmspropConfig {
                centered: true,
                ..rmsprop.clone()
            }),
        ),
        (
            "rmsprop centred + momentum + weight decay + maximize",
            with::<RmspropRule>(RmspropConfig {
                centered: true,
                momentum: 0.5,
                weight_decay: 0.1,
                maximize: true,
                alpha: 0.3,
                ..rmsprop
            }),
        ),
        ("adadelta", with::<AdadeltaRule>(AdadeltaConfig::default())),
        (
            "adadelta weight decay + maximize",
            with::<AdadeltaRule>(AdadeltaConfig {
                weight_decay: 0.1,
                maximize: true,
                ..AdadeltaConfig::default()
            }),
        ),
        ("nadam", with::<NadamRule>(nadam.clone())),
        (
            "nadam weight decay + maximize",
            with::<NadamRule>(NadamConfig {
                weight_decay: 0.1,
                maximize: true,
                ..nadam.clone()
            }),
        ),
        (
            "nadam decoupled weight decay",
            with::<NadamRule>(NadamConfig {
                weight_decay: 0.1,
                decoupled_weight_decay: true,
                ..nadam
            }),
        ),
        ("radam", with::<RadamRule>(RadamConfig::new(0.01))),
        (
            "radam weight decay + maximize",
            with::<RadamRule>(RadamConfig {
                maximize: true,
                betas: (0.8, 0.99),
                ..RadamConfig::new(0.01).weight_decay(0.1)
            }),
        ),
        (
            "radam decoupled weight decay",
            with::<RadamRule>(RadamConfig {
                decoupled_weight_decay: true,
                ..RadamConfig::new(0.01).weight_decay(0.1)
            }),
        ),
        ("rprop", with::<RpropRule>(RpropConfig::new(0.01))),
        (
            "rprop maximize, clamped step sizes",
            with::<RpropRule>(RpropConfig {
                etas: (0.3, 1.5),
                step_sizes: (5e-3, 0.02),
                maximize: true,
                ..RpropConfig::new(0.01)
            }),
        ),
        ("asgd", with::<AsgdRule>(AsgdConfig::default())),
        (
            // t0 = 3: the average moves with mu < 1 from the fifth step.
            "asgd averaging, weight decay + maximize",
            with::<AsgdRule>(AsgdConfig {
                lr: 0.05,
                lambd: 0.01,
                t0: 3.0,
                weight_decay: 0.1,
                maximize: true,
                ..AsgdConfig::default()
            }),
        ),
    ]
}

#[test]
#[ignore = "needs a CUDA GPU"]
fn fused_steps_launch_once_per_group_with_the_cpus_values() {
    let dev = gpu();
    for (name, build) in &cases() {
        for dtype in [DType::F32, DType::F64, DType::F16, DType::BF16] {
            let (want, _) = run(build, dtype, &Device::cpu());
            let (got, launches) = run(build, dtype, &dev);
            assert_same_bits(&want, &got, &format!("{name} {dtype}"));
            assert_eq!(
                launches, 1,
                "{name} {dtype}: kernels of one step (3 parameters)"
            );
        }
    }
}

/// Adafactor's step runs as three launches a parameter, reading nothing back
/// (`Tensor::fused_adafactor_`): a matrix and a batch of matrices (factored second moments,
/// their floors set by each batch's last row; the larger ones over several blocks), a
/// convolution's 4-d weight, a vector and a scalar step on the GPU to the CPU's values (its
/// tensor ops), to the rounding of the sums, in every float dtype, with weight decay and with
/// the other options (maximize, eps, d, beta2_decay).
#[test]
#[ignore = "needs a CUDA GPU"]
fn adafactor_steps_on_the_gpu_as_on_the_cpu() {
    let dev = gpu();
    let decay = AdafactorConfig {
        weight_decay: 0.01,
        ..AdafactorConfig::new(0.05)
    };
    let options = AdafactorConfig {
        beta2_decay: -0.5,
        eps: (Some(1e-3), 1e-2),
        d: 1.5,
        maximize: true,
        ..AdafactorConfig::new(0.02)
    };
    let shapes: [&[usize]; 7] = [
        &[13, 7],
        &[2, 5, 3],
        &[300, 257],
        &[16, 8, 3, 3],
        &[29],
        &[700],
        &[],
    ];
    // Relative to 1 + |value|: f32 and f64 at about ten times the worst seen on the emulator
    // (1.5e-7, 7.7e-16: the sums' order), f16 and bf16 at two units in the last place (the
    // emulator gives the CPU's values exactly).
    let dtypes = [
        (DType::F32, 1e-6),
        (DType::F64, 1e-14),
        (DType::F16, 2e-3),
        (DType::BF16, 1.6e-2),
    ];
    for config in [decay, options] {
        let build = with::<AdafactorRule>(config.clone());
        for (dtype, tol) in dtypes {
            let (want, _) = run_shapes(&build, &shapes, dtype, &Device::cpu(), false);
            let (got, launches) = run_shapes(&build, &shapes, dtype, &dev, false);
            let what = format!("{dtype}, maximize {}", config.maximize);
            assert_eq!(
                launches,
                3 * shapes.len() as u64,
                "{what}: kernels of one step"
            );
            assert_eq!(want.len(), got.len(), "{what}: parameters and buffers");
            for (k, (w, g)) in want.iter().zip(&got).enumerate() {
                assert_eq!(w.len(), g.len(), "{what}: entry {k}");
                for (a, b) in w.iter().zip(g) {
                    assert!(
                        (a - b).abs() <= tol * (1.0 + a.abs()),
                        "{what} entry {k}: {a} vs {b}"
                    );
                }
            }
        }
    }
}

/// A group of 70 parameters takes three launches a step (32 parameters a launch), with the
/// CPU's values.
#[test]
#[ignore = "needs a CUDA GPU"]
fn a_large_group_takes_one_launch_per_32_parameters() {
    let dev = gpu();
    let shapes: Vec<Vec<usize>> = (0..70).map(|k| vec![1 + k % 5, 1 + k % 3]).collect();
    let shapes: Vec<&[usize]> = shapes.iter().map(Vec::as_slice).collect();
    let build = with::<AdamRule>(AdamConfig::new(0.01).amsgrad(true));
    let (want, _) = run_shapes(&build, &shapes, DType::F32, &Device::cpu(), false);
    let (got, launches) = run_shapes(&build, &shapes, DType::F32, &dev, false);
    assert_same_bits(&want, &got, "70 parameters");
    assert_eq!(launches, 3, "kernels of one step");
}

/// A gradient that is a strided view cannot join the group's launch: the group's other
/// parameters still take one launch together and that one the rule's in-place ops, with the
/// CPU's values all the same.
#[test]
#[ignore = "needs a CUDA GPU"]
fn a_strided_gradient_falls_back_to_the_in_place_ops() {
    let dev = gpu();
    let build = with::<SgdRule>(SgdConfig::new(0.1).momentum(0.9).weight_decay(0.01));
    let shapes: [&[usize]; 3] = [&[13, 7], &[29], &[]];
    let (want, _) = run_shapes(&build, &shapes, DType::F32, &Device::cpu(), true);
    let (got, launches) = run_shapes(&build, &shapes, DType::F32, &dev, true);
    assert_same_bits(&want, &got, "strided gradient");
    // One multi-tensor launch, and effective_grad (zero_, add_, axpy_), mul_axpy_ and axpy_.
    assert_eq!(launches, 1 + 5, "kernels of one step");
}

/// Gradients that are rows of one tensor (as batch norm's weight and bias gradients are) step
/// in one launch, with the CPU's values.
#[test]
#[ignore = "needs a CUDA GPU"]
fn gradients_sharing_a_storage_step_in_one_launch() {
    let dev = gpu();
    let run = |device: &Device| {
        let mut g = Generator::new(3);
        let cpu = Device::cpu();
        let params: Vec<(String, Parameter)> = (0..2)
            .map(|k| {
                let value = g.randn([9], DType::F32, &cpu).unwrap();
                (
                    format!("p{k}"),
                    Parameter::new(value.to_device(device).unwrap()),
                )
            })
            .collect();
        let mut opt = sgd(params.clone(), SgdConfig::new(0.1).momentum(0.9));
        let cuda = sinew_cuda::CudaBackend::of(device);
        let mut launches = 0;
        for _ in 0..3 {
            let both = g.randn([2, 9], DType::F32, &cpu).unwrap();
            let both = both.to_device(device).unwrap();
            for (k, (_, p)) in params.iter().enumerate() {
                let row = both.narrow(0, k, 1).unwrap().reshape([9]).unwrap();
                p.value().set_grad(Some(row)).unwrap();
            }
            let before = cuda.map_or(0, |c| c.kernel_launches());
            opt.step().unwrap();
            launches = cuda.map_or(0, |c| c.kernel_launches()) - before;
        }
        let values: Vec<Vec<f64>> = params
            .iter()
            .map(|(_, p)| p.value().to_device(&cpu).unwrap().to_vec_f64().unwrap())
            .collect();
        (values, launches)
    };
    let (want, _) = run(&Device::cpu());
    let (got, launches) = run(&dev);
    assert_same_bits(&want, &got, "shared gradients");
    assert_eq!(launches, 1, "kernels of one step");
}

/// `clip_grad_norm_` over 40 gradients (two of them rows of one storage, as batch norm's are):
/// the CPU's total and clipped values (the f64 sums differ in order only), in a fixed number
/// of launches where the tensor ops took about ten a gradient.
#[test]
#[ignore = "needs a CUDA GPU"]
fn clipping_takes_a_few_multi_tensor_launches() {
    use sinew::optim::clip_grad_norm_;
    let dev = gpu();
    let cpu = Device::cpu();
    for norm_type in [2.0, f64::INFINITY] {
        let run = |d: &Device| {
            let mut g = Generator::new(11);
            let mut grads: Vec<Tensor> = (0..38)
                .map(|i| g.randn([3 + 50 * i], DType::F32, &cpu).unwrap())
                .collect();
            let pair = g
                .randn([2, 9], DType::F32, &cpu)
                .unwrap()
                .to_device(d)
                .unwrap();
            grads = grads.iter().map(|t| t.to_device(d).unwrap()).collect();
            grads.extend([0, 1].map(|k| pair.narrow(0, k, 1).unwrap()));
            let params: Vec<Parameter> = grads
                .iter()
                .map(|grad| {
                    let p = Parameter::new(grad.zeros_like().unwrap());
                    p.value().set_grad(Some(grad.clone())).unwrap();
                    p
                })
                .collect();
            let before = sinew_cuda::CudaBackend::of(d).map_or(0, |c| c.kernel_launches());
            let total = clip_grad_norm_(&params, 1.0, norm_type, false).unwrap();
            let launches = sinew_cuda::CudaBackend::of(d).map_or(0, |c| c.kernel_launches());
            let values: Vec<Vec<f64>> = params
                .iter()
                .map(|p| {
                    p.grad()
                        .unwrap()
                        .to_device(&cpu)
                        .unwrap()
                        .to_vec_f64()
                        .unwrap()
                })
                .collect();
            (total.item().unwrap(), values, launches - before)
        };
        let (want_total, want, _) = run(&cpu);
        let (total, got, launches) = run(&dev);
        assert!(
            want_total > 1.5,
            "{norm_type}: clipping must scale, total {want_total}"
        );
        assert!(
            (total - want_total).abs() <= 1e-12 * want_total,
            "{total} vs {want_total}"
        );
        for (i, (w, g)) in want.iter().zip(&got).enumerate() {
            for (a, b) in w.iter().zip(g) {
                assert!(
                    (a - b).abs() <= 1e-6 * a.abs(),
                    "gradient {i}: cpu {a}, gpu {b}"
                );
            }
        }
        // Σ|g|^p: two tables (the pair's shared storage is only read) and one reduction;
        // the root (p = 2); the factor: + 1e-6, max_norm / that, min(.., 1), its cast to f32;
        // the scaling: 32 + 7 gradients, then the pair's second row.
        let root = u64::from(norm_type != f64::INFINITY);
        assert_eq!(launches, 3 + root + 4 + 3, "norm {norm_type}: kernels");
    }
}
