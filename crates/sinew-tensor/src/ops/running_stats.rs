//! Batch norm's running statistics update ([`Tensor::update_running_stats_`]): the two `lerp_`s
//! of PyTorch's training-mode `batch_norm`, with their casts and the variance's unbiasing, as
//! one kernel where the backend has one (CUDA: `running_stats_<dtype>` in `cuda/channel.cu`)
//! in place of five of `C` elements. The in-place ops below are the reference and every other
//! backend's path; a kernel gives their values bit for bit. [`Tensor::channel_norm_updating`]
//! also takes the step that computes the statistics into the same kernel (CUDA:
//! `channel_stats_<dtype>` updates them in the block that finishes a channel). A backend
//! tells which running buffers its kernels take (`Backend::fuses_running_stats`) before any
//! buffer is locked for them, so the CPU's batch norm is not asked each step.

use super::channel_norm::ChannelNormStep;
use crate::backend::RunningStorages;
use crate::{DType, Error, Result, Tensor};

/// Batch norm's running statistics and their update's scalars, as
/// [`Tensor::channel_norm_updating`] takes them (see [`Tensor::update_running_stats_`]).
#[derive(Debug, Clone, Copy)]
pub struct RunningStats<'a> {
    /// The running mean `[C]`, updated in place.
    pub mean: &'a Tensor,
    /// The running variance `[C]`, updated in place.
    pub var: &'a Tensor,
    /// The i64 batch count to increment (`num_batches_tracked`), if any.
    pub count: Option<&'a Tensor>,
    /// The weight of the new batch.
    pub momentum: f64,
    /// The batch variance's unbiasing factor, `n / (n - 1)` for `n` values a channel.
    pub unbias: f64,
}

/// Checks an update's operands: one device, floats of rank 1 and length `c`, and `count` one
/// dense i64 element.
fn check_running(
    op: &'static str,
    c: usize,
    stats: &[&Tensor],
    count: Option<&Tensor>,
) -> Result<()> {
    let first = stats[0];
    if let Some(n) = count {
        first.check_same_device(op, n)?;
        if n.dtype() != DType::I64 || n.elem_count() != 1 || !n.is_contiguous() {
            return Err(Error::invalid(
                op,
                format!(
                    "count must be one i64 element, got {} {}",
                    n.dtype(),
                    n.shape()
                ),
            ));
        }
    }
    for &t in stats {
        first.check_same_device(op, t)?;
        t.check_float(op)?;
        if t.rank() != 1 || t.elem_count() != c {
            return Err(Error::ShapeMismatch {
                op,
                lhs: crate::Shape::new([c]),
                rhs: t.shape().clone(),
            });
        }
    }
    Ok(())
}

