//! GPU parity of `Backend::inplace` (cuda/inplace.cu) with the CPU backend: every InplaceOp
//! variant and dtype on contiguous, transposed, sliced and offset destination views, with
//! contiguous, transposed and broadcast (stride 0) sources. The whole destination storage is
//! compared, so elements outside the view must be left untouched (they hold random values that
//! a stray write would change). Error cases come back as errors.

#![cfg(feature = "cuda")]

mod common;

use common::{check, gpu, randn, tol};
use sinew_tensor::{
    Backend, BackendStorage, BinaryOp, BoxedStorage, CpuBackend, CpuStorage, DType, Device,
    InplaceOp, Layout, Shape, Tensor, UnaryOp,
};

/// The elements of a CPU tensor as owned CPU storage (row-major).
fn host(t: &Tensor) -> CpuStorage {
    t.with_storage(|s, l| CpuBackend.download(s, l)).unwrap()
}

/// A storage (CPU or GPU) as a flat CPU tensor.
fn flat(dev: &Device, storage: &dyn BackendStorage) -> Tensor {
    let layout = Layout::contiguous([storage.len()]);
    let data = dev.backend().download(storage, &layout).unwrap();
    Tensor::from_storage(Box::new(data), [storage.len()], Device::cpu()).unwrap()
}

/// Destination views of a 48-element storage, all of shape [4, 6].
fn dst_views() -> Vec<(&'static str, Layout)> {
    let base = Layout::contiguous([8, 6]);
    vec![
        ("contiguous", Layout::contiguous([4, 6])),
        (
            "offset",
            Layout::from_parts(Shape::new([4, 6]), vec![6, 1], 24),
        ),
        (
            "transposed",
            Layout::contiguous([6, 4]).permute(&[1, 0]).unwrap(),
        ),
        ("rows step 2", base.slice(0, 1, 4, 2).unwrap()),
    ]
}

/// Source views of shape [4, 6]: (name, storage shape, layout).
fn src_views() -> Vec<(&'static str, Vec<usize>, Layout)> {
    vec![
        ("contiguous", vec![4, 6], Layout::contiguous([4, 6])),
        (
            "transposed",
            vec![6, 4],
            Layout::contiguous([6, 4]).permute(&[1, 0]).unwrap(),
        ),
        (
            "broadcast row",
            vec![1, 6],
            Layout::contiguous([1, 6])
                .broadcast_to(&Shape::new([4, 6]))
                .unwrap(),
        ),
    ]
}

/// Runs `op` on the CPU and on the GPU for every destination view and source layout and
/// compares the whole destination storages.
fn parity(dev: &Device, op: InplaceOp, dtype: DType, positive_src: bool) {
    let seed = 7 + dtype as u64;
    let base = randn(seed, &[48], dtype);
    for (dname, dl) in dst_views() {
        for (sname, sdims, sl) in src_views() {
            let make = |s: u64| {
                let t = randn(s, &sdims, dtype);
                if positive_src {
                    let lift = if dtype == DType::I64 { 1.0 } else { 0.5 };
                    t.abs().unwrap().add_scalar(lift).unwrap()
                } else {
                    t
                }
            };
            let sources: Vec<CpuStorage> = (0..op.num_sources())
                .map(|i| host(&make(seed + 10 + i as u64)))
                .collect();
            // CPU.
            let mut cpu_dst = host(&base);
            let cpu_srcs: Vec<(&dyn BackendStorage, &Layout)> = sources
                .iter()
                .map(|s| (s as &dyn BackendStorage, &sl))
                .collect();
            CpuBackend
                .inplace(op, &mut cpu_dst, &dl, &cpu_srcs)
                .unwrap();
            // GPU.
            let backend = dev.backend();
            common::poison(dev, 48 * dtype.size_in_bytes());
            let mut gpu_dst: BoxedStorage = backend.upload(&host(&base)).unwrap();
            let gpu_src: Vec<BoxedStorage> =
                sources.iter().map(|s| backend.upload(s).unwrap()).collect();
            let gpu_srcs: Vec<(&dyn BackendStorage, &Layout)> =
                gpu_src.iter().map(|s| (&**s, &sl)).collect();
            backend.inplace(op, &mut *gpu_dst, &dl, &gpu_srcs).unwrap();
            let cpu = flat(&Device::cpu(), &cpu_dst);
            let gpu_out = flat(dev, &*gpu_dst);
            check(
                &format!("{op:?} {dtype} dst {dname} src {sname}"),
                &cpu,
                &gpu_out,
                tol(dtype),
            );
        }
    }
}

