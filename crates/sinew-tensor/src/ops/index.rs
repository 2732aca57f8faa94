//! Joining, splitting and indexing: cat, stack, split, chunk, index_select, gather, scatter,
//! one_hot and pad. CPU kernels: `cpu/index.rs` (cat and pad write through `copy_`).

use crate::backend::ScatterMode;
use crate::{DType, Error, Result, Tensor};

/// How [`Tensor::pad`] fills the border.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum PadMode {
    /// A constant value (PyTorch `mode='constant'`).
    Constant(f64),
    /// Mirror without repeating the edge (PyTorch `mode='reflect'`); each pad below the size.
    Reflect,
    /// Repeat the edge (PyTorch `mode='replicate'`); the padded dims must not be empty.
    Replicate,
    /// Wrap around (PyTorch `mode='circular'`); each pad at most the size.
    Circular,
}

impl Tensor {
    /// Joins tensors along an existing dim. PyTorch equivalent: `torch.cat`.
    pub(crate) fn cat_untracked(tensors: &[Tensor], dim: isize) -> Result<Tensor> {
        let first = tensors
            .first()
            .ok_or_else(|| Error::invalid("cat", "needs at least one tensor"))?;
        let d = first.shape().dim("cat", dim)?;
        let mut total = 0;
        for t in tensors {
            first.check_same_device("cat", t)?;
            first.check_same_dtype("cat", t)?;
            let same_rest = t.rank() == first.rank()
                && t.dims()
                    .iter()
                    .zip(first.dims())
                    .enumerate()
                    .all(|(i, (a, b))| i == d || a == b);
            if !same_rest {
                return Err(Error::ShapeMismatch {
                    op: "cat",
                    lhs: first.shape().clone(),
                    rhs: t.shape().clone(),
                });
            }
            total = usize::checked_add(total, t.dims()[d]).ok_or_else(|| Error::Overflow {
                op: "cat",
                what: format!("the total size of dim {d} ({total} + {})", t.dims()[d]),
            })?;
        }
        let mut dims = first.dims().to_vec();
        dims[d] = total;
        let out = Tensor::zeros(dims, first.dtype(), first.device())?;
        let mut start = 0;
        for t in tensors {
            let len = t.dims()[d];
            out.narrow(d as isize, start, len)?.copy_(t)?;
            start += len;
        }
        Ok(out)
    }

    /// Joins tensors of one shape along a new dim. PyTorch equivalent: `torch.stack`.
    pub fn stack(tensors: &[Tensor], dim: isize) -> Result<Tensor> {
        let unsqueezed = tensors
            .iter()
            .map(|t| t.unsqueeze(dim))
            .collect::<Result<Vec<_>>>()?;
        Tensor::cat(&unsqueezed, dim)
    }

    /// Views of consecutive pieces of `size` along `dim` (the last may be smaller).
    /// PyTorch equivalent: `torch.split(x, size, dim)`.
    pub fn split(&self, size: usize, dim: isize) -> Result<Vec<Tensor>> {
        if size == 0 {
            return Err(Error::invalid("split", "piece size must be positive"));
        }
        let d = self.shape().dim("split", dim)?;
        let n = self.dims()[d];
        (0..n)
            .step_by(size)
            .map(|s| self.narrow(d as isize, s, size.min(n - s)))
            .collect()
    }

    /// Views of consecutive pieces of the given sizes along `dim`; sizes must add up to the dim.
    pub fn split_sizes(&self, sizes: &[usize], dim: isize) -> Result<Vec<Tensor>> {
        let d = self.shape().dim("split_sizes", dim)?;
        if sizes.iter().sum::<usize>() != self.dims()[d] {
            return Err(Error::invalid(
                "split_sizes",
                format!("sizes {sizes:?} do not add up to {}", self.dims()[d]),
            ));
        }
        let mut start = 0;
        sizes
            .iter()
            .map(|&len| {
                let piece = self.narrow(d as isize, start, len);
                start += len;
                piece
            })
            .collect()
    }

