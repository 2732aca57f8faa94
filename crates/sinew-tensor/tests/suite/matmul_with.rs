//! `Tensor::matmul_with` (output dtype, fused bias + ReLU) on the CPU against the composite
//! `matmul`, `to_dtype`, `add`, `relu`.

use crate::common;

use common::{assert_close, close};
use sinew_tensor::{Activation, DType, Device, Error, Generator, MatmulOptions, Tensor};

fn rand(g: &mut Generator, dims: &[usize], dtype: DType) -> Tensor {
    g.uniform(dims.to_vec(), -1.0, 1.0, dtype, &Device::cpu())
        .unwrap()
}

fn composite(a: &Tensor, b: &Tensor, out: DType, bias: Option<&Tensor>, relu: bool) -> Tensor {
    // f16/bf16 products accumulate in f32 on the CPU: compare against the f32 product.
    let wide = |t: &Tensor| {
        if matches!(t.dtype(), DType::F16 | DType::BF16) {
            t.to_dtype(DType::F32).unwrap()
        } else {
            t.clone()
        }
    };
    let mut y = wide(a).matmul(&wide(b)).unwrap();
    if let Some(bias) = bias {
        y = y
            .to_dtype(DType::F64)
            .unwrap()
            .add(&bias.to_dtype(DType::F64).unwrap())
            .unwrap();
    }
    if relu {
        y = y.relu().unwrap();
    }
    y.to_dtype(out).unwrap()
}

#[test]
fn fused_epilogue_matches_the_composite() {
    let mut g = Generator::new(3);
    let cases = [
        (DType::F32, DType::F32),
        (DType::F64, DType::F64),
        (DType::F16, DType::F16),
        (DType::BF16, DType::BF16),
        (DType::F16, DType::F32),
        (DType::BF16, DType::F32),
        (DType::F32, DType::F64),
        (DType::F64, DType::F32),
    ];
    for (input, out) in cases {
        // [2, 3, 17, 9] @ [9, 130]^T-view: batched lhs, transposed rhs; 2*3*17*130 > 2^15
        // outputs, so the epilogue runs on rayon too.
        let a = rand(&mut g, &[2, 3, 17, 9], input);
        let b = rand(&mut g, &[130, 9], input).t().unwrap();
        let bias = rand(&mut g, &[130], out);
        for (with_bias, relu) in [(true, true), (true, false), (false, true), (false, false)] {
            let mut opts = MatmulOptions::new().with_out_dtype(out);
            if with_bias {
                opts = opts.with_bias(&bias);
            }
            if relu {
                opts = opts.with_activation(Activation::Relu);
            }
            let got = a.matmul_with(&b, opts).unwrap();
            assert_eq!(got.dims(), &[2, 3, 17, 130]);
            assert_eq!(got.dtype(), out);
            let want = composite(&a, &b, out, with_bias.then_some(&bias), relu);
            let tol = match out {
                DType::F64 if input == DType::F64 => 1e-12,
                DType::F16 => 2e-3,
                DType::BF16 => 1e-2,
                _ => 1e-5,
            };
            assert_close(
                &got.to_vec_f64().unwrap(),
                &want.to_vec_f64().unwrap(),
                tol,
                tol,
            );
            if relu {
                assert!(got.to_vec_f64().unwrap().iter().all(|&x| x >= 0.0));
            }
        }
    }
}

#[test]
fn half_operands_with_an_f32_output_keep_the_f32_accumulator() {
    let mut g = Generator::new(5);
    let a = rand(&mut g, &[8, 64], DType::F16);
    let b = rand(&mut g, &[64, 8], DType::F16);
    let opts = MatmulOptions::new().with_out_dtype(DType::F32);
    let got: Vec<f32> = a.matmul_with(&b, opts).unwrap().to_vec().unwrap();
    let exact: Vec<f32> = a
        .to_dtype(DType::F32)
        .unwrap()
        .matmul(&b.to_dtype(DType::F32).unwrap())
        .unwrap()
        .to_vec()
        .unwrap();
    assert_eq!(got, exact);
    // Rounding through f16 loses bits somewhere: the f32 output is not that.
    let rounded = a
        .matmul(&b)
        .unwrap()
        .to_dtype(DType::F32)
        .unwrap()
        .to_vec::<f32>()
        .unwrap();
    assert_ne!(got, rounded);
}

#[test]
fn vectors_and_plain_options() {
    let m = Tensor::arange(0.0, 6.0, 1.0, DType::F32, &Device::cpu())
        .unwrap()
        .reshape([2, 3])
        .unwrap();
    let v = Tensor::from_vec(vec![1.0f32, -1.0, 2.0], [3]).unwrap();
    let bias = Tensor::from_vec(vec![-5.0f32], [1]).unwrap();
    // m @ v = [3, 9] (rhs promoted to [3, 1], n = 1), then + bias -5 and ReLU.
    let out = m
        .matmul_with(
            &v,
            MatmulOptions::new()
                .with_bias(&bias)
                .with_activation(Activation::Relu),
        )
        .unwrap();
    assert_eq!(out.dims(), &[2]);
    assert_eq!(out.to_vec::<f32>().unwrap(), vec![0.0, 4.0]);
    assert_eq!(
        m.matmul_with(&v, MatmulOptions::new())
            .unwrap()
            .to_vec::<f32>()
            .unwrap(),
        vec![3.0, 9.0]
    );
    let z = Tensor::zeros([0, 3], DType::F32, &Device::cpu()).unwrap();
    let b0 = Tensor::zeros([0], DType::F64, &Device::cpu()).unwrap();
    let out = m
        .matmul_with(
            &z.t().unwrap(),
            MatmulOptions::new()
                .with_out_dtype(DType::F64)
                .with_bias(&b0),
        )
        .unwrap();
    assert_eq!((out.dims(), out.dtype()), (&[2usize, 0][..], DType::F64));
}

#[test]
fn bad_options_are_clear_errors() {
    let a = Tensor::zeros([2, 3], DType::F32, &Device::cpu()).unwrap();
    let b = Tensor::zeros([3, 4], DType::F32, &Device::cpu()).unwrap();
    let wrong_len = Tensor::zeros([3], DType::F32, &Device::cpu()).unwrap();
    assert!(matches!(
        a.matmul_with(&b, MatmulOptions::new().with_bias(&wrong_len)),
        Err(Error::ShapeMismatch {
            op: "matmul_with (bias)",
            ..
        })
    ));
    let f64_bias = Tensor::zeros([4], DType::F64, &Device::cpu()).unwrap();
    assert!(matches!(
        a.matmul_with(&b, MatmulOptions::new().with_bias(&f64_bias)),
        Err(Error::DTypeMismatch {
            op: "matmul_with (bias)",
            ..
        })
    ));
    assert!(matches!(
        a.matmul_with(&b, MatmulOptions::new().with_out_dtype(DType::I64)),
        Err(Error::UnsupportedDType {
            dtype: DType::I64,
            ..
        })
    ));
    assert!(close(
        a.matmul_with(&b, MatmulOptions::new().with_out_dtype(DType::F64))
            .unwrap()
            .sum_all()
            .unwrap()
            .item()
            .unwrap(),
        0.0,
        0.0,
        0.0
    ));
}