const FLOATS: [DType; 4] = [DType::F32, DType::F64, DType::F16, DType::BF16];

#[test]
#[ignore = "needs a CUDA GPU"]
fn binary_ops_in_place_match_the_cpu() {
    let dev = gpu();
    for dtype in FLOATS {
        for op in [
            BinaryOp::Add,
            BinaryOp::Sub,
            BinaryOp::Mul,
            BinaryOp::Div,
            BinaryOp::Maximum,
            BinaryOp::Minimum,
        ] {
            parity(&dev, InplaceOp::Binary(op), dtype, op == BinaryOp::Div);
        }
        parity(&dev, InplaceOp::Binary(BinaryOp::Pow), dtype, true);
    }
    for op in [
        BinaryOp::Add,
        BinaryOp::Sub,
        BinaryOp::Mul,
        BinaryOp::Maximum,
    ] {
        parity(&dev, InplaceOp::Binary(op), DType::I64, false);
    }
    // i64 division goes through the zero-checking out-of-place kernel.
    parity(&dev, InplaceOp::Binary(BinaryOp::Div), DType::I64, true);
}

#[test]
#[ignore = "needs a CUDA GPU"]
fn unary_ops_in_place_match_the_cpu() {
    let dev = gpu();
    let ops = [
        UnaryOp::Neg,
        UnaryOp::Exp,
        UnaryOp::Relu,
        UnaryOp::Sigmoid,
        UnaryOp::Clamp {
            min: -0.5,
            max: 0.75,
        },
        UnaryOp::AddScalar(1.5),
        UnaryOp::MulScalar(-2.0),
        UnaryOp::LeakyRelu(0.1),
    ];
    for dtype in FLOATS {
        for op in ops {
            parity(&dev, InplaceOp::Unary(op), dtype, false);
        }
    }
    for op in [UnaryOp::Neg, UnaryOp::Relu, UnaryOp::AddScalar(3.0)] {
        parity(&dev, InplaceOp::Unary(op), DType::I64, false);
    }
}

#[test]
#[ignore = "needs a CUDA GPU"]
fn scaled_updates_and_fill_match_the_cpu() {
    let dev = gpu();
    for dtype in FLOATS {
        parity(&dev, InplaceOp::Axpy(-0.75), dtype, false);
        parity(&dev, InplaceOp::Addcmul(0.3), dtype, false);
        parity(&dev, InplaceOp::Addcdiv(-0.7), dtype, true);
        parity(&dev, InplaceOp::Lerp(0.25), dtype, false);
        parity(&dev, InplaceOp::Lerp(0.8), dtype, false);
        parity(&dev, InplaceOp::Fill(2.5), dtype, false);
        // The fused optimizer updates (positive sources: the square root's argument).
        let fused = [
            InplaceOp::MulAxpy {
                scale: 0.9,
                alpha: 0.75,
            },
            InplaceOp::MulAddcmul {
                scale: 0.999,
                value: 1e-3,
            },
            InplaceOp::AddcdivSqrt {
                value: -1e-2,
                scale: 1.3,
                eps: 1e-8,
            },
        ];
        for op in fused {
            parity(&dev, op, dtype, true);
        }
        // Adamax's buffer, with sources of both signs (the magnitude matters).
        let max_abs = InplaceOp::MulMaxAbs {
            scale: 0.999,
            eps: 1e-3,
        };
        parity(&dev, max_abs, dtype, false);
    }
    for dtype in [DType::I64, DType::U8, DType::Bool] {
        parity(&dev, InplaceOp::Fill(3.0), dtype, false);
    }
}

