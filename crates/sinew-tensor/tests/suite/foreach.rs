//! Gradient clipping's multi-tensor ops on the CPU: `Tensor::pow_sum_many` against the sums
//! of `|x|^p` written out over the host's f64 values (mixed dtypes, a transposed view, an
//! empty tensor, a run long enough to be folded in parallel chunks, NaN), and `Tensor::mul_many_` against `mul_` one tensor at a time (views
//! sharing a storage, a transposed view, a factor of another dtype); bad arguments. Weight
//! averaging's `Tensor::average_many_` against its values written out.

use sinew_tensor::{DType, Device, Generator, Result, Tensor, no_grad};

fn randn(seed: u64, dims: &[usize], dtype: DType) -> Result<Tensor> {
    Generator::new(seed)
        .randn(dims.to_vec(), DType::F64, &Device::cpu())?
        .to_dtype(dtype)
}

/// The tensors the norms are taken over: f32, f64 and f16, contiguous, transposed, empty.
fn mixed() -> Result<Vec<Tensor>> {
    Ok(vec![
        randn(1, &[5, 3], DType::F32)?,
        randn(2, &[4, 6], DType::F64)?.t()?,
        randn(3, &[7], DType::F16)?,
        Tensor::zeros([0, 3], DType::F32, &Device::cpu())?,
        randn(4, &[], DType::F32)?,
    ])
}

/// `Σ |x|^p` (max `|x|` for p = ∞) over the tensors' values, written out in f64.
fn by_hand(tensors: &[Tensor], p: f64) -> Result<f64> {
    let mut acc = 0.0f64;
    for t in tensors {
        for x in t.to_vec_f64()? {
            let a = x.abs();
            acc = if p == f64::INFINITY {
                acc.max(a)
            } else {
                acc + a.powf(p)
            };
        }
    }
    Ok(acc)
}

#[test]
fn pow_sum_many_sums_every_element_in_f64() -> Result<()> {
    let tensors = mixed()?;
    let refs: Vec<&Tensor> = tensors.iter().collect();
    for p in [1.0, 2.0, 3.0, 0.5, f64::INFINITY] {
        let got = Tensor::pow_sum_many(&refs, p)?;
        assert_eq!((got.dtype(), got.dims()), (DType::F64, &[][..]));
        let (got, want) = (got.item()?, by_hand(&tensors, p)?);
        assert!((got - want).abs() <= 1e-13 * want, "p {p}: {got} vs {want}");
        assert!(want > 1.0, "p {p}: a sum of this size is no test");
    }
    // A long run (folded in chunks over threads) against the same values seen through a
    // transposed view (folded by the tensor ops).
    let big = randn(12, &[400, 250], DType::F32)?;
    let strided = big.t()?.contiguous()?.t()?;
    assert!(!strided.is_contiguous());
    for p in [2.0, 3.0, f64::INFINITY] {
        let a = Tensor::pow_sum_many(&[&big], p)?.item()?;
        let b = Tensor::pow_sum_many(&[&strided], p)?.item()?;
        assert!(
            (a - b).abs() <= 1e-12 * b,
            "p {p}: kernel {a}, tensor ops {b}"
        );
        let want = by_hand(std::slice::from_ref(&big), p)?;
        assert!((a - want).abs() <= 1e-12 * want, "p {p}: {a} vs {want}");
    }
    // No tensors: 0 on the CPU; NaN anywhere wins, also over an infinity for the max.
    let none = Tensor::pow_sum_many(&[], 2.0)?;
    assert_eq!((none.item()?, none.device().is_cpu()), (0.0, true));
    let special = Tensor::from_vec(vec![f32::INFINITY, f32::NAN, 1.0], [3])?;
    for p in [2.0, f64::INFINITY] {
        assert!(
            Tensor::pow_sum_many(&[refs[0], &special], p)?
                .item()?
                .is_nan()
        );
    }
    let inf = Tensor::from_vec(vec![f32::INFINITY, 1.0], [2])?;
    assert_eq!(Tensor::pow_sum_many(&[&inf], 2.0)?.item()?, f64::INFINITY);
    Ok(())
}

#[test]
fn pow_sum_many_rejects_bad_arguments() -> Result<()> {
    let x = randn(5, &[3], DType::F32)?;
    for p in [0.0, -1.0, f64::NAN, f64::NEG_INFINITY] {
        let err = Tensor::pow_sum_many(&[&x], p).unwrap_err().to_string();
        assert!(err.contains("p must be positive"), "p {p}: {err}");
    }
    let ints = Tensor::from_vec(vec![1i64, 2], [2])?;
    assert!(Tensor::pow_sum_many(&[&x, &ints], 2.0).is_err());
    // A tensor that requires grad is read, not recorded.
    let w = x.detach().requires_grad_();
    assert!(!Tensor::pow_sum_many(&[&w], 2.0)?.requires_grad());
    Ok(())
}

