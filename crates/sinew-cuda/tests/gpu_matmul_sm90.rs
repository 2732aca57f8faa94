//! The Hopper GEMM (`cuda/gemm_sm90.cu`: TMA + wgmma, for f16/bf16 operands TMA can load on
//! compute capability 9.0; the CPU emulator reports 9.0 unless `SINEW_EMU_COMPUTE_CAPABILITY`
//! says otherwise): it
//! passes its first-use check, and in every operand orientation, batched and broadcast, with and
//! without the epilogue's output dtype, it matches the CPU and the `mma.sync` kernel
//! (`set_wgmma_gemm(false)`). On other GPUs the check never runs. With `SINEW_EMU_LOSE_TMA` set
//! (the emulator's TMA copies never complete on their mbarrier), the kernel's bounded waits end
//! its stalled pipeline instead of hanging, the check fails on its NaN outputs, and GEMMs run
//! the `mma.sync` kernel; likewise when its launches fail (`SINEW_EMU_FAIL_LAUNCH=matmul_sm90`).

#![cfg(feature = "cuda")]

mod common;

use common::{both, check, gpu, max_error, randn};
use sinew_cuda::CudaBackend;
use sinew_tensor::{Activation, DType, MatmulOptions, Tensor};

/// `(batch, m, k, n)`: every shape takes the wgmma kernel (m, n and k multiples of 8, so every
/// orientation loads by TMA), with a 128x256 tile for at least every other multiprocessor
/// (`batch` is scaled up to reach that). Exact tiles with 7 k-tiles (the 4-stage ring reused);
/// edges in m, n and k (the second row and column tiles 8 wide, the last k-tile 8 deep); and
/// products smaller than one tile with a single, partial k-tile, in 2.25 tiles per
/// multiprocessor (the persistent grid's blocks take 2 or 3 tiles each, across batches).
fn shapes(multiprocessors: usize) -> Vec<(usize, usize, usize, usize)> {
    // (m, k, n, tiles per multiprocessor in quarters)
    [
        (256usize, 448, 512usize, 2),
        (136, 520, 264, 2),
        (72, 8, 200, 9),
    ]
    .iter()
    .map(|&(m, k, n, quarters)| {
        let tiles = m.div_ceil(128) * n.div_ceil(256);
        ((quarters * multiprocessors).div_ceil(4 * tiles), m, k, n)
    })
    .collect()
}

#[test]
#[ignore = "needs a CUDA GPU"]
fn wgmma_gemm_matches_the_cpu_and_the_mma_sync_kernel() {
    let dev = gpu();
    let backend = CudaBackend::of(&dev).unwrap();
    let hopper = backend.compute_capability() == (9, 0);
    let mut worst = (0.0f64, 0.0f64);
    for dtype in [DType::F16, DType::BF16] {
        for (batch, m, k, n) in shapes(backend.multiprocessors() as usize) {
            let a = randn(91 + m as u64, &[batch, m, k], dtype);
            let b = randn(92 + n as u64, &[batch, k, n], dtype);
            // Stored transposed (the views transpose on each device): MN-major A, K-major B.
            let at = randn(93, &[batch, k, m], dtype);
            let bt = randn(94, &[batch, n, k], dtype);
            // One B for every batch (batch stride 0).
            let shared = randn(95, &[k, n], dtype);
            let cases: [(&str, &Tensor, &Tensor, bool, bool); 5] = [
                ("nn", &a, &b, false, false),
                ("tn", &at, &b, true, false),
                ("nt", &a, &bt, false, true),
                ("tt", &at, &bt, true, true),
                ("broadcast B", &a, &shared, false, false),
            ];
            for (name, lhs, rhs, t_lhs, t_rhs) in cases {
                let view = |x: &Tensor, t: bool| {
                    if t {
                        x.transpose(-2, -1)
                    } else {
                        Ok(x.clone())
                    }
                };
                for out in [dtype, DType::F32] {
                    // Written as the operands' dtype plainly, and as f32 (the _f32 kernels) with
                    // the bias + ReLU epilogue.
                    let bias = randn(96, &[n], out);
                    let product = |t: &[Tensor]| {
                        let mut opts = MatmulOptions::new().with_out_dtype(out);
                        if out != dtype {
                            opts = opts.with_bias(&t[2]).with_activation(Activation::Relu);
                        }
                        view(&t[0], t_lhs)?.matmul_with(&view(&t[1], t_rhs)?, opts)
                    };
                    let what = format!("{dtype} {batch}x{m}x{k}x{n} {name} -> {out}");
                    let (cpu, wgmma) = both(&dev, &[lhs, rhs, &bias], product);
                    worst.0 = worst.0.max(check(&what, &cpu, &wgmma, 1e-2));
                    if !hopper {
                        // The product came from the mma.sync kernel already.
                        continue;
                    }
                    backend.set_wgmma_gemm(false);
                    let (_, mma_sync) = both(&dev, &[lhs, rhs, &bias], product);
                    backend.set_wgmma_gemm(true);
                    // Both accumulate in f32 in different orders: at most a last-place rounding
                    // difference in the output dtype.
                    let apart = max_error(&mma_sync, &wgmma);
                    assert!(apart <= 1e-2, "{what}: wgmma vs mma.sync {apart:e}");
                    worst.1 = worst.1.max(apart);
                }
            }
        }
    }
    eprintln!(
        "wgmma GEMM: max error vs the CPU {:e}, vs the mma.sync kernel {:e}",
        worst.0, worst.1
    );
    // On a Hopper GPU the shapes above made it check the kernel, which passed; elsewhere the
    // kernel is never considered.
    assert_eq!(backend.wgmma_gemm_checked(), hopper.then_some(true));
}

/// One product with edges: right on any GPU. With an emulator fault set (CI runs this test so:
/// `SINEW_EMU_LOSE_TMA`, the pipeline stalls; `SINEW_EMU_FAIL_LAUNCH=matmul_sm90`, the kernel's
/// launches fail) the check must have failed, and the product come from the `mma.sync` kernel;
/// otherwise, on a Hopper GPU, passed.
#[test]
#[ignore = "needs a CUDA GPU"]
fn a_failing_wgmma_kernel_leaves_the_product_to_the_mma_sync_kernel() {
    let dev = gpu();
    let backend = CudaBackend::of(&dev).unwrap();
    let hopper = backend.compute_capability() == (9, 0);
    let stalled = ["SINEW_EMU_LOSE_TMA", "SINEW_EMU_FAIL_LAUNCH"]
        .iter()
        .any(|v| std::env::var_os(v).is_some());
    let (batch, m, k, n) = shapes(backend.multiprocessors() as usize)[1];
    let a = randn(97, &[batch, m, k], DType::BF16);
    let b = randn(98, &[batch, k, n], DType::BF16);
    let (cpu, gpu) = both(&dev, &[&a, &b], |t: &[Tensor]| t[0].matmul(&t[1]));
    check("bf16 product with edges", &cpu, &gpu, 1e-2);
    assert_eq!(backend.wgmma_gemm_checked(), hopper.then_some(!stalled));
}
