//! Joining, splitting and indexing. Saved: the index tensors and input shapes; never values.

use super::untracked;
use crate::{PadMode, Result, Save, Shape, Tensor};

impl Tensor {
    /// Joins along `dim`. Backward: the gradient split back into the pieces.
    pub fn cat(vars: &[Tensor], dim: isize) -> Result<Tensor> {
        let out = untracked(|| Tensor::cat_untracked(vars, dim))?;
        let d = out.shape().dim("cat", dim)?;
        let sizes: Vec<usize> = vars.iter().map(|v| v.dims()[d]).collect();
        let inputs: Vec<&Tensor> = vars.iter().collect();
        Ok(Tensor::from_op(
            out,
            "cat",
            &inputs,
            Save::NOTHING,
            move |_, g| {
                let mut start = 0;
                sizes
                    .iter()
                    .map(|&len| {
                        let piece = g.narrow(d as isize, start, len)?;
                        start += len;
                        Ok(Some(piece))
                    })
                    .collect()
            },
        ))
    }

    /// Entries along `dim` at 1-d i64 `indices`. Backward: the gradient rows summed back at the
    /// indices, in position order (deterministic).
    pub fn index_select(&self, dim: isize, indices: &Tensor) -> Result<Tensor> {
        let out = untracked(|| self.index_select_untracked(dim, indices))?;
        let indices = indices.clone();
        Ok(Tensor::from_op(
            out,
            "index_select",
            &[self],
            Save::NOTHING,
            move |ctx, g| {
                let shape = ctx.input_shape(0);
                let d = shape.dim("index_select", dim)?;
                Ok(vec![Some(g.index_select_backward(&indices, d, shape)?)])
            },
        ))
    }

    /// `index_select`'s input gradient from the output gradient `self`, differentiable (its own
    /// backward selects the incoming gradient at the same indices): the backend's direct
    /// kernel ([`crate::Backend::index_select_backward`]) where it has one, else a scatter-add
    /// into zeros.
    fn index_select_backward(&self, indices: &Tensor, d: usize, input: &Shape) -> Result<Tensor> {
        let out = untracked(|| {
            let backend = self.device().backend();
            let direct = self.with_two_storages(indices, |g, i| {
                backend.index_select_backward(
                    (g, self.layout()),
                    (i, indices.layout()),
                    d,
                    input.dims(),
                )
            })?;
            if let Some(storage) = direct {
                return Tensor::from_storage(storage, input.clone(), self.device().clone());
            }
            // Spread the 1-d index over the gradient's shape, then scatter-add into zeros.
            let mut view = vec![1; self.rank()];
            view[d] = indices.elem_count();
            let full = indices
                .reshape(view)?
                .broadcast_to(self.shape().clone())?
                .contiguous()?;
            let zeros = Tensor::zeros(input.clone(), self.dtype(), self.device())?;
            zeros.scatter_add_untracked(d as isize, &full, self)
        })?;
        let idx = indices.clone();
        Ok(Tensor::from_op(
            out,
            "index_select_backward",
            &[self],
            Save::NOTHING,
            move |_, gg| Ok(vec![Some(gg.index_select(d as isize, &idx)?)]),
        ))
    }

    /// `out[i][j] = x[i][index[i][j]]` along `dim`. Backward: scatter-add into zeros.
    pub fn gather(&self, dim: isize, index: &Tensor) -> Result<Tensor> {
        let out = untracked(|| self.gather_untracked(dim, index))?;
        let index = index.clone();
        Ok(Tensor::from_op(
            out,
            "gather",
            &[self],
            Save::NOTHING,
            move |ctx, g| {
                let zeros = Tensor::zeros(ctx.input_shape(0).clone(), g.dtype(), g.device())?;
                Ok(vec![Some(zeros.scatter_add(dim, &index, g)?)])
            },
        ))
    }

    /// Writes `values` at `index` along `dim`. Backward: base gets the gradient with the written
    /// slots zeroed; values get the gradient gathered from those slots.
    pub fn scatter(&self, dim: isize, index: &Tensor, values: &Tensor) -> Result<Tensor> {
        let out = untracked(|| self.scatter_untracked(dim, index, values))?;
        let index = index.clone();
        Ok(Tensor::from_op(
            out,
            "scatter",
            &[self, values],
            Save::NOTHING,
            move |ctx, g| {
                let zeros = Tensor::zeros(index.shape().clone(), g.dtype(), g.device())?;
                let base = g.scatter(dim, &index, &zeros)?;
                let vals = g.gather(dim, &index)?.embed_into(ctx.input_shape(1))?;
                Ok(vec![Some(base), Some(vals)])
            },
        ))
    }

    /// Adds `values` at `index` along `dim`. Backward: base gets the gradient; values get it
    /// gathered from the slots they were added to.
    pub fn scatter_add(&self, dim: isize, index: &Tensor, values: &Tensor) -> Result<Tensor> {
        let out = untracked(|| self.scatter_add_untracked(dim, index, values))?;
        let index = index.clone();
        Ok(Tensor::from_op(
            out,
            "scatter_add",
            &[self, values],
            Save::NOTHING,
            move |ctx, g| {
                let vals = g.gather(dim, &index)?.embed_into(ctx.input_shape(1))?;
                Ok(vec![Some(g.clone()), Some(vals)])
            },
        ))
    }

    /// Zero-pads a gradient taken over an index's extent up to the (larger) values' shape.
    fn embed_into(&self, shape: &Shape) -> Result<Tensor> {
        let mut out = self.clone();
        for d in 0..shape.rank() {
            if out.dims()[d] != shape.dims()[d] {
                let mut dims = out.dims().to_vec();
                dims[d] = shape.dims()[d];
                out = out.embed(Shape::new(dims), d, 0, 1)?;
            }
        }
        Ok(out)
    }

    /// Pads the last `pads.len()` dims (see `Tensor::pad`). Constant padding's backward slices
    /// the gradient; the other modes are built from `index_select` and differentiate through it.
    pub fn pad(&self, pads: &[(usize, usize)], mode: PadMode) -> Result<Tensor> {
        match mode {
            PadMode::Constant(_) => {
                let out = untracked(|| self.pad_untracked(pads, mode))?;
                let first = self.rank() - pads.len();
                let pads = pads.to_vec();
                Ok(Tensor::from_op(
                    out,
                    "pad",
                    &[self],
                    Save::NOTHING,
                    move |ctx, g| {
                        let mut inner = g.clone();
                        for (i, &(before, _)) in pads.iter().enumerate() {
                            let d = first + i;
                            inner =
                                inner.narrow(d as isize, before, ctx.input_shape(0).dims()[d])?;
                        }
                        Ok(vec![Some(inner)])
                    },
                ))
            }
            PadMode::Reflect | PadMode::Replicate | PadMode::Circular => {
                let mut out = self.clone();
                for (dim, index) in self.pad_indices(pads, mode)? {
                    out = out.index_select(dim as isize, &index)?;
                }
                Ok(out)
            }
        }
    }
}
