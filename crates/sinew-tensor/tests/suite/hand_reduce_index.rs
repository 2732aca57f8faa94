//! Hand-checked values of reductions, joins, indexing, padding and creation. Every expected value
//! was produced by PyTorch 2.x on CPU (float32) with the snippet in the comment above it, where
//! `m = torch.tensor([[1., 5., 3.], [4., 2., 6.]])`, `c3 = torch.arange(24.).reshape(2, 3, 4)`
//! and `g = torch.arange(6.).reshape(2, 3)`.

use crate::common;

use common::*;
use sinew_tensor::{DType, Device, PadMode, Tensor};

fn m() -> Tensor {
    f32s(&[1.0, 5.0, 3.0, 4.0, 2.0, 6.0], &[2, 3])
}

fn c3() -> Tensor {
    Tensor::arange(0.0, 24.0, 1.0, DType::F32, &Device::cpu())
        .unwrap()
        .reshape([2, 3, 4])
        .unwrap()
}

fn g() -> Tensor {
    Tensor::arange(0.0, 6.0, 1.0, DType::F32, &Device::cpu())
        .unwrap()
        .reshape([2, 3])
        .unwrap()
}

#[track_caller]
fn check(t: Tensor, dims: &[usize], expected: &[f64]) {
    assert_tensor(&t, dims, expected, 1e-6, 1e-7);
}

#[test]
fn reductions() {
    // m.prod(0); m.var(1); m.var(1, correction=0); m.std(0); m.logsumexp(1)
    check(m().prod(&[0], false).unwrap(), &[3], &[4.0, 10.0, 18.0]);
    check(m().var(&[1], 1, false).unwrap(), &[2], &[4.0, 4.0]);
    check(
        m().var(&[1], 0, false).unwrap(),
        &[2],
        &[2.66666675, 2.66666675],
    );
    check(m().std(&[0], 1, false).unwrap(), &[3], &[2.12132025; 3]);
    check(
        m().logsumexp(&[1], false).unwrap(),
        &[2],
        &[5.14293194, 6.14293146],
    );
    // torch.linalg.vector_norm(m, 3, dim=1); m.mean(0, keepdim=True)
    check(
        m().norm(3.0, &[1], false).unwrap(),
        &[2],
        &[5.34848166, 6.60385466],
    );
    check(m().mean(&[0], true).unwrap(), &[1, 3], &[2.5, 3.5, 4.5]);
    // m.softmax(0); m.log_softmax(1)
    check(
        m().softmax(0).unwrap(),
        &[2, 3],
        &[
            0.04742587, 0.95257413, 0.04742587, 0.95257413, 0.04742587, 0.95257413,
        ],
    );
    check(
        m().log_softmax(1).unwrap(),
        &[2, 3],
        &[
            -4.14293194,
            -0.1429317,
            -2.1429317,
            -2.1429317,
            -4.14293146,
            -0.1429316,
        ],
    );
    // m.min(1) = (values [1, 2], indices [0, 1])
    let (v, i) = m().min_dim(1, false).unwrap();
    check(v, &[2], &[1.0, 2.0]);
    assert_eq!(i.to_vec::<i64>().unwrap(), vec![0, 1]);
    // c3.sum((0, 2)); c3.amax((1, 2)); c3.mean(-1)
    check(
        c3().sum(&[0, 2], false).unwrap(),
        &[3],
        &[60.0, 92.0, 124.0],
    );
    check(c3().max(&[1, 2], false).unwrap(), &[2], &[11.0, 23.0]);
    check(
        c3().mean(&[-1], false).unwrap(),
        &[2, 3],
        &[1.5, 5.5, 9.5, 13.5, 17.5, 21.5],
    );
    // The same reductions through a permuted view: c3.permute(2, 0, 1).sum((1, 2)) = c3.sum((0, 1))
    check(
        c3().permute(&[2, 0, 1])
            .unwrap()
            .sum(&[1, 2], false)
            .unwrap(),
        &[4],
        &[60.0, 66.0, 72.0, 78.0],
    );
    // torch.tensor([3, -1, 4], dtype=torch.int64).sum() = 6; .prod() = -12; .amax() = 4
    let i = i64s(&[3, -1, 4], &[3]);
    assert_eq!(i.sum_all().unwrap().to_scalar::<i64>().unwrap(), 6);
    assert_eq!(i.prod(&[], false).unwrap().to_scalar::<i64>().unwrap(), -12);
    assert_eq!(i.max(&[], false).unwrap().to_scalar::<i64>().unwrap(), 4);
}

