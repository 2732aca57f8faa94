//! Modules converted to f16 outside autocast (PyTorch's `model.half()`) on inputs whose
//! statistics overflow f16 (squares of values around 300): PyTorch computes them in float and
//! rounds the outputs once, and so must these. Expected values from PyTorch 2.15 (CPU), made by:
//!
//! ```python
//! v = [300. + i if i % 2 == 0 else -300. - i for i in range(16)]
//! x = torch.tensor(v).reshape(2, 8).half()
//! nn.LayerNorm(8).half()(x)[0, :4]; nn.GroupNorm(2, 4).half()(x.reshape(1, 4, 2, 2)).flatten()[:4]
//! bn = nn.BatchNorm2d(4).half(); bn(x.reshape(2, 4, 2, 1)); bn.running_var
//! F.cosine_similarity(x, x * -0.5, 1, 1e-8)
//! ```

use sinew_nn::loss::cosine_similarity;
use sinew_nn::*;
use sinew_tensor::{DType, Result, Tensor};

fn input() -> Result<Tensor> {
    let v: Vec<f32> = (0..16)
        .map(|i| {
            let i = i as f32;
            if i % 2.0 == 0.0 {
                300.0 + i
            } else {
                -300.0 - i
            }
        })
        .collect();
    Tensor::from_vec(v, [2, 8])?.to_dtype(DType::F16)
}

fn first_four(t: &Tensor) -> Result<Vec<f64>> {
    assert_eq!(t.dtype(), DType::F16);
    Ok(t.flatten_all()?.to_vec_f64()?[..4].to_vec())
}

const NORMALISED: [f64; 4] = [0.990234375, -0.990234375, 0.99658203125, -0.99658203125];

#[test]
fn layer_and_group_norm_of_f16_normalise_in_f32() -> Result<()> {
    let x = input()?;
    let ln = LayerNorm::new(&[8])?;
    ln.to_dtype(DType::F16)?;
    assert_eq!(first_four(&ln.forward(&x)?)?, NORMALISED);
    let gn = GroupNorm::new(2, 4)?;
    gn.to_dtype(DType::F16)?;
    assert_eq!(
        first_four(&gn.forward(&x.reshape([1, 4, 2, 2])?)?)?,
        NORMALISED
    );
    Ok(())
}

#[test]
fn batch_norm_updates_f16_running_statistics_in_f32() -> Result<()> {
    let bn = BatchNorm2d::new(4)?;
    bn.to_dtype(DType::F16)?;
    let y = bn.forward(&input()?.reshape([2, 4, 2, 1])?)?;
    let half = [0.98681640625, -0.98681640625];
    assert_eq!(first_four(&y)?, [half, half].concat());
    // The unbiased batch variances (about 1.2e5) are beyond f16's range; the running ones are
    // 0.9 + 0.1 * var.
    let running_var = bn.running_var.as_ref().unwrap().value();
    assert_eq!(
        first_four(&running_var)?,
        [12368.0, 12528.0, 12696.0, 12856.0]
    );
    Ok(())
}

#[test]
fn cosine_similarity_of_f16_sums_its_squares_in_f32() -> Result<()> {
    let x = input()?;
    let cos = cosine_similarity(&x, &x.mul_scalar(-0.5)?, 1, 1e-8)?;
    assert_eq!(cos.dtype(), DType::F16);
    assert_eq!(cos.to_vec_f64()?, [-1.0, -1.0]);
    Ok(())
}
