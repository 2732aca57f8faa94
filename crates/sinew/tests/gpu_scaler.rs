//! The loss scaler on the GPU (issue 14, items 2 and 3): its unscale is one multi-tensor kernel,
//! and a step it skips is skipped by the optimizer's kernels on the device, so it never waits
//! for the device; the host reads the inf/NaN flag at its next download, and the optimizers'
//! step counts and scalars then forget the skipped step, as PyTorch's. Run on a GPU machine, or
//! the CPU emulator, with `--include-ignored`.

#![cfg(feature = "cuda")]

use sinew::optim::{
    AdadeltaConfig, AdadeltaRule, AdagradConfig, AdagradRule, AdamConfig, AdamRule, AdamWRule,
    AdamaxRule, GradScaler, GradScalerConfig, NadamConfig, NadamRule, Optim, Optimizer,
    RadamConfig, RadamRule, RmspropConfig, RmspropRule, SgdConfig, SgdRule, UpdateRule, sgd,
};
use sinew::tensor::{DType, Device, Generator, Parameter, Tensor};

fn gpu() -> Device {
    sinew_cuda::register();
    Device::cuda(0).expect("needs a CUDA GPU")
}

/// Parameters `p0`, `p1`, ... of `shapes`, standard normal f32 values drawn from `g` on the CPU,
/// on `device`.
fn random_params(
    g: &mut Generator,
    shapes: &[&[usize]],
    device: &Device,
) -> Vec<(String, Parameter)> {
    let cpu = Device::cpu();
    (shapes.iter().enumerate())
        .map(|(i, &shape)| {
            let value = g.randn(shape.to_vec(), DType::F32, &cpu).unwrap();
            let value = value.to_device(device).unwrap();
            (format!("p{i}"), Parameter::new(value))
        })
        .collect()
}

/// A `GradScaler` step over SGD with momentum: its unscale is one kernel for the three
/// gradients (after one fill of the device's flag), so a step launches 1 + 1 + 1 kernels once
/// the state exists, also when a gradient is infinite (the step's kernel then writes nothing),
/// and waits for the device not once; parameters, scale, skip decisions and the optimizer's
/// step counts (PyTorch's: a skipped step is not counted) equal the CPU's bit for bit.
#[test]
#[ignore = "needs a CUDA GPU"]
fn grad_scaler_unscales_every_gradient_in_one_kernel() {
    let dev = gpu();
    let run = |device: &Device| {
        let mut g = Generator::new(11);
        let cpu = Device::cpu();
        let params = random_params(&mut g, &[&[13, 7], &[29], &[]], device);
        let mut opt = sgd(params.clone(), SgdConfig::new(0.1).momentum(0.9));
        let mut scaler = GradScaler::with_config(GradScalerConfig {
            init_scale: 1024.0,
            ..GradScalerConfig::default()
        });
        let cuda = sinew_cuda::CudaBackend::of(device);
        let mut log = Vec::new();
        for step in 0..4 {
            for (k, (_, p)) in params.iter().enumerate() {
                let shape = p.value().dims().to_vec();
                let mut grad = g.randn(shape, DType::F32, &cpu).unwrap();
                grad = grad.mul_scalar(scaler.scale_value().unwrap()).unwrap();
                if step == 2 && k == 1 {
                    let mut v = grad.to_vec::<f32>().unwrap();
                    v[3] = f32::INFINITY;
                    grad = sinew::tensor::Tensor::from_vec(v, [29]).unwrap();
                }
                p.value()
                    .set_grad(Some(grad.to_device(device).unwrap()))
                    .unwrap();
            }
            let before = cuda.map_or(0, |c| c.kernel_launches());
            let waits = cuda.map_or(0, |c| c.stream_synchronizations());
            scaler.step(&mut opt).unwrap();
            let launches = cuda.map_or(0, |c| c.kernel_launches()) - before;
            assert_eq!(cuda.map_or(0, |c| c.stream_synchronizations()), waits);
            let stepped = !scaler.found_inf().unwrap();
            scaler.update();
            log.push((stepped, scaler.scale_value().unwrap(), launches));
        }
        let values: Vec<Vec<f32>> = params
            .iter()
            .map(|(_, p)| p.value().to_device(&cpu).unwrap().to_vec::<f32>().unwrap())
            .collect();
        let steps: Vec<u64> = opt
            .state_dict()
            .unwrap()
            .params
            .values()
            .map(|p| p.step)
            .collect();
        (values, log, steps)
    };
    let (want, want_log, want_steps) = run(&Device::cpu());
    let (got, got_log, got_steps) = run(&dev);
    assert_eq!(got_steps, want_steps);
    assert_eq!(want_steps, [3, 3, 3]);
    for (k, (w, g)) in want.iter().zip(&got).enumerate() {
        let same = w.iter().zip(g).all(|(a, b)| a.to_bits() == b.to_bits());
        assert!(same, "parameter {k}: cpu {w:?}, gpu {g:?}");
    }
    let decisions = |log: &[(bool, f64, u64)]| log.iter().map(|e| (e.0, e.1)).collect::<Vec<_>>();
    assert_eq!(decisions(&got_log), decisions(&want_log));
    assert_eq!(
        decisions(&want_log),
        [
            (true, 1024.0),
            (true, 1024.0),
            (false, 512.0),
            (true, 512.0)
        ]
    );
    // The first step also creates the optimizer's state (fills).
    let launches: Vec<u64> = got_log[1..].iter().map(|e| e.2).collect();
    assert_eq!(
        launches,
        [3, 3, 3],
        "kernels of the scaler steps after the first"
    );
}

