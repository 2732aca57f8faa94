//! Batch norm's running statistics on the GPU: their update from f64 statistics
//! (`running_stats_<dtype>`), and the training step's statistics that update them in the same
//! kernel (`Tensor::channel_norm_updating`), against the CPU backend and the unfused ops.

#![cfg(feature = "cuda")]

mod common;

use common::{bits, gpu, kernel_launches, randn};
use sinew_tensor::{ChannelNormStep, DType, Device, RunningStats, Tensor};

/// Batch norm's running statistics update from f64 statistics (two rows of one `[6, C]`
/// tensor, as batch norm passes them, or two tensors), with the batch count, is one kernel
/// with the CPU's values (the in-place ops) bit for bit, f32 and f64 buffers, both branches of
/// `lerp_` (momentum 0.1 and 0.7).
#[test]
#[ignore = "needs a CUDA GPU"]
fn running_stats_update_is_one_kernel_with_the_cpus_values() {
    let dev = gpu();
    let cpu = Device::cpu();
    let c = 45;
    let stats = randn(180, &[6, c], DType::F64);
    let row = |t: &Tensor, k: usize| t.narrow(0, k, 1).unwrap().reshape([c]).unwrap();
    for dtype in [DType::F32, DType::F64] {
        for momentum in [0.1, 0.7] {
            let rm = randn(181, &[c], dtype);
            let rv = randn(182, &[c], dtype).abs().unwrap();
            let (gm, gv) = (rm.to_device(&dev).unwrap(), rv.to_device(&dev).unwrap());
            let gstats = stats.to_device(&dev).unwrap();
            // Momentum 0.1: the variance is another row of the mean's storage; 0.7: its own.
            let (var, gvar) = if momentum < 0.5 {
                (row(&stats, 5), row(&gstats, 5))
            } else {
                let var = row(&stats, 5).abs().unwrap();
                let gvar = var.to_device(&dev).unwrap();
                (var, gvar)
            };
            let count = Tensor::zeros((), DType::I64, &cpu).unwrap();
            let gcount = count.to_device(&dev).unwrap();
            let scalars = (momentum, 1.25);
            Tensor::update_running_stats_(&rm, &rv, &row(&stats, 3), &var, scalars, Some(&count))
                .unwrap();
            let cuda = sinew_cuda::CudaBackend::of(&dev).unwrap();
            let before = cuda.kernel_launches();
            Tensor::update_running_stats_(
                &gm,
                &gv,
                &row(&gstats, 3),
                &gvar,
                scalars,
                Some(&gcount),
            )
            .unwrap();
            assert_eq!(cuda.kernel_launches() - before, 1, "{dtype} {momentum}");
            let counted = gcount.to_device(&cpu).unwrap().to_vec::<i64>().unwrap();
            assert_eq!(counted, count.to_vec::<i64>().unwrap(), "the batch count");
            assert_eq!(counted, [1]);
            for (name, want, got) in [("mean", &rm, &gm), ("var", &rv, &gv)] {
                let want = want.to_vec_f64().unwrap();
                let got = got.to_device(&cpu).unwrap().to_vec_f64().unwrap();
                let same = want
                    .iter()
                    .zip(&got)
                    .all(|(a, b)| a.to_bits() == b.to_bits());
                assert!(same, "{dtype} {momentum} {name}: cpu {want:?}, gpu {got:?}");
            }
        }
    }
}

/// A training step's statistics and the running statistics' update from them
/// (`channel_norm_updating`) are one kernel with the bits of the two unfused steps
/// (`channel_norm_of`, then `update_running_stats_`): inputs in every float dtype, one split a
/// channel and many, f32 and f64 running buffers with and without the batch count, both
/// branches of `lerp_`. bf16 buffers, which no kernel updates, take the unfused steps, with
/// their values. A backward step is refused.
#[test]
#[ignore = "needs a CUDA GPU"]
fn statistics_update_the_running_ones_in_the_same_kernel() {
    let dev = gpu();
    for dtype in [DType::F32, DType::F64, DType::F16, DType::BF16] {
        for dims in [vec![3usize, 5, 7, 11], vec![64, 6, 16, 16]] {
            let c = dims[1];
            let n = (dims.iter().product::<usize>() / c) as f64;
            let x = randn(190, &dims, dtype).add_scalar(1.0).unwrap();
            let x = x.to_device(&dev).unwrap();
            let scale = randn(191, &[c], DType::F32).to_device(&dev).unwrap();
            let step = ChannelNormStep::Forward {
                count: n,
                eps: 1e-5,
            };
            for (running_dtype, momentum, counted) in [
                (DType::F32, 0.1, true),
                (DType::F64, 0.7, false),
                (DType::BF16, 0.1, true),
            ] {
                let what = format!("{dtype} {dims:?} {running_dtype} {momentum}");
                let buffers = || {
                    let rm = randn(192, &[c], running_dtype).to_device(&dev).unwrap();
                    let rv = randn(193, &[c], running_dtype).abs().unwrap();
                    let count = Tensor::zeros((), DType::I64, &dev).unwrap();
                    (rm, rv.to_device(&dev).unwrap(), count)
                };
                let unbias = n / (n - 1.0);
                // The unfused steps.
                let (want_m, want_v, want_n) = buffers();
                let want = x.channel_norm_of(None, step, &[&scale]).unwrap();
                let row = |k: usize| want.narrow(0, k, 1).unwrap().reshape([c]).unwrap();
                let count = counted.then_some(&want_n);
                let scalars = (momentum, unbias);
                Tensor::update_running_stats_(&want_m, &want_v, &row(3), &row(5), scalars, count)
                    .unwrap();
                // One kernel.
                let (rm, rv, batches) = buffers();
                let running = RunningStats {
                    mean: &rm,
                    var: &rv,
                    count: counted.then_some(&batches),
                    momentum,
                    unbias,
                };
                let before = kernel_launches(&dev);
                let got = x.channel_norm_updating(step, &[&scale], running).unwrap();
                let launches = kernel_launches(&dev) - before;
                if running_dtype == DType::BF16 {
                    assert!(launches > 1, "{what}: the unfused steps");
                } else {
                    assert_eq!(launches, 1, "{what}: kernels");
                }
                assert_eq!(bits(&got), bits(&want), "{what}: statistics");
                assert_eq!(bits(&rm), bits(&want_m), "{what}: running mean");
                assert_eq!(bits(&rv), bits(&want_v), "{what}: running variance");
                let counts = [batches, want_n].map(|t| t.to_vec::<i64>().unwrap());
                assert_eq!(counts[0], [i64::from(counted)], "{what}: batch count");
                assert_eq!(counts[0], counts[1], "{what}: batch count");
            }
            let (rm, rv) = (
                Tensor::zeros([c], DType::F32, &dev).unwrap(),
                Tensor::ones([c], DType::F32, &dev).unwrap(),
            );
            let running = RunningStats {
                mean: &rm,
                var: &rv,
                count: None,
                momentum: 0.1,
                unbias: 1.0,
            };
            let backward = ChannelNormStep::Backward { count: n };
            let err = x
                .channel_norm_updating(backward, &[&scale, &scale], running)
                .unwrap_err();
            assert!(err.to_string().contains("forward step only"), "{err}");
        }
    }
}