/// `running = lerp(running, stat, momentum)` in place. An f16/bf16 buffer is updated in f32 and
/// rounded once, as PyTorch's (its opmath type): a batch variance beyond f16's range still
/// moves the running variance by `momentum` instead of making it inf.
fn lerp_rounded_(running: &Tensor, stat: &Tensor, momentum: f64) -> Result<()> {
    if matches!(running.dtype(), DType::F16 | DType::BF16) {
        let wide = running.to_dtype(DType::F32)?;
        wide.lerp_(&stat.to_dtype(DType::F32)?, momentum)?;
        running.copy_(&wide)
    } else {
        running.lerp_(&stat.to_dtype(running.dtype())?, momentum)
    }
}

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
        let stats = [running_mean, running_var, mean, var];
        check_running(OP, running_mean.elem_count(), &stats, count)?;
        let _guard = crate::no_grad();
        let running = [running_mean, running_var];
        if Tensor::fused_running_stats(running, [mean, var], (momentum, unbias), count)? {
            return Ok(());
        }
        lerp_rounded_(running_mean, mean, momentum)?;
        lerp_rounded_(running_var, &var.mul_scalar(unbias)?, momentum)?;
        match count {
            Some(n) => n.add_scalar_(1.0),
            None => Ok(()),
        }
    }

    /// [`Tensor::channel_norm_of`]'s forward `step` on `self` (`[n, C, ...]`, no second
    /// tensor) followed by [`Tensor::update_running_stats_`] of `running` from the step's mean
    /// and biased variance (rows 3 and 5 of the `[6, C]` result, which it returns): batch norm's
    /// training-mode statistics in one kernel where the backend has one (CUDA), else the two
    /// ops, with the same values. Nothing is recorded for autograd.
    pub fn channel_norm_updating(
        &self,
        step: ChannelNormStep,
        rows: &[&Tensor],
        running: RunningStats<'_>,
    ) -> Result<Tensor> {
        const OP: &str = "channel_norm_updating";
        let ChannelNormStep::Forward { count, eps } = step else {
            return Err(Error::invalid(
                OP,
                "updates running statistics after a forward step only",
            ));
        };
        let c = self.check_channel_operands(OP, None)?;
        let row = |t: &Tensor, k: usize| t.narrow(0, k, 1)?.reshape([c]);
        let [mean, var] = [running.mean, running.var];
        self.check_same_device(OP, mean)?;
        check_running(OP, c, &[mean, var], running.count)?;
        let _guard = crate::no_grad();
        if let Some(out) = self.fused_norm_updating((count, eps), rows, running)? {
            return Ok(out);
        }
        let out = self.channel_norm_of(None, step, rows)?;
        let scalars = (running.momentum, running.unbias);
        let (batch_mean, batch_var) = (row(&out, 3)?, row(&out, 5)?);
        Tensor::update_running_stats_(mean, var, &batch_mean, &batch_var, scalars, running.count)?;
        Ok(out)
    }

    /// [`Tensor::channel_norm_updating`] as the backend's one kernel: dense running buffers of
    /// one dtype, none sharing a storage with the inputs; `None`, with nothing written,
    /// otherwise.
    fn fused_norm_updating(
        &self,
        scalars: (f64, f64),
        rows: &[&Tensor],
        running: RunningStats<'_>,
    ) -> Result<Option<Tensor>> {
        let (mean, var) = (running.mean, running.var);
        let backend = self.device().backend();
        if !backend.fuses_running_stats(mean.dtype())
            || !mean.is_contiguous()
            || !var.is_contiguous()
            || mean.dtype() != var.dtype()
        {
            return Ok(None);
        }
        let step = ChannelNormStep::Forward {
            count: scalars.0,
            eps: scalars.1,
        };
        let c = mean.elem_count();
        let dense_rows =
            super::channel_norm::checked_rows("channel_norm_updating", step, self, c, rows)?;
        let mut dsts = vec![mean, var];
        dsts.extend(running.count);
        let mut srcs = vec![self];
        srcs.extend(&dense_rows);
        let mut fused = None;
        Tensor::write_many(&dsts, &srcs, |storages, sources| {
            let (buffers, counter) = storages.split_at_mut(2);
            let [rm, rv] = buffers else {
                unreachable!("two running buffers")
            };
            let count = match (counter.first_mut(), running.count) {
                (Some(s), Some(n)) => Some((&mut **s, n.layout().offset())),
                _ => None,
            };
            let views: Vec<_> = sources[1..]
                .iter()
                .zip(&dense_rows)
                .map(|(s, t)| (*s, t.layout().offset()))
                .collect();
            let target = RunningStorages {
                running: [
                    (&mut **rm, mean.layout().offset()),
                    (&mut **rv, var.layout().offset()),
                ],
                count,
                scalars: (running.momentum, running.unbias),
            };
            fused = backend.channel_norm_updating(
                (sources[0], self.layout()),
                scalars,
                &views,
                target,
            )?;
            Ok(fused.is_some())
        })?;
        fused
            .map(|storage| Tensor::from_storage(storage, [6, c], self.device().clone()))
            .transpose()
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
        let backend = running_mean.device().backend();
        if !dense || !dtypes || !backend.fuses_running_stats(running_mean.dtype()) {
            return Ok(false);
        }
        let start = |t: &Tensor| t.layout().contiguous_offset().map_or(0, |(s, _)| s);
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

    /// `channel_norm_updating` returns the forward step's rows and updates the running
    /// statistics from its mean and variance (the CPU runs the two ops); bad running operands
    /// and a backward step are clear errors, with nothing written.
    #[test]
    fn statistics_update_the_running_ones() -> Result<()> {
        use crate::{ChannelNormStep, Generator, RunningStats};
        let cpu = Device::cpu();
        let x = Generator::new(3).randn([4, 3, 5], DType::F32, &cpu)?;
        let step = ChannelNormStep::Forward {
            count: 20.0,
            eps: 1e-5,
        };
        let (rm, rv) = (
            Tensor::zeros([3], DType::F32, &cpu)?,
            Tensor::ones([3], DType::F32, &cpu)?,
        );
        let count = Tensor::zeros((), DType::I64, &cpu)?;
        let running = RunningStats {
            mean: &rm,
            var: &rv,
            count: Some(&count),
            momentum: 0.1,
            unbias: 20.0 / 19.0,
        };
        let out = x.channel_norm_updating(step, &[], running)?;
        assert_eq!(
            out.to_vec::<f64>()?,
            x.channel_norm_of(None, step, &[])?.to_vec::<f64>()?
        );
        let row = |k: usize| out.narrow(0, k, 1)?.reshape([3])?.to_vec::<f64>();
        let (mean, var) = (row(3)?, row(5)?);
        for ch in 0..3 {
            let want_mean = (0.1 * mean[ch]) as f32;
            let want_var = (0.9 + 0.1 * var[ch] * 20.0 / 19.0) as f32;
            let (got_mean, got_var) = (rm.to_vec::<f32>()?[ch], rv.to_vec::<f32>()?[ch]);
            assert!(
                (got_mean - want_mean).abs() <= 1e-6,
                "{got_mean} {want_mean}"
            );
            assert!((got_var - want_var).abs() <= 1e-6, "{got_var} {want_var}");
        }
        assert_eq!(count.to_vec::<i64>()?, [1]);
        let before = (rm.to_vec::<f32>()?, rv.to_vec::<f32>()?);
        let short = Tensor::zeros([2], DType::F32, &cpu)?;
        let bad = RunningStats {
            mean: &short,
            ..running
        };
        let err = x.channel_norm_updating(step, &[], bad).unwrap_err();
        assert!(err.to_string().contains("channel_norm_updating"), "{err}");
        let backward = ChannelNormStep::Backward { count: 20.0 };
        let err = x.channel_norm_updating(backward, &[], running).unwrap_err();
        assert!(err.to_string().contains("forward step only"), "{err}");
        assert_eq!((rm.to_vec::<f32>()?, rv.to_vec::<f32>()?), before);
        assert_eq!(count.to_vec::<i64>()?, [1]);
        Ok(())
    }
}
