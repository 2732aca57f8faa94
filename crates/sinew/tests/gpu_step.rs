//! Whole training steps on the GPU (issue 14, item 2): an MLP's and LeNet-5's step (batch
//! upload, forward and cross entropy, backward, SGD with momentum, `loss.item()`) launches a
//! known number of kernels in each phase and makes the host wait for the GPU only in
//! `loss.item()`, in f32 and in mixed precision (f16 autocast with loss scaling: the
//! `GradScaler`'s inf/NaN flag skips the optimizer's kernel on the device, as with PyTorch's
//! fused optimizers, and comes back in `loss.item()`'s wait), so that a change adding a launch
//! or a synchronisation to a step shows here. Run on a GPU machine, or the CPU emulator, with
//! `--include-ignored`.

#![cfg(feature = "cuda")]

use sinew::nn::functional::cross_entropy;
use sinew::nn::zoo::{lenet5, mlp};
use sinew::nn::{Module, ModuleExt};
use sinew::optim::{GradScaler, GradScalerConfig, Optimizer, SgdConfig, sgd};
use sinew::tensor::autocast::{cached_sources, cast_ahead};
use sinew::tensor::{DType, Device, Generator, autocast, manual_seed};
use sinew_cuda::CudaBackend;

/// The phases of a step, in order.
const PHASES: [&str; 5] = [
    "upload",
    "forward+loss",
    "backward",
    "optimizer",
    "loss.item",
];

/// Kernels and host synchronisations of each phase of the third training step (the first two
/// may set up counters and check kernels) of `model` on `[batch, 1, 28, 28]` inputs; in mixed
/// precision with `ahead`, the weights the last forward pass cast are cast ahead in one launch
/// (`autocast::cast_ahead`, as the `Trainer` does).
fn step_counts(model: &dyn Module, batch: usize, mixed: bool, ahead: bool) -> ([u64; 5], [u64; 5]) {
    sinew_cuda::register();
    let gpu = Device::cuda(0).expect("needs a CUDA GPU");
    let cuda = CudaBackend::of(&gpu).unwrap();
    model.to_device(&gpu).unwrap();
    let mut g = Generator::new(3);
    let cpu = Device::cpu();
    let x = g.randn([batch, 1, 28, 28], DType::F32, &cpu).unwrap();
    let y = g.randint([batch], 0, 10, &cpu).unwrap();
    let mut opt = sgd(model.named_parameters(), SgdConfig::new(0.01).momentum(0.9));
    let mut scaler = GradScaler::with_config(GradScalerConfig {
        enabled: mixed,
        ..GradScalerConfig::default()
    });
    let (mut kernels, mut syncs) = ([0; 5], [0; 5]);
    let mut casts = Vec::new();
    for _ in 0..3 {
        let mut at = [(cuda.kernel_launches(), cuda.stream_synchronizations()); 6];
        let (xs, ys) = (x.to_device(&gpu).unwrap(), y.to_device(&gpu).unwrap());
        at[1] = (cuda.kernel_launches(), cuda.stream_synchronizations());
        opt.zero_grad();
        let loss = {
            let _autocast = mixed.then(|| autocast(DType::F16).unwrap());
            if ahead {
                cast_ahead(&casts.iter().collect::<Vec<_>>()).unwrap();
            }
            let loss = cross_entropy(&model.forward(&xs).unwrap(), &ys).unwrap();
            casts = cached_sources();
            loss
        };
        at[2] = (cuda.kernel_launches(), cuda.stream_synchronizations());
        scaler.scale(&loss).unwrap().backward().unwrap();
        at[3] = (cuda.kernel_launches(), cuda.stream_synchronizations());
        scaler.step(&mut opt).unwrap();
        scaler.update();
        at[4] = (cuda.kernel_launches(), cuda.stream_synchronizations());
        let value = loss.item().unwrap();
        at[5] = (cuda.kernel_launches(), cuda.stream_synchronizations());
        assert!(value.is_finite() && value > 0.0, "loss {value}");
        kernels = std::array::from_fn(|k| at[k + 1].0 - at[k].0);
        syncs = std::array::from_fn(|k| at[k + 1].1 - at[k].1);
    }
    (kernels, syncs)
}

/// Checks one model's counts in f32, mixed precision and mixed precision with the weights cast
/// ahead against `want` (kernels per phase).
fn check(name: &str, build: impl Fn() -> Box<dyn Module>, batch: usize, want: [[u64; 5]; 3]) {
    let modes = [(false, false), (true, false), (true, true)];
    for ((mixed, ahead), want) in modes.into_iter().zip(want) {
        manual_seed(0);
        let (kernels, syncs) = step_counts(build().as_ref(), batch, mixed, ahead);
        let what = format!("{name} mixed={mixed} ahead={ahead}");
        println!("{what}: phases {PHASES:?}, kernels {kernels:?}, synchronisations {syncs:?}");
        // loss.item() only (which also brings the scaler's flag in mixed precision).
        assert_eq!(syncs, [0, 0, 0, 0, 1], "{what}: host synchronisations");
        assert_eq!(kernels, want, "{what}: kernels per phase");
    }
}

/// MLP 784-64-64-10. f32: the forward is 3 GEMMs (bias and ReLU in their epilogue) and the
/// fused cross entropy; the backward the seed's fill, the cross entropy's gradient, then per
/// layer the input-gradient GEMM (not for the first layer), the weight-gradient GEMM, the
/// bias's sum and ReLU's mask (not for the first); the optimizer one multi-tensor SGD step.
/// Mixed adds the casts of the images and of each layer's weight and bias in the forward, the
/// loss's scaling (a multiplication, and another in its backward), and before the step a fill
/// of the inf/NaN flag and one multi-tensor unscale with its check. Casting the weights ahead
/// makes their six casts one launch.
#[test]
#[ignore = "needs a CUDA GPU"]
fn an_mlp_step_waits_once_and_launches_its_kernels() {
    let build = || Box::new(mlp(&[784, 64, 64, 10]).unwrap()) as Box<dyn Module>;
    check(
        "mlp",
        build,
        8,
        [[0, 4, 12, 1, 0], [0, 11, 14, 3, 0], [0, 6, 14, 3, 0]],
    );
}

/// LeNet-5 (2 convolutions with max pooling, 3 linear layers), the same step; its ten weights
/// and biases are cast in one launch when cast ahead.
#[test]
#[ignore = "needs a CUDA GPU"]
fn a_lenet5_step_waits_once_and_launches_its_kernels() {
    let build = || Box::new(lenet5(10).unwrap()) as Box<dyn Module>;
    check(
        "lenet5",
        build,
        4,
        [[0, 8, 24, 1, 0], [0, 19, 26, 3, 0], [0, 10, 26, 3, 0]],
    );
}
