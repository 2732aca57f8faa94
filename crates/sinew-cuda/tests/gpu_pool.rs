//! GPU parity with the CPU backend of pooling: max pooling's kernels (values, indices and
//! gradients, bit for bit; malformed indices reported) and average pooling (composed from
//! unfold).

#![cfg(feature = "cuda")]

mod common;

use common::{both, check, gpu, randn, tol};
use sinew_tensor::{DType, Device, Pool2dConfig, Tensor, Unfold2d};

const FLOATS: [DType; 4] = [DType::F32, DType::F16, DType::BF16, DType::F64];

#[test]
#[ignore = "needs a CUDA GPU"]
fn pooling_matches_the_cpu() {
    let dev = gpu();
    let configs = [
        Pool2dConfig::new(2),
        Pool2dConfig::new(3),
        Pool2dConfig {
            kernel: (3, 2),
            stride: Some((2, 1)),
            padding: (1, 1),
            dilation: (1, 1),
            count_include_pad: false,
        },
        Pool2dConfig {
            kernel: (3, 3),
            stride: Some((1, 2)),
            padding: (1, 0),
            dilation: (2, 1),
            count_include_pad: true,
        },
    ];
    for dtype in FLOATS {
        let (mut worst_max, mut worst_avg) = (0.0f64, 0.0f64);
        let x = randn(50, &[3, 4, 15, 17], dtype);
        let x_t = randn(51, &[3, 4, 17, 15], dtype)
            .permute(&[0, 1, 3, 2])
            .unwrap();
        for (i, cfg) in configs.into_iter().enumerate() {
            for (name, input) in [("contiguous", &x), ("transposed", &x_t)] {
                let what = format!("{dtype} {name} config {i}");
                let (c, g) = both(&dev, &[input], |t| t[0].max_pool2d(cfg).map(|r| r.0));
                worst_max = worst_max.max(check(&format!("max_pool2d {what}"), &c, &g, 0.0));
                let (c, g) = both(&dev, &[input], |t| t[0].max_pool2d(cfg).map(|r| r.1));
                assert_eq!(
                    c.to_vec::<i64>().unwrap(),
                    g.to_vec::<i64>().unwrap(),
                    "max_pool2d indices {what}"
                );
                if cfg.dilation != (1, 1) {
                    continue;
                }
                for include in [true, false] {
                    let cfg = Pool2dConfig {
                        count_include_pad: include,
                        ..cfg
                    };
                    let (c, g) = both(&dev, &[input], |t| t[0].avg_pool2d(cfg));
                    let err = check(&format!("avg_pool2d {what}"), &c, &g, tol(dtype));
                    worst_avg = worst_avg.max(err);
                }
            }
        }
        println!(
            "max_pool2d {dtype}: max error {worst_max:e} (indices equal); avg_pool2d: {worst_avg:e}"
        );
    }
}

#[test]
#[ignore = "needs a CUDA GPU"]
fn max_pool_gradients_match_the_cpu_exactly() {
    // Overlapping windows (3x3 stride 1 and 2, padding, dilation) on values with many ties, so
    // pixels win several windows and their gradients are sums: the GPU gathers them per pixel in
    // the CPU's order and arithmetic. The input is a transposed view made on the device.
    let dev = gpu();
    let configs = [
        Pool2dConfig::new(2),
        Pool2dConfig {
            stride: Some((1, 1)),
            padding: (1, 1),
            ..Pool2dConfig::new(3)
        },
        Pool2dConfig {
            stride: Some((2, 1)),
            padding: (1, 0),
            dilation: (2, 1),
            ..Pool2dConfig::new(3)
        },
    ];
    for dtype in FLOATS {
        // Normal values rounded to halves: many ties.
        let coarse: Vec<f64> = randn(90, &[2, 3, 13, 11], DType::F64)
            .to_vec_f64()
            .unwrap()
            .iter()
            .map(|v| (v * 2.0).round() / 2.0)
            .collect();
        let values = Tensor::from_vec(coarse, [2, 3, 13, 11])
            .unwrap()
            .to_dtype(dtype)
            .unwrap();
        let x_gpu = values.to_device(&dev).unwrap().transpose(2, 3).unwrap();
        let x_cpu = values.transpose(2, 3).unwrap();
        for (i, cfg) in configs.into_iter().enumerate() {
            let grads: Vec<Tensor> = [&x_cpu, &x_gpu]
                .into_iter()
                .map(|x| {
                    let x = x.detach().requires_grad_();
                    let (y, _) = x.max_pool2d(cfg).unwrap();
                    let n = y.elem_count() as f64;
                    let w = Tensor::arange(1.0, n + 1.0, 1.0, dtype, y.device())
                        .unwrap()
                        .mul_scalar(0.125)
                        .unwrap()
                        .reshape(y.shape().clone())
                        .unwrap();
                    y.mul(&w).unwrap().sum_all().unwrap().backward().unwrap();
                    x.grad().unwrap().to_device(&Device::cpu()).unwrap()
                })
                .collect();
            check(
                &format!("max_pool2d grad {dtype} config {i}"),
                &grads[0],
                &grads[1],
                0.0,
            );
        }
    }
}

