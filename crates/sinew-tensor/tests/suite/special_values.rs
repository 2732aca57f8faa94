//! inf and NaN through every op family, checked against PyTorch (snippets in the comments;
//! `nan, inf = float('nan'), float('inf')` and `x = torch.tensor([1., nan, inf, -inf, 0., -2.])`).

use crate::common;

use common::*;
use sinew_tensor::{Pool2dConfig, Tensor};

const NAN: f64 = f64::NAN;
const INF: f64 = f64::INFINITY;

fn x() -> Tensor {
    f64s(&[1.0, NAN, INF, -INF, 0.0, -2.0], &[6])
        .to_dtype(sinew_tensor::DType::F32)
        .unwrap()
}

fn t(v: &[f64]) -> Tensor {
    f64s(v, &[v.len()])
        .to_dtype(sinew_tensor::DType::F32)
        .unwrap()
}

fn vals(t: &Tensor) -> Vec<f64> {
    t.to_vec_f64().unwrap()
}

fn scalar(t: Tensor) -> f64 {
    t.item().unwrap()
}

#[test]
fn reductions_propagate_nan_and_handle_inf() {
    // x.sum() = nan; torch.tensor([inf, -inf]).sum() = nan; torch.tensor([inf, 1.]).sum() = inf
    assert!(scalar(x().sum_all().unwrap()).is_nan());
    assert!(scalar(t(&[INF, -INF]).sum_all().unwrap()).is_nan());
    assert_eq!(scalar(t(&[INF, 1.0]).sum_all().unwrap()), INF);
    // x.amax() = nan; x.amin() = nan; torch.tensor([inf, -inf, 1.]).amax() = inf, .amin() = -inf
    assert!(scalar(x().max(&[], false).unwrap()).is_nan());
    assert!(scalar(x().min(&[], false).unwrap()).is_nan());
    assert_eq!(scalar(t(&[INF, -INF, 1.0]).max(&[], false).unwrap()), INF);
    assert_eq!(scalar(t(&[INF, -INF, 1.0]).min(&[], false).unwrap()), -INF);
    // x.argmax() = 1; x.argmin() = 1 (the NaN); torch.tensor([1., inf, inf]).argmax() = 1;
    // torch.tensor([-inf, 0., -inf]).argmin() = 0
    assert_eq!(scalar(x().argmax(0, false).unwrap()), 1.0);
    assert_eq!(scalar(x().argmin(0, false).unwrap()), 1.0);
    assert_eq!(scalar(t(&[1.0, INF, INF]).argmax(0, false).unwrap()), 1.0);
    assert_eq!(scalar(t(&[-INF, 0.0, -INF]).argmin(0, false).unwrap()), 0.0);
    // x.mean() = nan; torch.tensor([inf, 1.]).mean() = inf; torch.tensor([inf, 0.]).prod() = nan
    assert!(scalar(x().mean_all().unwrap()).is_nan());
    assert_eq!(scalar(t(&[INF, 1.0]).mean_all().unwrap()), INF);
    assert!(scalar(t(&[INF, 0.0]).prod(&[], false).unwrap()).is_nan());
    // torch.tensor([1.]).var() = nan (no degrees of freedom); torch.tensor([inf, 1.]).var() = nan
    assert!(scalar(t(&[1.0]).var(&[], 1, false).unwrap()).is_nan());
    assert!(scalar(t(&[INF, 1.0]).var(&[], 1, false).unwrap()).is_nan());
    // torch.linalg.vector_norm(torch.tensor([inf, 1.])) = inf; with a nan: nan
    assert_eq!(scalar(t(&[INF, 1.0]).norm(2.0, &[], false).unwrap()), INF);
    assert!(scalar(t(&[NAN, 1.0]).norm(2.0, &[], false).unwrap()).is_nan());
}

#[test]
fn softmax_and_logsumexp_with_infinities() {
    // torch.tensor([0., -inf, 0.]).softmax(0) = [0.5, 0, 0.5]
    assert_close(
        &vals(&t(&[0.0, -INF, 0.0]).softmax(0).unwrap()),
        &[0.5, 0.0, 0.5],
        0.0,
        0.0,
    );
    // torch.tensor([-inf, -inf]).softmax(0) = [nan, nan]; torch.tensor([1., nan]).softmax(0) = [nan, nan]
    assert_close(
        &vals(&t(&[-INF, -INF]).softmax(0).unwrap()),
        &[NAN, NAN],
        0.0,
        0.0,
    );
    assert_close(
        &vals(&t(&[1.0, NAN]).softmax(0).unwrap()),
        &[NAN, NAN],
        0.0,
        0.0,
    );
    // torch.tensor([0., -inf]).log_softmax(0) = [0, -inf]
    assert_close(
        &vals(&t(&[0.0, -INF]).log_softmax(0).unwrap()),
        &[0.0, -INF],
        0.0,
        0.0,
    );
    // torch.tensor([inf, 1.]).logsumexp(0) = inf; [-inf, 0.] -> 0; [nan, 1.] -> nan
    assert_eq!(scalar(t(&[INF, 1.0]).logsumexp(&[0], false).unwrap()), INF);
    assert_eq!(scalar(t(&[-INF, 0.0]).logsumexp(&[0], false).unwrap()), 0.0);
    assert!(scalar(t(&[NAN, 1.0]).logsumexp(&[0], false).unwrap()).is_nan());
}