#[test]
#[ignore = "needs a CUDA GPU"]
fn bad_in_place_calls_are_errors() {
    let dev = gpu();
    let backend = dev.backend();
    let mut dst = backend.full(DType::F32, 12, 1.0).unwrap();
    let src = backend.full(DType::F32, 12, 2.0).unwrap();
    let other = backend.full(DType::F16, 12, 2.0).unwrap();
    let l = Layout::contiguous([3, 4]);
    let add = InplaceOp::Binary(BinaryOp::Add);
    // Wrong number of sources.
    assert!(backend.inplace(add, &mut *dst, &l, &[]).is_err());
    // A source of another dtype or shape.
    assert!(
        backend
            .inplace(add, &mut *dst, &l, &[(&*other, &l)])
            .is_err()
    );
    let wide = Layout::contiguous([4, 3]);
    assert!(
        backend
            .inplace(add, &mut *dst, &l, &[(&*src, &wide)])
            .is_err()
    );
    // A broadcast destination (would write one element many times).
    let bcast = Layout::contiguous([1, 4])
        .broadcast_to(&Shape::new([3, 4]))
        .unwrap();
    assert!(
        backend
            .inplace(add, &mut *dst, &bcast, &[(&*src, &l)])
            .is_err()
    );
    // A view past the end of its storage.
    let past = Layout::from_parts(Shape::new([3, 4]), vec![4, 1], 4);
    assert!(
        backend
            .inplace(InplaceOp::Fill(0.0), &mut *dst, &past, &[])
            .is_err()
    );
    // Float-only ops on i64.
    let mut ints = backend.full(DType::I64, 12, 1.0).unwrap();
    let isrc = backend.full(DType::I64, 12, 1.0).unwrap();
    assert!(
        backend
            .inplace(InplaceOp::Axpy(2.0), &mut *ints, &l, &[(&*isrc, &l)])
            .is_err()
    );
    // i64 division by zero is reported, as out of place.
    let zeros = backend.full(DType::I64, 12, 0.0).unwrap();
    let div = InplaceOp::Binary(BinaryOp::Div);
    assert!(
        backend
            .inplace(div, &mut *ints, &l, &[(&*zeros, &l)])
            .is_err()
    );
    // Nothing above wrote to dst.
    let host = flat(&dev, &*dst).to_vec_f64().unwrap();
    assert_eq!(host, vec![1.0; 12]);
}

/// The loss scaler's unscale (`Tensor::amp_unscale_`) is one kernel a gradient, with the CPU's
/// values, on a contiguous and a transposed gradient; the flag stays 0 while every result is
/// finite and becomes 1 for an infinite or NaN gradient, and for a finite f16 one that the
/// scaling takes past f16's range (as on the CPU).
#[test]
#[ignore = "needs a CUDA GPU"]
fn amp_unscale_is_one_kernel_and_flags_non_finite_results() {
    let dev = gpu();
    let cpu = Device::cpu();
    let launches = |d: &Device| sinew_cuda::CudaBackend::of(d).map_or(0, |c| c.kernel_launches());
    // (what, a value put at element 5, inv_scale, flagged)
    let cases = [
        ("finite", None, 0.25, false),
        ("inf", Some(f64::INFINITY), 0.25, true),
        ("nan", Some(f64::NAN), 0.25, true),
        ("overflow", Some(40000.0), 4.0, true),
    ];
    for dtype in [DType::F32, DType::F64, DType::F16, DType::BF16] {
        for (what, special, inv_scale, flagged) in cases {
            // bf16 and f32 reach 160000 without overflow: only f16 flags it.
            let flagged = flagged && !(what == "overflow" && dtype != DType::F16);
            for transposed in [false, true] {
                let mut values = randn(71, &[6, 9], DType::F64).to_vec_f64().unwrap();
                if let Some(v) = special {
                    values[5] = v;
                }
                let run = |d: &Device| {
                    // A fresh tensor each run: the CPU's would otherwise share its storage.
                    let g = Tensor::from_vec(values.clone(), [6, 9])
                        .unwrap()
                        .to_dtype(dtype)
                        .unwrap()
                        .to_device(d)
                        .unwrap();
                    let g = if transposed { g.t().unwrap() } else { g };
                    let found = Tensor::zeros([1], DType::F32, d).unwrap();
                    let before = launches(d);
                    g.amp_unscale_(inv_scale, &found).unwrap();
                    let n = launches(d) - before;
                    let host = |t: &Tensor| t.to_device(&cpu).unwrap().to_vec_f64().unwrap();
                    (host(&g), host(&found)[0], n)
                };
                let (want, want_flag, _) = run(&cpu);
                let (got, got_flag, n) = run(&dev);
                let label = format!("{what} {dtype} transposed={transposed}");
                let same = want
                    .iter()
                    .zip(&got)
                    .all(|(a, b)| a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan()));
                assert!(same, "{label}: cpu {want:?}, gpu {got:?}");
                assert_eq!(want_flag, f64::from(u8::from(flagged)), "{label}: cpu flag");
                assert_eq!(got_flag, want_flag, "{label}: gpu flag");
                assert_eq!(n, 1, "{label}: kernels");
            }
        }
    }
}

