//! The `Trainer` on the GPU (issue 14, items 2 and 3): a `fit` step, in f32 and in mixed
//! precision with loss scaling, with accuracy metrics, waits for the GPU once (`loss.item()`),
//! because the metrics count on the device and the scaler's flag and the metrics' counts come
//! back in that wait; the metrics give the CPU's values. Run on a GPU machine, or the CPU
//! emulator, with `--include-ignored`.

#![cfg(feature = "cuda")]

use std::sync::{Arc, Mutex};

use sinew::data::{DataLoader, Input, LoaderConfig, Sample, Target, VecDataset};
use sinew::nn::functional::cross_entropy;
use sinew::nn::{Linear, ModuleExt, ReLU, Sequential};
use sinew::optim::{LbfgsConfig, SgdConfig, lbfgs, sgd};
use sinew::tensor::{DType, Device, Generator, Result, Tensor};
use sinew::train::callbacks::{Callback, Context};
use sinew::train::metrics::{Metric, RegressionError, TopKAccuracy, accuracy};
use sinew::train::{Precision, Trainer, Verbosity};

fn gpu() -> Device {
    sinew_cuda::register();
    Device::cuda(0).expect("needs a CUDA GPU")
}

/// The host's waits for the GPU so far, and the kernels launched.
fn counters(dev: &Device) -> (u64, u64) {
    sinew_cuda::CudaBackend::of(dev).map_or((0, 0), |c| {
        (c.stream_synchronizations(), c.kernel_launches())
    })
}

/// Records the host's waits and the kernels launched at the end of every training batch.
struct WaitLog {
    device: Device,
    log: Arc<Mutex<Vec<(u64, u64)>>>,
}

impl Callback for WaitLog {
    fn on_batch_end(&mut self, _batch: usize, _loss: f64, _ctx: &mut Context<'_>) -> Result<()> {
        self.log.lock().unwrap().push(counters(&self.device));
        Ok(())
    }
}

/// 48 samples of 8 random features (from `seed`), labelled by `class` of their index and
/// features, in batches of `batch` uploaded to `device` by the loader.
fn samples(
    device: &Device,
    seed: u64,
    batch: usize,
    class: impl Fn(usize, &[f32]) -> usize,
) -> DataLoader<VecDataset<Sample>> {
    let mut g = Generator::new(seed);
    let x = g.randn([48, 8], DType::F32, &Device::cpu()).unwrap();
    let x = x.to_vec::<f32>().unwrap();
    let items = x
        .chunks(8)
        .enumerate()
        .map(|(i, row)| Sample {
            input: Input::Features(row.to_vec()),
            target: Target::Class(class(i, row) as i64),
        })
        .collect();
    let config = LoaderConfig {
        batch_size: batch,
        num_workers: 0,
        device: Some(device.clone()),
        ..Default::default()
    };
    DataLoader::new(Arc::new(VecDataset::new(items)), config).unwrap()
}

/// 48 samples of 8 features in 4 classes, in batches of 8 uploaded to `device` by the loader.
fn loader(device: &Device) -> DataLoader<VecDataset<Sample>> {
    samples(device, 21, 8, |i, _| i % 4)
}