    /// At most `chunks` views of equal size along `dim`. PyTorch equivalent: `torch.chunk`.
    pub fn chunk(&self, chunks: usize, dim: isize) -> Result<Vec<Tensor>> {
        if chunks == 0 {
            return Err(Error::invalid("chunk", "number of chunks must be positive"));
        }
        let n = self.dim(dim)?;
        self.split(n.div_ceil(chunks).max(1), dim)
    }

    fn check_index(&self, op: &'static str, index: &Tensor) -> Result<()> {
        self.check_same_device(op, index)?;
        if index.dtype() != DType::I64 {
            return Err(Error::UnsupportedDType {
                op,
                dtype: index.dtype(),
            });
        }
        Ok(())
    }

    /// Entries along `dim` at the positions of a 1-d i64 `indices`. PyTorch: `index_select`.
    pub(crate) fn index_select_untracked(&self, dim: isize, indices: &Tensor) -> Result<Tensor> {
        self.check_index("index_select", indices)?;
        if indices.rank() != 1 {
            return Err(Error::invalid(
                "index_select",
                format!("indices must be 1-d, got shape {}", indices.shape()),
            ));
        }
        let d = self.shape().dim("index_select", dim)?;
        let mut dims = self.dims().to_vec();
        dims[d] = indices.elem_count();
        let backend = self.device().backend();
        let out = self.with_two_storages(indices, |s, i| {
            backend.index_select(s, self.layout(), i, indices.layout(), d)
        })?;
        Tensor::from_storage(out, dims, self.device().clone())
    }

    fn check_gather_shape(&self, op: &'static str, index: &Tensor, d: usize) -> Result<()> {
        let fits = index.rank() == self.rank()
            && index
                .dims()
                .iter()
                .zip(self.dims())
                .enumerate()
                .all(|(i, (a, b))| i == d || a <= b);
        if !fits {
            return Err(Error::ShapeMismatch {
                op,
                lhs: self.shape().clone(),
                rhs: index.shape().clone(),
            });
        }
        Ok(())
    }

    /// `out[i][j] = self[i][index[i][j]]` along `dim`. PyTorch equivalent: `torch.gather`.
    pub(crate) fn gather_untracked(&self, dim: isize, index: &Tensor) -> Result<Tensor> {
        self.check_index("gather", index)?;
        let d = self.shape().dim("gather", dim)?;
        self.check_gather_shape("gather", index, d)?;
        let backend = self.device().backend();
        let out = self.with_two_storages(index, |s, i| {
            backend.gather(s, self.layout(), i, index.layout(), d)
        })?;
        Tensor::from_storage(out, index.shape().clone(), self.device().clone())
    }

    fn scatter_impl(
        &self,
        op: &'static str,
        dim: isize,
        index: &Tensor,
        values: &Tensor,
        mode: ScatterMode,
    ) -> Result<Tensor> {
        self.check_index(op, index)?;
        self.check_same_device(op, values)?;
        self.check_same_dtype(op, values)?;
        let d = self.shape().dim(op, dim)?;
        self.check_gather_shape(op, index, d)?;
        let fits = values.rank() == index.rank()
            && index.dims().iter().zip(values.dims()).all(|(a, b)| a <= b);
        if !fits {
            return Err(Error::ShapeMismatch {
                op,
                lhs: index.shape().clone(),
                rhs: values.shape().clone(),
            });
        }
        let backend = self.device().backend();
        let out = Tensor::with_storages([self, index, values], |[base, i, v]| {
            backend.scatter(
                base,
                self.layout(),
                i,
                index.layout(),
                v,
                values.layout(),
                d,
                mode,
            )
        })?;
        Tensor::from_storage(out, self.shape().clone(), self.device().clone())
    }

    /// A copy with `values[p]` written at `p` with `dim` replaced by `index[p]`.
    /// PyTorch equivalent: `x.scatter(dim, index, values)` (duplicates: the last write wins).
    pub(crate) fn scatter_untracked(
        &self,
        dim: isize,
        index: &Tensor,
        values: &Tensor,
    ) -> Result<Tensor> {
        self.scatter_impl("scatter", dim, index, values, ScatterMode::Replace)
    }

