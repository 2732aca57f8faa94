//! Hand-checked values of convolution, pooling, unfold/fold and `Display`. Every expected value
//! was produced by PyTorch 2.x on CPU (float32) with the snippet in the comment above it
//! (`import torch.nn.functional as F`).

use crate::common;

use common::*;
use sinew_tensor::{Conv1dConfig, Conv2dConfig, DType, Device, Pool2dConfig, Tensor};

fn cpu() -> Device {
    Device::cpu()
}

fn arange(n: usize) -> Tensor {
    Tensor::arange(0.0, n as f64, 1.0, DType::F32, &cpu()).unwrap()
}

/// xp = torch.tensor([[[[1., 5., 2., 0., 3.], [3., 4., 8., 7., 1.], [0., 9., 1., 1., 2.], [6., 2., 3., 5., 4.]]]])
fn xp() -> Tensor {
    let v = [
        1.0, 5.0, 2.0, 0.0, 3.0, 3.0, 4.0, 8.0, 7.0, 1.0, 0.0, 9.0, 1.0, 1.0, 2.0, 6.0, 2.0, 3.0,
        5.0, 4.0,
    ];
    f32s(&v, &[1, 1, 4, 5])
}

#[test]
fn conv2d_with_stride_padding_dilation_groups_and_bias() {
    // x = torch.arange(50.).reshape(1, 2, 5, 5) / 10 - 2
    // w = torch.tensor([1., -1., 0.5, 2., 0., -0.5, 1., 1., -2., 0.25, 0.5, -1., 1., 0., 1., -1.]).reshape(4, 1, 2, 2)
    // b = torch.tensor([0.1, -0.2, 0.3, 0.])
    // F.conv2d(x, w, b, stride=2, padding=1, dilation=2, groups=2)
    let x = arange(50)
        .reshape([1, 2, 5, 5])
        .unwrap()
        .div_scalar(10.0)
        .unwrap()
        .sub_scalar(2.0)
        .unwrap();
    let w = f32s(
        &[
            1.0, -1.0, 0.5, 2.0, 0.0, -0.5, 1.0, 1.0, -2.0, 0.25, 0.5, -1.0, 1.0, 0.0, 1.0, -1.0,
        ],
        &[4, 1, 2, 2],
    );
    let b = f32s(&[0.1, -0.2, 0.3, 0.0], &[4]);
    let cfg = Conv2dConfig {
        stride: (2, 2),
        padding: (1, 1),
        dilation: (2, 2),
        groups: 2,
    };
    let expect = [
        -2.7, -3.0, -0.5, 0.7, -0.7, -1.2, 0.5, -0.1, -0.1, -1.6, -2.8, -1.4, 0.1, -0.2, -0.4,
        -0.0, -0.1, -0.2, -0.8, -0.45, 0.95, -1.525, -2.825, -1.15, 0.825, -3.325, -4.3, -1.1,
        -0.2, 1.3, -2.1, 0.9, 3.6, 0.0, 2.1, 2.3,
    ];
    assert_tensor(
        &x.conv2d(&w, Some(&b), cfg).unwrap(),
        &[1, 4, 3, 3],
        &expect,
        1e-5,
        1e-6,
    );
}

#[test]
fn conv1d_with_stride_padding_dilation() {
    // F.conv1d(torch.arange(14.).reshape(1, 2, 7), torch.tensor([1., 0., -1., 2., 1., 0.5]).reshape(1, 2, 3),
    //          stride=2, padding=2, dilation=2) = [[[9.5, 24.5, 31.5, 39.0]]]
    let x = arange(14).reshape([1, 2, 7]).unwrap();
    let w = f32s(&[1.0, 0.0, -1.0, 2.0, 1.0, 0.5], &[1, 2, 3]);
    let cfg = Conv1dConfig {
        stride: 2,
        padding: 2,
        dilation: 2,
        groups: 1,
    };
    assert_tensor(
        &x.conv1d(&w, None, cfg).unwrap(),
        &[1, 1, 4],
        &[9.5, 24.5, 31.5, 39.0],
        1e-6,
        0.0,
    );
}

