//! Matrix products with PyTorch's `matmul` rules. CPU kernel: `cpu/matmul.rs`.

use crate::backend::MatmulDims;
use crate::{Error, Result, Shape, Tensor};

impl Tensor {
    /// Batched matrix product of operands with at least 2 dims: batch dims broadcast,
    /// transposed views are read without copies (`Tensor::matmul` adds torch's 1-d rules).
    pub(crate) fn matmul_untracked(&self, rhs: &Tensor) -> Result<Tensor> {
        const OP: &str = "matmul";
        self.check_same_device(OP, rhs)?;
        self.check_same_dtype(OP, rhs)?;
        let mismatch = || Error::ShapeMismatch {
            op: OP,
            lhs: self.shape().clone(),
            rhs: rhs.shape().clone(),
        };
        // 1-d operands were promoted by `Tensor::matmul` (grad/matmul.rs), which records them.
        if self.rank() < 2 || rhs.rank() < 2 {
            return Err(mismatch());
        }
        let (lhs2, rhs2) = (self, rhs);
        let (lr, rr) = (lhs2.rank(), rhs2.rank());
        let (m, k) = (lhs2.dims()[lr - 2], lhs2.dims()[lr - 1]);
        let (k2, n) = (rhs2.dims()[rr - 2], rhs2.dims()[rr - 1]);
        if k != k2 {
            return Err(mismatch());
        }
        let batch = Shape::new(lhs2.dims()[..lr - 2].to_vec())
            .broadcast(&Shape::new(rhs2.dims()[..rr - 2].to_vec()), OP)
            .map_err(|_| mismatch())?;
        let with_batch = |t: &Tensor, a: usize, b: usize| -> Result<crate::Layout> {
            let mut dims = batch.dims().to_vec();
            dims.extend([a, b]);
            t.layout().broadcast_to(&Shape::new(dims))
        };
        let (ll, rl) = (with_batch(lhs2, m, k)?, with_batch(rhs2, k, n)?);
        let spec = crate::MatmulSpec::new(MatmulDims {
            batch: batch.elem_count(),
            m,
            n,
            k,
        });
        let backend = self.device().backend();
        let out = lhs2.with_two_storages(rhs2, |a, b| backend.matmul(a, &ll, b, &rl, &spec))?;
        let mut out_dims = batch.dims().to_vec();
        out_dims.extend([m, n]);
        Tensor::from_storage(out, out_dims, self.device().clone())
    }
}

#[cfg(test)]
mod tests {
    use crate::{DType, Device, Tensor};

    fn naive(a: &[f64], b: &[f64], m: usize, k: usize, n: usize) -> Vec<f64> {
        let mut out = vec![0.0; m * n];
        for i in 0..m {
            for j in 0..n {
                out[i * n + j] = (0..k).map(|p| a[i * k + p] * b[p * n + j]).sum();
            }
        }
        out
    }

    #[test]
    fn two_by_two_matches_pytorch() {
        // torch.tensor([[1., 2.], [3., 4.]]) @ torch.tensor([[5., 6.], [7., 8.]]) = [[19, 22], [43, 50]]
        let a = Tensor::from_vec(vec![1.0f32, 2.0, 3.0, 4.0], [2, 2]).unwrap();
        let b = Tensor::from_vec(vec![5.0f32, 6.0, 7.0, 8.0], [2, 2]).unwrap();
        assert_eq!(
            a.matmul(&b).unwrap().to_vec::<f32>().unwrap(),
            vec![19.0, 22.0, 43.0, 50.0]
        );
        // transposed operand, read in place: a.T @ b = [[26, 30], [38, 44]]
        assert_eq!(
            a.t().unwrap().matmul(&b).unwrap().to_vec::<f32>().unwrap(),
            vec![26.0, 30.0, 38.0, 44.0]
        );
    }

    #[test]
    fn vector_promotion_rules() {
        let v = Tensor::from_vec(vec![1.0f64, 2.0, 3.0], [3]).unwrap();
        let m = Tensor::arange(0.0, 6.0, 1.0, DType::F64, &Device::cpu())
            .unwrap()
            .reshape([3, 2])
            .unwrap();
        assert_eq!(v.matmul(&v).unwrap().dims(), &[] as &[usize]);
        assert_eq!(v.matmul(&v).unwrap().to_scalar::<f64>().unwrap(), 14.0);
        assert_eq!(
            v.matmul(&m).unwrap().to_vec::<f64>().unwrap(),
            vec![16.0, 22.0]
        );
        // torch.arange(6.).reshape(3, 2).T @ torch.tensor([1., 2., 3.]) = [16, 22]
        assert_eq!(
            m.t().unwrap().matmul(&v).unwrap().to_vec::<f64>().unwrap(),
            vec![16.0, 22.0]
        );
        assert!(m.matmul(&m).is_err());
    }

    #[test]
    fn batched_with_broadcast_batch_dims() {
        let a = Tensor::arange(0.0, 24.0, 1.0, DType::F64, &Device::cpu())
            .unwrap()
            .reshape([2, 1, 3, 4])
            .unwrap();
        let b = Tensor::arange(0.0, 60.0, 1.0, DType::F64, &Device::cpu())
            .unwrap()
            .reshape([3, 4, 5])
            .unwrap();
        let out = a.matmul(&b).unwrap();
        assert_eq!(out.dims(), &[2, 3, 3, 5]);
        let (av, bv, ov) = (
            a.to_vec::<f64>().unwrap(),
            b.to_vec::<f64>().unwrap(),
            out.to_vec::<f64>().unwrap(),
        );
        for i in 0..2 {
            for j in 0..3 {
                let expect = naive(&av[i * 12..i * 12 + 12], &bv[j * 20..j * 20 + 20], 3, 4, 5);
                assert_eq!(&ov[(i * 3 + j) * 15..(i * 3 + j) * 15 + 15], &expect[..]);
            }
        }
    }

    #[test]
    fn zero_sized_dims() {
        let a = Tensor::zeros([3, 0], DType::F32, &Device::cpu()).unwrap();
        let b = Tensor::zeros([0, 4], DType::F32, &Device::cpu()).unwrap();
        assert_eq!(
            a.matmul(&b).unwrap().to_vec::<f32>().unwrap(),
            vec![0.0; 12]
        );
        assert_eq!(
            b.t().unwrap().matmul(&a.t().unwrap()).unwrap().dims(),
            &[4, 3]
        );
    }
}
