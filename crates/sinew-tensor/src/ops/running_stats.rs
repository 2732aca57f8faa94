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
    /// the running buffers' dtype before the `lerp_`. `count` (batch norm's i64
    /// `num_batches_tracked`, one element), when given, goes up by one in the same kernel.
    /// Nothing is recorded for autograd.
    pub fn update_running_stats_(
        running_mean: &Tensor,
        running_var: &Tensor,
        mean: &Tensor,
        var: &Tensor,
        (momentum, unbias): (f64, f64),
        count: Option<&Tensor>,
    ) -> Result<()> {
        const OP: &str = "update_running_stats_";
        if let Some(n) = count {
            running_mean.check_same_device(OP, n)?;
            if n.dtype() != DType::I64 || n.elem_count() != 1 || !n.is_contiguous() {
                return Err(Error::invalid(
                    OP,
                    format!(
                        "count must be one i64 element, got {} {}",
                        n.dtype(),
                        n.shape()
                    ),
                ));
            }
        }
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
        let running = [running_mean, running_var];
        if Tensor::fused_running_stats(running, [mean, var], (momentum, unbias), count)? {
            return Ok(());
        }
        running_mean.lerp_(&mean.to_dtype(running_mean.dtype())?, momentum)?;
        let unbiased = var.mul_scalar(unbias)?;
        running_var.lerp_(&unbiased.to_dtype(running_var.dtype())?, momentum)?;
        match count {
            Some(n) => n.add_scalar_(1.0),
            None => Ok(()),
        }
    }

    /// The update as the backend's one kernel: running buffers of one dtype, f64 statistics,
    /// all dense; `false`, with nothing written, otherwise.
    fn fused_running_stats(
        [running_mean, running_var]: [&Tensor; 2],
        [mean, var]: [&Tensor; 2],
        (momentum, unbias): (f64, f64),
        count: Option<&Tensor>,
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
        let backend = running_mean.device().backend();
        let c = running_mean.elem_count();
        let mut dsts = vec![running_mean, running_var];
        dsts.extend(count);
        // The statistics are often two rows of one storage (channel_norm's output), which
        // write_many locks once.
        Tensor::write_many(&dsts, &[mean, var], |storages, stats| {
            let (running, counter) = storages.split_at_mut(2);
            let [rm, rv] = running else {
                unreachable!("two running buffers")
            };
            let counter = match (counter.first_mut(), count) {
                (Some(s), Some(n)) => Some((&mut **s, start(n))),
                _ => None,
            };
            backend.update_running_stats(
                [
                    (&mut **rm, start(running_mean)),
                    (&mut **rv, start(running_var)),
                ],
                [(stats[0], start(mean)), (stats[1], start(var))],
                c,
                (momentum, unbias),
                counter,
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
        let count = Tensor::zeros((), DType::I64, &cpu)?;
        Tensor::update_running_stats_(&rm, &rv, &mean, &var, (0.1, 2.0), Some(&count))?;
        assert_eq!(rm.to_vec::<f32>()?, [0.1, -0.2]);
        assert_eq!(count.to_vec::<i64>()?, [1]);
        // 0.9 * 1 + 0.1 * (2 * var)
        assert_eq!(
            rv.to_vec::<f32>()?,
            [1.0 + 0.1 * (6.0 - 1.0), 1.0 + 0.1 * (1.0 - 1.0)]
        );
        let wrong = Tensor::zeros([3], DType::F64, &cpu)?;
        let err =
            Tensor::update_running_stats_(&rm, &rv, &wrong, &var, (0.1, 2.0), None).unwrap_err();
        assert!(err.to_string().contains("update_running_stats_"), "{err}");
        Ok(())
    }
}
