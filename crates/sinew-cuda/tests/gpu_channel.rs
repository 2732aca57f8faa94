//! Batch norm's per-channel kernels on the GPU against the CPU backend: sums (one and two
//! operands, strided views) and the per-channel affine map, f32, f64, f16 and bf16.

#![cfg(feature = "cuda")]

mod common;

use common::{bits, check, gpu, kernel_launches, poison, randn};
use sinew_tensor::{DType, Device, Tensor};

#[test]
#[ignore = "needs a CUDA GPU"]
fn channel_sums_and_lincomb_match_the_cpu() {
    let dev = gpu();
    let cpu = Device::cpu();
    for dtype in [DType::F32, DType::F64, DType::F16, DType::BF16] {
        // ResNet-like and awkward shapes; the permuted view is not contiguous.
        for dims in [
            vec![128usize, 64, 8, 8],
            vec![3, 5, 7, 11],
            vec![17, 3],
            vec![2, 1, 1, 1],
        ] {
            let a = randn(160, &dims, dtype)
                .mul_scalar(2.0)
                .unwrap()
                .add_scalar(0.5)
                .unwrap();
            let b = randn(161, &dims, dtype);
            let c = dims[1];
            let (ga, gb) = (a.to_device(&dev).unwrap(), b.to_device(&dev).unwrap());
            poison(&dev, 2 * c * 8);
            for (name, cpu_out, gpu_out) in [
                (
                    "sums",
                    a.channel_sums(None).unwrap(),
                    ga.channel_sums(None).unwrap(),
                ),
                (
                    "sums with b",
                    a.channel_sums(Some(&b)).unwrap(),
                    ga.channel_sums(Some(&gb)).unwrap(),
                ),
            ] {
                let err = check(
                    &format!("channel {name} {dtype} {dims:?}"),
                    &cpu_out,
                    &gpu_out.to_device(&cpu).unwrap(),
                    1e-9,
                );
                println!("channel {name} {dtype} {dims:?}: max error {err:e}");
            }
            let coef = randn(162, &[3, c], DType::F64);
            let gcoef = coef.to_device(&dev).unwrap();
            poison(&dev, a.elem_count() * dtype.size_in_bytes());
            let want = a.channel_lincomb(Some(&b), &coef).unwrap();
            let got = ga.channel_lincomb(Some(&gb), &gcoef).unwrap();
            let err = check("lincomb", &want, &got.to_device(&cpu).unwrap(), 0.0);
            println!("channel lincomb {dtype} {dims:?}: max error {err:e}");
            let want = a.channel_lincomb(None, &coef).unwrap();
            let got = ga.channel_lincomb(None, &gcoef).unwrap();
            check(
                "lincomb without b",
                &want,
                &got.to_device(&cpu).unwrap(),
                0.0,
            );
            // With the ReLU in the same pass: the CPU's lincomb then relu, bit for bit (one
            // launch; NaN kept).
            let want = want.relu().unwrap();
            let before = kernel_launches(&dev);
            let got = ga.channel_lincomb_relu(&gcoef).unwrap();
            assert_eq!(kernel_launches(&dev) - before, 1, "lincomb relu {dtype}");
            let got = got.to_device(&cpu).unwrap();
            assert_eq!(bits(&got), bits(&want), "lincomb relu {dtype} {dims:?}");
            // With a residual's sum before the ReLU (a ResNet block's end): the CPU's lincomb,
            // then add_relu, bit for bit, in one launch.
            let want = a
                .channel_lincomb(None, &coef)
                .unwrap()
                .add_relu(&b)
                .unwrap();
            let before = kernel_launches(&dev);
            let got = ga.channel_lincomb_add_relu(&gb, &gcoef).unwrap();
            assert_eq!(
                kernel_launches(&dev) - before,
                1,
                "lincomb add relu {dtype}"
            );
            let got = got.to_device(&cpu).unwrap();
            assert_eq!(bits(&got), bits(&want), "lincomb add relu {dtype} {dims:?}");
        }
        let nan = Tensor::from_vec(vec![f64::NAN, -1.0, 2.0, -0.0], [4, 1])
            .unwrap()
            .to_dtype(dtype)
            .unwrap();
        let unit = Tensor::from_vec(vec![1.0f64, 0.0, 0.0], [3, 1]).unwrap();
        let want = nan.channel_lincomb(None, &unit).unwrap().relu().unwrap();
        let got = nan
            .to_device(&dev)
            .unwrap()
            .channel_lincomb_relu(&unit.to_device(&dev).unwrap())
            .unwrap();
        assert_eq!(
            bits(&got),
            bits(&want),
            "lincomb relu {dtype} of NaN, -1, 2, -0"
        );
        // A strided (channels-last) view.
        let a = randn(163, &[4, 6, 5, 3], dtype)
            .permute(&[0, 3, 1, 2])
            .unwrap();
        let ga = a.to_device(&dev).unwrap();
        let want = a.channel_sums(None).unwrap();
        let got = ga.channel_sums(None).unwrap().to_device(&cpu).unwrap();
        check("strided sums", &want, &got, 1e-9);
    }
    let ints = Tensor::zeros([2, 3], DType::I64, &dev).unwrap();
    assert!(ints.channel_sums(None).is_err(), "integers have no sums");
}

