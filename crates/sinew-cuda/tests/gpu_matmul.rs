//! GPU parity of the GEMM kernels (SIMT f32/f64, tensor-core f16/bf16) at sizes chosen to break
//! tiling, with transposed operands and broadcast batch dims.

#![cfg(feature = "cuda")]

mod common;

use common::{both, check, gpu, orientations, oriented, randn};
use sinew_tensor::{DType, Tensor};

fn gemm_tol(dtype: DType) -> f64 {
    match dtype {
        DType::F32 => 1e-4,
        DType::F64 => 1e-10,
        _ => 1e-2,
    }
}

#[test]
#[ignore = "needs a CUDA GPU"]
fn matmul_matches_the_cpu_at_awkward_sizes() {
    let dev = gpu();
    let sizes = [
        (1, 1, 1),
        (1, 7, 1),
        (5, 3, 9),
        (17, 257, 33),
        (128, 128, 128),
        (266, 265, 129),
        (130, 70, 301),
        (64, 1000, 8),
        // Tile multiples (the f16/bf16 pipelined fast path) and near misses.
        (128, 32, 128),
        (256, 96, 384),
        (384, 512, 256),
        (256, 40, 128),
        (255, 64, 128),
        // Enough 128x128 tiles to fill an H100 (132 SMs): the 128-row f16/bf16 fast path.
        (1536, 96, 1408),
        // m a multiple of 64 only: the 64-row f16/bf16 fast path (ResNet's 64-channel stage:
        // the forward, weight [64, 576] @ columns, and the input gradient, [576, 64] @ grad).
        (64, 576, 1024),
        (576, 64, 512),
        (192, 96, 256),
        // Not tile multiples, k a multiple of 8: the f16/bf16 fast path with edge tiles (an
        // MLP's layers, a ResNet weight gradient with n = 576 taps).
        (64, 784, 128),
        (128, 64, 784),
        (72, 96, 136),
        (200, 520, 264),
        (64, 64, 576),
        // k or m not whole 16-byte loads: one operand element-wise, the other vector-loaded
        // (a 10-class layer's backward passes), and both element-wise at 128-row multiples.
        (64, 10, 128),
        (10, 64, 784),
        (256, 27, 256),
    ];
    for dtype in [DType::F32, DType::F16, DType::BF16, DType::F64] {
        let mut worst = 0.0f64;
        for (m, k, n) in sizes {
            for (name, [lhs, rhs], transposed) in orientations(81, (m, k, n), dtype) {
                let (c, g) = both(&dev, &[&lhs, &rhs], |t| oriented(t, transposed));
                worst = worst.max(check(
                    &format!("matmul {dtype} {m}x{k}x{n} {name}"),
                    &c,
                    &g,
                    gemm_tol(dtype),
                ));
            }
        }
        // Batched, with a broadcast batch dim and a strided (stepped) operand.
        let a = randn(85, &[2, 1, 37, 45], dtype);
        let b = randn(86, &[3, 45, 90], dtype).slice(2, 0, 90, 2).unwrap();
        let (c, g) = both(&dev, &[&a, &b], |t| t[0].matmul(&t[1]));
        worst = worst.max(check(
            &format!("batched matmul {dtype}"),
            &c,
            &g,
            gemm_tol(dtype),
        ));
        // Batched at tile multiples, broadcast and transposed (fast path for f16/bf16).
        let a = randn(88, &[2, 1, 128, 96], dtype);
        let b = randn(89, &[3, 256, 96], dtype).transpose(1, 2).unwrap();
        let (c, g) = both(&dev, &[&a, &b], |t| t[0].matmul(&t[1]));
        worst = worst.max(check(
            &format!("batched tile-multiple matmul {dtype}"),
            &c,
            &g,
            gemm_tol(dtype),
        ));
        let a = randn(85, &[2, 1, 37, 45], dtype);
        let v = randn(87, &[45], dtype);
        let (c, g) = both(&dev, &[&a, &v], |t| t[0].matmul(&t[1]));
        worst = worst.max(check(
            &format!("matrix-vector {dtype}"),
            &c,
            &g,
            gemm_tol(dtype),
        ));
        println!("matmul {dtype}: max error {worst:e}");
    }
    let empty = Tensor::zeros([3, 0], DType::F32, &dev).unwrap();
    let z = empty
        .matmul(&Tensor::zeros([0, 4], DType::F32, &dev).unwrap())
        .unwrap();
    assert_eq!(z.to_vec::<f32>().unwrap(), vec![0.0; 12]);
}