/// The loss scaler's unscale of many gradients (`Tensor::amp_unscale_many_`): the dense ones
/// in one multi-tensor kernel, except that of two gradients sharing a storage (rows of one
/// tensor, as batch norm's weight and bias gradients are) the second goes to a second launch;
/// a transposed one on its own; the CPU's values, and the flag set by an infinite element of
/// any of them.
#[test]
#[ignore = "needs a CUDA GPU"]
fn amp_unscale_many_takes_one_kernel_for_dense_gradients() {
    let dev = gpu();
    let cpu = Device::cpu();
    let launches = |d: &Device| sinew_cuda::CudaBackend::of(d).map_or(0, |c| c.kernel_launches());
    for dtype in [DType::F32, DType::F16] {
        for inf_at in [None, Some(1usize), Some(3)] {
            let run = |d: &Device| {
                let make = |seed: u64, dims: &[usize], k: usize| {
                    let mut v = randn(seed, dims, DType::F64).to_vec_f64().unwrap();
                    if inf_at == Some(k) {
                        v[2] = f64::INFINITY;
                    }
                    let t = Tensor::from_vec(v, dims.to_vec()).unwrap();
                    t.to_dtype(dtype).unwrap().to_device(d).unwrap()
                };
                let pair = make(80, &[2, 7], 1);
                let rows = [0, 1].map(|k| pair.narrow(0, k, 1).unwrap().reshape([7]).unwrap());
                let grads = [
                    make(81, &[5, 3], 0),
                    rows[0].clone(),
                    rows[1].clone(),
                    make(82, &[4, 6], 3).t().unwrap(),
                    make(83, &[], 4),
                ];
                let found = Tensor::zeros([1], DType::F32, d).unwrap();
                let before = launches(d);
                let refs: Vec<&Tensor> = grads.iter().collect();
                Tensor::amp_unscale_many_(&refs, 0.125, &found).unwrap();
                let n = launches(d) - before;
                let host = |t: &Tensor| t.to_device(&cpu).unwrap().to_vec_f64().unwrap();
                let values: Vec<Vec<f64>> = grads.iter().map(host).collect();
                (values, host(&found)[0], n)
            };
            let (want, want_flag, _) = run(&cpu);
            let (got, got_flag, n) = run(&dev);
            let label = format!("{dtype} inf in gradient {inf_at:?}");
            for (w, g) in want.iter().zip(&got) {
                let same = w.iter().zip(g).all(|(a, b)| a.to_bits() == b.to_bits());
                assert!(same, "{label}: cpu {w:?}, gpu {g:?}");
            }
            assert_eq!(want_flag, f64::from(u8::from(inf_at.is_some())), "{label}");
            assert_eq!(got_flag, want_flag, "{label}: gpu flag");
            // The transposed gradient, the dense ones, the second row.
            assert_eq!(n, 3, "{label}: kernels");
        }
    }
}
