//! Matrix products, plain and with a fused bias + activation epilogue. Saved: both operands
//! (each gradient needs the other), and the output where an activation follows.

use super::untracked;
use super::widened::f32_gradient;
use crate::backend::Activation;
use crate::{DType, Error, MatmulOptions, Result, Save, Tensor};

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
            let (ga, gb) = matmul_grads(&a, &b, g, widened(ctx))?;
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
        let (ga, gb) = matmul_grads(&a, &b, &g, widened(ctx))?;
        let mut grads = vec![ga, gb];
        if let Some(shape) = &bias_shape {
            grads.push(if ctx.needs_grad(2) {
                Some(g.sum_to_as(shape, f32_gradient(ctx, 2))?)
            } else {
                None
            });
        }
        Ok(grads)
    })
}

/// For each operand of a product: f32 where it is an f16/bf16 cast of an f32 tensor (perhaps
/// transposed) whose gradient may come back in f32 (autocast's weight, whose cast back the
/// GEMM then writes, rounded to the operands' dtype; `grad/widened.rs`).
fn widened(ctx: &crate::BackwardCtx<'_>) -> [Option<DType>; 2] {
    [0, 1].map(|i| f32_gradient(ctx, i))
}

/// `x @ y`, written as `wide` (each value rounded to the operands' dtype first) where given.
fn product(x: &Tensor, y: &Tensor, wide: Option<DType>) -> Result<Tensor> {
    match wide {
        Some(dtype) => x.matmul_with(
            y,
            MatmulOptions::new()
                .with_out_dtype(dtype)
                .with_rounding_to_operands(),
        ),
        None => x.matmul(y),
    }
}

