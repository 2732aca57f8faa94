//! Reductions: sum, mean, prod, max/min (values, and with indices). Saved: nothing for sum and
//! mean; the input for prod; input and output for max/min. Composites built on them (var, std,
//! logsumexp, norm) live in `ops/reduce.rs`.

use super::untracked;
use crate::{ArgReduceOp, ReduceOp, Result, Save, Shape, Tensor};

impl Tensor {
    /// Broadcasts a reduced gradient (keepdim or not) back over the input's `shape`.
    fn expand_reduced(g: &Tensor, shape: &Shape, dims: &[usize]) -> Result<Tensor> {
        let kept: Vec<usize> = shape
            .dims()
            .iter()
            .enumerate()
            .map(|(i, &d)| if dims.contains(&i) { 1 } else { d })
            .collect();
        g.reshape(kept)?.broadcast_to(shape.clone())
    }

    /// Applies any [`ReduceOp`] over `dims` (empty = all), differentiably: sum broadcasts the
    /// gradient back, prod uses the product of the other elements (exact with zeros), max and
    /// min share the gradient evenly between tied extremes (PyTorch's amax/amin).
    pub fn reduce(&self, op: ReduceOp, dims: &[isize], keepdim: bool) -> Result<Tensor> {
        let resolved = self.resolve_dims(op.name(), dims)?;
        let out = untracked(|| self.reduce_untracked(op, dims, keepdim))?;
        Ok(match op {
            ReduceOp::Sum => Tensor::from_op(out, "sum", &[self], Save::NOTHING, move |ctx, g| {
                Ok(vec![Some(Tensor::expand_reduced(
                    g,
                    ctx.input_shape(0),
                    &resolved,
                )?)])
            }),
            ReduceOp::Prod => Tensor::prod_node(self, out, resolved),
            ReduceOp::Max | ReduceOp::Min => Tensor::extreme_node(self, op, out, resolved),
        })
    }

    /// [`Tensor::mean`] of a float tensor past autocast, differentiably: the gradient divided
    /// by the count and broadcast back (sum's and div_scalar's backward, in that order).
    pub(crate) fn mean_recorded(&self, dims: &[isize], keepdim: bool) -> Result<Tensor> {
        let resolved = self.resolve_dims("mean", dims)?;
        let count = self.reduced_count(&resolved) as f64;
        let out = untracked(|| {
            let kept = self.reduced_shape(&resolved, true);
            let out = self.map_storage(kept, |b, s, l| b.mean(s, l, &resolved))?;
            if keepdim {
                Ok(out)
            } else {
                out.reshape(self.reduced_shape(&resolved, false))
            }
        })?;
        Ok(Tensor::from_op(
            out,
            "mean",
            &[self],
            Save::NOTHING,
            move |ctx, g| {
                Ok(vec![Some(Tensor::expand_reduced(
                    &g.div_scalar(count)?,
                    ctx.input_shape(0),
                    &resolved,
                )?)])
            },
        ))
    }

    /// Records prod's node. Backward: the product of the other elements (exact with zeros).
    fn prod_node(x: &Tensor, out: Tensor, resolved: Vec<usize>) -> Tensor {
        Tensor::from_op(out, "prod", &[x], Save::input(0), move |ctx, g| {
            let x = &ctx.input(0)?;
            let is_zero = x.eq_scalar(0.0)?;
            let ones = x.ones_like()?;
            let dims: Vec<isize> = resolved.iter().map(|&d| d as isize).collect();
            // Product of the non-zero elements, and how many zeros each slice holds.
            let nonzero = is_zero.where_cond(&ones, x)?;
            let nz_prod =
                Tensor::expand_reduced(&nonzero.prod(&dims, true)?, x.shape(), &resolved)?;
            let zeros = is_zero.to_dtype(x.dtype())?.sum(&dims, true)?;
            let zeros = zeros.broadcast_to(x.shape().clone())?;
            let g = Tensor::expand_reduced(g, x.shape(), &resolved)?;
            // No zero: prod / x. One zero: the zero gets prod(others), the rest 0. More: all 0.
            let one_zero = zeros.eq_scalar(1.0)?;
            let no_zero = zeros.eq_scalar(0.0)?;
            let fill_zero = x.zeros_like()?;
            let at_zero = one_zero.where_cond(&nz_prod, &fill_zero)?;
            let elsewhere = no_zero.where_cond(&nz_prod.div(&nonzero)?, &fill_zero)?;
            Ok(vec![Some(
                g.mul(&is_zero.where_cond(&at_zero, &elsewhere)?)?,
            )])
        })
    }

    /// Records max's or min's node (ties share the gradient, as PyTorch's amax/amin).
    fn extreme_node(x: &Tensor, op: ReduceOp, out: Tensor, resolved: Vec<usize>) -> Tensor {
        Tensor::from_op(
            out,
            if op == ReduceOp::Max { "max" } else { "min" },
            &[x],
            Save::input(0).and_output(),
            move |ctx, g| {
                // PyTorch (amax/amin): the gradient is shared evenly between tied extremes.
                let x = &ctx.input(0)?;
                let y = Tensor::expand_reduced(&ctx.output()?.detach(), x.shape(), &resolved)?;
                let hits = x.eq(&y)?.to_dtype(x.dtype())?;
                let dims: Vec<isize> = resolved.iter().map(|&d| d as isize).collect();
                let count = hits.sum(&dims, true)?;
                let share = hits.div(&count)?;
                Ok(vec![Some(
                    Tensor::expand_reduced(g, x.shape(), &resolved)?.mul(&share)?,
                )])
            },
        )
    }

    /// Largest values along `dim` and their i64 indices; the gradient goes to the index only.
    /// PyTorch equivalent: `torch.max(x, dim)`.
    pub fn max_dim(&self, dim: isize, keepdim: bool) -> Result<(Tensor, Tensor)> {
        self.extreme_dim(ArgReduceOp::ArgMax, dim, keepdim)
    }

    /// Smallest values along `dim` and their indices. PyTorch equivalent: `torch.min(x, dim)`.
    pub fn min_dim(&self, dim: isize, keepdim: bool) -> Result<(Tensor, Tensor)> {
        self.extreme_dim(ArgReduceOp::ArgMin, dim, keepdim)
    }

    /// The values at the arg-extreme indices (gathered, so only they get a gradient).
    fn extreme_dim(&self, op: ArgReduceOp, dim: isize, keepdim: bool) -> Result<(Tensor, Tensor)> {
        let idx = self.arg_reduce(op, dim, true)?;
        let values = self.gather(dim, &idx)?;
        if keepdim {
            Ok((values, idx))
        } else {
            Ok((values.squeeze(dim)?, idx.squeeze(dim)?))
        }
    }
}