#[test]
fn a_half_precision_mean_divides_before_it_rounds() {
    // torch.full((4,), 60000., dtype=torch.half).mean() == 60000 (the f16 sum would be inf);
    // torch.full((2, 3, 2), 60000., dtype=torch.half).mean((0, 2)) == [60000.] * 3
    let cpu = Device::cpu();
    for dtype in [DType::F16, DType::BF16] {
        let big = Tensor::full([4], 60000.0, dtype, &cpu).unwrap();
        let value = big.to_dtype(DType::F64).unwrap().to_vec_f64().unwrap()[0];
        if dtype == DType::F16 {
            assert_eq!(
                big.sum_all().unwrap().to_vec_f64().unwrap(),
                [f64::INFINITY]
            );
        }
        assert_eq!(big.mean_all().unwrap().to_vec_f64().unwrap(), [value]);
        let runs = Tensor::full([2, 3, 2], 60000.0, dtype, &cpu).unwrap();
        let mean = runs.mean(&[0, 2], false).unwrap();
        assert_eq!(mean.dtype(), dtype);
        assert_eq!(mean.to_vec_f64().unwrap(), [value; 3]);
    }
}

#[test]
fn joins_and_splits() {
    // torch.cat([g, g * 10, g[:1]], 0)
    let parts = [
        g(),
        g().mul_scalar(10.0).unwrap(),
        g().narrow(0, 0, 1).unwrap(),
    ];
    check(
        Tensor::cat(&parts, 0).unwrap(),
        &[5, 3],
        &[
            0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 0.0, 10.0, 20.0, 30.0, 40.0, 50.0, 0.0, 1.0, 2.0,
        ],
    );
    // torch.stack([g, -g], 1)
    check(
        Tensor::stack(&[g(), g().neg().unwrap()], 1).unwrap(),
        &[2, 2, 3],
        &[
            0.0, 1.0, 2.0, -0.0, -1.0, -2.0, 3.0, 4.0, 5.0, -3.0, -4.0, -5.0,
        ],
    );
    // torch.stack([g, -g], -1) has shape [2, 3, 2]
    assert_eq!(Tensor::stack(&[g(), g()], -1).unwrap().dims(), &[2, 3, 2]);
    let r = Tensor::arange(0.0, 5.0, 1.0, DType::F32, &Device::cpu()).unwrap();
    // torch.split(torch.arange(5.), [1, 4]) = [[0], [1, 2, 3, 4]]
    let s = r.split_sizes(&[1, 4], 0).unwrap();
    assert_eq!(
        (s[0].to_vec::<f32>().unwrap(), s[1].to_vec::<f32>().unwrap()),
        (vec![0.0], vec![1.0, 2.0, 3.0, 4.0])
    );
    // torch.arange(5.).chunk(3) = [[0, 1], [2, 3], [4]]; torch.arange(6.).chunk(4) has 3 pieces of 2
    let c: Vec<Vec<f32>> = r
        .chunk(3, 0)
        .unwrap()
        .iter()
        .map(|t| t.to_vec().unwrap())
        .collect();
    assert_eq!(c, vec![vec![0.0, 1.0], vec![2.0, 3.0], vec![4.0]]);
    let six = Tensor::arange(0.0, 6.0, 1.0, DType::F32, &Device::cpu()).unwrap();
    assert_eq!(
        six.chunk(4, 0)
            .unwrap()
            .iter()
            .map(|t| t.elem_count())
            .collect::<Vec<_>>(),
        vec![2, 2, 2]
    );
    assert!(s.iter().all(|p| p.same_storage(&r)));
}

#[test]
fn indexing() {
    // torch.gather(g, 0, torch.tensor([[1, 0, 1]]))
    check(
        g().gather(0, &i64s(&[1, 0, 1], &[1, 3])).unwrap(),
        &[1, 3],
        &[3.0, 1.0, 5.0],
    );
    // torch.zeros(3, 3).scatter(0, torch.tensor([[2, 0, 1]]), torch.tensor([[7., 8., 9.]]))
    let z = Tensor::zeros([3, 3], DType::F32, &Device::cpu()).unwrap();
    let s = z
        .scatter(
            0,
            &i64s(&[2, 0, 1], &[1, 3]),
            &f32s(&[7.0, 8.0, 9.0], &[1, 3]),
        )
        .unwrap();
    check(s, &[3, 3], &[0.0, 8.0, 0.0, 0.0, 0.0, 9.0, 7.0, 0.0, 0.0]);
    // torch.zeros(4).scatter_add(0, torch.tensor([1, 1, 3, 1]), torch.tensor([1., 2., 3., 4.]))
    let z = Tensor::zeros([4], DType::F32, &Device::cpu()).unwrap();
    check(
        z.scatter_add(
            0,
            &i64s(&[1, 1, 3, 1], &[4]),
            &f32s(&[1.0, 2.0, 3.0, 4.0], &[4]),
        )
        .unwrap(),
        &[4],
        &[0.0, 7.0, 0.0, 3.0],
    );
    // F.one_hot(torch.tensor([[0, 2], [1, 1]]), 3)
    let oh = i64s(&[0, 2, 1, 1], &[2, 2]).one_hot(3).unwrap();
    assert_eq!(oh.dims(), &[2, 2, 3]);
    assert_eq!(
        oh.to_vec::<i64>().unwrap(),
        vec![1, 0, 0, 0, 0, 1, 0, 1, 0, 0, 1, 0]
    );
    // torch.where(g > 2, g, -1.0) via masked_fill: g.masked_fill(g <= 2, -1.)
    check(
        g().masked_fill(&g().le_scalar(2.0).unwrap(), -1.0).unwrap(),
        &[2, 3],
        &[-1.0, -1.0, -1.0, 3.0, 4.0, 5.0],
    );
}

