//! A normalisation's autograd node (batch norm's and layer norm's): what follows it in the same
//! node ([`Tail`]: nothing, a ReLU, or a residual's sum and a ReLU), and the recorded backward,
//! the fused rule its caller gives or, under create_graph, the op-by-op rule.

use sinew_tensor::{Result, Save, Tensor, is_grad_enabled};

/// What follows batch norm in its output pass and its autograd node.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Tail<'t> {
    /// Nothing.
    None,
    /// ReLU.
    Relu,
    /// The sum with a residual (a ResNet block's shortcut), then ReLU.
    AddRelu(&'t Tensor),
}

impl Tail<'_> {
    /// `y` followed by the tail, as recorded tensor ops.
    pub(crate) fn apply(self, y: Tensor) -> Result<Tensor> {
        match self {
            Tail::None => Ok(y),
            Tail::Relu => y.relu(),
            Tail::AddRelu(residual) => y.add_relu(residual),
        }
    }
}

/// The output of the ReLU that ends a normalisation's node (its gradient's mask) and whether a
/// residual was added before it (whose gradient is then the masked gradient itself).
#[derive(Clone, Copy)]
pub(crate) struct ReluOutput<'t> {
    /// The node's output.
    pub(crate) output: &'t Tensor,
    /// A residual was added before the ReLU.
    pub(crate) residual: bool,
}

/// Records `y` as a normalisation of `x` with the optional affine `weight` and `bias`, followed
/// by `tail` (with a ReLU, `y` is the ReLU's output, saved for its mask; a residual is the
/// node's last input): the backward runs `fused` (`(x, weight, dy, the ReLU's output when
/// there is one)` to the gradients of `x`, then of the weight and the bias when present, then
/// of the residual; `dy` is to be taken back through the ReLU first, which `fused` may do
/// inside its own kernels), or under create_graph the op-by-op rule over `dims(x)` on `dy`
/// masked where the ReLU was 0.
pub(crate) fn record_normalisation(
    y: Tensor,
    op: &'static str,
    (x, weight, bias): (&Tensor, Option<&Tensor>, Option<&Tensor>),
    (eps, tail): (f64, Tail<'_>),
    dims: impl Fn(&Tensor) -> NormDims + Send + Sync + 'static,
    fused: impl Fn(
        &Tensor,
        Option<&Tensor>,
        &Tensor,
        Option<ReluOutput<'_>>,
    ) -> Result<Vec<Option<Tensor>>>
    + Send
    + Sync
    + 'static,
) -> Tensor {
    let mut inputs = vec![x];
    inputs.extend(weight);
    inputs.extend(bias);
    let (relu, residual) = match tail {
        Tail::None => (false, None),
        Tail::Relu => (true, None),
        Tail::AddRelu(r) => (true, Some(r)),
    };
    inputs.extend(residual);
    let (has_weight, has_bias, has_residual) =
        (weight.is_some(), bias.is_some(), residual.is_some());
    let save = if relu {
        Save::INPUTS.and_output()
    } else {
        Save::INPUTS
    };
    Tensor::from_op(y, op, &inputs, save, move |ctx, dy| {
        let output = if relu { Some(ctx.output()?) } else { None };
        let x = ctx.input(0)?;
        let w = if has_weight {
            Some(ctx.input(1)?)
        } else {
            None
        };
        if is_grad_enabled() {
            // create_graph: the op-by-op rule, itself differentiable.
            let dy = match &output {
                Some(y) => &dy.relu_grad(y)?,
                None => dy,
            };
            let dims = dims(&x);
            let mut grads = differentiable_backward(&x, w.as_ref(), dy, eps, has_bias, &dims)?;
            if has_residual {
                grads.push(Some(dy.clone()));
            }
            return Ok(grads);
        }
        let relu = output.as_ref().map(|output| ReluOutput {
            output,
            residual: has_residual,
        });
        fused(&x, w.as_ref(), dy, relu)
    })
}

/// Where a normalisation's values group, for its op-by-op backward: the dims its statistics
/// reduce over, the dims its affine parameters' gradients reduce over, and the shape the
/// parameters take to broadcast against the input.
pub(crate) struct NormDims {
    /// Reduced for the mean and variance.
    pub(crate) stat: Vec<isize>,
    /// Reduced for the weight's and bias's gradients.
    pub(crate) param: Vec<isize>,
    /// The weight reshaped to this broadcasts against the input.
    pub(crate) param_view: Vec<usize>,
}

impl NormDims {
    /// Batch norm's over `[n, C, ...]`: statistics and parameter gradients over every dim
    /// but 1, the parameters `[1, C, 1, ...]`.
    pub(crate) fn batch_norm(x: &Tensor) -> Self {
        let rank = x.rank();
        let dims: Vec<isize> = std::iter::once(0).chain(2..rank as isize).collect();
        let mut view = vec![1; rank];
        view[1] = x.dims()[1];
        NormDims {
            stat: dims.clone(),
            param: dims,
            param_view: view,
        }
    }
}

/// `t` summed over `dims`, or `t` itself when there are none (a sum over no dims would be a
/// sum over all).
pub(crate) fn sum_over(t: &Tensor, dims: &[isize]) -> Result<Tensor> {
    if dims.is_empty() {
        Ok(t.clone())
    } else {
        t.sum(dims, false)
    }
}

/// A normalisation's backward written with recorded tensor ops (for `create_graph`): the
/// gradients of `x`, then of the weight and bias when present.
pub(crate) fn differentiable_backward(
    x: &Tensor,
    w: Option<&Tensor>,
    dy: &Tensor,
    eps: f64,
    has_bias: bool,
    dims: &NormDims,
) -> Result<Vec<Option<Tensor>>> {
    let mean = x.mean(&dims.stat, true)?;
    let xmu = x.sub(&mean)?;
    let invstd = xmu
        .square()?
        .mean(&dims.stat, true)?
        .add_scalar(eps)?
        .rsqrt()?;
    let xhat = xmu.mul(&invstd)?;
    let dxhat = match w {
        Some(w) => dy.mul(&w.reshape(dims.param_view.clone())?)?,
        None => dy.clone(),
    };
    let dx = dxhat
        .sub(&dxhat.mean(&dims.stat, true)?)?
        .sub(&xhat.mul(&dxhat.mul(&xhat)?.mean(&dims.stat, true)?)?)?
        .mul(&invstd)?;
    let mut grads = vec![Some(dx)];
    if w.is_some() {
        grads.push(Some(sum_over(&dy.mul(&xhat)?, &dims.param)?));
    }
    if has_bias {
        grads.push(Some(sum_over(dy, &dims.param)?));
    }
    Ok(grads)
}