/// The sums are one kernel however many blocks share a channel (the last block to arrive adds
/// the others' partial sums), and the same bits on every run: the partials are added in a fixed
/// order, never atomically. Runs back to back so each launch relies on the one before it having
/// put its counters back to 0.
#[test]
#[ignore = "needs a CUDA GPU"]
fn channel_sums_are_one_deterministic_kernel() {
    let dev = gpu();
    // 1, 4, 32 and 1024 blocks a channel (8 * 256 elements each, at most 1024).
    for dims in [
        vec![2usize, 5, 7, 11],
        vec![128, 64, 8, 8],
        vec![64, 3, 32, 32],
        vec![512, 2, 64, 64],
    ] {
        let a = randn(170, &dims, DType::F32).add_scalar(3.0).unwrap();
        let b = randn(171, &dims, DType::F32);
        let (ga, gb) = (a.to_device(&dev).unwrap(), b.to_device(&dev).unwrap());
        let first = ga.channel_sums(Some(&gb)).unwrap().to_vec::<f64>().unwrap();
        for _ in 0..3 {
            let before = kernel_launches(&dev);
            let again = ga.channel_sums(Some(&gb)).unwrap();
            assert_eq!(kernel_launches(&dev) - before, 1, "{dims:?}: kernels");
            let again = again.to_vec::<f64>().unwrap();
            let same = first
                .iter()
                .zip(&again)
                .all(|(x, y)| x.to_bits() == y.to_bits());
            assert!(same, "{dims:?}: {first:?} then {again:?}");
        }
        let want = a.channel_sums(Some(&b)).unwrap();
        let got = Tensor::from_vec(first, [2, dims[1]]).unwrap();
        check(&format!("sums {dims:?}"), &want, &got, 1e-9);
    }
}