#[test]
fn max_pool2d_values_and_indices() {
    // F.max_pool2d(xp, (2, 3), stride=(1, 2), dilation=(2, 1), return_indices=True)
    //   = ([[9, 3], [8, 8]], [[11, 4], [7, 7]])
    let cfg = Pool2dConfig {
        kernel: (2, 3),
        stride: Some((1, 2)),
        dilation: (2, 1),
        ..Pool2dConfig::new(1)
    };
    let (v, i) = xp().max_pool2d(cfg).unwrap();
    assert_tensor(&v, &[1, 1, 2, 2], &[9.0, 3.0, 8.0, 8.0], 0.0, 0.0);
    assert_eq!(i.to_vec::<i64>().unwrap(), vec![11, 4, 7, 7]);
    // F.max_pool2d(xp, 3, stride=2, padding=1, return_indices=True)
    //   = ([[5, 8, 7], [9, 9, 7]], [[1, 7, 8], [11, 11, 8]])
    let cfg = Pool2dConfig {
        stride: Some((2, 2)),
        padding: (1, 1),
        ..Pool2dConfig::new(3)
    };
    let (v, i) = xp().max_pool2d(cfg).unwrap();
    assert_tensor(&v, &[1, 1, 2, 3], &[5.0, 8.0, 7.0, 9.0, 9.0, 7.0], 0.0, 0.0);
    assert_eq!(i.to_vec::<i64>().unwrap(), vec![1, 7, 8, 11, 11, 8]);
}

#[test]
fn avg_pool2d_with_stride_and_padding() {
    // F.avg_pool2d(xp, (2, 2), stride=(2, 1))
    let cfg = Pool2dConfig {
        kernel: (2, 2),
        stride: Some((2, 1)),
        ..Pool2dConfig::new(1)
    };
    assert_tensor(
        &xp().avg_pool2d(cfg).unwrap(),
        &[1, 1, 2, 4],
        &[3.25, 4.75, 4.25, 2.75, 4.25, 3.75, 2.5, 3.0],
        1e-6,
        0.0,
    );
    // F.avg_pool2d(xp, 3, stride=2, padding=1, count_include_pad=False)
    let cfg = Pool2dConfig {
        stride: Some((2, 2)),
        padding: (1, 1),
        count_include_pad: false,
        ..Pool2dConfig::new(3)
    };
    assert_tensor(
        &xp().avg_pool2d(cfg).unwrap(),
        &[1, 1, 2, 3],
        &[3.25, 4.333333, 2.75, 4.0, 4.444445, 3.333333],
        1e-6,
        0.0,
    );
}

#[test]
fn half_precision_average_pooling_divides_before_rounding() {
    // F.avg_pool2d(torch.full((1, 1, 4, 4), 10000., dtype=torch.half), 3, 1) == 10000 (the
    // window's f16 sum, 90000, would overflow); bf16: 9984 (10000 rounded to bf16)
    let cfg = Pool2dConfig {
        kernel: (3, 3),
        stride: Some((1, 1)),
        padding: (0, 0),
        dilation: (1, 1),
        count_include_pad: true,
    };
    for (dtype, want) in [(DType::F16, 10000.0), (DType::BF16, 9984.0)] {
        let x = Tensor::full([1, 1, 4, 4], 10000.0, dtype, &cpu()).unwrap();
        for include in [true, false] {
            let cfg = Pool2dConfig {
                count_include_pad: include,
                ..cfg
            };
            let y = x.avg_pool2d(cfg).unwrap();
            assert_eq!(y.dtype(), dtype);
            assert_eq!(
                y.to_vec_f64().unwrap(),
                [want; 4],
                "{dtype} include {include}"
            );
        }
    }
}

#[test]
fn one_d_pooling_with_padding() {
    // s = torch.tensor([[[1., 3., 2., 5., 4., -1.]]])
    let s = f32s(&[1.0, 3.0, 2.0, 5.0, 4.0, -1.0], &[1, 1, 6]);
    // F.max_pool1d(s, 3, stride=2, padding=1, return_indices=True) = ([3, 5, 5], [1, 3, 3])
    let (v, i) = s.max_pool1d(3, Some(2), 1).unwrap();
    assert_tensor(&v, &[1, 1, 3], &[3.0, 5.0, 5.0], 0.0, 0.0);
    assert_eq!(i.to_vec::<i64>().unwrap(), vec![1, 3, 3]);
    // F.avg_pool1d(s, 2, stride=2, padding=1) = [0.5, 2.5, 4.5, -0.5]
    assert_tensor(
        &s.avg_pool1d(2, Some(2), 1).unwrap(),
        &[1, 1, 4],
        &[0.5, 2.5, 4.5, -0.5],
        0.0,
        0.0,
    );
}