    /// A copy with `values[p]` added at `p` with `dim` replaced by `index[p]`.
    /// PyTorch equivalent: `x.scatter_add(dim, index, values)`.
    pub(crate) fn scatter_add_untracked(
        &self,
        dim: isize,
        index: &Tensor,
        values: &Tensor,
    ) -> Result<Tensor> {
        self.scatter_impl("scatter_add", dim, index, values, ScatterMode::Add)
    }

    /// One-hot encoding of i64 class indices, adding a last dim of `num_classes` (i64 0/1).
    /// PyTorch equivalent: `F.one_hot(x, num_classes)`.
    pub fn one_hot(&self, num_classes: usize) -> Result<Tensor> {
        if self.dtype() != DType::I64 {
            return Err(Error::UnsupportedDType {
                op: "one_hot",
                dtype: self.dtype(),
            });
        }
        let classes = Tensor::arange(0.0, num_classes as f64, 1.0, DType::I64, self.device())?;
        let labels = self.unsqueeze(-1)?;
        let bad = labels
            .lt_scalar(0.0)?
            .to_vec::<bool>()?
            .iter()
            .zip(labels.ge_scalar(num_classes as f64)?.to_vec::<bool>()?)
            .any(|(a, b)| *a || b);
        if bad {
            let v = self
                .to_vec::<i64>()?
                .into_iter()
                .find(|&v| v < 0 || v as usize >= num_classes)
                .unwrap_or(-1);
            return Err(Error::IndexOutOfBounds {
                op: "one_hot",
                index: v,
                size: num_classes,
            });
        }
        labels.eq(&classes)?.to_dtype(DType::I64)
    }

    /// Pads the last `pads.len()` dims; `pads[i] = (before, after)` for the i-th of those dims,
    /// outermost first. PyTorch's `F.pad` lists the last dim first; this takes them in order.
    pub(crate) fn pad_untracked(&self, pads: &[(usize, usize)], mode: PadMode) -> Result<Tensor> {
        if pads.len() > self.rank() {
            return Err(Error::invalid(
                "pad",
                format!(
                    "{} padded dims for a tensor of rank {}",
                    pads.len(),
                    self.rank()
                ),
            ));
        }
        let first = self.rank() - pads.len();
        match mode {
            PadMode::Constant(value) => {
                let mut dims = self.dims().to_vec();
                for (i, &(b, a)) in pads.iter().enumerate() {
                    let size = dims[first + i];
                    dims[first + i] = size
                        .checked_add(b)
                        .and_then(|x| x.checked_add(a))
                        .ok_or_else(|| Error::Overflow {
                            op: "pad",
                            what: format!(
                                "the padded size {size} + {b} + {a} of dim {}",
                                first + i
                            ),
                        })?;
                }
                let out = Tensor::full(dims, value, self.dtype(), self.device())?;
                let mut inner = out.clone();
                for (i, &(b, _)) in pads.iter().enumerate() {
                    inner = inner.narrow((first + i) as isize, b, self.dims()[first + i])?;
                }
                inner.copy_(self)?;
                Ok(out)
            }
            _ => {
                let mut out = self.clone();
                for (dim, index) in self.pad_indices(pads, mode)? {
                    out = out.index_select_untracked(dim as isize, &index)?;
                }
                Ok(out)
            }
        }
    }

