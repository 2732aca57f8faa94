//! GPU parity of gradient clipping's multi-tensor ops (`pow_sum_many_<dtype>` and
//! `mul_many_<dtype>` of cuda/fused_step.cu) with the CPU's tensor ops, in every float dtype:
//! `Tensor::pow_sum_many` over more tensors than one launch takes (two tables), of sizes from
//! empty to many blocks, with a transposed one (the fallback) and NaN; `Tensor::mul_many_`
//! bit for bit, with views sharing a storage; weight averaging's `Tensor::average_many_`
//! (`average_many_<dtype>`) bit for bit. Each counts its launches.

#![cfg(feature = "cuda")]

mod common;

use common::{gpu, kernel_launches, randn};
use sinew_tensor::{AverageStep, DType, Device, Tensor};

/// Sizes of the dense tensors: 40 of them (two launches of 32 and 8), empty to 70,000
/// elements (35 blocks of 2,048).
fn sizes() -> Vec<usize> {
    (0..40)
        .map(|i| match i {
            0 => 0,
            1 => 70_000,
            2 => 1,
            _ => 3 + 37 * i,
        })
        .collect()
}

fn dense(seed: u64, dtype: DType, dev: &Device) -> Vec<Tensor> {
    sizes()
        .iter()
        .enumerate()
        .map(|(i, &n)| randn(seed + i as u64, &[n], dtype).to_device(dev).unwrap())
        .collect()
}

#[test]
#[ignore = "needs a CUDA GPU"]
fn pow_sum_many_matches_the_cpu_in_one_kernel_a_table() {
    let dev = gpu();
    let cpu = Device::cpu();
    for dtype in [DType::F32, DType::F64, DType::F16, DType::BF16] {
        for p in [1.0, 2.0, 3.0, f64::INFINITY] {
            let label = format!("{dtype} p {p}");
            let run = |d: &Device, transposed: bool, nan: bool| {
                let mut tensors = dense(100, dtype, d);
                if transposed {
                    tensors.push(
                        randn(200, &[5, 9], dtype)
                            .to_device(d)
                            .unwrap()
                            .t()
                            .unwrap(),
                    );
                }
                if nan {
                    let mut v = randn(201, &[300], DType::F64).to_vec_f64().unwrap();
                    v[123] = f64::NAN;
                    let t = Tensor::from_vec(v, [300]).unwrap().to_dtype(dtype).unwrap();
                    tensors.push(t.to_device(d).unwrap());
                }
                let refs: Vec<&Tensor> = tensors.iter().collect();
                let before = kernel_launches(d);
                let sum = Tensor::pow_sum_many(&refs, p).unwrap();
                assert_eq!((sum.dtype(), sum.device()), (DType::F64, d), "{label}");
                (sum.item().unwrap(), kernel_launches(d) - before)
            };
            for transposed in [false, true] {
                let (want, _) = run(&cpu, transposed, false);
                let (got, launches) = run(&dev, transposed, false);
                assert!(
                    (got - want).abs() <= 1e-12 * want && want > 1.0,
                    "{label} transposed {transposed}: gpu {got}, cpu {want}"
                );
                if !transposed {
                    // Two tables (the empty tensor left out), then one pass over their 35 + 38 partial
                    // results.
                    assert_eq!(launches, 3, "{label}: kernels");
                }
            }
            let (got, _) = run(&dev, false, true);
            assert!(got.is_nan(), "{label}: NaN gives {got}");
        }
    }
}

#[test]
#[ignore = "needs a CUDA GPU"]
fn mul_many_matches_mul_bit_for_bit() {
    let dev = gpu();
    let cpu = Device::cpu();
    for dtype in [DType::F32, DType::F64, DType::F16, DType::BF16] {
        let run = |d: &Device| {
            let mut tensors = dense(300, dtype, d);
            tensors.truncate(38);
            let pair = randn(400, &[2, 7], dtype).to_device(d).unwrap();
            tensors.extend([0, 1].map(|k| pair.narrow(0, k, 1).unwrap()));
            tensors.push(
                randn(401, &[4, 6], dtype)
                    .to_device(d)
                    .unwrap()
                    .t()
                    .unwrap(),
            );
            let factor = Tensor::full((), 0.3, DType::F64, d).unwrap();
            let refs: Vec<&Tensor> = tensors.iter().collect();
            let before = kernel_launches(d);
            Tensor::mul_many_(&refs, &factor).unwrap();
            let launches = kernel_launches(d) - before;
            let values: Vec<Vec<f64>> = tensors
                .iter()
                .map(|t| t.to_device(&cpu).unwrap().to_vec_f64().unwrap())
                .collect();
            (values, launches)
        };
        let (want, _) = run(&cpu);
        let (got, launches) = run(&dev);
        for (i, (w, g)) in want.iter().zip(&got).enumerate() {
            let same = w.iter().zip(g).all(|(a, b)| a.to_bits() == b.to_bits());
            assert!(same, "{dtype} tensor {i}: cpu {w:?}, gpu {g:?}");
        }
        let unscaled = randn(301, &[sizes()[1]], dtype).to_vec_f64().unwrap();
        assert_ne!(want[1], unscaled, "{dtype}: nothing was scaled");
        // The factor's cast (not for f64), 32 + 7 dense tensors, the second row of the pair,
        // and the transposed view's own mul_.
        let cast = usize::from(dtype != DType::F64) as u64;
        assert_eq!(launches, cast + 4, "{dtype}: kernels");
    }
}