#[test]
fn comparisons_with_nan_are_false_except_ne() {
    // (x == x) = [T, F, T, T, T, T]; (x != x) = [F, T, F, F, F, F]; (x < 1) = [F, F, F, T, T, T]
    let x = x();
    assert_eq!(
        x.eq(&x).unwrap().to_vec::<bool>().unwrap(),
        vec![true, false, true, true, true, true]
    );
    assert_eq!(
        x.ne(&x).unwrap().to_vec::<bool>().unwrap(),
        vec![false, true, false, false, false, false]
    );
    assert_eq!(
        x.lt_scalar(1.0).unwrap().to_vec::<bool>().unwrap(),
        vec![false, false, false, true, true, true]
    );
}

#[test]
fn elementwise_special_values() {
    let zeros = t(&[0.0; 6]);
    // torch.maximum(x, torch.zeros(6)) = [1, nan, inf, 0, 0, 0]; torch.minimum -> [0, nan, 0, -inf, 0, -2]
    assert_close(
        &vals(&x().maximum(&zeros).unwrap()),
        &[1.0, NAN, INF, 0.0, 0.0, 0.0],
        0.0,
        0.0,
    );
    assert_close(
        &vals(&x().minimum(&zeros).unwrap()),
        &[0.0, NAN, 0.0, -INF, 0.0, -2.0],
        0.0,
        0.0,
    );
    // torch.pow(torch.tensor([0., 2., -8., 0.]), torch.tensor([0., -1., 1/3, -1.])) = [1, 0.5, nan, inf]
    assert_close(
        &vals(
            &t(&[0.0, 2.0, -8.0, 0.0])
                .pow(&t(&[0.0, -1.0, 1.0 / 3.0, -1.0]))
                .unwrap(),
        ),
        &[1.0, 0.5, NAN, INF],
        0.0,
        0.0,
    );
    // torch.sqrt([-1., 0., inf]) = [nan, 0, inf]; torch.log([0., -1.]) = [-inf, nan]; torch.exp([-inf, inf, 89.]) = [0, inf, inf]
    assert_close(
        &vals(&t(&[-1.0, 0.0, INF]).sqrt().unwrap()),
        &[NAN, 0.0, INF],
        0.0,
        0.0,
    );
    assert_close(
        &vals(&t(&[0.0, -1.0]).log().unwrap()),
        &[-INF, NAN],
        0.0,
        0.0,
    );
    assert_close(
        &vals(&t(&[-INF, INF, 89.0]).exp().unwrap()),
        &[0.0, INF, INF],
        0.0,
        0.0,
    );
    // torch.relu(x) = [1, nan, inf, 0, 0, 0]; torch.sigmoid(x) = [0.7311, nan, 1, 0, 0.5, 0.1192];
    // torch.tanh(x) = [0.7616, nan, 1, -1, 0, -0.9640]
    assert_close(
        &vals(&x().relu().unwrap()),
        &[1.0, NAN, INF, 0.0, 0.0, 0.0],
        0.0,
        0.0,
    );
    assert_close(
        &vals(&x().sigmoid().unwrap()),
        &[0.7310585975646973, NAN, 1.0, 0.0, 0.5, 0.11920291930437088],
        1e-6,
        0.0,
    );
    assert_close(
        &vals(&x().tanh().unwrap()),
        &[0.7615941762924194, NAN, 1.0, -1.0, 0.0, -0.9640275835990906],
        1e-6,
        0.0,
    );
    // x.clamp(-1, 1) = [1, nan, 1, -1, 0, -1]
    assert_close(
        &vals(&x().clamp(-1.0, 1.0).unwrap()),
        &[1.0, NAN, 1.0, -1.0, 0.0, -1.0],
        0.0,
        0.0,
    );
    // torch.tensor([1., -1., 0.]) / 0. = [inf, -inf, nan]
    assert_close(
        &vals(&t(&[1.0, -1.0, 0.0]).div_scalar(0.0).unwrap()),
        &[INF, -INF, NAN],
        0.0,
        0.0,
    );
    // F.softplus(torch.tensor([-inf, inf, 30., -30.])) = [0, inf, 30, 9.3576e-14]; F.elu(-inf) = -1
    assert_close(
        &vals(&t(&[-INF, INF, 30.0, -30.0]).softplus(1.0, 20.0).unwrap()),
        &[0.0, INF, 30.0, 9.357622912219837e-14],
        1e-6,
        0.0,
    );
    assert_close(&vals(&t(&[-INF]).elu(1.0).unwrap()), &[-1.0], 0.0, 0.0);
    // torch.log1p([-1., -2., 1e-10]) = [-inf, nan, 1e-10]; torch.rsqrt([0., -1., 4.]) = [inf, nan, 0.5];
    // torch.reciprocal([0., -0.]) = [inf, -inf]
    assert_close(
        &vals(&t(&[-1.0, -2.0, 1e-10]).log1p().unwrap()),
        &[-INF, NAN, 1.000000013351432e-10],
        1e-6,
        0.0,
    );
    assert_close(
        &vals(&t(&[0.0, -1.0, 4.0]).rsqrt().unwrap()),
        &[INF, NAN, 0.5],
        0.0,
        0.0,
    );
    assert_close(
        &vals(&t(&[0.0, -0.0]).recip().unwrap()),
        &[INF, -INF],
        0.0,
        0.0,
    );
}

