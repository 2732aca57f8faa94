//! GPU parity of im2col/col2im and of what sinew-tensor composes from them (conv2d with stride,
//! padding, dilation and groups; max and average pooling) against the CPU backend.

#![cfg(feature = "cuda")]

mod common;

use common::{both, check, gpu, randn, tol};
use sinew_tensor::{Conv2dConfig, DType, Pool2dConfig, Tensor, Unfold2d};

const FLOATS: [DType; 4] = [DType::F32, DType::F16, DType::BF16, DType::F64];

/// (height, width) of a window's kernel, stride, padding or dilation.
type Pair = (usize, usize);

/// (kernel, stride, padding, dilation) windows, the last one spanning the whole image.
const WINDOWS: [(Pair, Pair, Pair, Pair); 6] = [
    ((3, 3), (1, 1), (0, 0), (1, 1)),
    ((3, 2), (2, 1), (1, 1), (1, 2)),
    ((1, 1), (3, 2), (0, 0), (1, 1)),
    ((5, 3), (2, 3), (2, 1), (2, 1)),
    ((2, 2), (2, 2), (1, 0), (3, 3)),
    ((6, 7), (1, 1), (0, 0), (2, 2)),
];

/// A [2, 5, 11, 13] image as a contiguous tensor and as a channels-last view.
fn images(seed: u64, dtype: DType) -> [Tensor; 2] {
    let x = randn(seed, &[2, 5, 11, 13], DType::F64)
        .mul_scalar(20.0)
        .unwrap();
    let nhwc = randn(seed + 1, &[2, 11, 13, 5], DType::F64)
        .mul_scalar(20.0)
        .unwrap()
        .permute(&[0, 3, 1, 2])
        .unwrap();
    [x, nhwc].map(|t| match dtype {
        DType::U8 => t.abs().unwrap().to_dtype(dtype).unwrap(),
        _ => t.to_dtype(dtype).unwrap(),
    })
}

fn spec(x: &Tensor, w: usize, pad_value: f64) -> Unfold2d {
    let (kernel, stride, padding, dilation) = WINDOWS[w];
    x.unfold_spec("test", kernel, stride, padding, dilation, pad_value)
        .unwrap()
}

#[test]
#[ignore = "needs a CUDA GPU"]
fn unfold_and_fold_match_the_cpu_exactly() {
    let dev = gpu();
    for dtype in FLOATS.into_iter().chain([DType::I64, DType::U8]) {
        let mut cases = 0;
        for (v, x) in images(1, dtype).iter().enumerate() {
            for w in 0..WINDOWS.len() {
                for pad in [0.0, f64::NEG_INFINITY] {
                    let s = spec(x, w, pad);
                    let (c, g) = both(&dev, &[x], |t| t[0].unfold2d(&s));
                    check(
                        &format!("unfold2d {dtype} view {v} window {w}"),
                        &c,
                        &g,
                        0.0,
                    );
                    cases += 1;
                }
                if dtype == DType::U8 {
                    continue; // fold sums: floats and i64 only, as on the CPU
                }
                let s = spec(x, w, 0.0);
                let (oh, ow) = s.out_hw();
                let rows = s.c * s.kernel.0 * s.kernel.1;
                let cols = randn(7 + w as u64, &[s.n, rows, oh * ow], dtype);
                let cols_t = randn(8 + w as u64, &[s.n, oh * ow, rows], dtype)
                    .permute(&[0, 2, 1])
                    .unwrap();
                for (name, y) in [("contiguous", &cols), ("transposed", &cols_t)] {
                    let (c, g) = both(&dev, &[y], |t| t[0].fold2d(&s));
                    check(&format!("fold2d {dtype} {name} window {w}"), &c, &g, 0.0);
                    cases += 1;
                }
            }
        }
        println!("unfold2d/fold2d {dtype}: max error 0 (exact) over {cases} cases");
    }
    let bools = Tensor::ones([1, 1, 3, 3], DType::Bool, &gpu()).unwrap();
    assert!(bools.fold2d(&spec(&bools, 0, 0.0)).is_err(), "bool fold2d");
}

fn conv_tol(dtype: DType) -> f64 {
    match dtype {
        DType::F32 => 1e-4,
        DType::F64 => 1e-10,
        _ => 2e-2,
    }
}

#[test]
#[ignore = "needs a CUDA GPU"]
fn conv2d_matches_the_cpu() {
    let dev = gpu();
    // (kernel, stride, padding, dilation, groups) on a [3, 6, 17, 19] input.
    let configs = [
        ((3, 3), (1, 1), (0, 0), (1, 1), 1),
        ((3, 2), (2, 1), (1, 2), (1, 1), 1),
        ((3, 3), (1, 2), (2, 1), (2, 1), 3),
        ((3, 3), (2, 2), (1, 1), (2, 2), 6),
        ((1, 1), (1, 1), (0, 0), (1, 1), 2),
    ];
    for dtype in FLOATS {
        let mut worst = 0.0f64;
        let x = randn(20, &[3, 6, 17, 19], dtype);
        let x_nhwc = randn(21, &[3, 17, 19, 6], dtype)
            .permute(&[0, 3, 1, 2])
            .unwrap();
        for (i, (kernel, stride, padding, dilation, groups)) in configs.into_iter().enumerate() {
            let cfg = Conv2dConfig {
                stride,
                padding,
                dilation,
                groups,
            };
            let w = randn(30 + i as u64, &[12, 6 / groups, kernel.0, kernel.1], dtype)
                .mul_scalar(0.3)
                .unwrap();
            let b = randn(40 + i as u64, &[12], dtype);
            for (name, input) in [("nchw", &x), ("nhwc view", &x_nhwc)] {
                let (c, g) = both(&dev, &[input, &w, &b], |t| {
                    t[0].conv2d(&t[1], Some(&t[2]), cfg)
                });
                let what = format!("conv2d {dtype} {name} config {i}");
                worst = worst.max(check(&what, &c, &g, conv_tol(dtype)));
            }
        }
        println!("conv2d {dtype}: max error {worst:e}");
    }
}

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
