//! The fused softmax cross-entropy on the GPU against the CPU backend: the `[4, M]` row
//! statistics with their totals (the mean) from one kernel, and the gradient (for per-row
//! gradients, for one broadcast to every row, and for the mean's), f32 and f64, and f16/bf16
//! logits (f32 statistics, weights and row gradients; the gradient in the logits' dtype), with
//! and without class weights and smoothing, ignored rows, short and long rows, one block and
//! hundreds; a bad target reported at the next synchronisation.

#![cfg(feature = "cuda")]

mod common;

use common::{check, gpu, poison, randn};
use sinew_tensor::{DType, Device, SoftmaxXentOptions, Tensor, xent_stats_dtype};

#[test]
#[ignore = "needs a CUDA GPU"]
fn softmax_xent_rows_and_gradient_match_the_cpu() {
    let dev = gpu();
    let cpu = Device::cpu();
    for dtype in [DType::F32, DType::F64, DType::F16, DType::BF16] {
        // The statistics' dtype, and the tolerances of the statistics and of the gradient (one
        // rounding step of f16/bf16 apart: the CPU rounds f32 values, the GPU f64 ones to f32).
        let stats_dtype = xent_stats_dtype(dtype);
        let tol = if stats_dtype == DType::F32 {
            1e-5
        } else {
            1e-12
        };
        let tol_dx = match dtype {
            DType::F16 => 1e-3,
            DType::BF16 => 8e-3,
            _ => tol,
        };
        // MNIST-like, a long row (warp loops), a single class, one row.
        // Many rows: 375 blocks, more than one thread of the last block sums per block.
        for (m, c) in [(64usize, 10usize), (37, 1000), (5, 1), (1, 33), (3000, 3)] {
            let x = randn(170, &[m, c], dtype).mul_scalar(4.0).unwrap();
            let targets: Vec<i64> = (0..m)
                .map(|i| {
                    if i % 7 == 3 {
                        -100
                    } else {
                        ((i * 31) % c) as i64
                    }
                })
                .collect();
            let t = Tensor::from_vec(targets, [m]).unwrap();
            let w = randn(171, &[c], stats_dtype)
                .abs()
                .unwrap()
                .add_scalar(0.1)
                .unwrap();
            let g = randn(172, &[m], stats_dtype);
            let (gx, gt, gw, gg) = (
                x.to_device(&dev).unwrap(),
                t.to_device(&dev).unwrap(),
                w.to_device(&dev).unwrap(),
                g.to_device(&dev).unwrap(),
            );
            for (weighted, e) in [(false, 0.0), (true, 0.0), (false, 0.1), (true, 0.3)] {
                let o = SoftmaxXentOptions {
                    ignore_index: -100,
                    label_smoothing: e,
                };
                let (cw, dw) = if weighted {
                    (Some(&w), Some(&gw))
                } else {
                    (None, None)
                };
                poison(&dev, 4 * m * c * 8);
                let cuda = sinew_cuda::CudaBackend::of(&dev).unwrap();
                let (want, want_totals) = x.softmax_xent_totals(&t, cw, o).unwrap();
                // The first run may set up the device's counters (tickets.rs).
                gx.softmax_xent_totals(&gt, dw, o).unwrap();
                let before = cuda.kernel_launches();
                let (got, gtotals) = gx.softmax_xent_totals(&gt, dw, o).unwrap();
                let what = format!("xent {dtype} [{m}, {c}] weighted={weighted} e={e}");
                assert_eq!(
                    cuda.kernel_launches() - before,
                    1,
                    "{what}: forward kernels"
                );
                let err = check(&what, &want, &got.to_device(&cpu).unwrap(), tol);
                let got_totals = gtotals.to_device(&cpu).unwrap();
                check(&format!("{what} totals"), &want_totals, &got_totals, tol);
                let want_dx = x.softmax_xent_rows_backward(&t, cw, &want, &g, o).unwrap();
                let got_dx = gx
                    .softmax_xent_rows_backward(&gt, dw, &got, &gg, o)
                    .unwrap();
                assert_eq!(got_dx.dtype(), dtype, "{what}: the gradient's dtype");
                let err_dx = check(&what, &want_dx, &got_dx.to_device(&cpu).unwrap(), tol_dx);
                println!("{what}: max error {err:e}, gradient {err_dx:e}");
                // One gradient broadcast to every row (a mean's), read without a copy: one
                // kernel.
                let one = g.narrow(0, 0, 1).unwrap().expand([m]).unwrap();
                let gone = gg.narrow(0, 0, 1).unwrap().expand([m]).unwrap();
                let want_dx = x
                    .softmax_xent_rows_backward(&t, cw, &want, &one, o)
                    .unwrap();
                let before = cuda.kernel_launches();
                let got_dx = gx
                    .softmax_xent_rows_backward(&gt, dw, &got, &gone, o)
                    .unwrap();
                assert_eq!(
                    cuda.kernel_launches() - before,
                    1,
                    "{what}: broadcast kernels"
                );
                check(&what, &want_dx, &got_dx.to_device(&cpu).unwrap(), tol_dx);
                // The mean's gradient, divided by the weights' sum in the same kernel.
                let (dmean, gdmean) = (one.narrow(0, 0, 1).unwrap(), gone.narrow(0, 0, 1).unwrap());
                let want_dx = x
                    .softmax_xent_mean_backward(&t, cw, (&want, &want_totals), &dmean, o)
                    .unwrap();
                let before = cuda.kernel_launches();
                let got_dx = gx
                    .softmax_xent_mean_backward(&gt, dw, (&got, &gtotals), &gdmean, o)
                    .unwrap();
                assert_eq!(cuda.kernel_launches() - before, 1, "{what}: mean kernels");
                check(
                    &format!("{what} mean"),
                    &want_dx,
                    &got_dx.to_device(&cpu).unwrap(),
                    tol_dx,
                );
            }
        }
    }
}

/// A bad class index costs no synchronisation at the call and comes back as the CPU's error
/// at the next one.
#[test]
#[ignore = "needs a CUDA GPU"]
fn a_bad_target_is_reported_at_the_next_synchronisation() {
    let dev = gpu();
    let x = randn(173, &[4, 6], DType::F32);
    let t = Tensor::from_vec(vec![1i64, -100, 6, 2], [4]).unwrap();
    let o = SoftmaxXentOptions {
        ignore_index: -100,
        label_smoothing: 0.0,
    };
    let cpu_err = x.softmax_xent_rows(&t, None, o).unwrap_err().to_string();
    let gx = x.to_device(&dev).unwrap();
    let gt = t.to_device(&dev).unwrap();
    let stats = gx
        .softmax_xent_rows(&gt, None, o)
        .expect("no error at the call");
    let err = dev.synchronize().unwrap_err().to_string();
    assert_eq!(err, cpu_err);
    // The bad row counts as ignored: loss and weight 0.
    let rows = stats.to_vec::<f32>().unwrap();
    assert_eq!((rows[2], rows[4 + 2]), (0.0, 0.0));
    println!("deferred cross-entropy error: {err}");
}