/// Builds an optimizer over the named parameters.
type Build = Box<dyn Fn(Vec<(String, Parameter)>) -> Box<dyn Optimizer>>;

fn with<R: UpdateRule>(config: R::Config) -> Build
where
    R::Config: 'static,
{
    Box::new(move |params| Box::new(Optim::<R>::new(params, config.clone())))
}

/// What [`scaled_steps`] gives: the parameters' values, each parameter's state (its step
/// count, then its scalars and buffers' values), each step's scale, the host's waits, and the
/// kernels each `scaler.step` launched.
type Outcome = (Vec<Vec<f64>>, Vec<(u64, Vec<f64>)>, Vec<f64>, u64, Vec<u64>);

/// Five scaled steps of the optimizer `build` makes, on `device`, whose gradients at steps 0
/// and 3 hold an infinity or a NaN (the first step skipped: no state is made). `p1`'s gradient
/// is a transposed view when `strided` (the scaler's unscale makes it dense, so that the
/// multi-tensor kernel takes it). After each step the loss is read (`item()`), as a training
/// loop does; the waits counted are the others.
fn scaled_steps(build: &Build, device: &Device, strided: bool) -> Outcome {
    let mut g = Generator::new(5);
    let cpu = Device::cpu();
    let params = random_params(&mut g, &[&[6, 5], &[7, 4], &[9]], device);
    let mut opt = build(params.clone());
    let mut scaler = GradScaler::with_config(GradScalerConfig {
        init_scale: 256.0,
        growth_interval: 2,
        ..GradScalerConfig::default()
    });
    let cuda = sinew_cuda::CudaBackend::of(device);
    let waits = || cuda.map_or(0, |c| c.stream_synchronizations());
    let launches = || cuda.map_or(0, |c| c.kernel_launches());
    let (mut scales, mut extra_waits, mut kernels) = (Vec::new(), 0, Vec::new());
    for step in 0..5 {
        let before = waits();
        let scale = scaler.scale_value().unwrap();
        scales.push(scale);
        for (k, (_, p)) in params.iter().enumerate() {
            let dims = p.value().dims().to_vec();
            let mut grad = match (strided && k == 1, dims.as_slice()) {
                (true, &[a, b]) => g.randn([b, a], DType::F32, &cpu).unwrap().t().unwrap(),
                _ => g.randn(dims, DType::F32, &cpu).unwrap(),
            };
            grad = grad.mul_scalar(scale).unwrap();
            if (step == 0 && k == 2) || (step == 3 && k == 0) {
                let mut v = grad.to_vec::<f32>().unwrap();
                v[1] = if step == 0 { f32::INFINITY } else { f32::NAN };
                grad = Tensor::from_vec(v, grad.dims().to_vec()).unwrap();
            }
            p.value()
                .set_grad(Some(grad.to_device(device).unwrap()))
                .unwrap();
        }
        let launched = launches();
        scaler.step(opt.as_mut()).unwrap();
        kernels.push(launches() - launched);
        scaler.update();
        extra_waits += waits() - before;
        // The loop's loss read: the flag comes back in its wait.
        params[0].1.value().sum_all().unwrap().item().unwrap();
    }
    let values = params
        .iter()
        .map(|(_, p)| p.value().to_device(&cpu).unwrap().to_vec_f64().unwrap())
        .collect();
    let state = opt.state_dict().unwrap();
    let states = state
        .params
        .values()
        .map(|p| {
            let mut numbers: Vec<f64> = p.scalars.values().copied().collect();
            for (_, b) in &p.buffers {
                numbers.extend(b.to_device(&cpu).unwrap().to_vec_f64().unwrap());
            }
            (p.step, numbers)
        })
        .collect();
    (values, states, scales, extra_waits, kernels)
}

