//! The piecewise activations at NaN and the infinities, with gradients that are themselves inf
//! or NaN (PyTorch selects, so a zero slope gives 0, never `0 * inf`), and the activations'
//! bad arguments. Expected values from PyTorch 2.15 (the snippet above each table).

use sinew_nn::functional as F;
use sinew_nn::{Module, PReLU};
use sinew_tensor::{DType, Result, Tensor};

/// `f(x)` and the input gradients for two upstream gradients, at `x = [nan, inf, -inf]`.
fn run(f: impl Fn(&Tensor) -> Result<Tensor>, upstream: [f32; 3]) -> (Vec<f32>, Vec<f32>) {
    let x = Tensor::from_vec(vec![f32::NAN, f32::INFINITY, f32::NEG_INFINITY], [3])
        .unwrap()
        .requires_grad_();
    let y = f(&x).unwrap();
    let g = Tensor::from_vec(upstream.to_vec(), [3]).unwrap();
    y.backward_with(Some(g), Default::default()).unwrap();
    (y.to_vec().unwrap(), x.grad().unwrap().to_vec().unwrap())
}

/// Equal as floats, NaN equal to NaN.
fn same(got: &[f32], want: &[f32]) -> bool {
    got.len() == want.len()
        && got
            .iter()
            .zip(want)
            .all(|(g, w)| g == w || (g.is_nan() && w.is_nan()))
}

#[test]
fn piecewise_gradients_select_at_nan_and_infinities() {
    let (nan, inf) = (f32::NAN, f32::INFINITY);
    type Case = (
        &'static str,
        fn(&Tensor) -> Result<Tensor>,
        [f32; 3],
        [f32; 3],
        [f32; 3],
    );
    // x = torch.tensor([nan, inf, -inf], requires_grad=True); y = f(x)
    // y.backward(torch.ones(3)) and y.backward(torch.tensor([inf, nan, inf])):
    // (name, f, y, first gradient, second gradient)
    let cases: [Case; 7] = [
        (
            "hardtanh",
            |x| F::hardtanh(x, -1.0, 1.0),
            [nan, 1.0, -1.0],
            [1.0, 0.0, 0.0],
            [inf, 0.0, 0.0],
        ),
        (
            "relu6",
            F::relu6,
            [nan, 6.0, 0.0],
            [1.0, 0.0, 0.0],
            [inf, 0.0, 0.0],
        ),
        (
            "hardsigmoid",
            F::hardsigmoid,
            [nan, 1.0, 0.0],
            [0.0, 0.0, 0.0],
            [0.0, 0.0, 0.0],
        ),
        (
            "hardswish",
            F::hardswish,
            [nan, inf, nan],
            [1.0, 1.0, 0.0],
            [inf, nan, 0.0],
        ),
        (
            "softshrink",
            |x| F::softshrink(x, 0.5),
            [nan, inf, -inf],
            [1.0; 3],
            [inf, nan, inf],
        ),
        (
            "hardshrink",
            |x| F::hardshrink(x, 0.5),
            [nan, inf, -inf],
            [1.0; 3],
            [inf, nan, inf],
        ),
        (
            "threshold",
            |x| F::threshold(x, 0.1, 20.0),
            [nan, inf, 20.0],
            [1.0, 1.0, 0.0],
            [inf, nan, 0.0],
        ),
    ];
    for (name, f, y, g1, g2) in cases {
        let (got_y, got_g1) = run(f, [1.0; 3]);
        let (_, got_g2) = run(f, [inf, nan, inf]);
        assert!(same(&got_y, &y), "{name}: y {got_y:?}, PyTorch {y:?}");
        assert!(
            same(&got_g1, &g1),
            "{name}: grad {got_g1:?}, PyTorch {g1:?}"
        );
        assert!(
            same(&got_g2, &g2),
            "{name}: inf/NaN grad {got_g2:?}, PyTorch {g2:?}"
        );
    }
}

#[test]
fn prelu_slopes_nan_and_zero_as_pytorch() -> Result<()> {
    // x = [nan, inf, -inf, 0]; y = F.prelu(x, w=[0.5]); y.backward(torch.ones(4)):
    // y = [nan, inf, -inf, 0], x.grad = [0.5, 1, 0.5, 0.5], w.grad = [nan]
    let x = Tensor::from_vec(vec![f32::NAN, f32::INFINITY, f32::NEG_INFINITY, 0.0], [4])?
        .requires_grad_();
    let w = Tensor::from_vec(vec![0.5f32], [1])?.requires_grad_();
    let y = F::prelu(&x, &w)?;
    assert!(same(
        &y.to_vec()?,
        &[f32::NAN, f32::INFINITY, f32::NEG_INFINITY, 0.0]
    ));
    y.sum_all()?.backward()?;
    assert_eq!(x.grad().unwrap().to_vec::<f32>()?, vec![0.5, 1.0, 0.5, 0.5]);
    assert!(w.grad().unwrap().to_vec::<f32>()?[0].is_nan());
    // F.prelu(torch.tensor(-2.), torch.tensor([0.1])) = tensor(-0.2): a scalar stays a scalar.
    let s = F::prelu(&Tensor::from_vec(vec![-2.0f32], ())?, &w.detach())?;
    assert_eq!(s.dims(), &[] as &[usize]);
    assert_eq!(s.to_vec::<f32>()?, vec![-1.0]);
    Ok(())
}

#[test]
fn bad_activation_arguments_are_errors() -> Result<()> {
    let x = Tensor::ones([2, 3], DType::F32, &sinew_tensor::Device::cpu())?;
    // PyTorch: "Mismatch of parameter numbers and input channel size. Found parameter numbers
    // = 2 and channel size = 3."; an input below rank 2 has one channel.
    let two = Tensor::from_vec(vec![0.1f32, 0.2], [2])?;
    assert!(F::prelu(&x, &two).is_err());
    assert!(F::prelu(&x.flatten_all()?, &two).is_err());
    assert!(F::prelu(&x, &Tensor::from_vec(vec![0.1f32; 3], [3])?).is_ok());
    assert!(F::prelu(&x, &Tensor::zeros([0], DType::F32, x.device())?).is_err());
    assert!(PReLU::new(0, 0.25).is_err());
    assert!(PReLU::new(4, 0.25)?.forward(&x).is_err());
    // GLU halves an even dim ("Halving dimension must be even, but dimension 1 is size 3").
    assert!(F::glu(&x, -1).is_err());
    assert_eq!(F::glu(&x, 0)?.dims(), &[1, 3]);
    assert!(F::glu(&x, 2).is_err());
    assert!(F::hardtanh(&x, 1.0, -1.0).is_err());
    assert!(F::softshrink(&x, -0.5).is_err());
    assert!(F::hardshrink(&x, -0.5).is_err());
    assert!(F::celu(&x, 0.0).is_err());
    let ints = Tensor::from_vec(vec![1i64, -2], [2])?;
    assert!(F::hardswish(&ints).is_err());
    assert!(F::threshold(&ints, 0.0, 1.0).is_err());
    Ok(())
}
