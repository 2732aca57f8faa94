//! Reductions (`sum`, `mean`, `max`, ...) and softmax (statistics built on them:
//! `statistics.rs`). CPU kernels: `cpu/reduce.rs`, `cpu/softmax.rs`. Dimension lists accept
//! negative entries; an empty list means every dim.

use super::{ArgReduceOp, ReduceOp};
use crate::{Error, Result, Shape, Tensor};

impl Tensor {
    /// Resolves, sorts and deduplicates a dim list (empty = all dims).
    ///
    /// A 0-d tensor accepts dim `0` or `-1`, as in PyTorch, and reduces nothing.
    pub fn resolve_dims(&self, op: &'static str, dims: &[isize]) -> Result<Vec<usize>> {
        if dims.is_empty() {
            return Ok((0..self.rank()).collect());
        }
        if self.rank() == 0 {
            for &d in dims {
                crate::shape::resolve_dim(op, d, 1)?;
            }
            return Ok(Vec::new());
        }
        let mut out = dims
            .iter()
            .map(|&d| self.shape().dim(op, d))
            .collect::<Result<Vec<_>>>()?;
        out.sort_unstable();
        out.dedup();
        Ok(out)
    }

    /// The shape after reducing `dims` (kept as size 1, or removed).
    pub fn reduced_shape(&self, dims: &[usize], keepdim: bool) -> Shape {
        let kept = self.dims().iter().enumerate().filter_map(|(i, &d)| {
            if !dims.contains(&i) {
                Some(d)
            } else if keepdim {
                Some(1)
            } else {
                None
            }
        });
        Shape::new(kept.collect::<Vec<_>>())
    }

    /// Applies any [`ReduceOp`] over `dims` (empty = all).
    pub(crate) fn reduce_untracked(
        &self,
        op: ReduceOp,
        dims: &[isize],
        keepdim: bool,
    ) -> Result<Tensor> {
        let dims = self.resolve_dims(op.name(), dims)?;
        if matches!(op, ReduceOp::Max | ReduceOp::Min) && dims.iter().any(|&d| self.dims()[d] == 0)
        {
            return Err(Error::invalid(
                op.name(),
                format!("cannot reduce an empty dimension of {}", self.shape()),
            ));
        }
        let kept = self.reduced_shape(&dims, true);
        let out = self.map_storage(kept, |b, s, l| b.reduce(op, s, l, &dims))?;
        if keepdim {
            Ok(out)
        } else {
            out.reshape(self.reduced_shape(&dims, false))
        }
    }

    /// Sum over `dims` (empty = all). PyTorch equivalent: `torch.sum(x, dims, keepdim)`.
    /// Bool and u8 tensors are summed as i64 (a bool sum counts), as in PyTorch.
    pub fn sum(&self, dims: &[isize], keepdim: bool) -> Result<Tensor> {
        if matches!(self.dtype(), crate::DType::Bool | crate::DType::U8) {
            return self.to_dtype(crate::DType::I64)?.sum(dims, keepdim);
        }
        if let Some(x) = crate::autocast::widened(self)? {
            return x.sum(dims, keepdim);
        }
        self.reduce(ReduceOp::Sum, dims, keepdim)
    }

    /// Sum of every element, as a 0-d tensor.
    pub fn sum_all(&self) -> Result<Tensor> {
        self.sum(&[], false)
    }

    /// Product over `dims`. PyTorch equivalent: `torch.prod`.
    pub fn prod(&self, dims: &[isize], keepdim: bool) -> Result<Tensor> {
        if let Some(x) = crate::autocast::widened(self)? {
            return x.prod(dims, keepdim);
        }
        self.reduce(ReduceOp::Prod, dims, keepdim)
    }

    /// Largest value over `dims`. PyTorch equivalent: `torch.amax`.
    pub fn max(&self, dims: &[isize], keepdim: bool) -> Result<Tensor> {
        self.reduce(ReduceOp::Max, dims, keepdim)
    }