/// A tensor's per-channel sums and the normalisation step on them (`channel_norm_of`) are one
/// kernel, with the bits of the two kernels it replaces (the sums are deterministic): forward
/// with f32 or f64 scale and shift or none, backward with and without a scale (and with the
/// affine parameters' f32 gradients from the same kernel), for every float dtype, with one
/// split a channel and with many.
#[test]
#[ignore = "needs a CUDA GPU"]
fn channel_norm_of_a_tensor_is_one_kernel() {
    use sinew_tensor::ChannelNormStep;
    let dev = gpu();
    for dtype in [DType::F32, DType::F64, DType::F16, DType::BF16] {
        for dims in [vec![3usize, 5, 7, 11], vec![64, 6, 16, 16]] {
            let c = dims[1];
            let count = (dims.iter().product::<usize>() / c) as f64;
            let on_gpu = |seed: u64, shape: &[usize], dtype: DType| {
                randn(seed, shape, dtype).to_device(&dev).unwrap()
            };
            let x = on_gpu(180, &dims, dtype).add_scalar(1.0).unwrap();
            let dy = on_gpu(181, &dims, dtype);
            let scale64 = on_gpu(182, &[c], DType::F64);
            let shift32 = on_gpu(183, &[c], DType::F32);
            let forward = ChannelNormStep::Forward { count, eps: 1e-5 };
            let bits = |t: &Tensor| -> Vec<u64> {
                let v = t.to_vec::<f64>().unwrap();
                v.iter().map(|x| x.to_bits()).collect()
            };
            let one_kernel = |what: &str, run: &dyn Fn() -> Tensor, want: Tensor| {
                run(); // the first run may set up the device's counters
                let before = kernel_launches(&dev);
                let got = run();
                assert_eq!(kernel_launches(&dev) - before, 1, "{what}: kernels");
                assert_eq!(bits(&got), bits(&want), "{what}: values");
                got
            };
            let what = format!("{dtype} {dims:?}");
            let mut stats = None;
            for rows in [vec![], vec![&scale64, &shift32], vec![&shift32]] {
                let sums = x.channel_sums(None).unwrap();
                let want = Tensor::channel_norm(forward, &sums, &rows).unwrap();
                let run = || x.channel_norm_of(None, forward, &rows).unwrap();
                stats = Some(one_kernel(&format!("{what} forward"), &run, want));
            }
            let stats = stats.unwrap();
            let row = |k: usize| stats.narrow(0, k, 1).unwrap().reshape([c]).unwrap();
            let (mean, invstd) = (row(3), row(4));
            let backward = ChannelNormStep::Backward { count };
            for rows in [vec![&mean, &invstd], vec![&mean, &invstd, &shift32]] {
                let sums = dy.channel_sums(Some(&x)).unwrap();
                let want = Tensor::channel_norm(backward, &sums, &rows).unwrap();
                let run = || dy.channel_norm_of(Some(&x), backward, &rows).unwrap();
                let got = one_kernel(&format!("{what} backward"), &run, want);
                // With the parameters' gradients as f32 from the same kernel: rows 4 and 5
                // rounded once, as their cast.
                let before = kernel_launches(&dev);
                let (rows_again, grads) = dy
                    .channel_norm_grads_of(&x, count, &rows, DType::F32)
                    .unwrap();
                assert_eq!(
                    kernel_launches(&dev) - before,
                    1,
                    "{what}: with the gradients"
                );
                assert_eq!(
                    bits(&rows_again),
                    bits(&got),
                    "{what}: rows with the gradients"
                );
                let cast = got.narrow(0, 4, 2).unwrap().to_dtype(DType::F32).unwrap();
                let f32_bits = |t: &Tensor| -> Vec<u32> {
                    let v = t.to_vec::<f32>().unwrap();
                    v.iter().map(|x| x.to_bits()).collect()
                };
                assert_eq!(f32_bits(&grads), f32_bits(&cast), "{what}: the gradients");
            }
        }
    }
}

