//! `PReLU`: a leaky ReLU whose negative slope is learned, one for all channels or one per
//! channel (dim 1), as PyTorch's `nn.PReLU` (`state_dict` key `weight`, initialised to 0.25).

use sinew_tensor::{DType, Device, Error, Parameter, Result, Save, Tensor, with_no_grad};

use crate::{Module, Visit, summary};

/// `x` where `x > 0`, else `weight * x`, with `weight` of one element or one per channel of
/// dim 1 (`[n, c, ...]`; an input of rank below 2 has one channel). The input gradient is `grad` or
/// `weight * grad` (at 0 too), the weight's the sum of `x * grad` where `x <= 0`, selected as
/// PyTorch's kernel does. PyTorch: `F.prelu`.
pub fn prelu(x: &Tensor, weight: &Tensor) -> Result<Tensor> {
    const OP: &str = "prelu";
    let slopes = weight.elem_count();
    if weight.rank() > 1 || slopes == 0 || !x.dtype().is_float() {
        return Err(Error::invalid(
            OP,
            format!(
                "expects a float input and a 1-d weight of one slope or one per channel, got {:?} input and weight {}",
                x.dtype(),
                weight.shape()
            ),
        ));
    }
    // The weight viewed so that it broadcasts along the channel dim.
    let mut view = vec![1; x.rank()];
    if slopes > 1 {
        if x.rank() < 2 || x.dims()[1] != slopes {
            return Err(Error::invalid(
                OP,
                format!(
                    "{slopes} slopes need {slopes} channels in dim 1, got input {}",
                    x.shape()
                ),
            ));
        }
        view[1] = slopes;
    }
    let w = weight.to_dtype(x.dtype())?.reshape(view)?;
    let y = with_no_grad(|| x.gt_scalar(0.0)?.where_cond(x, &x.mul(&w)?))?;
    let sum_dims: Vec<isize> = (0..x.rank() as isize)
        .filter(|&d| slopes == 1 || d != 1)
        .collect();
    Ok(Tensor::from_op(
        y,
        OP,
        &[x, &w],
        Save::INPUTS,
        move |ctx, g| {
            let (x, w) = (ctx.input(0)?, ctx.input(1)?);
            let positive = x.gt_scalar(0.0)?;
            let zero = Tensor::zeros((), g.dtype(), g.device())?;
            let gx = positive.where_cond(g, &g.mul(&w)?)?;
            let gw = positive
                .where_cond(&zero, &g.mul(&x)?)?
                .sum(&sum_dims, false)?
                .reshape(ctx.input_shape(1).clone())?;
            Ok(vec![Some(gx), Some(gw)])
        },
    ))
}

/// Parametric ReLU with `num_parameters` learned slopes (1, or the channel count), each
/// starting at `init`; PyTorch's `nn.PReLU()` is `PReLU::new(1, 0.25)`.
pub struct PReLU {
    /// The slopes, `[num_parameters]`.
    pub weight: Parameter,
}

impl PReLU {
    /// `num_parameters` slopes (at least 1) starting at `init`.
    pub fn new(num_parameters: usize, init: f64) -> Result<Self> {
        if num_parameters == 0 {
            return Err(Error::invalid("PReLU", "num_parameters must be at least 1"));
        }
        let w = Tensor::full([num_parameters], init, DType::F32, &Device::cpu())?;
        Ok(PReLU {
            weight: Parameter::new(w),
        })
    }
}

impl Module for PReLU {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let y = prelu(x, &self.weight.value())?;
        summary::note(self, &y);
        Ok(y)
    }

    fn visit<'a>(&'a self, v: &mut Visit<'a, '_>) {
        v.parameter("weight", &self.weight);
    }
}
