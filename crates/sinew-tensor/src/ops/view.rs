//! Shape ops that return views of the same storage (copying only when a layout forces it).

use crate::{Error, Layout, NewShape, Result, Shape, Tensor};

impl Tensor {
    /// The same elements with a new shape; a view when the strides allow, else a copy.
    pub(crate) fn reshape_untracked(&self, shape: impl Into<Shape>) -> Result<Tensor> {
        let shape = shape.into();
        self.check_count("reshape", &shape)?;
        match self.layout().reshape(&shape) {
            Some(layout) => Ok(self.with_layout(layout)),
            None => Ok(self
                .force_contiguous()?
                .with_layout(Layout::contiguous(shape))),
        }
    }

    /// Like [`Tensor::reshape`] (one size may be `-1`) but never copies: errors when the
    /// layout would need a copy. PyTorch equivalent: `view`.
    pub fn view(&self, shape: impl Into<NewShape>) -> Result<Tensor> {
        let shape = shape.into().resolve("view", self.elem_count())?;
        self.check_count("view", &shape)?;
        self.layout().reshape(&shape).ok_or_else(|| {
            Error::invalid(
                "view",
                format!(
                    "a view of shape {shape} over strides {:?} needs a copy; use reshape",
                    self.stride()
                ),
            )
        })?;
        // The strides allow a view, so reshape makes one (and records it).
        self.reshape(shape)
    }

    fn check_count(&self, op: &'static str, shape: &Shape) -> Result<()> {
        if shape.checked_elem_count(op)? != self.elem_count() {
            return Err(Error::ShapeMismatch {
                op,
                lhs: self.shape().clone(),
                rhs: shape.clone(),
            });
        }
        Ok(())
    }

    /// Reorders dimensions. PyTorch equivalent: `permute`.
    pub(crate) fn permute_untracked(&self, order: &[usize]) -> Result<Tensor> {
        Ok(self.with_layout(self.layout().permute(order)?))
    }

    /// Swaps two dimensions. PyTorch equivalent: `transpose`.
    pub fn transpose(&self, dim0: isize, dim1: isize) -> Result<Tensor> {
        let (a, b) = (
            self.shape().dim("transpose", dim0)?,
            self.shape().dim("transpose", dim1)?,
        );
        let mut order: Vec<usize> = (0..self.rank()).collect();
        order.swap(a, b);
        self.permute(&order)
    }

    /// Transpose of a 2-d tensor (or of the last two dims). PyTorch equivalent: `x.mT`.
    pub fn t(&self) -> Result<Tensor> {
        if self.rank() < 2 {
            return Err(Error::invalid(
                "t",
                format!("needs at least 2 dims, got shape {}", self.shape()),
            ));
        }
        self.transpose(-2, -1)
    }

    /// `len` entries of `dim` starting at `start`. PyTorch equivalent: `narrow`.
    pub fn narrow(&self, dim: isize, start: usize, len: usize) -> Result<Tensor> {
        let d = self.shape().dim("narrow", dim)?;
        self.layout().slice(d, start, len, 1)?; // bounds checked here; slice would clamp
        self.slice(d as isize, start, start + len, 1)
    }

    /// Entries `start..end` of `dim`, every `step`-th. PyTorch equivalent: `x[..., start:end:step]`.
    pub(crate) fn slice_untracked(
        &self,
        dim: isize,
        start: usize,
        end: usize,
        step: usize,
    ) -> Result<Tensor> {
        let d = self.shape().dim("slice", dim)?;
        let end = end.min(self.dims()[d]);
        let len = if end > start && step > 0 {
            (end - start).div_ceil(step)
        } else {
            0
        };
        Ok(self.with_layout(self.layout().slice(d, start.min(end), len, step)?))
    }

    /// Removes dimension `dim` if it has size 1 (otherwise returns the tensor unchanged, like PyTorch).
    pub fn squeeze(&self, dim: isize) -> Result<Tensor> {
        let d = self.shape().dim("squeeze", dim)?;
        if self.dims()[d] != 1 {
            return Ok(self.clone());
        }
        let layout = self.layout().squeeze(d);
        self.reshape(layout.shape().clone())
    }

    /// Removes every size-1 dimension.
    pub fn squeeze_all(&self) -> Result<Tensor> {
        let dims: Vec<usize> = self.dims().iter().copied().filter(|&d| d != 1).collect();
        self.reshape(dims)
    }

    /// Inserts a size-1 dimension at `dim` (`-1` appends). PyTorch equivalent: `unsqueeze`.
    pub fn unsqueeze(&self, dim: isize) -> Result<Tensor> {
        let d = crate::shape::resolve_dim("unsqueeze", dim, self.rank() + 1)?;
        let layout = self.layout().unsqueeze(d);
        self.reshape(layout.shape().clone())
    }

