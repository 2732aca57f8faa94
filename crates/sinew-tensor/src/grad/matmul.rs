//! Matrix products, plain and with a fused bias + activation epilogue. Saved: both operands
//! (each gradient needs the other), and the output where an activation follows.

use super::untracked;
use crate::backend::Activation;
use crate::{Error, Result, Save, Tensor};

impl Tensor {
    /// Matrix product with `torch.matmul`'s rules (1-d promotion, broadcast batch dims).
    /// Backward: `ga = g @ bᵀ`, `gb = aᵀ @ g`, summed over broadcast batch dims.
    pub fn matmul(&self, rhs: &Tensor) -> Result<Tensor> {
        if let Some(cast) = crate::autocast::lowered(&[self, rhs])? {
            return cast[0].matmul(&cast[1]);
        }
        if self.rank() == 0 || rhs.rank() == 0 {
            return Err(Error::ShapeMismatch {
                op: "matmul",
                lhs: self.shape().clone(),
                rhs: rhs.shape().clone(),
            });
        }
        // Promote 1-d operands with differentiable views, so the recorded op is always >= 2-d.
        let a = if self.rank() == 1 {
            self.unsqueeze(0)?
        } else {
            self.clone()
        };
        let b = if rhs.rank() == 1 {
            rhs.unsqueeze(1)?
        } else {
            rhs.clone()
        };
        let out = untracked(|| a.matmul_untracked(&b))?;
        let mut out = Tensor::from_op(out, "matmul", &[&a, &b], Save::INPUTS, |ctx, g| {
            let (a, b) = (ctx.input(0)?, ctx.input(1)?);
            let (ga, gb) = matmul_grads(&a, &b, g)?;
            Ok(vec![ga, gb])
        });
        if rhs.rank() == 1 {
            out = out.squeeze(-1)?;
        }
        if self.rank() == 1 {
            out = out.squeeze(if rhs.rank() == 1 { -1 } else { -2 })?;
        }
        Ok(out)
    }
}

/// Records `value = act(a @ b + bias)` (computed by [`Tensor::matmul_with`]'s fused forward;
/// `a`, `b` at least 2-d, output in their dtype) as one op, `matmul_with`: the gradient through
/// the activation (ReLU: `g * (y > 0)`, from the output), then [`matmul_grads`], and the bias's
/// `g` summed to `[n]`. PyTorch's `addmm` (+ `relu`) backward, same formulas.
pub(crate) fn record_matmul_epilogue(
    value: Tensor,
    a: &Tensor,
    b: &Tensor,
    bias: Option<&Tensor>,
    activation: Option<Activation>,
) -> Tensor {
    let mut inputs = vec![a, b];
    inputs.extend(bias);
    let save = Save::input(0).and_input(1);
    let save = if activation.is_some() {
        save.and_output()
    } else {
        save
    };
    let bias_shape = bias.map(|t| t.shape().clone());
    Tensor::from_op(value, "matmul_with", &inputs, save, move |ctx, g| {
        let g = match activation {
            Some(Activation::Relu) => super::unary::relu_input_grad(g, &ctx.output()?)?,
            None => g.clone(),
        };
        let (a, b) = (ctx.input(0)?, ctx.input(1)?);
        let (ga, gb) = matmul_grads(&a, &b, &g)?;
        let mut grads = vec![ga, gb];
        if let Some(shape) = &bias_shape {
            grads.push(if ctx.needs_grad(2) {
                Some(g.sum_to(shape)?)
            } else {
                None
            });
        }
        Ok(grads)
    })
}

/// The gradients of `a @ b` (both at least 2-d) from the output's gradient `g`, for the
/// operands that require one: `ga = g @ bᵀ`, `gb = aᵀ @ g`, summed over broadcast batch dims.
pub(crate) fn matmul_grads(
    a: &Tensor,
    b: &Tensor,
    g: &Tensor,
) -> Result<(Option<Tensor>, Option<Tensor>)> {
    // A transposed 2-d operand (a linear layer's `weight.t()`) gets its gradient computed
    // transposed too, `(g^T @ a)^T`, in its own layout: the gradient of the weight under the
    // view is then contiguous, and the optimizer's in-place updates read it in order instead of
    // striding across rows (as PyTorch's `mm` backward).
    let plain = a.rank() == 2 && b.rank() == 2;
    let ga = if !a.requires_grad() {
        None
    } else if plain && is_transposed(a) {
        Some(b.matmul(&g.t()?)?.t()?)
    } else {
        Some(g.matmul(&b.transpose(-2, -1)?)?.sum_to(a.shape())?)
    };
    let gb = if !b.requires_grad() {
        None
    } else if plain && is_transposed(b) {
        Some(g.t()?.matmul(a)?.t()?)
    } else {
        Some(a.transpose(-2, -1)?.matmul(g)?.sum_to(b.shape())?)
    };
    Ok((ga, gb))
}

/// Whether the 2-d `t` is laid out column by column (the transpose of a contiguous matrix),
/// with more than one row and column (else both layouts are the same).
fn is_transposed(t: &Tensor) -> bool {
    let (dims, strides) = (t.dims(), t.layout().strides());
    dims.len() == 2 && dims[0] > 1 && dims[1] > 1 && strides == [1, dims[0]]
}

#[cfg(test)]
mod tests {
    use crate::Tensor;

    fn values(n: usize, seed: usize) -> Vec<f32> {
        (0..n)
            .map(|i| ((i * 37 + seed) % 19) as f32 - 9.0)
            .collect()
    }

    /// A weight used transposed (`x @ w.t()`, a linear layer) and an input used transposed get
    /// contiguous gradients with the values of `gᵀ @ x` and `w.t() @ gᵀ`.
    #[test]
    fn transposed_operands_get_contiguous_gradients() {
        let x = Tensor::from_vec(values(12, 1), [3, 4])
            .unwrap()
            .requires_grad_();
        let w = Tensor::from_vec(values(20, 5), [5, 4])
            .unwrap()
            .requires_grad_();
        let g = Tensor::from_vec(values(15, 2), [3, 5]).unwrap();
        let y = x.matmul(&w.t().unwrap()).unwrap();
        y.backward_with(Some(g.clone()), Default::default())
            .unwrap();
        let gw = w.grad().unwrap();
        assert!(gw.is_contiguous());
        let want = g.t().unwrap().matmul(&x.detach()).unwrap();
        assert_eq!(gw.to_vec::<f32>().unwrap(), want.to_vec::<f32>().unwrap());
        let gx = x.grad().unwrap();
        let want = g.matmul(&w.detach()).unwrap();
        assert_eq!(gx.to_vec::<f32>().unwrap(), want.to_vec::<f32>().unwrap());

        // The left operand transposed: `xt.t() @ v`.
        let xt = Tensor::from_vec(values(12, 3), [4, 3])
            .unwrap()
            .requires_grad_();
        let v = Tensor::from_vec(values(20, 4), [4, 5]).unwrap();
        let y = xt.t().unwrap().matmul(&v).unwrap();
        y.backward_with(Some(g.clone()), Default::default())
            .unwrap();
        let gxt = xt.grad().unwrap();
        assert!(gxt.is_contiguous());
        let want = v.matmul(&g.t().unwrap()).unwrap();
        assert_eq!(gxt.to_vec::<f32>().unwrap(), want.to_vec::<f32>().unwrap());
    }
}