    /// Smallest value over `dims`. PyTorch equivalent: `torch.amin`.
    pub fn min(&self, dims: &[isize], keepdim: bool) -> Result<Tensor> {
        self.reduce(ReduceOp::Min, dims, keepdim)
    }

    /// Number of elements that reducing `dims` folds into each output.
    pub fn reduced_count(&self, dims: &[usize]) -> usize {
        dims.iter().map(|&d| self.dims()[d]).product()
    }

    /// Mean over `dims` (empty = all). PyTorch equivalent: `torch.mean`.
    /// Its values are the sum divided by the count before rounding to the dtype, as PyTorch's
    /// (the mean of f16 values whose sum overflows f16 is finite; NaN for an empty reduction);
    /// see [`crate::Backend::mean`].
    pub fn mean(&self, dims: &[isize], keepdim: bool) -> Result<Tensor> {
        self.check_float("mean")?;
        if let Some(x) = crate::autocast::widened(self)? {
            return x.mean(dims, keepdim);
        }
        self.mean_recorded(dims, keepdim)
    }

    /// Mean of every element, as a 0-d tensor.
    pub fn mean_all(&self) -> Result<Tensor> {
        self.mean(&[], false)
    }

    /// Applies any [`ArgReduceOp`] along `dim`, giving i64 indices.
    pub fn arg_reduce(&self, op: ArgReduceOp, dim: isize, keepdim: bool) -> Result<Tensor> {
        if self.rank() == 0 {
            // PyTorch: torch.tensor(3.).argmax(0) = tensor(0)
            crate::shape::resolve_dim(op.name(), dim, 1)?;
            return self.reshape([1])?.arg_reduce(op, 0, false)?.reshape(());
        }
        let d = self.shape().dim(op.name(), dim)?;
        let out = self.map_storage(self.reduced_shape(&[d], true), |b, s, l| {
            b.arg_reduce(op, s, l, d)
        })?;
        if keepdim {
            Ok(out)
        } else {
            out.reshape(self.reduced_shape(&[d], false))
        }
    }

    /// Index of the largest value along `dim` (first on ties). PyTorch equivalent: `torch.argmax`.
    pub fn argmax(&self, dim: isize, keepdim: bool) -> Result<Tensor> {
        self.arg_reduce(ArgReduceOp::ArgMax, dim, keepdim)
    }

    /// Index of the smallest value along `dim` (first on ties). PyTorch equivalent: `torch.argmin`.
    pub fn argmin(&self, dim: isize, keepdim: bool) -> Result<Tensor> {
        self.arg_reduce(ArgReduceOp::ArgMin, dim, keepdim)
    }

    /// Softmax along `dim` (max-subtracted, stable), untracked.
    pub(crate) fn softmax_untracked(&self, dim: isize) -> Result<Tensor> {
        self.softmax_impl(dim, false)
    }

    /// Log-softmax along `dim`, untracked.
    pub(crate) fn log_softmax_untracked(&self, dim: isize) -> Result<Tensor> {
        self.softmax_impl(dim, true)
    }

    fn softmax_impl(&self, dim: isize, log: bool) -> Result<Tensor> {
        let op = if log { "log_softmax" } else { "softmax" };
        self.check_float(op)?;
        if self.rank() == 0 {
            // PyTorch: torch.tensor(3.).softmax(0) = tensor(1.)
            crate::shape::resolve_dim(op, dim, 1)?;
            return self.reshape([1])?.softmax_impl(0, log)?.reshape(());
        }
        let d = self.shape().dim(op, dim)?;
        self.map_storage(self.shape().clone(), |b, s, l| b.softmax(s, l, d, log))
    }
}

#[cfg(test)]
mod tests {
    use crate::{DType, Device, Tensor};

    fn m() -> Tensor {
        // torch.tensor([[1., 5., 3.], [4., 2., 6.]])
        Tensor::from_vec(vec![1.0f32, 5.0, 3.0, 4.0, 2.0, 6.0], [2, 3]).unwrap()
    }

