//! Gradient clipping's multi-tensor ops ([`Tensor::pow_sum_many`], [`Tensor::mul_many_`]):
//! PyTorch's `torch._foreach_norm` and `torch._foreach_mul_`. On the GPU the dense tensors of
//! one dtype take one multi-tensor kernel a few dozen (and, for the norm, one reduction), where
//! each tensor's ops take several launches; the CPU folds the norm where the tensors lie. A
//! backend without such kernels runs each tensor's ops, which define the values.

use super::many::{by_distinct_storage, groups_by, with_dense_runs, write_dense_runs};
use crate::{DType, Device, Error, Result, Tensor, no_grad};

/// `Σ |x|^p` of one tensor in f64 (the largest `|x|` for `p = ∞`), with its own ops: what a
/// backend's multi-tensor kernel computes, up to the order of the f64 sum.
fn pow_sum_one(t: &Tensor, p: f64) -> Result<Tensor> {
    let a = t.to_dtype(DType::F64)?.abs()?;
    if p == f64::INFINITY {
        a.max(&[], false)
    } else if p == 2.0 {
        a.square()?.sum_all()
    } else if p == 1.0 {
        a.sum_all()
    } else {
        a.powf(p)?.sum_all()
    }
}

impl Tensor {
    /// `Σ |x|^p` over every element of every tensor of `tensors`, computed in f64: the `p`-th
    /// power of their joint `p`-norm (for `p = ∞` the largest `|x|`, the norm itself), as a
    /// 0-d f64 tensor on their device (all share one; 0 on the CPU for no tensors). NaN
    /// propagates. Not recorded by autograd. `p` must be positive (or `f64::INFINITY`).
    ///
    /// On the GPU the dense tensors of each dtype take one multi-tensor kernel a few dozen and
    /// one reduction (PyTorch's `torch._foreach_norm`, as `clip_grad_norm_` uses it); the f64
    /// sums then differ from the CPU's in their order only.
    pub fn pow_sum_many(tensors: &[&Tensor], p: f64) -> Result<Tensor> {
        const OP: &str = "pow_sum_many";
        if p.is_nan() || p <= 0.0 {
            return Err(Error::invalid(OP, format!("p must be positive, got {p}")));
        }
        let Some(first) = tensors.first() else {
            return Tensor::zeros((), DType::F64, &Device::cpu());
        };
        for t in tensors {
            t.check_float(OP)?;
            first.check_same_device(OP, t)?;
        }
        let _guard = no_grad();
        let device = first.device();
        let backend = device.backend();
        let (dense, mut rest): (Vec<&Tensor>, Vec<&Tensor>) =
            tensors.iter().copied().partition(|t| t.is_contiguous());
        let mut parts: Vec<Tensor> = Vec::new();
        for (_, members) in groups_by(&dense, |t| t.dtype()) {
            let group: Vec<&Tensor> = members.iter().map(|&i| dense[i]).collect();
            let lens: Vec<usize> = group.iter().map(|t| t.elem_count()).collect();
            let sum = with_dense_runs(&group, |runs| backend.pow_sum_many(runs, &lens, p))?;
            match sum {
                Some(storage) => parts.push(Tensor::from_storage(storage, (), device.clone())?),
                None => rest.extend(group),
            }
        }
        for t in rest.into_iter().filter(|t| t.elem_count() > 0) {
            parts.push(pow_sum_one(t, p)?);
        }
        let Some((total, others)) = parts.split_first() else {
            return Tensor::zeros((), DType::F64, device);
        };
        others.iter().try_fold(total.clone(), |acc, part| {
            if p == f64::INFINITY {
                acc.maximum(part)
            } else {
                acc.add(part)
            }
        })
    }

    /// `t *= factor` in place for every tensor `t` of `tensors` (PyTorch's
    /// `torch._foreach_mul_(tensors, factor)`), `factor` one float element, taken to each
    /// tensor's device and dtype once: the values of `t.mul_(&factor)` with `factor` in `t`'s
    /// dtype. On the GPU the dense tensors of one device and dtype that autograd does not
    /// record take one multi-tensor kernel a few dozen (tensors sharing a storage go to
    /// separate launches); the others run `mul_` one by one (with its errors).
    pub fn mul_many_(tensors: &[&Tensor], factor: &Tensor) -> Result<()> {
        const OP: &str = "mul_many_";
        factor.check_float(OP)?;
        factor.check_one_element(OP)?;
        for t in tensors {
            t.check_float(OP)?;
        }
        // Each device's tensors of each dtype, with the factor made for them.
        for ((device, dtype), members) in groups_by(tensors, |t| (t.device().clone(), t.dtype())) {
            let factor = factor.to_device(&device)?.to_dtype(dtype)?.reshape(())?;
            let group = members.iter().map(|&i| tensors[i]);
            let batched =
                |t: &&Tensor| t.is_contiguous() && !(crate::is_grad_enabled() && t.requires_grad());
            let (batch, others): (Vec<&Tensor>, Vec<&Tensor>) = group.partition(batched);
            for t in others {
                t.mul_(&factor)?;
            }
            for launch in by_distinct_storage(batch) {
                if !mul_launch(&launch, &factor)? {
                    for t in launch {
                        t.mul_(&factor)?;
                    }
                }
            }
        }
        Ok(())
    }
}

/// One multi-tensor `mul_many` of dense tensors in storages of their own, by `factor` (of their
/// device and dtype); `false`, with nothing written, where the backend has no kernel or
/// `factor` shares a storage with one of them.
fn mul_launch(tensors: &[&Tensor], factor: &Tensor) -> Result<bool> {
    let Some(first) = tensors.first() else {
        return Ok(true);
    };
    let backend = first.device().backend();
    let lens: Vec<usize> = tensors.iter().map(|t| t.elem_count()).collect();
    write_dense_runs(tensors, &[factor], |runs, sources| {
        backend.mul_many(runs, &lens, sources[0])
    })
}
