//! Hand-checked values of the elementwise ops. Every expected value was produced by PyTorch
//! 2.x on CPU (float32) with the snippet in the comment above it, where
//! `x = torch.tensor([-2., -0.5, 0.25, 1., 3.])` and `pos = torch.tensor([0.25, 1., 2., 9.])`.
// Expected values are PyTorch's printed digits, even where they happen to approximate ln 2.
#![allow(clippy::approx_constant)]

use crate::common;

use common::*;
use sinew_tensor::Tensor;

fn x() -> Tensor {
    f32s(&[-2.0, -0.5, 0.25, 1.0, 3.0], &[5])
}

fn pos() -> Tensor {
    f32s(&[0.25, 1.0, 2.0, 9.0], &[4])
}

#[track_caller]
fn check(t: Tensor, expected: &[f64]) {
    assert_close(&t.to_vec_f64().unwrap(), expected, 1e-6, 1e-7);
}

#[test]
fn exponentials_and_logarithms() {
    // torch.exp(x)
    check(
        x().exp().unwrap(),
        &[0.13533528, 0.60653067, 1.28402543, 2.71828175, 20.08553696],
    );
    // torch.log(pos)
    check(
        pos().log().unwrap(),
        &[-1.38629436, 0.0, 0.69314718, 2.19722462],
    );
    // torch.log1p(x[1:])
    check(
        x().narrow(0, 1, 4).unwrap().log1p().unwrap(),
        &[-0.69314718, 0.22314355, 0.69314718, 1.38629436],
    );
    // torch.sqrt(pos), torch.rsqrt(pos)
    check(pos().sqrt().unwrap(), &[0.5, 1.0, 1.41421354, 3.0]);
    check(pos().rsqrt().unwrap(), &[2.0, 1.0, 0.70710677, 0.33333334]);
    // torch.pow(pos, 1.5), torch.pow(x, 2.0)
    check(pos().powf(1.5).unwrap(), &[0.125, 1.0, 2.82842708, 27.0]);
    check(x().powf(2.0).unwrap(), &[4.0, 0.25, 0.0625, 1.0, 9.0]);
}

#[test]
fn trigonometry_and_simple_maps() {
    // torch.sin(x), torch.cos(x)
    check(
        x().sin().unwrap(),
        &[-0.90929741, -0.47942555, 0.24740396, 0.84147096, 0.14112],
    );
    check(
        x().cos().unwrap(),
        &[-0.41614684, 0.87758255, 0.96891242, 0.54030234, -0.9899925],
    );
    // torch.abs(x), torch.neg(x), torch.sign(x)
    check(x().abs().unwrap(), &[2.0, 0.5, 0.25, 1.0, 3.0]);
    check(x().neg().unwrap(), &[2.0, 0.5, -0.25, -1.0, -3.0]);
    check((-&x()).sign().unwrap(), &[1.0, 1.0, -1.0, -1.0, -1.0]);
    // torch.reciprocal(x), torch.square(x)
    check(x().recip().unwrap(), &[-0.5, -2.0, 4.0, 1.0, 0.33333334]);
    check(x().square().unwrap(), &[4.0, 0.25, 0.0625, 1.0, 9.0]);
    // torch.clamp(x, -1, 0.5)
    check(x().clamp(-1.0, 0.5).unwrap(), &[-1.0, -0.5, 0.25, 0.5, 0.5]);
    // torch.clamp(x, min=0) and torch.clamp(x, max=0)
    check(
        x().maximum_scalar(0.0).unwrap(),
        &[0.0, 0.0, 0.25, 1.0, 3.0],
    );
    check(
        x().minimum_scalar(0.0).unwrap(),
        &[-2.0, -0.5, 0.0, 0.0, 0.0],
    );
}

