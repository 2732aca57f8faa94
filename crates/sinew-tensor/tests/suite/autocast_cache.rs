//! Autocast's weight cache: a parameter is cast once a scope and the cast reused until the
//! outermost scope ends; a write in place or an unrecorded cast is not reused where it would be
//! wrong; `cast_ahead` casts many at once with the gradients of casting each on use; and
//! `Tensor::to_dtype_many` gives `to_dtype`'s values and gradients.

use sinew_tensor::autocast::{cached_sources, cast_ahead, lower_precision};
use sinew_tensor::{DType, Device, Generator, Result, Tensor, autocast, no_grad};

fn param(shape: &[usize], seed: u64) -> Result<Tensor> {
    Ok(Generator::new(seed)
        .randn(shape, DType::F32, &Device::cpu())?
        .requires_grad_())
}

#[test]
fn a_parameter_is_cast_once_a_scope() -> Result<()> {
    let w = param(&[3, 4], 1)?;
    let x = Tensor::ones([3], DType::F32, &Device::cpu())?;
    {
        let _amp = autocast(DType::BF16)?;
        let (a, b) = (lower_precision(&w)?, lower_precision(&w)?);
        assert!(a.same_storage(&b) && a.dtype() == DType::BF16);
        {
            let _inner = autocast(DType::F16)?;
            let c = lower_precision(&w)?;
            assert_eq!(c.dtype(), DType::F16);
        }
        // The inner scope ended, not the outermost: both casts stay, in order.
        let sources = cached_sources();
        assert_eq!(sources.len(), 2);
        assert!(sources.iter().all(|s| s.same_storage(&w)));
        // Only parameters are cached: not a tensor without a gradient, nor a view of w.
        let (p, q) = (lower_precision(&x)?, lower_precision(&x)?);
        assert!(!p.same_storage(&q));
        let t = w.t()?;
        assert!(!lower_precision(&t)?.same_storage(&lower_precision(&t)?));
        assert_eq!(cached_sources().len(), 2);
    }
    assert!(cached_sources().is_empty());
    let _amp = autocast(DType::BF16)?;
    let fresh = lower_precision(&w)?;
    assert_eq!(cached_sources().len(), 1);
    assert!(fresh.requires_grad());
    Ok(())
}

#[test]
fn stale_or_unrecorded_casts_are_not_reused() -> Result<()> {
    let w = param(&[4], 2)?;
    let _amp = autocast(DType::BF16)?;
    let before = lower_precision(&w)?;
    {
        let _g = no_grad();
        w.mul_scalar_(2.0)?;
    }
    let after = lower_precision(&w)?;
    assert!(
        !after.same_storage(&before),
        "a write in place makes the cast stale"
    );
    let want = w.to_dtype(DType::BF16)?.to_vec_f64()?;
    assert_eq!(after.to_vec_f64()?, want);
    // A cast made under no_grad is not reused where gradients are recorded.
    let v = param(&[4], 3)?;
    let untracked = {
        let _g = no_grad();
        lower_precision(&v)?
    };
    assert!(untracked.op_name().is_none());
    let tracked = lower_precision(&v)?;
    assert!(!tracked.same_storage(&untracked) && tracked.op_name().is_some());
    // The recorded one serves no_grad too.
    let _g = no_grad();
    assert!(lower_precision(&v)?.same_storage(&tracked));
    Ok(())
}

/// Gradients of `sum((x @ w1) @ w2 + (x @ w1))` under bf16 autocast, with the weights cast
/// ahead or on use.
fn grads(ahead: bool) -> Result<(Vec<f64>, Vec<f64>, usize)> {
    let (w1, w2) = (param(&[6, 5], 4)?, param(&[5, 3], 5)?);
    let x = Generator::new(6).randn([2, 6], DType::F32, &Device::cpu())?;
    let (loss, cached) = {
        let _amp = autocast(DType::BF16)?;
        if ahead {
            let f64_weight = param(&[2], 7)?.to_dtype(DType::F64)?;
            cast_ahead(&[&w1, &w2, &x, &f64_weight, &w1])?;
            assert_eq!(
                cached_sources().len(),
                2,
                "only w1 and w2 are cast ahead, once each"
            );
        }
        let h = x.matmul(&w1)?;
        let y = h.matmul(&w2)?;
        let loss = y.sum_all()?.add(&h.sum_all()?)?;
        (loss, cached_sources().len())
    };
    loss.backward()?;
    let g = |w: &Tensor| w.grad().expect("a gradient").to_vec_f64();
    Ok((g(&w1)?, g(&w2)?, cached))
}

#[test]
fn casting_ahead_gives_the_same_gradients() -> Result<()> {
    let (a1, a2, n) = grads(true)?;
    let (b1, b2, m) = grads(false)?;
    assert_eq!((n, m), (2, 2));
    assert_eq!((a1, a2), (b1, b2));
    // Outside a scope it does nothing.
    let w = param(&[2], 8)?;
    cast_ahead(&[&w])?;
    assert!(cached_sources().is_empty());
    Ok(())
}

#[test]
fn to_dtype_many_is_to_dtype_of_each() -> Result<()> {
    let a = param(&[3, 2], 9)?;
    let b = param(&[4], 10)?.to_dtype(DType::F64)?;
    let c = Tensor::ones([2], DType::BF16, &Device::cpu())?;
    let t = param(&[2, 3], 11)?;
    let tv = t.t()?;
    let many = Tensor::to_dtype_many(&[&a, &b, &c, &tv], DType::F16)?;
    for (got, src) in many.iter().zip([&a, &b, &c, &tv]) {
        assert_eq!(got.dtype(), DType::F16);
        assert_eq!(got.dims(), src.dims());
        assert_eq!(got.to_vec_f64()?, src.to_dtype(DType::F16)?.to_vec_f64()?);
    }
    let loss = many[0].sum_all()?.add(&many[3].sum_all()?)?;
    loss.backward()?;
    assert_eq!(a.grad().expect("a's gradient").dtype(), DType::F32);
    assert_eq!(t.grad().expect("t's gradient").to_vec_f64()?, vec![1.0; 6]);
    let ints = Tensor::from_vec(vec![1i64], [1])?;
    assert!(Tensor::to_dtype_many(&[&a, &ints], DType::I64).is_err());
    Ok(())
}