    /// For reflect, replicate or circular padding of the last `pads.len()` dims: each padded
    /// dim with the i64 index that `index_select` along it turns into the padded tensor (shared
    /// with autograd).
    pub fn pad_indices(
        &self,
        pads: &[(usize, usize)],
        mode: PadMode,
    ) -> Result<Vec<(usize, Tensor)>> {
        let first = self.rank().checked_sub(pads.len()).ok_or_else(|| {
            Error::invalid(
                "pad",
                format!(
                    "{} padded dims for a tensor of rank {}",
                    pads.len(),
                    self.rank()
                ),
            )
        })?;
        pads.iter()
            .enumerate()
            .map(|(i, &(b, a))| {
                let d = first + i;
                let n = self.dims()[d];
                let misfit = match mode {
                    PadMode::Reflect if b >= n || a >= n => "must be below",
                    PadMode::Replicate if n == 0 && (b, a) != (0, 0) => "needs a value in",
                    // More would wrap around more than once.
                    PadMode::Circular if b > n || a > n => "must be at most",
                    _ => "",
                };
                if !misfit.is_empty() {
                    return Err(Error::invalid(
                        "pad",
                        format!("{mode:?} padding ({b}, {a}) {misfit} the size {n} of dim {d}")
                            .to_lowercase(),
                    ));
                }
                let len = n.checked_add(b).and_then(|l| l.checked_add(a));
                let len = len.ok_or_else(|| Error::Overflow {
                    op: "pad",
                    what: format!("the padded size {n} + {b} + {a} of dim {d}"),
                })?;
                let mut idx = crate::cpu::alloc::try_with_capacity("pad", len)?;
                // Each source position fits in i64: `n` is a dim of an addressable tensor.
                let source = |k: usize| -> usize {
                    match mode {
                        // Positions before the start count down from `b`; after the end,
                        // back from `n - 2`.
                        PadMode::Reflect if k < b => b - k,
                        PadMode::Reflect if k >= b + n => 2 * n + b - 2 - k,
                        PadMode::Replicate if k < b => 0,
                        PadMode::Replicate if k >= b + n => n - 1,
                        PadMode::Circular => (k + n - b % n.max(1)) % n.max(1),
                        _ => k - b,
                    }
                };
                idx.extend((0..len).map(|k| source(k) as i64));
                Ok((d, Tensor::from_vec_on(idx, [len], self.device())?))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::PadMode;
    use crate::{DType, Device, Tensor};

    fn grid() -> Tensor {
        Tensor::arange(0.0, 6.0, 1.0, DType::F32, &Device::cpu())
            .unwrap()
            .reshape([2, 3])
            .unwrap()
    }

    fn ids(v: &[i64]) -> Tensor {
        Tensor::from_slice(v, [v.len()]).unwrap()
    }

    #[test]
    fn cat_stack_split_chunk() {
        let x = grid();
        let c = Tensor::cat(&[x.clone(), x.clone()], 1).unwrap();
        assert_eq!(c.dims(), &[2, 6]);
        assert_eq!(
            c.to_vec::<f32>().unwrap()[..6],
            [0.0, 1.0, 2.0, 0.0, 1.0, 2.0]
        );
        assert_eq!(
            Tensor::stack(&[x.clone(), x.clone()], 0).unwrap().dims(),
            &[2, 2, 3]
        );
        let parts = c.split(4, 1).unwrap();
        assert_eq!(
            parts.iter().map(|p| p.dims()[1]).collect::<Vec<_>>(),
            vec![4, 2]
        );
        assert_eq!(c.chunk(3, 1).unwrap().len(), 3);
        assert!(Tensor::cat(&[x.clone(), x.t().unwrap()], 0).is_err());
    }

    #[test]
    fn index_select_and_gather_match_pytorch() {
        let x = grid();
        // x.index_select(1, torch.tensor([2, 0])) = [[2, 0], [5, 3]]
        assert_eq!(
            x.index_select(1, &ids(&[2, 0]))
                .unwrap()
                .to_vec::<f32>()
                .unwrap(),
            vec![2.0, 0.0, 5.0, 3.0]
        );
        // torch.gather(x, 1, torch.tensor([[0, 0], [1, 2]])) = [[0, 0], [4, 5]]
        let idx = Tensor::from_vec(vec![0i64, 0, 1, 2], [2, 2]).unwrap();
        assert_eq!(
            x.gather(1, &idx).unwrap().to_vec::<f32>().unwrap(),
            vec![0.0, 0.0, 4.0, 5.0]
        );
        let err = x.index_select(1, &ids(&[3])).unwrap_err();
        assert_eq!(
            err.to_string(),
            "index_select: index 3 out of bounds for size 3"
        );
    }

    #[test]
    fn scatter_and_scatter_add() {
        let z = Tensor::zeros([2, 3], DType::F32, &Device::cpu()).unwrap();
        let idx = Tensor::from_vec(vec![1i64, 1, 0, 2], [2, 2]).unwrap();
        let v = Tensor::from_vec(vec![1.0f32, 2.0, 3.0, 4.0], [2, 2]).unwrap();
        // torch.zeros(2, 3).scatter_add(1, idx, v) = [[0, 3, 0], [3, 0, 4]]
        assert_eq!(
            z.scatter_add(1, &idx, &v).unwrap().to_vec::<f32>().unwrap(),
            vec![0.0, 3.0, 0.0, 3.0, 0.0, 4.0]
        );
        assert_eq!(
            z.scatter(1, &idx, &v).unwrap().to_vec::<f32>().unwrap(),
            vec![0.0, 2.0, 0.0, 3.0, 0.0, 4.0]
        );
    }

    #[test]
    fn one_hot_and_pad() {
        let oh = ids(&[2, 0]).one_hot(3).unwrap();
        assert_eq!(oh.to_vec::<i64>().unwrap(), vec![0, 0, 1, 1, 0, 0]);
        assert!(ids(&[3]).one_hot(3).is_err());
        let x = grid();
        let p = x.pad(&[(1, 0)], PadMode::Constant(9.0)).unwrap();
        assert_eq!(
            p.to_vec::<f32>().unwrap(),
            vec![9.0, 0.0, 1.0, 2.0, 9.0, 3.0, 4.0, 5.0]
        );
        // F.pad(torch.arange(6.).reshape(2, 3), (2, 1), mode='reflect') = [[2, 1, 0, 1, 2, 1], [5, 4, 3, 4, 5, 4]]
        let r = x.pad(&[(2, 1)], PadMode::Reflect).unwrap();
        assert_eq!(
            r.to_vec::<f32>().unwrap(),
            vec![2.0, 1.0, 0.0, 1.0, 2.0, 1.0, 5.0, 4.0, 3.0, 4.0, 5.0, 4.0]
        );
        // F.pad(x, (2, 1), mode='replicate') = [[0, 0, 0, 1, 2, 2], [3, 3, 3, 4, 5, 5]]
        let r = x.pad(&[(2, 1)], PadMode::Replicate).unwrap();
        assert_eq!(
            r.to_vec::<f32>().unwrap(),
            vec![0.0, 0.0, 0.0, 1.0, 2.0, 2.0, 3.0, 3.0, 3.0, 4.0, 5.0, 5.0]
        );
        // F.pad(x, (2, 3), mode='circular') = [[1, 2, 0, 1, 2, 0, 1, 2], [4, 5, 3, 4, 5, 3, 4, 5]]
        let r = x.pad(&[(2, 3)], PadMode::Circular).unwrap();
        assert_eq!(
            r.to_vec::<f32>().unwrap(),
            vec![
                1.0, 2.0, 0.0, 1.0, 2.0, 0.0, 1.0, 2.0, 4.0, 5.0, 3.0, 4.0, 5.0, 3.0, 4.0, 5.0
            ]
        );
        // "Padding value causes wrapping around more than once"; reflect needs pads below the
        // size; replicate needs a value to repeat.
        assert!(x.pad(&[(4, 0)], PadMode::Circular).is_err());
        assert!(x.pad(&[(3, 0)], PadMode::Reflect).is_err());
        let empty = Tensor::zeros([2, 0], DType::F32, &Device::cpu()).unwrap();
        assert!(empty.pad(&[(1, 0)], PadMode::Replicate).is_err());
        assert_eq!(
            empty.pad(&[(0, 0)], PadMode::Replicate).unwrap().dims(),
            &[2, 0]
        );
    }
}