/// Every optimizer under the scaler, with two skipped steps (the first among them): the GPU
/// gives the CPU's parameters, state and scales bit for bit, three counted steps, no wait of
/// its own, with dense gradients or a strided one, and the optimizer's state made once (by the
/// skipped first step; every later step launches the same kernels: 3 with dense gradients,
/// the flag's fill, the unscale and the step).
#[test]
#[ignore = "needs a CUDA GPU"]
fn skipped_steps_are_forgotten_without_waiting() {
    let dev = gpu();
    let optimizers: Vec<(&str, Build)> = vec![
        ("sgd", with::<SgdRule>(SgdConfig::new(0.1).momentum(0.9))),
        ("adam", with::<AdamRule>(AdamConfig::new(0.01))),
        (
            "adamw amsgrad",
            with::<AdamWRule>(AdamConfig::adamw(0.01).amsgrad(true)),
        ),
        ("adamax", with::<AdamaxRule>(AdamConfig::new(0.01))),
        ("nadam", with::<NadamRule>(NadamConfig::default())),
        ("radam", with::<RadamRule>(RadamConfig::new(0.01))),
        ("rmsprop", with::<RmspropRule>(RmspropConfig::default())),
        ("adagrad", with::<AdagradRule>(AdagradConfig::default())),
        ("adadelta", with::<AdadeltaRule>(AdadeltaConfig::default())),
    ];
    for (name, build) in &optimizers {
        for strided in [false, true] {
            let what = format!("{name}, strided {strided}");
            let (want, want_state, want_scales, _, _) =
                scaled_steps(build, &Device::cpu(), strided);
            let (got, got_state, got_scales, waits, kernels) = scaled_steps(build, &dev, strided);
            assert!(
                kernels[0] > kernels[1],
                "{what}: the state made at first: {kernels:?}"
            );
            assert!(
                kernels[1..].iter().all(|&k| k == kernels[1]),
                "{what}: {kernels:?}"
            );
            if !strided {
                assert_eq!(kernels[1], 3, "{what}");
            }
            let bits = |v: &[Vec<f64>]| -> Vec<Vec<u64>> {
                v.iter()
                    .map(|x| x.iter().map(|f| f.to_bits()).collect())
                    .collect()
            };
            assert_eq!(bits(&got), bits(&want), "{what}: parameters");
            let steps: Vec<u64> = got_state.iter().map(|s| s.0).collect();
            assert_eq!(steps, [3, 3, 3], "{what}: steps counted");
            for (g, w) in got_state.iter().zip(&want_state) {
                assert_eq!(
                    bits(std::slice::from_ref(&g.1)),
                    bits(std::slice::from_ref(&w.1)),
                    "{what}: state"
                );
            }
            assert_eq!(got_scales, want_scales, "{what}: scales");
            assert_eq!(got_scales, [256.0, 128.0, 128.0, 256.0, 128.0], "{what}");
            assert_eq!(waits, 0, "{what}: waits");
        }
    }
}