/// Two epochs of `fit` (six steps each) in f32 and in f16 mixed precision: after the first
/// step of an epoch, every step waits for the GPU exactly once, and launches as many kernels as
/// the others (mixed precision casting the weights ahead in one launch).
#[test]
#[ignore = "needs a CUDA GPU"]
fn a_fit_step_with_metrics_waits_once() {
    let dev = gpu();
    let mut steady = Vec::new();
    for precision in [Precision::F32, Precision::Mixed(DType::F16)] {
        let model = Sequential::new()
            .append(Linear::new(8, 16).unwrap())
            .append(ReLU)
            .append(Linear::new(16, 4).unwrap());
        model.to_device(&dev).unwrap();
        let opt = sgd(model.named_parameters(), SgdConfig::new(0.05).momentum(0.9));
        let log = Arc::new(Mutex::new(Vec::new()));
        let mut trainer = Trainer::new(&model, opt, cross_entropy)
            .metric(accuracy())
            .metric(TopKAccuracy::new(2))
            .precision(precision)
            .verbosity(Verbosity::Silent)
            .callback(WaitLog {
                device: dev.clone(),
                log: log.clone(),
            });
        let history = trainer.fit(&loader(&dev), None, 2).unwrap();
        let at = log.lock().unwrap().clone();
        let per_step: Vec<u64> = at.windows(2).map(|w| w[1].0 - w[0].0).collect();
        // Step 6 is the next epoch's first: the epoch's end read the metrics in between.
        let (first, second) = (&per_step[..5], &per_step[6..]);
        assert_eq!(first, [1; 5], "{precision:?}: waits per step");
        assert_eq!(second, [1; 5], "{precision:?}: waits per step");
        let kernels: Vec<u64> = at.windows(2).map(|w| w[1].1 - w[0].1).collect();
        println!("{precision:?}: kernels per step {kernels:?}");
        steady.push(kernels[1]);
        assert!(
            kernels[1..5].iter().all(|&k| k == kernels[1]),
            "{kernels:?}"
        );
        let top1 = history.last("accuracy").unwrap();
        let top2 = history.last("top2_accuracy").unwrap();
        assert!((0.0..=1.0).contains(&top1) && top1 <= top2, "{top1} {top2}");
    }
    // Mixed precision adds the casts of the inputs and (ahead, in one launch) of the two
    // layers' weights and biases, the inf/NaN flag's fill and the unscale, and the f16
    // outputs' cast for the metrics (the loss's scale seeds backward: no kernel of its own).
    assert_eq!(steady[1], steady[0] + 5, "kernels per step, f32 then mixed");
}

/// `evaluate` over six GPU batches waits for the GPU once, at the end (the batches' losses and
/// counts come back together; it waited once a batch before), and gives the CPU's loss and
/// accuracy for the same weights.
#[test]
#[ignore = "needs a CUDA GPU"]
fn evaluation_waits_once_for_all_batches() {
    let dev = gpu();
    let run = |device: &Device| {
        sinew::tensor::manual_seed(4);
        let model = Sequential::new()
            .append(Linear::new(8, 16).unwrap())
            .append(ReLU)
            .append(Linear::new(16, 4).unwrap());
        model.to_device(device).unwrap();
        let opt = sgd(model.named_parameters(), SgdConfig::new(0.05));
        let mut trainer = Trainer::new(&model, opt, cross_entropy).metric(accuracy());
        let before = counters(device).0;
        let logs = trainer.evaluate(&loader(device)).unwrap();
        (logs["loss"], logs["accuracy"], counters(device).0 - before)
    };
    let (want_loss, want_accuracy, _) = run(&Device::cpu());
    let (loss, accuracy, waited) = run(&dev);
    assert_eq!(waited, 1, "waits for six batches");
    assert!(
        (loss - want_loss).abs() <= 1e-5 * want_loss,
        "loss {loss} vs cpu {want_loss}"
    );
    // A near tie of two scores may round the other way on a GPU: one sample at most.
    assert!(
        (accuracy - want_accuracy).abs() <= 1.0 / 48.0,
        "{accuracy} vs {want_accuracy}"
    );
}