/// A normalisation's per-channel step (`Tensor::channel_norm`) is one kernel on the GPU with
/// the CPU's values (the composed tensor ops) bit for bit, forward (with and without scale and
/// shift, f64 or f32, a channel whose variance comes out negative, one with NaN sums) and
/// backward (with and without scale), and the rows in a narrowed (offset) view read where they
/// start.
#[test]
#[ignore = "needs a CUDA GPU"]
fn channel_norm_is_one_kernel_with_the_cpus_values() {
    use sinew_tensor::ChannelNormStep;
    let dev = gpu();
    let cpu = Device::cpu();
    let c = 37;
    let mut sums = randn(170, &[2, c], DType::F64).to_vec_f64().unwrap();
    for (k, v) in sums[c..].iter_mut().enumerate() {
        *v = v.abs() * 9.0 + 0.1 * k as f64;
    }
    // Channel 3: sum x^2 / n below mean^2 (a negative variance, clamped to 0).
    sums[3] = 3.0;
    sums[c + 3] = 0.9 * 2.9999999999999996;
    sums[5] = f64::NAN;
    let sums = Tensor::from_vec(sums, [2, c]).unwrap();
    let rows = randn(171, &[4, c], DType::F64);
    let row = |k: usize| rows.narrow(0, k, 1).unwrap().reshape([c]).unwrap();
    let invstd = row(1).abs().unwrap().add_scalar(0.5).unwrap();
    let (scale, shift, mean) = (row(0), row(2), row(3));
    // A layer's f32 parameters, read by the kernel without a cast of their own.
    let f32s = |t: &Tensor| t.to_dtype(DType::F32).unwrap();
    let (scale32, shift32) = (f32s(&scale), f32s(&shift));
    let cases: Vec<(&str, ChannelNormStep, Vec<&Tensor>)> = vec![
        (
            "forward",
            ChannelNormStep::Forward {
                count: 3.0,
                eps: 1e-5,
            },
            vec![],
        ),
        (
            "forward scale",
            ChannelNormStep::Forward {
                count: 3.0,
                eps: 1e-5,
            },
            vec![&scale],
        ),
        (
            "forward scale shift",
            ChannelNormStep::Forward {
                count: 3.0,
                eps: 1e-5,
            },
            vec![&scale, &shift],
        ),
        (
            "forward f32 scale, f64 shift",
            ChannelNormStep::Forward {
                count: 3.0,
                eps: 1e-5,
            },
            vec![&scale32, &shift],
        ),
        (
            "forward f32 scale shift",
            ChannelNormStep::Forward {
                count: 3.0,
                eps: 1e-5,
            },
            vec![&scale32, &shift32],
        ),
        (
            "backward",
            ChannelNormStep::Backward { count: 7.0 },
            vec![&mean, &invstd],
        ),
        (
            "backward f32 scale",
            ChannelNormStep::Backward { count: 7.0 },
            vec![&mean, &invstd, &scale32],
        ),
        (
            "backward scale",
            ChannelNormStep::Backward { count: 7.0 },
            vec![&mean, &invstd, &scale],
        ),
    ];
    for (what, step, args) in cases {
        let want = Tensor::channel_norm(step, &sums, &args).unwrap();
        let on_gpu: Vec<Tensor> = args.iter().map(|t| t.to_device(&dev).unwrap()).collect();
        let refs: Vec<&Tensor> = on_gpu.iter().collect();
        let gsums = sums.to_device(&dev).unwrap();
        poison(&dev, 6 * c * 8);
        let cuda = sinew_cuda::CudaBackend::of(&dev).unwrap();
        let before = cuda.kernel_launches();
        let got = Tensor::channel_norm(step, &gsums, &refs).unwrap();
        assert_eq!(cuda.kernel_launches() - before, 1, "{what}: kernels");
        let (w, g) = (
            want.to_vec_f64().unwrap(),
            got.to_device(&cpu).unwrap().to_vec_f64().unwrap(),
        );
        for (k, (a, b)) in w.iter().zip(&g).enumerate() {
            let same = a == b || (a.is_nan() && b.is_nan());
            assert!(
                same,
                "{what}: row {} channel {}: cpu {a:e}, gpu {b:e}",
                k / c,
                k % c
            );
        }
        if matches!(step, ChannelNormStep::Forward { .. }) {
            assert_eq!(
                w[5 * c + 3],
                0.0,
                "{what}: a negative variance is clamped to 0"
            );
        }
    }
}