#[test]
fn padding() {
    // F.pad(g, (1, 2, 1, 0), value=-1.)  -- PyTorch lists the last dim first; we list dims in order.
    check(
        g().pad(&[(1, 0), (1, 2)], PadMode::Constant(-1.0)).unwrap(),
        &[3, 6],
        &[
            -1.0, -1.0, -1.0, -1.0, -1.0, -1.0, -1.0, 0.0, 1.0, 2.0, -1.0, -1.0, -1.0, 3.0, 4.0,
            5.0, -1.0, -1.0,
        ],
    );
    // F.pad(torch.arange(12.).reshape(1, 3, 4), (2, 1, 1, 2), mode='reflect')
    let x = Tensor::arange(0.0, 12.0, 1.0, DType::F32, &Device::cpu())
        .unwrap()
        .reshape([1, 3, 4])
        .unwrap();
    check(
        x.pad(&[(1, 2), (2, 1)], PadMode::Reflect).unwrap(),
        &[1, 6, 7],
        &[
            6.0, 5.0, 4.0, 5.0, 6.0, 7.0, 6.0, 2.0, 1.0, 0.0, 1.0, 2.0, 3.0, 2.0, 6.0, 5.0, 4.0,
            5.0, 6.0, 7.0, 6.0, 10.0, 9.0, 8.0, 9.0, 10.0, 11.0, 10.0, 6.0, 5.0, 4.0, 5.0, 6.0,
            7.0, 6.0, 2.0, 1.0, 0.0, 1.0, 2.0, 3.0, 2.0,
        ],
    );
}

#[test]
fn creation() {
    let cpu = Device::cpu();
    // torch.linspace(-1, 1, 7)  (PyTorch computes in f32 and gets -3e-08 in the middle; we compute
    // in f64 and round once, so the middle is exactly 0)
    check(
        Tensor::linspace(-1.0, 1.0, 7, DType::F32, &cpu).unwrap(),
        &[7],
        &[
            -1.0,
            -0.66666663,
            -0.33333331,
            0.0,
            0.33333331,
            0.66666663,
            1.0,
        ],
    );
    // torch.linspace(0, 1, 10)
    check(
        Tensor::linspace(0.0, 1.0, 10, DType::F32, &cpu).unwrap(),
        &[10],
        &[
            0.0, 0.11111111, 0.22222222, 0.33333334, 0.44444445, 0.55555558, 0.66666669,
            0.77777779, 0.8888889, 1.0,
        ],
    );
    // torch.arange(1.0, -1.0, -0.5); torch.arange(0, 10, 3)
    check(
        Tensor::arange(1.0, -1.0, -0.5, DType::F32, &cpu).unwrap(),
        &[4],
        &[1.0, 0.5, 0.0, -0.5],
    );
    assert_eq!(
        Tensor::arange(0.0, 10.0, 3.0, DType::I64, &cpu)
            .unwrap()
            .to_vec::<i64>()
            .unwrap(),
        vec![0, 3, 6, 9]
    );
    // torch.arange(0, 0.3, 0.1) has 3 elements (0.3 / 0.1 = 2.9999999999999996)
    assert_eq!(
        Tensor::arange(0.0, 0.3, 0.1, DType::F64, &cpu)
            .unwrap()
            .elem_count(),
        3
    );
    assert_eq!(
        Tensor::linspace(0.0, 1.0, 0, DType::F32, &cpu)
            .unwrap()
            .dims(),
        &[0]
    );
    // torch.full((2, 2), 7, dtype=torch.uint8); torch.eye(2, dtype=torch.bool)
    assert_eq!(
        Tensor::full([2, 2], 7.0, DType::U8, &cpu)
            .unwrap()
            .to_vec::<u8>()
            .unwrap(),
        vec![7; 4]
    );
    assert_eq!(
        Tensor::eye(2, DType::Bool, &cpu)
            .unwrap()
            .to_vec::<bool>()
            .unwrap(),
        vec![true, false, false, true]
    );
}