#[test]
fn scalar_arithmetic() {
    // 3 - x, 2 / x
    check(x().rsub_scalar(3.0).unwrap(), &[5.0, 3.5, 2.75, 2.0, 0.0]);
    check(
        x().rdiv_scalar(2.0).unwrap(),
        &[-1.0, -4.0, 8.0, 2.0, 0.66666669],
    );
    // x + 1.5, x - 1.5, x * -2, x / 4 (operator sugar with f64 scalars)
    check(&x() + 1.5, &[-0.5, 1.0, 1.75, 2.5, 4.5]);
    check(&x() - 1.5, &[-3.5, -2.0, -1.25, -0.5, 1.5]);
    check(&x() * -2.0, &[4.0, 1.0, -0.5, -2.0, -6.0]);
    check(&x() / 4.0, &[-0.5, -0.125, 0.0625, 0.25, 0.75]);
}

#[test]
fn activations_with_parameters() {
    // F.leaky_relu(x)  (default slope 0.01)
    check(
        x().leaky_relu(0.01).unwrap(),
        &[-0.02, -0.005, 0.25, 1.0, 3.0],
    );
    // F.softplus(x, beta=2, threshold=3)
    check(
        x().softplus(2.0, 3.0).unwrap(),
        &[0.00907496, 0.15663084, 0.48703849, 1.06346405, 3.0],
    );
    // F.elu(x, alpha=0.5)
    check(
        x().elu(0.5).unwrap(),
        &[-0.43233237, -0.19673467, 0.25, 1.0, 3.0],
    );
}

#[test]
fn binary_ops_with_broadcasting() {
    // a = torch.tensor([[1., -2., 3.], [0.5, 4., -1.]]); b = torch.tensor([2., 0.5, -3.])
    let a = f32s(&[1.0, -2.0, 3.0, 0.5, 4.0, -1.0], &[2, 3]);
    let b = f32s(&[2.0, 0.5, -3.0], &[3]);
    // torch.pow(a.abs(), b)
    check(
        a.abs().unwrap().pow(&b).unwrap(),
        &[1.0, 1.41421354, 0.03703704, 0.25, 2.0, 1.0],
    );
    // a / b
    check(
        a.div(&b).unwrap(),
        &[0.5, -4.0, -1.0, 0.25, 8.0, 0.33333334],
    );
    // torch.maximum(a, b), torch.minimum(a, b)
    check(a.maximum(&b).unwrap(), &[2.0, 0.5, 3.0, 2.0, 4.0, -1.0]);
    check(a.minimum(&b).unwrap(), &[1.0, -2.0, -3.0, 0.5, 0.5, -3.0]);
    // a - torch.tensor([[1.], [2.]])
    check(
        &a - &f32s(&[1.0, 2.0], &[2, 1]),
        &[0.0, -3.0, 2.0, -1.5, 2.0, -3.0],
    );
    // a >= b
    assert_eq!(
        a.ge(&b).unwrap().to_vec::<bool>().unwrap(),
        vec![false, false, true, false, true, true]
    );
    // torch.where(a > 0, a, b)
    let w = a.gt_scalar(0.0).unwrap().where_cond(&a, &b).unwrap();
    check(w, &[1.0, 0.5, 3.0, 0.5, 4.0, -3.0]);
    // Integer arithmetic: torch.tensor([7, -7]) * 3 = [21, -21]; maximum with 0 = [7, 0]
    let i = i64s(&[7, -7], &[2]);
    assert_eq!(
        i.mul(&Tensor::scalar(3i64))
            .unwrap()
            .to_vec::<i64>()
            .unwrap(),
        vec![21, -21]
    );
    assert_eq!(
        i.maximum(&Tensor::scalar(0i64))
            .unwrap()
            .to_vec::<i64>()
            .unwrap(),
        vec![7, 0]
    );
    // torch.div(torch.tensor([7, -7]), 2, rounding_mode='trunc') = [3, -3]
    assert_eq!(
        i.div_trunc(&Tensor::scalar(2i64))
            .unwrap()
            .to_vec::<i64>()
            .unwrap(),
        vec![3, -3]
    );
    // torch.tensor([7, -7]) / 2 = [3.5, -3.5] (float32)
    assert_eq!(
        i.div(&Tensor::scalar(2i64))
            .unwrap()
            .to_vec::<f32>()
            .unwrap(),
        vec![3.5, -3.5]
    );
}