/// The documented loop with clipping (`unscale_`, `clip_grad_norm_`, `step`; Adam, an infinity
/// at step 1) waits for the GPU only when the loss is read: the norm stays on the device (a
/// 0-d f64 tensor), as the clipping factor does; the parameters and norms agree with the CPU's.
#[test]
#[ignore = "needs a CUDA GPU"]
fn clipping_between_unscale_and_step_waits_for_nothing() {
    use sinew::optim::{AdamConfig, adam, clip_grad_norm_};
    let dev = gpu();
    let run = |device: &Device| {
        let mut g = Generator::new(17);
        let cpu = Device::cpu();
        let params = random_params(&mut g, &[&[6, 5], &[9]], device);
        let values: Vec<Parameter> = params.iter().map(|(_, p)| p.clone()).collect();
        let mut opt = adam(params.clone(), AdamConfig::new(0.01));
        let mut scaler = GradScaler::with_config(GradScalerConfig {
            init_scale: 64.0,
            ..GradScalerConfig::default()
        });
        let cuda = sinew_cuda::CudaBackend::of(device);
        let waits = || cuda.map_or(0, |c| c.stream_synchronizations());
        let (mut norms, mut extra_waits) = (Vec::new(), 0);
        for step in 0..4 {
            let before = waits();
            let scale = scaler.scale_value().unwrap();
            for (k, (_, p)) in params.iter().enumerate() {
                let dims = p.value().dims().to_vec();
                let mut grad = g
                    .randn(dims, DType::F32, &cpu)
                    .unwrap()
                    .mul_scalar(scale)
                    .unwrap();
                if step == 1 && k == 1 {
                    let mut v = grad.to_vec::<f32>().unwrap();
                    v[4] = f32::INFINITY;
                    grad = Tensor::from_vec(v, [9]).unwrap();
                }
                p.value()
                    .set_grad(Some(grad.to_device(device).unwrap()))
                    .unwrap();
            }
            scaler.unscale_(&opt).unwrap();
            let norm = clip_grad_norm_(&values, 0.5, 2.0, false).unwrap();
            assert_eq!(norm.device(), device);
            scaler.step(&mut opt).unwrap();
            scaler.update();
            extra_waits += waits() - before;
            norms.push(norm.item().unwrap());
        }
        let values: Vec<Vec<f64>> = (values.iter())
            .map(|p| p.value().to_device(&cpu).unwrap().to_vec_f64().unwrap())
            .collect();
        (values, norms, extra_waits)
    };
    let (want, want_norms, _) = run(&Device::cpu());
    let (got, got_norms, waits) = run(&dev);
    assert_eq!(waits, 0, "waits besides the norms' reads");
    assert!(want_norms[1].is_infinite() && got_norms[1].is_infinite());
    for (g, w) in got_norms.iter().zip(&want_norms) {
        assert!(
            g == w || (g - w).abs() <= 1e-12 * w.abs(),
            "norms {got_norms:?} vs {want_norms:?}"
        );
    }
    for (g, w) in got.iter().flatten().zip(want.iter().flatten()) {
        assert!((g - w).abs() <= 1e-6 * (1.0 + w.abs()), "gpu {g}, cpu {w}");
    }
}

/// `scaler.backward(&loss)` seeds backward with the scale: the same gradients as
/// `scaler.scale(&loss)?.backward()` to the bit, two kernels fewer (the product and its
/// gradient), no wait for the device.
#[test]
#[ignore = "needs a CUDA GPU"]
fn scaled_backward_is_two_kernels_fewer_than_the_product() {
    let dev = gpu();
    let cuda = sinew_cuda::CudaBackend::of(&dev).unwrap();
    let scaler = GradScaler::with_config(GradScalerConfig {
        init_scale: 3000.0,
        ..GradScalerConfig::default()
    });
    let run = |fused: bool| {
        let params = random_params(&mut Generator::new(5), &[&[13, 7]], &dev);
        let w = params[0].1.value();
        let loss = w.mul_scalar(0.37).unwrap().tanh().unwrap();
        let loss = loss.square().unwrap().mean_all().unwrap();
        let (launches, waits) = (cuda.kernel_launches(), cuda.stream_synchronizations());
        if fused {
            scaler.backward(&loss).unwrap();
        } else {
            scaler.scale(&loss).unwrap().backward().unwrap();
        }
        assert_eq!(cuda.stream_synchronizations(), waits, "waits");
        let grad = w.grad().unwrap().to_vec::<f32>().unwrap();
        (grad, cuda.kernel_launches() - launches)
    };
    let (want, product_launches) = run(false);
    let (got, launches) = run(true);
    assert_eq!(got, want);
    assert_eq!(launches + 2, product_launches);
}