/// Accuracy, top-3 accuracy, MAE and MSE of GPU tensors equal the CPU's over several batches
/// (the counts exactly; the error sums to f64 rounding), with NaN and tied scores.
#[test]
#[ignore = "needs a CUDA GPU"]
fn device_metrics_give_the_cpus_values() {
    let dev = gpu();
    let cpu = Device::cpu();
    let mut g = Generator::new(8);
    let batches: Vec<(Tensor, Tensor, Tensor)> = (0..3)
        .map(|_| {
            let mut scores = g
                .randn([16, 5], DType::F32, &cpu)
                .unwrap()
                .to_vec::<f32>()
                .unwrap();
            scores[7] = f32::NAN;
            scores[12] = scores[11]; // a tie
            let scores = Tensor::from_vec(scores, [16, 5]).unwrap();
            let labels = g.randint([16], 0, 5, &cpu).unwrap();
            let truth = g.randn([16, 5], DType::F32, &cpu).unwrap();
            (scores, labels, truth)
        })
        .collect();
    let values = |device: &Device| -> Vec<f64> {
        let mut metrics: Vec<Box<dyn Metric>> = vec![
            Box::new(accuracy()),
            Box::new(TopKAccuracy::new(3)),
            Box::new(RegressionError::mae()),
            Box::new(RegressionError::mse()),
        ];
        for (scores, labels, truth) in &batches {
            let on = |t: &Tensor| t.to_device(device).unwrap();
            for (k, m) in metrics.iter_mut().enumerate() {
                let target = if k < 2 { on(labels) } else { on(truth) };
                m.update(&on(scores), &target).unwrap();
            }
        }
        metrics.iter_mut().map(|m| m.value().unwrap()).collect()
    };
    let (want, got) = (values(&cpu), values(&dev));
    assert_eq!(got[..2], want[..2], "accuracies");
    for (g, w) in got[2..].iter().zip(&want[2..]) {
        assert!(w.is_nan() == g.is_nan(), "{got:?} vs {want:?}");
    }
    // The NaN score makes both error sums NaN; without it they agree to rounding.
    let clean = |device: &Device| {
        let mut mse = RegressionError::mse();
        let (_, _, truth) = &batches[0];
        let pred = truth.mul_scalar(0.5).unwrap();
        mse.update(
            &pred.to_device(device).unwrap(),
            &truth.to_device(device).unwrap(),
        )
        .unwrap();
        mse.value().unwrap()
    };
    let (w, g) = (clean(&cpu), clean(&dev));
    assert!((w - g).abs() <= 1e-12 * w.abs(), "mse cpu {w}, gpu {g}");
}

/// 48 samples of 8 features labelled by which of the first four is largest, in one batch
/// (L-BFGS's curvature pairs need the same loss from step to step) uploaded to `device`.
fn full_batch(device: &Device) -> DataLoader<VecDataset<Sample>> {
    samples(device, 22, 48, |_, row| {
        (0..4).fold(0, |best, j| if row[j] > row[best] { j } else { best })
    })
}

/// L-BFGS, built on tensor ops (the flat gradient's `cat`, `narrow`, dot products, `axpy_`),
/// trains on the GPU through `fit` (a closure re-running forward and backward each evaluation,
/// with the strong-Wolfe line search) to the CPU's weights, to rounding: the GPU sums in
/// another order.
#[test]
#[ignore = "needs a CUDA GPU"]
fn lbfgs_fits_on_the_gpu_as_on_the_cpu() {
    let dev = gpu();
    let cpu = Device::cpu();
    let weights = |device: &Device| {
        let mut g = Generator::new(5);
        let m = Sequential::new()
            .append(Linear::new(8, 16).unwrap())
            .append(ReLU)
            .append(Linear::new(16, 4).unwrap());
        for p in m.parameters() {
            let v = g
                .randn(p.value().dims().to_vec(), DType::F32, &cpu)
                .unwrap();
            p.set_value(v.mul_scalar(0.3).unwrap()).unwrap();
        }
        m.to_device(device).unwrap();
        let config = LbfgsConfig::new(0.5).max_iter(5).strong_wolfe();
        let opt = lbfgs(m.named_parameters(), config);
        let history = Trainer::new(&m, opt, cross_entropy)
            .verbosity(Verbosity::Silent)
            .fit(&full_batch(device), None, 3)
            .unwrap();
        let loss = history.get("loss");
        assert!(loss[2] < 0.5 * loss[0], "{device:?}: {loss:?}");
        m.parameters()
            .iter()
            .flat_map(|p| p.value().to_device(&cpu).unwrap().to_vec::<f32>().unwrap())
            .collect::<Vec<f32>>()
    };
    let (on_gpu, on_cpu) = (weights(&dev), weights(&cpu));
    for (i, (a, b)) in on_gpu.iter().zip(&on_cpu).enumerate() {
        assert!(
            (a - b).abs() <= 1e-4 * (1.0 + b.abs()),
            "weight {i}: {a} on the GPU, {b} on the CPU"
        );
    }
}
