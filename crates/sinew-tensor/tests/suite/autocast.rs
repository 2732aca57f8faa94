//! Autocast: which dtype each op runs in, values against f32 within half precision, gradients
//! reaching f32 parameters in f32, promotion of mixed float dtypes, and backward with autocast
//! off.

use sinew_tensor::{Conv2dConfig, DType, Device, Generator, Result, Tensor, autocast};

fn randn(shape: &[usize], seed: u64) -> Result<Tensor> {
    let mut g = Generator::new(seed);
    g.randn(shape, DType::F32, &Device::cpu())
}

fn max_rel_diff(a: &Tensor, b: &Tensor) -> Result<f64> {
    let as_f64 = |t: &Tensor| t.to_dtype(DType::F64)?.to_vec::<f64>();
    let (a, b) = (as_f64(a)?, as_f64(b)?);
    let scale = b.iter().fold(1e-3f64, |m, x| m.max(x.abs()));
    Ok(a.iter()
        .zip(&b)
        .map(|(x, y)| (x - y).abs() / scale)
        .fold(0.0, f64::max))
}

#[test]
fn each_op_runs_in_its_policys_dtype() -> Result<()> {
    let x = randn(&[4, 8], 1)?;
    let w = randn(&[8, 5], 2)?;
    let img = randn(&[2, 3, 6, 6], 3)?;
    let k = randn(&[4, 3, 3, 3], 4)?;
    for half in [DType::BF16, DType::F16] {
        let _amp = autocast(half)?;
        let y = x.matmul(&w)?;
        assert_eq!(y.dtype(), half);
        assert_eq!(img.conv2d(&k, None, Conv2dConfig::default())?.dtype(), half);
        assert_eq!(y.softmax(-1)?.dtype(), DType::F32);
        assert_eq!(y.log_softmax(-1)?.dtype(), DType::F32);
        assert_eq!(y.sum_all()?.dtype(), DType::F32);
        assert_eq!(y.mean(&[0], false)?.dtype(), DType::F32);
        assert_eq!(y.exp()?.dtype(), DType::F32);
        assert_eq!(y.square()?.dtype(), DType::F32, "PyTorch's pow(x, 2)");
        assert_eq!(
            y.rdiv_scalar(1.0)?.dtype(),
            DType::F32,
            "PyTorch's __rdiv__"
        );
        assert_eq!(
            y.relu()?.dtype(),
            half,
            "cheap elementwise ops stay in half"
        );
        assert_eq!(y.add(&x.sum(&[1], true)?)?.dtype(), DType::F32, "promotion");
    }
    // Outside the scope nothing is cast.
    assert_eq!(x.matmul(&w)?.dtype(), DType::F32);
    Ok(())
}

#[test]
fn values_match_f32_within_half_precision() -> Result<()> {
    let x = randn(&[16, 32], 5)?;
    let w = randn(&[32, 8], 6)?;
    let exact = x.matmul(&w)?;
    for (half, tol) in [(DType::BF16, 1e-2), (DType::F16, 2e-3)] {
        let got = {
            let _amp = autocast(half)?;
            x.matmul(&w)?
        };
        let diff = max_rel_diff(&got, &exact)?;
        assert!(diff < tol, "{half:?}: {diff}");
        assert!(diff > 0.0, "{half:?} really rounded");
    }
    Ok(())
}

#[test]
fn gradients_reach_f32_parameters_in_f32() -> Result<()> {
    let x = randn(&[6, 4], 7)?;
    let w = randn(&[4, 3], 8)?.requires_grad_();
    let b = randn(&[3], 9)?.requires_grad_();
    let loss = {
        let _amp = autocast(DType::BF16)?;
        // Backward called inside the scope still works in the forward's dtypes.
        let loss = x.matmul(&w)?.add(&b)?.log_softmax(-1)?.mean_all()?;
        loss.backward()?;
        loss
    };
    assert_eq!(loss.dtype(), DType::F32);
    let (gw, gb) = (w.grad().unwrap(), b.grad().unwrap());
    assert_eq!((gw.dtype(), gb.dtype()), (DType::F32, DType::F32));
    // The same graph in f32 gives gradients within bf16's precision.
    let (w32, b32) = (w.detach().requires_grad_(), b.detach().requires_grad_());
    x.matmul(&w32)?
        .add(&b32)?
        .log_softmax(-1)?
        .mean_all()?
        .backward()?;
    assert!(max_rel_diff(&gw, &w32.grad().unwrap())? < 2e-2);
    assert!(max_rel_diff(&gb, &b32.grad().unwrap())? < 2e-2);
    Ok(())
}

#[test]
fn mixed_float_dtypes_promote_with_gradients_in_each_dtype() -> Result<()> {
    let a = Tensor::from_vec(vec![1.0f32, 2.0], [2])?.requires_grad_();
    let h = Tensor::from_vec(vec![1.5f32, -1.0], [2])?
        .to_dtype(DType::F16)?
        .detach()
        .requires_grad_();
    let y = a.mul(&h)?;
    assert_eq!(y.dtype(), DType::F32);
    assert_eq!(y.to_vec::<f32>()?, vec![1.5, -2.0]);
    y.sum_all()?.backward()?;
    assert_eq!(a.grad().unwrap().to_vec::<f32>()?, vec![1.5, -1.0]);
    let gh = h.grad().unwrap();
    assert_eq!(gh.dtype(), DType::F16);
    assert_eq!(gh.to_dtype(DType::F32)?.to_vec::<f32>()?, vec![1.0, 2.0]);
    // f16 with bf16 meets in f32; integers still do not mix with floats.
    let bf = Tensor::ones([2], DType::BF16, &Device::cpu())?;
    assert_eq!(h.add(&bf)?.dtype(), DType::F32);
    let ints = Tensor::ones([2], DType::I64, &Device::cpu())?;
    assert!(a.add(&ints).is_err());
    Ok(())
}

#[test]
fn f64_is_never_cast() -> Result<()> {
    let x = randn(&[3, 3], 10)?.to_dtype(DType::F64)?;
    let _amp = autocast(DType::F16)?;
    assert_eq!(x.matmul(&x)?.dtype(), DType::F64);
    Ok(())
}