#[test]
fn unfold_and_fold() {
    // F.unfold(torch.arange(9.).reshape(1, 1, 3, 3), 2)
    let x = arange(9).reshape([1, 1, 3, 3]).unwrap();
    let spec = x
        .unfold_spec("unfold", (2, 2), (1, 1), (0, 0), (1, 1), 0.0)
        .unwrap();
    let expect = [
        0.0, 1.0, 3.0, 4.0, 1.0, 2.0, 4.0, 5.0, 3.0, 4.0, 6.0, 7.0, 4.0, 5.0, 7.0, 8.0,
    ];
    assert_tensor(&x.unfold2d(&spec).unwrap(), &[1, 4, 4], &expect, 0.0, 0.0);
    // F.fold(torch.ones(1, 4, 4), (3, 3), 2) = [[1, 2, 1], [2, 4, 2], [1, 2, 1]]
    let ones = Tensor::ones([1, 4, 4], DType::F32, &cpu()).unwrap();
    assert_tensor(
        &ones.fold2d(&spec).unwrap(),
        &[1, 1, 3, 3],
        &[1.0, 2.0, 1.0, 2.0, 4.0, 2.0, 1.0, 2.0, 1.0],
        0.0,
        0.0,
    );
}

#[test]
fn display_matches_pytorch_print() {
    // print(torch.arange(2000).reshape(40, 50))
    let big = Tensor::arange(0.0, 2000.0, 1.0, DType::I64, &cpu())
        .unwrap()
        .reshape([40, 50])
        .unwrap();
    let expect = "tensor([[   0,    1,    2,  ...,   47,   48,   49],
        [  50,   51,   52,  ...,   97,   98,   99],
        [ 100,  101,  102,  ...,  147,  148,  149],
        ...,
        [1850, 1851, 1852,  ..., 1897, 1898, 1899],
        [1900, 1901, 1902,  ..., 1947, 1948, 1949],
        [1950, 1951, 1952,  ..., 1997, 1998, 1999]])";
    assert_eq!(big.to_string(), expect);
    // print(torch.arange(8).reshape(2, 2, 2))
    let cube = Tensor::arange(0.0, 8.0, 1.0, DType::I64, &cpu())
        .unwrap()
        .reshape([2, 2, 2])
        .unwrap();
    assert_eq!(
        cube.to_string(),
        "tensor([[[0, 1],\n         [2, 3]],\n\n        [[4, 5],\n         [6, 7]]])"
    );
    // print(torch.tensor([-0.5, 2.0])); print(torch.tensor([1.0, 2.0]))
    assert_eq!(
        f32s(&[-0.5, 2.0], &[2]).to_string(),
        "tensor([-0.5000,  2.0000])"
    );
    assert_eq!(f32s(&[1.0, 2.0], &[2]).to_string(), "tensor([1., 2.])");
    // print(torch.zeros(0, 3)); print(torch.zeros(0))
    assert_eq!(
        Tensor::zeros([0, 3], DType::F32, &cpu())
            .unwrap()
            .to_string(),
        "tensor([], size=(0, 3))"
    );
    assert_eq!(
        Tensor::zeros([0], DType::F32, &cpu()).unwrap().to_string(),
        "tensor([])"
    );
    // A transposed view prints its logical order: print(torch.arange(4).reshape(2, 2).T)
    let t = Tensor::arange(0.0, 4.0, 1.0, DType::I64, &cpu())
        .unwrap()
        .reshape([2, 2])
        .unwrap()
        .t()
        .unwrap();
    assert_eq!(t.to_string(), "tensor([[0, 2],\n        [1, 3]])");
    // Other dtypes are named with Sinew's short names (PyTorch writes dtype=torch.uint8).
    let u = Tensor::from_vec(vec![1u8, 2, 3, 4], [2, 2]).unwrap();
    assert_eq!(u.to_string(), "tensor([[1, 2],\n        [3, 4]], dtype=u8)");
    assert_eq!(
        format!("{:?}", u.t().unwrap()),
        "Tensor { shape: [2, 2], strides: [1, 2], dtype: u8, device: cpu }"
    );
}