    /// Broadcasts to `shape` without copying (stride-0 dims). PyTorch equivalent: `expand`.
    pub(crate) fn broadcast_to_untracked(&self, shape: impl Into<Shape>) -> Result<Tensor> {
        Ok(self.with_layout(self.layout().broadcast_to(&shape.into())?))
    }

    /// Alias of [`Tensor::broadcast_to`]. PyTorch equivalent: `expand`.
    pub fn expand(&self, shape: impl Into<Shape>) -> Result<Tensor> {
        self.broadcast_to(shape)
    }

    /// Merges dims `start..=end` into one. PyTorch equivalent: `torch.flatten(x, start, end)`;
    /// as there, a 0-d tensor's dims are those of `[1]` (`start`, `end` in -1..=0, giving
    /// `[1]`), so `nn.Flatten()`'s start of 1 is out of range for it.
    pub fn flatten(&self, start: isize, end: isize) -> Result<Tensor> {
        if self.rank() == 0 {
            return self.reshape([1])?.flatten(start, end);
        }
        let (s, e) = (
            self.shape().dim("flatten", start)?,
            self.shape().dim("flatten", end)?,
        );
        if s > e {
            return Err(Error::invalid(
                "flatten",
                format!("start dim {s} is after end dim {e}"),
            ));
        }
        let dims = self.dims();
        let mut out = dims[..s].to_vec();
        out.push(dims[s..=e].iter().product());
        out.extend_from_slice(&dims[e + 1..]);
        self.reshape(out)
    }

    /// All elements in one dimension.
    pub fn flatten_all(&self) -> Result<Tensor> {
        self.reshape([self.elem_count()])
    }
}

#[cfg(test)]
mod tests {
    use crate::{DType, Device, Tensor};

    fn grid() -> Tensor {
        Tensor::arange(0.0, 12.0, 1.0, DType::F32, &Device::cpu())
            .unwrap()
            .reshape([3, 4])
            .unwrap()
    }

    #[test]
    fn views_share_storage() {
        let x = grid();
        let t = x.t().unwrap();
        assert!(t.same_storage(&x));
        assert_eq!(t.dims(), &[4, 3]);
        assert_eq!(t.to_vec::<f32>().unwrap()[..4], [0.0, 4.0, 8.0, 1.0]);
        assert!(x.narrow(1, 1, 2).unwrap().same_storage(&x));
    }

    #[test]
    fn slicing_with_a_step() {
        // torch.arange(12.).reshape(3, 4)[:, 1:4:2] = [[1, 3], [5, 7], [9, 11]]
        let s = grid().slice(1, 1, 4, 2).unwrap();
        assert_eq!(
            s.to_vec::<f32>().unwrap(),
            vec![1.0, 3.0, 5.0, 7.0, 9.0, 11.0]
        );
        assert_eq!(grid().slice(0, 2, 100, 1).unwrap().dims(), &[1, 4]);
        assert_eq!(grid().slice(0, 3, 3, 1).unwrap().dims(), &[0, 4]);
    }

    #[test]
    fn reshape_copies_only_when_needed() {
        let x = grid();
        assert!(x.reshape([2, 6]).unwrap().same_storage(&x));
        let t = x.t().unwrap();
        let flat = t.reshape([12]).unwrap();
        assert!(!flat.same_storage(&x));
        assert_eq!(flat.to_vec::<f32>().unwrap()[..3], [0.0, 4.0, 8.0]);
        assert!(t.view([12]).is_err());
        assert_eq!(
            x.reshape([5]).unwrap_err().to_string(),
            "reshape: shape mismatch between [3, 4] and [5]"
        );
    }

    #[test]
    fn squeeze_unsqueeze_expand_flatten() {
        let x = grid().unsqueeze(0).unwrap().unsqueeze(-1).unwrap();
        assert_eq!(x.dims(), &[1, 3, 4, 1]);
        assert_eq!(x.squeeze(0).unwrap().dims(), &[3, 4, 1]);
        assert_eq!(x.squeeze(1).unwrap().dims(), &[1, 3, 4, 1]);
        assert_eq!(x.squeeze_all().unwrap().dims(), &[3, 4]);
        assert_eq!(x.flatten(1, 2).unwrap().dims(), &[1, 12, 1]);
        let row = Tensor::from_vec(vec![1.0f32, 2.0], [1, 2]).unwrap();
        let e = row.expand([3, 2]).unwrap();
        assert_eq!(e.stride(), &[0, 1]);
        assert_eq!(
            e.to_vec::<f32>().unwrap(),
            vec![1.0, 2.0, 1.0, 2.0, 1.0, 2.0]
        );
        assert!(grid().transpose(0, 2).is_err());
    }
}
