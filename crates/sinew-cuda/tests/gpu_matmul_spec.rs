//! GPU checks of `MatmulSpec` on CUDA: f16/bf16 GEMMs writing f32, and the bias + ReLU
//! epilogue, in the general kernels (awkward sizes) and the fast paths (tile multiples),
//! against a CPU reference computed in f32/f64 with separate ops (outputs poisoned first).

#![cfg(feature = "cuda")]

mod common;

use common::{check, gpu, poison, randn};
use sinew_tensor::{
    Activation, BackendStorage, DType, Device, Layout, MatmulDims, MatmulSpec, Tensor,
};

/// `act(a @ b + bias)` on the CPU in f64 (exact products of the rounded inputs), then rounded to
/// `out`.
fn reference(a: &Tensor, b: &Tensor, bias: Option<&Tensor>, relu: bool, out: DType) -> Tensor {
    let wide = |t: &Tensor| t.to_dtype(DType::F64).unwrap();
    let mut y = wide(a).matmul(&wide(b)).unwrap();
    if let Some(bias) = bias {
        y = y.add(&wide(bias)).unwrap();
    }
    if relu {
        y = y.relu().unwrap();
    }
    y.to_dtype(out).unwrap()
}

/// The GPU product through `Backend::matmul` with the given extras.
fn on_gpu(
    dev: &Device,
    a: &Tensor,
    b: &Tensor,
    bias: Option<&Tensor>,
    relu: bool,
    out: Option<DType>,
) -> Tensor {
    let (m, k, n) = (a.dims()[0], a.dims()[1], b.dims()[1]);
    let (ga, gb) = (a.to_device(dev).unwrap(), b.to_device(dev).unwrap());
    let gbias = bias.map(|t| t.to_device(dev).unwrap());
    let out_dtype = out.unwrap_or(a.dtype());
    poison(dev, m * n * out_dtype.size_in_bytes());
    let dims = MatmulDims { batch: 1, m, n, k };
    let result = ga.with_storage(|sa, la| {
        gb.with_storage(|sb, lb| {
            let run = |bias_view: Option<(&dyn BackendStorage, &Layout)>| {
                let mut spec = MatmulSpec::new(dims);
                if let Some(dtype) = out {
                    spec = spec.with_out_dtype(dtype);
                }
                if let Some((s, l)) = bias_view {
                    spec = spec.with_bias(s, l);
                }
                if relu {
                    spec = spec.with_activation(Activation::Relu);
                }
                dev.backend().matmul(sa, la, sb, lb, &spec)
            };
            match &gbias {
                Some(t) => t.with_storage(|s, l| run(Some((s, l)))),
                None => run(None),
            }
        })
    });
    let storage = result.unwrap();
    assert_eq!(storage.dtype(), out_dtype);
    Tensor::from_storage(storage, [m, n], dev.clone())
        .unwrap()
        .to_device(&Device::cpu())
        .unwrap()
}

fn spec_tol(out: DType) -> f64 {
    match out {
        DType::F64 => 1e-10,
        DType::F32 => 1e-4,
        _ => 1e-2,
    }
}

#[test]
#[ignore = "needs a CUDA GPU"]
fn bias_relu_and_f32_output_match_the_cpu() {
    let dev = gpu();
    // General kernels (awkward sizes) and fast paths (multiples of 128 / 32).
    let sizes = [(5, 3, 9), (70, 33, 130), (128, 32, 128), (256, 64, 384)];
    for dtype in [DType::F32, DType::F64, DType::F16, DType::BF16] {
        let outs: Vec<Option<DType>> = match dtype {
            DType::F16 | DType::BF16 => vec![None, Some(DType::F32)],
            _ => vec![None],
        };
        for (m, k, n) in sizes {
            let a = randn(31 + m as u64, &[m, k], dtype);
            let b = randn(32 + n as u64, &[k, n], dtype);
            for &out in &outs {
                let out_dtype = out.unwrap_or(dtype);
                let bias = randn(33, &[n], out_dtype);
                // A strided bias view: every other element of a [2n] vector.
                let long = randn(34, &[2 * n], out_dtype);
                let strided = long.reshape([n, 2]).unwrap().narrow(1, 1, 1).unwrap();
                let strided = strided.reshape([n]).unwrap();
                for (what, bias, relu) in [
                    ("plain", None, false),
                    ("bias", Some(&bias), false),
                    ("relu", None, true),
                    ("bias+relu", Some(&bias), true),
                    ("strided bias+relu", Some(&strided), true),
                ] {
                    if out.is_none() && bias.is_none() && !relu {
                        continue; // the plain product is gpu_matmul.rs's
                    }
                    let want = reference(&a, &b, bias, relu, out_dtype);
                    let got = on_gpu(&dev, &a, &b, bias, relu, out);
                    check(
                        &format!("matmul {dtype}->{out_dtype} {m}x{k}x{n} {what}"),
                        &want,
                        &got,
                        spec_tol(out_dtype),
                    );
                    if relu {
                        let v = got.to_vec_f64().unwrap();
                        assert!(v.iter().all(|&x| x >= 0.0), "relu left a negative value");
                    }
                }
            }
        }
    }
}