    #[test]
    fn sums_and_means_over_dims() {
        let x = m();
        assert_eq!(
            x.sum(&[0], false).unwrap().to_vec::<f32>().unwrap(),
            vec![5.0, 7.0, 9.0]
        );
        assert_eq!(x.sum(&[-1], true).unwrap().dims(), &[2, 1]);
        assert_eq!(
            x.sum(&[1], false).unwrap().to_vec::<f32>().unwrap(),
            vec![9.0, 12.0]
        );
        assert_eq!(x.sum_all().unwrap().to_scalar::<f32>().unwrap(), 21.0);
        assert_eq!(x.mean_all().unwrap().to_scalar::<f32>().unwrap(), 3.5);
        assert_eq!(
            x.t()
                .unwrap()
                .sum(&[0], false)
                .unwrap()
                .to_vec::<f32>()
                .unwrap(),
            vec![9.0, 12.0]
        );
    }

    #[test]
    fn max_min_arg_and_ties() {
        let x = m();
        let (v, i) = x.max_dim(1, false).unwrap();
        assert_eq!(v.to_vec::<f32>().unwrap(), vec![5.0, 6.0]);
        assert_eq!(i.to_vec::<i64>().unwrap(), vec![1, 2]);
        let ties = Tensor::from_vec(vec![2.0f32, 7.0, 7.0], [3]).unwrap();
        assert_eq!(
            ties.argmax(0, false).unwrap().to_scalar::<i64>().unwrap(),
            1
        );
        assert_eq!(
            x.argmin(0, false).unwrap().to_vec::<i64>().unwrap(),
            vec![0, 1, 0]
        );
        let empty = Tensor::zeros([0], DType::F32, &Device::cpu()).unwrap();
        assert!(empty.max(&[], false).is_err());
        assert_eq!(empty.sum_all().unwrap().to_scalar::<f32>().unwrap(), 0.0);
    }

    #[test]
    fn softmax_and_logsumexp_are_stable() {
        // torch.softmax(torch.tensor([1000., 1001., 1002.]), 0) = [0.0900, 0.2447, 0.6652]
        let x = Tensor::from_vec(vec![1000.0f32, 1001.0, 1002.0], [3]).unwrap();
        let s = x.softmax(0).unwrap().to_vec::<f32>().unwrap();
        for (a, b) in s.iter().zip([0.09003057f32, 0.24472847, 0.66524096]) {
            assert!((a - b).abs() < 1e-6);
        }
        // torch.logsumexp(x, 0) = 1002.4076
        let l = x
            .logsumexp(&[0], false)
            .unwrap()
            .to_scalar::<f32>()
            .unwrap();
        assert!((l - 1_002.407_6).abs() < 1e-3);
        let ls = x.log_softmax(0).unwrap().to_vec::<f32>().unwrap();
        assert!((ls[2] - (-0.407_605_96)).abs() < 1e-5);
        let minus_inf = Tensor::from_vec(vec![f32::NEG_INFINITY; 2], [2]).unwrap();
        assert_eq!(
            minus_inf
                .logsumexp(&[0], false)
                .unwrap()
                .to_scalar::<f32>()
                .unwrap(),
            f32::NEG_INFINITY
        );
    }

    #[test]
    fn softmax_along_a_middle_dim() {
        let x = Tensor::arange(0.0, 24.0, 1.0, DType::F64, &Device::cpu())
            .unwrap()
            .reshape([2, 3, 4])
            .unwrap();
        let s = x.softmax(1).unwrap();
        let sums = s.sum(&[1], false).unwrap().to_vec::<f64>().unwrap();
        assert!(sums.iter().all(|v| (v - 1.0).abs() < 1e-12));
        let naive = x
            .exp()
            .unwrap()
            .div(&x.exp().unwrap().sum(&[1], true).unwrap())
            .unwrap();
        for (a, b) in s
            .to_vec::<f64>()
            .unwrap()
            .iter()
            .zip(naive.to_vec::<f64>().unwrap())
        {
            assert!((a - b).abs() < 1e-12);
        }
    }
}