#[test]
fn max_pool_reports_the_nan() {
    // F.max_pool2d(torch.tensor([[[[1., nan], [3., 4.]]]]), 2, return_indices=True) = (nan, 1)
    let x = t(&[1.0, NAN, 3.0, 4.0]).reshape([1, 1, 2, 2]).unwrap();
    let (v, i) = x.max_pool2d(Pool2dConfig::new(2)).unwrap();
    assert!(scalar(v).is_nan());
    assert_eq!(i.to_vec::<i64>().unwrap(), vec![1]);
}

/// The gradient of `f(x).sum()` with respect to `x`.
fn gradient(x: &Tensor, f: impl Fn(&Tensor) -> Tensor) -> Vec<f64> {
    let x = x.detach().requires_grad_();
    f(&x).sum_all().unwrap().backward().unwrap();
    vals(&x.grad().unwrap())
}

#[test]
fn gradients_at_singular_points_pick_pytorchs_branch() {
    // a = torch.tensor([0., 0, 0, 2, -1, 0], requires_grad=True)
    // b = torch.tensor([2., 0, -1, .5, .5, .5], requires_grad=True); a.pow(b).sum().backward()
    // a.grad = [0, 0, -inf, 0.35355, nan, inf]; b.grad = [0, 0, -inf, 0.98026, nan, 0]
    let (a, b) = (
        t(&[0.0, 0.0, 0.0, 2.0, -1.0, 0.0]).requires_grad_(),
        t(&[2.0, 0.0, -1.0, 0.5, 0.5, 0.5]).requires_grad_(),
    );
    a.pow(&b).unwrap().sum_all().unwrap().backward().unwrap();
    let root2 = 2f64.sqrt();
    let a_grad = [0.0, 0.0, -INF, 0.5 / root2, NAN, INF];
    let b_grad = [0.0, 0.0, -INF, root2 * 2f64.ln(), NAN, 0.0];
    assert_close(&vals(&a.grad().unwrap()), &a_grad, 1e-6, 0.0);
    assert_close(&vals(&b.grad().unwrap()), &b_grad, 1e-6, 0.0);
    // torch.tensor([0., 2, -1], requires_grad=True).pow(0.) -> grad [0, 0, 0] (not nan at 0)
    let x0 = t(&[0.0, 2.0, -1.0]);
    assert_eq!(gradient(&x0, |x| x.powf(0.0).unwrap()), [0.0; 3]);
    // F.elu(x) with x = [inf, -inf, 0, -1, 2] -> grad [1, 0, 1, e^-1, 1] (alpha e^x beyond 0)
    let x = t(&[INF, -INF, 0.0, -1.0, 2.0]);
    let elu = [1.0, 0.0, 1.0, (-1f64).exp(), 1.0];
    assert_close(&gradient(&x, |x| x.elu(1.0).unwrap()), &elu, 1e-6, 0.0);
}

/// maximum/minimum's gradients are PyTorch's selects (`where(a == b, g / 2, g)`, 0 where the
/// input lost): a NaN on either side gives both inputs the whole gradient, a tie half each, and
/// an infinite gradient reaches only the winner (a 0/1 product would give NaN there).
#[test]
fn maximum_and_minimum_gradients_select_as_pytorch() {
    // a = [nan, 1., 2., 3., -1.]; b = [0., nan, 2., 1., 4.] (requires_grad);
    // torch.maximum(a, b).backward(torch.tensor([1., 2., 4., inf, inf])):
    //   a.grad = [1, 2, 2, inf, 0], b.grad = [1, 2, 2, 0, inf]; torch.minimum swaps them.
    let g = f64s(&[1.0, 2.0, 4.0, INF, INF], &[5]);
    for (maximum, want_a, want_b) in [
        (true, [1.0, 2.0, 2.0, INF, 0.0], [1.0, 2.0, 2.0, 0.0, INF]),
        (false, [1.0, 2.0, 2.0, 0.0, INF], [1.0, 2.0, 2.0, INF, 0.0]),
    ] {
        let a = f64s(&[NAN, 1.0, 2.0, 3.0, -1.0], &[5]).requires_grad_();
        let b = f64s(&[0.0, NAN, 2.0, 1.0, 4.0], &[5]).requires_grad_();
        let y = if maximum {
            a.maximum(&b).unwrap()
        } else {
            a.minimum(&b).unwrap()
        };
        y.backward_with(Some(g.clone()), Default::default())
            .unwrap();
        assert_eq!(vals(&a.grad().unwrap()), want_a, "maximum {maximum}: a");
        assert_eq!(vals(&b.grad().unwrap()), want_b, "maximum {maximum}: b");
    }
}