#[test]
#[ignore = "needs a CUDA GPU"]
fn bad_specs_are_errors() {
    let dev = gpu();
    let a = randn(1, &[4, 3], DType::F32).to_device(&dev).unwrap();
    let b = randn(2, &[3, 5], DType::F32).to_device(&dev).unwrap();
    let dims = MatmulDims {
        batch: 1,
        m: 4,
        n: 5,
        k: 3,
    };
    let wrong_len = randn(3, &[4], DType::F32).to_device(&dev).unwrap();
    let wrong_dtype = randn(3, &[5], DType::F16).to_device(&dev).unwrap();
    let run = |spec: &MatmulSpec<'_>| {
        a.with_storage(|sa, la| b.with_storage(|sb, lb| dev.backend().matmul(sa, la, sb, lb, spec)))
    };
    // f32 operands cannot be written as f16.
    assert!(run(&MatmulSpec::new(dims).with_out_dtype(DType::F16)).is_err());
    for bad in [&wrong_len, &wrong_dtype] {
        let err = bad.with_storage(|s, l| run(&MatmulSpec::new(dims).with_bias(s, l)));
        assert!(err.is_err());
    }
}

/// A linear layer through `matmul_with` under autograd (`x @ w.t() + b`, then ReLU in the
/// epilogue or not): the forward is one kernel, the backward three (the two products and the
/// bias's sum over the batch, read in place) plus ReLU's one, and the values are the CPU's.
#[test]
#[ignore = "needs a CUDA GPU"]
fn recorded_linear_layers_launch_one_kernel_forward() {
    use sinew_tensor::MatmulOptions;
    let dev = gpu();
    let cpu = Device::cpu();
    let (batch, inputs, outputs) = (37, 29, 50);
    let x = randn(81, &[batch, inputs], DType::F32);
    let w = randn(82, &[outputs, inputs], DType::F32);
    let b = randn(83, &[outputs], DType::F32);
    let g = randn(84, &[batch, outputs], DType::F32);
    for relu in [false, true] {
        let run = |device: &Device| {
            let leaf = |t: &Tensor| t.to_device(device).unwrap().requires_grad_();
            let (x, w, b) = (leaf(&x), leaf(&w), leaf(&b));
            let opts = MatmulOptions::new().with_bias(&b);
            let opts = if relu {
                opts.with_activation(Activation::Relu)
            } else {
                opts
            };
            let before = common::kernel_launches(device);
            let y = x.matmul_with(&w.t().unwrap(), opts).unwrap();
            let forward = common::kernel_launches(device) - before;
            let g = g.to_device(device).unwrap();
            let before = common::kernel_launches(device);
            y.backward_with(Some(g), Default::default()).unwrap();
            let backward = common::kernel_launches(device) - before;
            let host = |t: Tensor| t.to_device(&cpu).unwrap();
            let grads = [x.grad(), w.grad(), b.grad()].map(|t| host(t.unwrap()));
            (host(y.detach()), grads, forward, backward)
        };
        let (want_y, want, _, _) = run(&cpu);
        let (got_y, got, forward, backward) = run(&dev);
        check(&format!("linear relu={relu} output"), &want_y, &got_y, 1e-5);
        for (name, (c, g)) in ["dx", "dw", "db"].iter().zip(want.iter().zip(&got)) {
            check(&format!("linear relu={relu} {name}"), c, g, 1e-4);
        }
        assert_eq!(forward, 1, "relu={relu}: forward kernels");
        assert_eq!(backward, 3 + relu as u64, "relu={relu}: backward kernels");
    }
}

/// A linear layer's f32 weight and bias cast to f16/bf16 (autocast's) get their f32 gradients
/// from the GEMM and the bias's sum themselves, rounded to the narrow dtype in the store:
/// backward launches as many kernels as with narrow leaf parameters (no casts after them), and
/// the gradients are those leaves' gradients widened, bit for bit, in the edge and the
/// exact-tile kernels.
#[test]
#[ignore = "needs a CUDA GPU"]
fn a_cast_weights_gradient_comes_from_the_gemm_in_f32() {
    use sinew_tensor::MatmulOptions;
    let dev = gpu();
    for dtype in [DType::F16, DType::BF16] {
        for (batch, inputs, outputs) in [(37, 29, 50), (256, 128, 256)] {
            let x = randn(91, &[batch, inputs], dtype).to_device(&dev).unwrap();
            let w32 = randn(92, &[outputs, inputs], DType::F32)
                .to_device(&dev)
                .unwrap();
            let b32 = randn(93, &[outputs], DType::F32).to_device(&dev).unwrap();
            let g = randn(94, &[batch, outputs], dtype).to_device(&dev).unwrap();
            // The weight's and the bias's gradients, from leaves in `dtype` or cast f32 leaves.
            let run = |cast: bool| {
                let params = common::CastParams::new([&w32, &b32], dtype, cast);
                let used = &params.used;
                let opts = MatmulOptions::new()
                    .with_bias(&used[1])
                    .with_activation(Activation::Relu);
                let y = x.matmul_with(&used[0].t().unwrap(), opts).unwrap();
                let before = common::kernel_launches(&dev);
                y.backward_with(Some(g.clone()), Default::default())
                    .unwrap();
                let launches = common::kernel_launches(&dev) - before;
                let host = |t: &Tensor| t.to_device(&Device::cpu()).unwrap();
                (params.grads().each_ref().map(host), launches)
            };
            run(false); // loads the kernels
            let what = format!("{dtype} {batch}x{inputs}x{outputs}");
            let (leaf_grads, leaf_launches) = run(false);
            let (grads, launches) = run(true);
            assert_eq!(launches, leaf_launches, "{what}: kernels");
            for (name, grad, leaf_grad) in [
                ("weight", &grads[0], &leaf_grads[0]),
                ("bias", &grads[1], &leaf_grads[1]),
            ] {
                assert_eq!(grad.dtype(), DType::F32, "{what} {name}");
                assert!(grad.is_contiguous(), "{what} {name}");
                let want = leaf_grad.to_dtype(DType::F32).unwrap();
                assert_eq!(
                    common::bits(grad),
                    common::bits(&want),
                    "{what} {name}: values"
                );
            }
        }
    }
}
