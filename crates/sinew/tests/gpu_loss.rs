//! `CrossEntropyLoss` on the GPU under autocast (issue 14, items 1 and 3): f16/bf16 logits go
//! to the fused kernels as they are, with no cast of the logits or of their gradient: one kernel
//! forward (the rows and the mean) and one backward (the gradient, in the logits' dtype), with
//! the CPU's loss and gradient. Run on a GPU machine, or the CPU emulator, with
//! `--include-ignored`.

#![cfg(feature = "cuda")]

use sinew::nn::loss::CrossEntropyLoss;
use sinew::tensor::{BackwardOptions, DType, Device, Generator, Tensor, with_autocast};

/// The loss (f32) and the logits' gradient of one step under autocast to `dtype` on `device`,
/// with the kernels of its forward and of its backward (0 on the CPU).
fn step(
    device: &Device,
    x0: &Tensor,
    t: &Tensor,
    w: &Tensor,
    dtype: DType,
) -> (Vec<f64>, [u64; 2]) {
    let cuda = sinew_cuda::CudaBackend::of(device);
    let launches = || cuda.map_or(0, |c| c.kernel_launches());
    let loss = CrossEntropyLoss::new()
        .label_smoothing(0.1)
        .weight(w.to_device(device).unwrap());
    let x = x0.to_device(device).unwrap().requires_grad_();
    let t = t.to_device(device).unwrap();
    let seed = Tensor::ones([], DType::F32, device).unwrap();
    let mut kernels = [0; 2];
    let mut out = Vec::new();
    // The first step may set up the device's counters (tickets.rs); the second is counted.
    for _ in 0..2 {
        x.zero_grad();
        let before = launches();
        let y = with_autocast(dtype, || loss.forward(&x, &t)).unwrap();
        let after_forward = launches();
        y.backward_with(Some(seed.clone()), BackwardOptions::default())
            .unwrap();
        kernels = [after_forward - before, launches() - after_forward];
        assert_eq!(y.dtype(), DType::F32, "{dtype}: the loss runs in f32");
        let grad = x.grad().expect("a gradient");
        assert_eq!(grad.dtype(), dtype, "{dtype}: the gradient's dtype");
        let host = |t: &Tensor| t.to_device(&Device::cpu()).unwrap().to_vec_f64().unwrap();
        out = host(&y);
        out.extend(host(&grad));
    }
    (out, kernels)
}

#[test]
#[ignore = "needs a CUDA GPU"]
fn autocast_cross_entropy_reads_half_logits_in_one_kernel_each_way() {
    sinew_cuda::register();
    let dev = Device::cuda(0).expect("needs a CUDA GPU");
    let cpu = Device::cpu();
    let mut g = Generator::new(31);
    // 300 rows: 38 blocks, whose sums the last one adds.
    let (m, c) = (300usize, 10usize);
    let t = Tensor::from_vec((0..m as i64).map(|i| (i * 3) % c as i64).collect(), [m]).unwrap();
    let w = g
        .rand([c], DType::F32, &cpu)
        .unwrap()
        .add_scalar(0.5)
        .unwrap();
    for (dtype, tol) in [(DType::F16, 1e-3), (DType::BF16, 8e-3)] {
        let x0 = g.randn([m, c], DType::F32, &cpu).unwrap();
        let x0 = x0.mul_scalar(3.0).unwrap().to_dtype(dtype).unwrap();
        let (want, _) = step(&cpu, &x0, &t, &w, dtype);
        let (got, kernels) = step(&dev, &x0, &t, &w, dtype);
        assert_eq!(kernels, [1, 1], "{dtype}: kernels forward and backward");
        assert!(
            (got[0] - want[0]).abs() <= 1e-5 * want[0].abs(),
            "{dtype}: loss {} vs {}",
            got[0],
            want[0]
        );
        for (i, (a, b)) in got[1..].iter().zip(&want[1..]).enumerate() {
            assert!(
                (a - b).abs() <= tol * b.abs().max(1.0),
                "{dtype}: gradient {i}: {a} vs {b}"
            );
        }
        assert!(want[1..].iter().any(|v| *v != 0.0), "{dtype}: a gradient");
        println!(
            "{dtype}: loss {} (cpu {}), kernels {kernels:?}",
            got[0], want[0]
        );
    }
}