/// The gradients of `a @ b` (both at least 2-d) from the output's gradient `g`, for the
/// operands that require one: `ga = g @ bᵀ`, `gb = aᵀ @ g`, summed over broadcast batch dims.
/// With 2-d operands, an operand's gradient comes in `wide[i]` where given (the values in the
/// operands' dtype, widened by the GEMM's store).
pub(crate) fn matmul_grads(
    a: &Tensor,
    b: &Tensor,
    g: &Tensor,
    wide: [Option<DType>; 2],
) -> Result<(Option<Tensor>, Option<Tensor>)> {
    // A transposed 2-d operand (a linear layer's `weight.t()`) gets its gradient computed
    // transposed too, `(g^T @ a)^T`, in its own layout: the gradient of the weight under the
    // view is then contiguous, and the optimizer's in-place updates read it in order instead of
    // striding across rows (as PyTorch's `mm` backward).
    let plain = a.rank() == 2 && b.rank() == 2;
    let wide = if plain { wide } else { [None, None] };
    let ga = if !a.requires_grad() {
        None
    } else if plain && is_transposed(a) {
        Some(product(b, &g.t()?, wide[0])?.t()?)
    } else {
        Some(product(g, &b.transpose(-2, -1)?, wide[0])?.sum_to(a.shape())?)
    };
    let gb = if !b.requires_grad() {
        None
    } else if plain && is_transposed(b) {
        Some(product(&g.t()?, a, wide[1])?.t()?)
    } else {
        Some(product(&a.transpose(-2, -1)?, g, wide[1])?.sum_to(b.shape())?)
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

#[cfg(test)]
mod widened_tests {
    use crate::{DType, MatmulOptions, Tensor};

    fn randn(seed: u64, dims: &[usize], dtype: DType) -> Tensor {
        crate::Generator::new(seed)
            .randn(dims, DType::F32, &crate::Device::cpu())
            .unwrap()
            .to_dtype(dtype)
            .unwrap()
    }

    fn bits(t: &Tensor) -> Vec<u32> {
        t.to_vec::<f32>()
            .unwrap()
            .into_iter()
            .map(f32::to_bits)
            .collect()
    }

    /// An f16/bf16 product written as f32 with rounding holds the product in the operands'
    /// dtype widened (after the bias and ReLU), which is not the accumulator itself.
    #[test]
    fn a_rounded_wide_product_is_the_narrow_product_widened() {
        for dtype in [DType::F16, DType::BF16] {
            let (a, b) = (randn(1, &[7, 33], dtype), randn(2, &[33, 5], dtype));
            let bias = randn(3, &[5], DType::F32);
            let wide = MatmulOptions::new().with_out_dtype(DType::F32);
            let rounded = a.matmul_with(&b, wide.with_rounding_to_operands()).unwrap();
            let want = a.matmul(&b).unwrap().to_dtype(DType::F32).unwrap();
            assert_eq!(bits(&rounded), bits(&want), "{dtype}");
            let unrounded = a.matmul_with(&b, wide).unwrap();
            assert_ne!(bits(&unrounded), bits(&want), "{dtype}: the flag matters");
            let opts = wide
                .with_bias(&bias)
                .with_activation(crate::Activation::Relu)
                .with_rounding_to_operands();
            let got = a.matmul_with(&b, opts).unwrap();
            let want = unrounded
                .add(&bias)
                .unwrap()
                .relu()
                .unwrap()
                .to_dtype(dtype)
                .unwrap()
                .to_dtype(DType::F32)
                .unwrap();
            assert_eq!(bits(&got), bits(&want), "{dtype}: bias and ReLU");
        }
    }

    /// A linear layer's f32 weight cast to f16/bf16 and transposed gets its f32 gradient from
    /// the product bit for bit as the narrow gradient widened, contiguous, also through the
    /// fused bias + ReLU product, whose cast f32 bias gets its f32 gradient the same way; the
    /// input's gradient stays narrow.
    #[test]
    fn a_cast_weights_gradient_is_the_narrow_gradient_widened() {
        for dtype in [DType::F16, DType::BF16] {
            for fused in [false, true] {
                let x = randn(4, &[6, 9], dtype).requires_grad_();
                let w = randn(5, &[4, 9], DType::F32).requires_grad_();
                let b = randn(6, &[4], DType::F32).requires_grad_();
                let g = randn(7, &[6, 4], dtype);
                let narrow = |t: &Tensor| t.to_dtype(dtype).unwrap().detach().requires_grad_();
                let (leaf, leaf_b) = (narrow(&w), narrow(&b));
                let forward = |w: &Tensor, b: &Tensor| {
                    let wt = w.t().unwrap();
                    if fused {
                        let opts = MatmulOptions::new()
                            .with_bias(b)
                            .with_activation(crate::Activation::Relu);
                        x.matmul_with(&wt, opts).unwrap()
                    } else {
                        x.matmul(&wt).unwrap()
                    }
                };
                let backward = |y: Tensor| {
                    y.backward_with(Some(g.clone()), Default::default())
                        .unwrap()
                };
                backward(forward(&leaf, &leaf_b));
                let narrow_dx = x.grad().unwrap();
                x.zero_grad();
                let cast = |t: &Tensor| t.to_dtype(dtype).unwrap();
                backward(forward(&cast(&w), &cast(&b)));
                let what = format!("{dtype}, fused {fused}");
                let gw = w.grad().unwrap();
                assert!(gw.is_contiguous(), "{what}");
                let want = leaf.grad().unwrap().to_dtype(DType::F32).unwrap();
                assert_eq!(bits(&gw), bits(&want), "{what}");
                let dx = x.grad().unwrap();
                assert_eq!(dx.dtype(), dtype, "{what}");
                let (dx, narrow_dx) = (dx.to_dtype(DType::F32), narrow_dx.to_dtype(DType::F32));
                assert_eq!(bits(&dx.unwrap()), bits(&narrow_dx.unwrap()), "{what}");
                if fused {
                    let gb = b.grad().unwrap();
                    let want = leaf_b.grad().unwrap().to_dtype(DType::F32).unwrap();
                    assert_eq!(bits(&gb), bits(&want), "{what}: bias");
                }
            }
        }
    }
}