#[test]
#[ignore = "needs a CUDA GPU"]
fn max_pool_backward_reports_indices_outside_their_window() {
    let dev = gpu();
    let spec = Unfold2d {
        n: 1,
        c: 1,
        h: 4,
        w: 4,
        kernel: (2, 2),
        stride: (2, 2),
        padding: (0, 0),
        dilation: (1, 1),
        pad_value: f64::NEG_INFINITY,
    };
    let grad = Tensor::ones([1, 1, 2, 2], DType::F32, &dev).unwrap();
    // Window (0, 1) covers pixels 2, 3, 6 and 7: index 5 belongs to window (0, 0).
    for (bad, what) in [(5i64, "another window's pixel"), (16, "outside the plane")] {
        let indices = Tensor::from_vec(vec![0i64, bad, 8, 10], [1, 1, 2, 2])
            .unwrap()
            .to_device(&dev)
            .unwrap();
        let backend = dev.backend();
        let out = grad.with_storage(|g, gl| {
            indices.with_storage(|i, il| backend.max_pool2d_backward(g, gl, i, il, &spec, false))
        });
        assert!(out.is_ok(), "{what}: queued without a synchronisation");
        let err = dev.synchronize().unwrap_err();
        println!("{what}: {err}");
        let text = err.to_string();
        assert!(
            text.contains(&format!("index {bad} at position 1")),
            "{what}: {err}"
        );
        assert!(text.contains("kernel (2, 2)"), "{what}: {err}");
    }
}

/// Max pooling's backward checks its indices only when they were written to after the
/// forward: its own unmodified indices cost no check kernel (the backward is one launch), and
/// indices changed in place to another window's pixel are reported at the next
/// synchronisation.
#[test]
#[ignore = "needs a CUDA GPU"]
fn max_pool_backward_checks_only_modified_indices() {
    use sinew_tensor::BackwardOptions;
    let dev = gpu();
    let x = randn(77, &[2, 3, 8, 8], DType::F32)
        .to_device(&dev)
        .unwrap();
    let launches = || sinew_cuda::CudaBackend::of(&dev).unwrap().kernel_launches();
    let backward = |modify: bool| {
        let leaf = x.clone().requires_grad_();
        let (y, indices) = leaf.max_pool2d(Pool2dConfig::new(2)).unwrap();
        if modify {
            // Pixel 5 of the plane lies outside window (0, 0).
            indices.fill_(5.0).unwrap();
        }
        let grad = Tensor::ones([2, 3, 4, 4], DType::F32, &dev).unwrap();
        let before = launches();
        y.backward_with(Some(grad), BackwardOptions::default())
            .unwrap();
        (launches() - before, dev.synchronize())
    };
    let (kernels, synced) = backward(false);
    assert!(synced.is_ok(), "{synced:?}");
    assert_eq!(kernels, 1, "the backward kernel alone");
    // The check kernel (and, the first time, the fill of a ring of failure slots).
    let (checked, synced) = backward(true);
    assert!(checked > kernels, "modified indices: {checked} kernels");
    let err = synced.unwrap_err().to_string();
    assert!(err.contains("index 5"), "{err}");
}

#[test]
#[ignore = "needs a CUDA GPU"]
fn avg_pool_gradients_match_the_cpu() {
    // The GPU's direct kernels (forward and backward) against the CPU's composite (unfold, sum,
    // divide, and autograd through them), with both divisors, overlapping windows and padding,
    // on a transposed view made on the device.
    let dev = gpu();
    let windows = [
        Pool2dConfig::new(2),
        Pool2dConfig {
            kernel: (3, 2),
            stride: Some((2, 1)),
            padding: (1, 1),
            ..Pool2dConfig::new(3)
        },
    ];
    for dtype in FLOATS {
        let mut worst = 0.0f64;
        let x = randn(95, &[2, 3, 9, 8], dtype);
        for (i, window) in windows.into_iter().enumerate() {
            for include in [true, false] {
                let cfg = Pool2dConfig {
                    count_include_pad: include,
                    ..window
                };
                let run = |dev: &Device| {
                    let leaf = x
                        .to_device(dev)
                        .unwrap()
                        .transpose(2, 3)
                        .unwrap()
                        .requires_grad_();
                    let y = leaf.avg_pool2d(cfg).unwrap();
                    let n = y.elem_count() as f64;
                    let w = Tensor::arange(0.0, n, 1.0, DType::F32, dev)
                        .unwrap()
                        .sin()
                        .unwrap()
                        .to_dtype(dtype)
                        .unwrap()
                        .reshape(y.shape().clone())
                        .unwrap();
                    y.mul(&w).unwrap().sum_all().unwrap().backward().unwrap();
                    [y.detach(), leaf.grad().unwrap()].map(|t| t.to_device(&Device::cpu()).unwrap())
                };
                let (c, g) = (run(&Device::cpu()), run(&dev));
                for (t, part) in ["output", "input grad"].iter().enumerate() {
                    let what = format!("avg_pool2d {dtype} window {i} include {include} {part}");
                    worst = worst.max(check(&what, &c[t], &g[t], tol(dtype)));
                }
            }
        }
        println!("avg_pool2d {dtype}: max error {worst:e} (output and input gradient)");
    }
}