#[test]
fn mul_many_scales_as_mul_does() -> Result<()> {
    for factor in [
        Tensor::full((), 0.3, DType::F64, &Device::cpu())?,
        Tensor::full([1], 0.7, DType::F16, &Device::cpu())?,
    ] {
        let base = randn(6, &[2, 5], DType::F32)?;
        let rows = [0, 1].map(|k| base.narrow(0, k, 1).unwrap());
        let tensors = [
            randn(7, &[4, 3], DType::F32)?,
            rows[0].clone(),
            rows[1].clone(),
            randn(8, &[3, 4], DType::F64)?.t()?,
            randn(9, &[6], DType::BF16)?,
        ];
        let want: Vec<Vec<f64>> = tensors
            .iter()
            .map(|t| {
                let f = factor.to_dtype(t.dtype())?.reshape(())?;
                t.mul(&f)?.to_vec_f64()
            })
            .collect::<Result<_>>()?;
        let refs: Vec<&Tensor> = tensors.iter().collect();
        Tensor::mul_many_(&refs, &factor)?;
        for (i, (t, w)) in tensors.iter().zip(&want).enumerate() {
            assert_eq!(&t.to_vec_f64()?, w, "tensor {i}, factor {}", factor.dtype());
        }
        assert_ne!(want[0], randn(7, &[4, 3], DType::F32)?.to_vec_f64()?);
    }
    Ok(())
}

#[test]
fn mul_many_rejects_bad_arguments() -> Result<()> {
    let x = randn(10, &[3], DType::F32)?;
    let two = Tensor::ones([2], DType::F32, &Device::cpu())?;
    assert!(Tensor::mul_many_(&[&x], &two).is_err());
    let int_factor = Tensor::from_vec(vec![2i64], [1])?;
    assert!(Tensor::mul_many_(&[&x], &int_factor).is_err());
    let ints = Tensor::from_vec(vec![1i64, 2], [2])?;
    let half = Tensor::full((), 0.5, DType::F32, &Device::cpu())?;
    assert!(Tensor::mul_many_(&[&ints], &half).is_err());
    // A leaf that requires grad: mul_'s error outside no_grad, scaled under it.
    let w = x.detach().requires_grad_();
    assert!(Tensor::mul_many_(&[&w], &half).is_err());
    {
        let _guard = no_grad();
        Tensor::mul_many_(&[&w], &half)?;
    }
    let want: Vec<f64> = randn(10, &[3], DType::F32)?
        .to_vec_f64()?
        .iter()
        .map(|v| v * 0.5)
        .collect();
    assert_eq!(w.to_vec_f64()?, want);
    Ok(())
}

/// `Tensor::average_many_` on the CPU is each pair's tensor ops, with their values written out
/// (SWA's running mean after 3 values, EMA's lerp) and broadcasting; bad arguments are errors
/// that leave the averages untouched.
#[test]
fn average_many_is_the_tensor_ops_pair_by_pair() -> Result<()> {
    use sinew_tensor::AverageStep;
    let avg = Tensor::from_slice(&[1.0f32, 2.0, 4.0], [3])?;
    let x = Tensor::from_slice(&[5.0f32, 2.0, 0.0], [3])?;
    let row = Tensor::from_slice(&[1.0f64, 3.0], [1, 2])?;
    let grid = Tensor::from_slice(&[0.0f64, 0.0, 2.0, 2.0], [2, 2])?;
    Tensor::average_many_(&[&avg, &grid], &[&x, &row], AverageStep::Mean { count: 3 })?;
    // avg + (x - avg) / 4, the row broadcast over the grid's rows.
    assert_eq!(avg.to_vec::<f32>()?, [2.0, 2.0, 3.0]);
    assert_eq!(grid.to_vec::<f64>()?, [0.25, 0.75, 1.75, 2.25]);
    Tensor::average_many_(&[&avg], &[&x], AverageStep::Lerp { weight: 0.25 })?;
    assert_eq!(avg.to_vec::<f32>()?, [2.75, 2.0, 2.25]);

    let wide = Tensor::from_slice(&[1.0f64, 2.0, 4.0], [3])?;
    let err = Tensor::average_many_(&[&avg], &[&wide], AverageStep::Mean { count: 1 });
    assert!(err.unwrap_err().to_string().contains("average_many_"));
    let err = Tensor::average_many_(&[&avg], &[&x], AverageStep::Mean { count: 0 });
    assert!(err.unwrap_err().to_string().contains("a mean of 0 values"));
    let err = Tensor::average_many_(&[&avg, &avg], &[&x], AverageStep::Mean { count: 1 });
    assert!(
        err.unwrap_err()
            .to_string()
            .contains("2 averages and 1 values")
    );
    let ints = Tensor::from_slice(&[1i64, 2, 3], [3])?;
    assert!(Tensor::average_many_(&[&ints], &[&ints], AverageStep::Mean { count: 1 }).is_err());
    assert_eq!(
        avg.to_vec::<f32>()?,
        [2.75, 2.0, 2.25],
        "errors write nothing"
    );
    Ok(())
}
