//! `impl MultiTensorOps for CudaBackend`: the multi-tensor and fused-update kernels (the
//! optimizer steps, the loss scaler's unscale, gradient clipping's norm and scaling, autocast's
//! weight casts), forwarded to their kernel families.

use sinew_tensor::{
    AdafactorStep, AverageStep, BackendStorage, BoxedStorage, DType, FusedStep, MultiTensorOps,
    Result,
};

use crate::device::CudaBackend;
use crate::ops::{adafactor_step, cast, foreach, fused_step};

impl MultiTensorOps for CudaBackend {
    fn fuses(&self, step: &FusedStep, dtype: DType) -> bool {
        crate::names::fused_step(step, dtype, false).is_some()
    }

    fn fused_step(
        &self,
        step: &FusedStep,
        dsts: &mut [(&mut dyn BackendStorage, usize)],
        grad: (&dyn BackendStorage, usize),
        len: usize,
    ) -> Result<bool> {
        fused_step::fused_step(self, step, dsts, grad, len)
    }

    fn fused_step_many(
        &self,
        step: &FusedStep,
        dsts: &mut [(&mut dyn BackendStorage, usize)],
        grads: &[(&dyn BackendStorage, usize)],
        lens: &[usize],
        skip: Option<(&dyn BackendStorage, usize)>,
    ) -> Result<bool> {
        fused_step::fused_step_many(self, step, dsts, grads, lens, skip)
    }

    fn fuses_adafactor(&self, dtype: DType) -> bool {
        crate::names::adafactor_step("apply", dtype).is_some()
    }

    fn fused_adafactor(
        &self,
        step: &AdafactorStep,
        dsts: &mut [(&mut dyn BackendStorage, usize)],
        grad: (&dyn BackendStorage, usize),
        dims: [usize; 3],
    ) -> Result<bool> {
        adafactor_step::fused_adafactor(self, step, dsts, grad, dims)
    }

    fn fuses_average(&self, dtype: DType) -> bool {
        crate::names::average_many(dtype).is_some()
    }

    fn average_many(
        &self,
        avgs: &mut [(&mut dyn BackendStorage, usize)],
        xs: &[(&dyn BackendStorage, usize)],
        lens: &[usize],
        step: AverageStep,
    ) -> Result<bool> {
        foreach::average_many(self, avgs, xs, lens, step)
    }

    fn amp_unscale_many(
        &self,
        grads: &mut [(&mut dyn BackendStorage, usize)],
        lens: &[usize],
        found: (&mut dyn BackendStorage, usize),
        inv_scale: f64,
    ) -> Result<bool> {
        fused_step::amp_unscale_many(self, grads, lens, found, inv_scale)
    }

    fn pow_sum_many(
        &self,
        runs: &[(&dyn BackendStorage, usize)],
        lens: &[usize],
        p: f64,
    ) -> Result<Option<BoxedStorage>> {
        foreach::pow_sum_many(self, runs, lens, p)
    }

    fn mul_many(
        &self,
        runs: &mut [(&mut dyn BackendStorage, usize)],
        lens: &[usize],
        factor: (&dyn BackendStorage, usize),
    ) -> Result<bool> {
        foreach::mul_many(self, runs, lens, factor)
    }

    fn cast_many(
        &self,
        srcs: &[(&dyn BackendStorage, usize)],
        lens: &[usize],
        dtype: DType,
    ) -> Result<Option<Vec<BoxedStorage>>> {
        let outs = cast::cast_many(self, srcs, lens, dtype)?;
        Ok(outs.map(|o| o.into_iter().map(|s| Box::new(s) as BoxedStorage).collect()))
    }
}