/// Batch norm followed by ReLU, backward: the output gradient taken back through the ReLU
/// inside the sums kernel (`channel_norm_grads_masked`) and inside the input gradient's map
/// (`channel_lincomb_masked`), one kernel each, with the values of `relu_grad` followed by the
/// unmasked kernels (NaN compared as NaN): for every float dtype, one split a channel and many,
/// with an infinite gradient where the ReLU gave 0 (selected away: no NaN channel, as in
/// PyTorch), a negative one where it gave -0, and a NaN ReLU output (its gradient kept).
#[test]
#[ignore = "needs a CUDA GPU"]
fn relu_masked_batch_norm_backward_is_two_kernels_with_masking_first_values() {
    let dev = gpu();
    let same = |t: &Tensor| -> Vec<u64> {
        let v = t.to_device(&Device::cpu()).unwrap().to_vec_f64().unwrap();
        v.iter()
            .map(|x| if x.is_nan() { u64::MAX } else { x.to_bits() })
            .collect()
    };
    for dtype in [DType::F32, DType::F64, DType::F16, DType::BF16] {
        for dims in [vec![3usize, 5, 7, 11], vec![64, 6, 16, 16]] {
            let (c, inner) = (dims[1], dims[2] * dims[3]);
            let count = (dims.iter().product::<usize>() / c) as f64;
            let mut dy = randn(190, &dims, DType::F64).to_vec_f64().unwrap();
            let mut y = randn(191, &dims, DType::F64).to_vec_f64().unwrap();
            for (at, (g, out)) in [(f64::INFINITY, 0.0), (-2.5, -0.0), (1.0, f64::NAN)]
                .into_iter()
                .enumerate()
            {
                (dy[at * inner], y[at * inner]) = (g, out);
            }
            let on_gpu = |v: Vec<f64>| {
                let t = Tensor::from_vec(v, dims.clone()).unwrap();
                t.to_dtype(dtype).unwrap().to_device(&dev).unwrap()
            };
            let (dy, y) = (on_gpu(dy), on_gpu(y).relu().unwrap());
            let x = randn(192, &dims, dtype).to_device(&dev).unwrap();
            let mean = randn(193, &[c], DType::F64).to_device(&dev).unwrap();
            let invstd = randn(194, &[c], DType::F64).abs().unwrap().add_scalar(0.5);
            let invstd = invstd.unwrap().to_device(&dev).unwrap();
            let scale = randn(195, &[c], DType::F32).to_device(&dev).unwrap();
            let rows = [&mean, &invstd, &scale];
            let what = format!("{dtype} {dims:?}");

            let masked = dy.relu_grad(&y).unwrap();
            let (want_rows, want_grads) = masked
                .channel_norm_grads_of(&x, count, &rows, DType::F32)
                .unwrap();
            let before = kernel_launches(&dev);
            let (got_rows, got_grads) = dy
                .channel_norm_grads_masked(&y, &x, count, &rows, DType::F32)
                .unwrap()
                .expect("the GPU has the masked kernel");
            assert_eq!(kernel_launches(&dev) - before, 1, "{what}: sums kernels");
            assert_eq!(same(&got_rows), same(&want_rows), "{what}: rows");
            assert_eq!(same(&got_grads), same(&want_grads), "{what}: gradients");
            assert!(
                !same(&got_rows).contains(&u64::MAX),
                "{what}: the infinite gradient where the ReLU gave 0 is selected away"
            );

            let coef = want_rows.narrow(0, 0, 3).unwrap();
            for other in [Some(&x), None] {
                poison(&dev, dy.elem_count() * dtype.size_in_bytes());
                let want = masked.channel_lincomb(other, &coef).unwrap();
                let before = kernel_launches(&dev);
                let got = dy.channel_lincomb_masked(&y, other, &coef).unwrap();
                assert_eq!(kernel_launches(&dev) - before, 1, "{what}: map kernels");
                assert_eq!(
                    same(&got),
                    same(&want),
                    "{what}: map, x {}",
                    other.is_some()
                );
                // Keeping the masked gradient too (a residual's): the same pass writes it.
                poison(&dev, dy.elem_count() * dtype.size_in_bytes());
                let before = kernel_launches(&dev);
                let (kept, map) = dy.relu_grad_channel_lincomb(&y, other, &coef).unwrap();
                assert_eq!(kernel_launches(&dev) - before, 1, "{what}: kept kernels");
                assert_eq!(same(&map), same(&want), "{what}: map with the mask kept");
                assert_eq!(same(&kept), same(&masked), "{what}: the masked gradient");
            }
        }
    }
}