/// Autocast's weight casts (`Tensor::to_dtype_many`, `cast_many_f32_<half>`): 40 dense f32
/// tensors in two launches, a transposed one and an f64 one on their own, every value the
/// CPU's cast bit for bit (outputs poisoned first).
#[test]
#[ignore = "needs a CUDA GPU"]
fn to_dtype_many_casts_dense_tensors_in_one_kernel_a_table() {
    let dev = gpu();
    let cpu = Device::cpu();
    for half in [DType::F16, DType::BF16] {
        let run = |d: &Device| {
            let mut tensors = dense(500, DType::F32, d);
            tensors.push(
                randn(600, &[5, 9], DType::F32)
                    .to_device(d)
                    .unwrap()
                    .t()
                    .unwrap(),
            );
            tensors.push(randn(601, &[33], DType::F64).to_device(d).unwrap());
            if !d.is_cpu() {
                common::poison(d, 70_000 * 2);
            }
            let refs: Vec<&Tensor> = tensors.iter().collect();
            let before = kernel_launches(d);
            let casts = Tensor::to_dtype_many(&refs, half).unwrap();
            let launches = kernel_launches(d) - before;
            let values: Vec<Vec<u64>> = casts
                .iter()
                .map(|t| {
                    assert_eq!((t.dtype(), t.device()), (half, d));
                    common::bits(&t.to_device(&cpu).unwrap())
                })
                .collect();
            (values, launches)
        };
        let (want, _) = run(&cpu);
        let (got, launches) = run(&dev);
        for (i, (w, g)) in want.iter().zip(&got).enumerate() {
            assert_eq!(w, g, "{half} tensor {i}");
        }
        assert_eq!(launches, 4, "{half}: kernels");
    }
}

/// Weight averaging (`Tensor::average_many_`, `average_many_<dtype>`: SWA's running mean and
/// EMA's `lerp_`, both of its branches) over 40 dense pairs takes one kernel a table of 32,
/// every value the tensor ops' on the CPU bit for bit in every float dtype; a transposed value
/// joins no launch and runs the tensor ops.
#[test]
#[ignore = "needs a CUDA GPU"]
fn average_many_matches_the_tensor_ops_in_one_kernel_a_table() {
    let dev = gpu();
    let cpu = Device::cpu();
    let steps = [
        AverageStep::Mean { count: 3 },
        AverageStep::Lerp { weight: 0.1 },
        AverageStep::Lerp { weight: 0.7 },
    ];
    for dtype in [DType::F32, DType::F64, DType::F16, DType::BF16] {
        for step in steps {
            let run = |d: &Device| {
                let mut avgs = dense(500, dtype, d);
                let mut xs = dense(600, dtype, d);
                avgs.push(randn(601, &[4, 6], dtype).to_device(d).unwrap());
                let column_major = randn(602, &[6, 4], dtype).to_device(d).unwrap();
                xs.push(column_major.t().unwrap());
                let (a, x): (Vec<&Tensor>, Vec<&Tensor>) =
                    (avgs.iter().collect(), xs.iter().collect());
                let before = kernel_launches(d);
                Tensor::average_many_(&a, &x, step).unwrap();
                let launches = kernel_launches(d) - before;
                let values: Vec<Vec<f64>> = avgs
                    .iter()
                    .map(|t| t.to_device(&cpu).unwrap().to_vec_f64().unwrap())
                    .collect();
                (values, launches)
            };
            // The reference: each pair's own tensor ops on the CPU.
            let (mut avgs, mut xs) = (dense(500, dtype, &cpu), dense(600, dtype, &cpu));
            avgs.push(randn(601, &[4, 6], dtype));
            xs.push(randn(602, &[6, 4], dtype).t().unwrap());
            for (a, x) in avgs.iter().zip(&xs) {
                match step {
                    AverageStep::Mean { count } => a
                        .add_(&x.sub(a).unwrap().div_scalar(count as f64 + 1.0).unwrap())
                        .unwrap(),
                    AverageStep::Lerp { weight } => a.lerp_(x, weight).unwrap(),
                }
            }
            let (got, launches) = run(&dev);
            for (i, (a, g)) in avgs.iter().zip(&got).enumerate() {
                let w = a.to_vec_f64().unwrap();
                let same = w.iter().zip(g).all(|(p, q)| p.to_bits() == q.to_bits());
                assert!(same, "{dtype} {step:?} pair {i}: cpu {w:?}, gpu {g:?}");
            }
            let before = randn(500 + 1, &[sizes()[1]], dtype).to_vec_f64().unwrap();
            assert_ne!(got[1], before, "{dtype}: nothing was averaged");
            // Two tables (32 + 8 pairs), and the transposed pair's sub, div and add (or lerp).
            let own = match step {
                AverageStep::Mean { .. } => 3,
                AverageStep::Lerp { .. } => 1,
            };
            assert_eq!(launches, 2 + own, "{dtype} {step:?}: kernels");
        }
    }
}
