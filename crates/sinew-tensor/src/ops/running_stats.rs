//! Batch norm's running statistics update ([`Tensor::update_running_stats_`]): the two `lerp_`s
//! of PyTorch's training-mode `batch_norm`, with their casts and the variance's unbiasing, as
//! one kernel where the backend has one (CUDA: `running_stats_<dtype>` in `cuda/channel.cu`)
//! in place of five of `C` elements. The in-place ops below are the reference and every other
//! backend's path; a kernel gives their values bit for bit.

use crate::{DType, Error, Result, Tensor};

impl Tensor {
    /// Updates batch norm's running statistics in place from a batch's `[C]` statistics:
    /// `running_mean = lerp(running_mean, mean, momentum)` and
    /// `running_var = lerp(running_var, var * unbias, momentum)`, where `var` is the batch's
    /// biased variance and `unbias` is `n / (n - 1)` for `n` values a channel (PyTorch's
    /// update). `var * unbias` is taken in `var`'s dtype, and both statistics are converted to
    /// the running buffers' dtype before the `lerp_`. Nothing is recorded for autograd.
    pub fn update_running_stats_(
        running_mean: &Tensor,
        running_var: &Tensor,
        mean: &Tensor,
        var: &Tensor,
        momentum: f64,
        unbias: f64,
    ) -> Result<()> {
        const OP: &str = "update_running_stats_";
        let c = running_mean.elem_count();
        for t in [running_mean, running_var, mean, var] {
            running_mean.check_same_device(OP, t)?;
            t.check_float(OP)?;
            if t.rank() != 1 || t.elem_count() != c {
                return Err(Error::ShapeMismatch {
                    op: OP,
                    lhs: crate::Shape::new([c]),
                    rhs: t.shape().clone(),
                });
            }
        }
        let _guard = crate::no_grad();
        if Tensor::fused_running_stats(running_mean, running_var, mean, var, momentum, unbias)? {
            return Ok(());
        }
        running_mean.lerp_(&mean.to_dtype(running_mean.dtype())?, momentum)?;
        let unbiased = var.mul_scalar(unbias)?;
        running_var.lerp_(&unbiased.to_dtype(running_var.dtype())?, momentum)
    }

    /// The update as the backend's one kernel: running buffers of one dtype, f64 statistics,
    /// all dense; `false`, with nothing written, otherwise.
    fn fused_running_stats(
        running_mean: &Tensor,
        running_var: &Tensor,
        mean: &Tensor,
        var: &Tensor,
        momentum: f64,
        unbias: f64,
    ) -> Result<bool> {
        let dense = [running_mean, running_var, mean, var]
            .iter()
            .all(|t| t.is_contiguous());
        let dtypes = running_var.dtype() == running_mean.dtype()
            && mean.dtype() == DType::F64
            && var.dtype() == DType::F64;
        if !dense || !dtypes {
            return Ok(false);
        }
        let start = |t: &Tensor| t.layout().contiguous_offset().map_or(0, |(s, _)| s);
        // The statistics are often two rows of one storage (channel_norm's output): read it once.
        let shared = var.same_storage(mean);
        let srcs: Vec<&Tensor> = if shared { vec![mean] } else { vec![mean, var] };
        let backend = running_mean.device().backend();
        let c = running_mean.elem_count();
        Tensor::write_many(&[running_mean, running_var], &srcs, |dsts, stats| {
            let [rm, rv] = dsts else {
                unreachable!("two destinations")
            };
            let var_storage = if shared { stats[0] } else { stats[1] };
            backend.update_running_stats(
                [
                    (&mut **rm, start(running_mean)),
                    (&mut **rv, start(running_var)),
                ],
                [(stats[0], start(mean)), (var_storage, start(var))],
                c,
                momentum,
                unbias,
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use crate::{DType, Device, Result, Tensor};

    #[test]
    fn lerps_the_mean_and_the_unbiased_variance() -> Result<()> {
        let cpu = Device::cpu();
        let rm = Tensor::zeros([2], DType::F32, &cpu)?;
        let rv = Tensor::ones([2], DType::F32, &cpu)?;
        let stats = Tensor::from_vec(vec![1.0f64, -2.0, 3.0, 0.5], [2, 2])?;
        let (mean, var) = (
            stats.narrow(0, 0, 1)?.squeeze(0)?,
            stats.narrow(0, 1, 1)?.squeeze(0)?,
        );
        Tensor::update_running_stats_(&rm, &rv, &mean, &var, 0.1, 2.0)?;
        assert_eq!(rm.to_vec::<f32>()?, [0.1, -0.2]);
        // 0.9 * 1 + 0.1 * (2 * var)
        assert_eq!(
            rv.to_vec::<f32>()?,
            [1.0 + 0.1 * (6.0 - 1.0), 1.0 + 0.1 * (1.0 - 1.0)]
        );
        let wrong = Tensor::zeros([3], DType::F64, &cpu)?;
        let err = Tensor::update_running_stats_(&rm, &rv, &wrong, &var, 0.1, 2.0).unwrap_err();
        assert!(err.to_string().contains("update_running_stats_"), "{err}");
        Ok(())
    }
}
