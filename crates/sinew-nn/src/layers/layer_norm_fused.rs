//! Layer normalisation through batch norm's per-channel kernels: `x` viewed as `[1, M, N]`
//! (`M` rows of the `N` values normalised together) makes each row a channel, so the
//! statistics take one read of `x`, the normalisation one pass, and the backward one read of
//! `dy` and `x` and one pass, where the op-by-op form makes about six full-size passes each
//! way. The elementwise affine stays an op on top. Used for f32/f64 inputs on backends with
//! those kernels; `None` sends the caller to the op-by-op form.

use sinew_tensor::{DType, Result, Tensor, no_grad};

use super::batch_norm_fused::Stats;
use super::norm_node::{NormDims, ReluOutput, Tail, record_normalisation, sum_over};

/// `x * w + b` for the parameters present.
fn affine(x: Tensor, w: Option<&Tensor>, b: Option<&Tensor>) -> Result<Tensor> {
    let x = match w {
        Some(w) => x.mul(w)?,
        None => x,
    };
    match b {
        Some(b) => x.add(b),
        None => Ok(x),
    }
}

/// Layer norm of `x` over its last `k` dims (already checked against the normalized shape),
/// with the optional elementwise affine; `Ok(None)` when the fused kernels do not apply.
pub(crate) fn layer_norm_rows(
    x: &Tensor,
    k: usize,
    weight: Option<&Tensor>,
    bias: Option<&Tensor>,
    eps: f64,
) -> Result<Option<Tensor>> {
    let same_dtype = [weight, bias]
        .iter()
        .flatten()
        .all(|p| p.dtype() == x.dtype());
    if !matches!(x.dtype(), DType::F32 | DType::F64) || !same_dtype {
        return Ok(None);
    }
    let rank = x.rank();
    let (lead, norm) = x.dims().split_at(rank - k);
    let (m, n) = (
        lead.iter().product::<usize>(),
        norm.iter().product::<usize>(),
    );
    if m == 0 || n == 0 {
        return Ok(None);
    }
    let guard = no_grad();
    let xr = x.detach().reshape([1, m, n])?;
    let Some(stats) = Stats::of(&xr, eps, (None, None), None)? else {
        return Ok(None);
    };
    let xhat = stats.normalise(&xr)?.reshape(x.shape().clone())?;
    let (w, b) = (weight.map(Tensor::detach), bias.map(Tensor::detach));
    let y = affine(xhat, w.as_ref(), b.as_ref())?;
    drop(guard);
    let (has_weight, has_bias) = (weight.is_some(), bias.is_some());
    let lead_dims: Vec<isize> = (0..(rank - k) as isize).collect();
    let param_dims = lead_dims.clone();
    let dims = move |x: &Tensor| NormDims {
        stat: (-(k as isize)..0).collect(),
        param: param_dims.clone(),
        param_view: x.dims()[rank - k..].to_vec(),
    };
    // No ReLU follows (`Tail::None` below): the fourth argument is always `None`.
    let fused = move |x: &Tensor, w: Option<&Tensor>, dy: &Tensor, _: Option<ReluOutput<'_>>| {
        let dxhat = match w {
            Some(w) => dy.mul(w)?,
            None => dy.clone(),
        };
        let xr = x.reshape([1, m, n])?;
        let dx = stats
            .input_gradient((&dxhat.reshape([1, m, n])?, None), &xr, None, None)?
            .dx;
        let mut grads = vec![Some(dx.reshape(x.shape().clone())?)];
        if has_weight {
            let xhat = stats.normalise(&xr)?.reshape(x.shape().clone())?;
            grads.push(Some(sum_over(&dy.mul(&xhat)?, &lead_dims)?));
        }
        if has_bias {
            grads.push(Some(sum_over(dy, &lead_dims)?));
        }
        Ok(grads)
    };
    let inputs = (x, weight, bias);
    Ok(Some(record_normalisation(
        y,
        "layer_norm",
        inputs,
        (eps, Tail::None),
        dims,
        fused,
    )))
}

#[cfg(test)]
mod tests {
    use sinew_tensor::{DType, Device, Generator, Result, Tensor};

    use super::layer_norm_rows;
    use crate::fused_testing::Orders;
    use crate::layers::group_norm::layer_norm_op_by_op;

    /// Output, first gradients of every input and (through create_graph) second gradients of
    /// `x` agree with the op-by-op form: leading dims or none, one or two normalised dims,
    /// with and without the affine.
    #[test]
    fn first_and_second_order_gradients_match_the_op_by_op_form() -> Result<()> {
        let mut g = Generator::new(4);
        let cpu = Device::cpu();
        for (shape, k) in [
            (vec![4usize, 5], 1usize),
            (vec![2, 3, 4], 2),
            (vec![3, 4], 2),
        ] {
            let norm = shape[shape.len() - k..].to_vec();
            let x0 = g
                .randn(shape.clone(), DType::F64, &cpu)?
                .mul_scalar(2.0)?
                .add_scalar(0.5)?;
            let w0 = g.randn(norm.clone(), DType::F64, &cpu)?;
            let b0 = g.randn(norm.clone(), DType::F64, &cpu)?;
            let probe = g.randn(shape.clone(), DType::F64, &cpu)?;
            for affine in [true, false] {
                let run = |fused: bool| -> Result<Orders> {
                    let (x, w, b) = (
                        x0.clone().requires_grad_(),
                        w0.clone().requires_grad_(),
                        b0.clone().requires_grad_(),
                    );
                    let (wo, bo) = if affine {
                        (Some(&w), Some(&b))
                    } else {
                        (None, None)
                    };
                    let forward = || -> Result<Tensor> {
                        if fused {
                            Ok(layer_norm_rows(&x, k, wo, bo, 1e-5)?
                                .expect("f64 on the CPU has per-channel kernels"))
                        } else {
                            layer_norm_op_by_op(&x, k, wo, bo, 1e-5)
                        }
                    };
                    let inputs: Vec<&Tensor> = if affine { vec![&x, &w, &b] } else { vec![&x] };
                    Orders::of(forward, Some(&probe), &inputs)
                };
                let what = format!("{shape:?} k={k} affine={affine}");
                run(true)?.assert_close(&run(false)?, 1e-9, &what);
            }
        }
        Ok(())
    }
}
