//! [`Tensor::check_in_range`]: a check of a tensor's values (binary cross entropy's
//! probabilities in `[0, 1]`) that a device queuing its work (CUDA) queues too and reports at
//! its next wait, as it does its index checks, instead of waiting for the device at every call.

use crate::{CmpOp, DType, Error, Result, Tensor, with_no_grad};

impl Tensor {
    /// Checks that every element lies in `[range.0, range.1]` (NaN does not): otherwise an
    /// `Error::InvalidArgument` from `op` with `message` and the first element outside. On a
    /// device that queues its work ([`crate::DeferredOps::defer_range_check`]) the check is queued
    /// too, and its failure comes back from the next wait for that device (a download such as
    /// `loss.item()`, or a synchronize), as PyTorch's device-side asserts do, without their
    /// fatal context; elsewhere it is made at once. Nothing is recorded for autograd.
    pub fn check_in_range(&self, op: &'static str, range: (f64, f64), message: &str) -> Result<()> {
        if self.elem_count() == 0 {
            return Ok(());
        }
        let backend = self.device().backend();
        if self.dtype().is_float() {
            let queued =
                self.with_storage(|s, l| backend.defer_range_check(op, (s, l), range, message))?;
            if queued {
                return Ok(());
            }
        }
        with_no_grad(|| {
            let flat = self.flatten_all()?;
            let above = flat
                .compare_scalar(CmpOp::Ge, range.0)?
                .to_dtype(DType::F32)?;
            let below = flat
                .compare_scalar(CmpOp::Le, range.1)?
                .to_dtype(DType::F32)?;
            let inside = above.mul(&below)?;
            // The first element outside is the first 0 of `inside`, if its minimum is 0.
            let first = inside.argmin(0, false)?.item()? as usize;
            if inside.narrow(0, first, 1)?.item()? == 1.0 {
                return Ok(());
            }
            let value = flat.narrow(0, first, 1)?.to_dtype(DType::F64)?.item()?;
            Err(Error::invalid(
                op,
                format!("{message} (element {first} is {value})"),
            ))
        })
    }
}

#[cfg(test)]
mod tests {
    use crate::{DType, Device, Tensor};

    #[test]
    fn the_first_element_outside_or_nan_is_named_and_the_bounds_are_inside() {
        let cpu = Device::cpu();
        let ok = Tensor::from_vec(vec![0.0f32, 0.5, 1.0], [3]).unwrap();
        ok.check_in_range("bce", (0.0, 1.0), "all in [0, 1]")
            .unwrap();
        let bad = Tensor::from_vec(vec![0.5f64, 1.5, -1.0, 2.0], [2, 2]).unwrap();
        let err = bad
            .check_in_range("bce", (0.0, 1.0), "all in [0, 1]")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("bce") && err.contains("all in [0, 1] (element 1 is 1.5)"),
            "{err}"
        );
        let nan = Tensor::from_vec(vec![0.5f32, f32::NAN], [2]).unwrap();
        let err = nan.check_in_range("bce", (0.0, 1.0), "m").unwrap_err();
        assert!(err.to_string().contains("(element 1 is NaN)"), "{err}");
        let ints = Tensor::from_vec(vec![0i64, 3], [2]).unwrap();
        let err = ints.check_in_range("op", (0.0, 1.0), "m").unwrap_err();
        assert!(err.to_string().contains("(element 1 is 3)"), "{err}");
        let empty = Tensor::zeros([0, 4], DType::F32, &cpu).unwrap();
        empty.check_in_range("op", (0.0, 1.0), "m").unwrap();
    }
}
