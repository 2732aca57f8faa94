//! Tensors made from nothing: constants, ranges and identity matrices.

use crate::cpu::CpuStorage;
use crate::cpu::alloc::{try_vec, try_with_capacity};
use crate::{DType, Device, Error, Result, Shape, Tensor};

impl Tensor {
    /// A tensor of `shape` filled with `value`. PyTorch equivalent: `torch.full`.
    pub fn full(
        shape: impl Into<Shape>,
        value: f64,
        dtype: DType,
        device: &Device,
    ) -> Result<Tensor> {
        Tensor::full_named("full", shape.into(), value, dtype, device)
    }

    /// [`Tensor::full`] reporting errors (overflowing shape, out of memory) under `op`.
    fn full_named(
        op: &'static str,
        shape: Shape,
        value: f64,
        dtype: DType,
        device: &Device,
    ) -> Result<Tensor> {
        let len = shape.checked_elem_count(op)?;
        let storage = device
            .backend()
            .full(dtype, len, value)
            .map_err(|e| e.in_op(op))?;
        Tensor::from_storage(storage, shape, device.clone())
    }

    /// All zeros. PyTorch equivalent: `torch.zeros`.
    pub fn zeros(shape: impl Into<Shape>, dtype: DType, device: &Device) -> Result<Tensor> {
        Tensor::full_named("zeros", shape.into(), 0.0, dtype, device)
    }

    /// All ones. PyTorch equivalent: `torch.ones`.
    pub fn ones(shape: impl Into<Shape>, dtype: DType, device: &Device) -> Result<Tensor> {
        Tensor::full_named("ones", shape.into(), 1.0, dtype, device)
    }

    /// Zeros with this tensor's shape, dtype and device.
    pub fn zeros_like(&self) -> Result<Tensor> {
        Tensor::zeros(self.shape().clone(), self.dtype(), self.device())
    }

    /// Ones with this tensor's shape, dtype and device.
    pub fn ones_like(&self) -> Result<Tensor> {
        Tensor::ones(self.shape().clone(), self.dtype(), self.device())
    }

    /// `value` everywhere, with this tensor's shape, dtype and device.
    pub fn full_like(&self, value: f64) -> Result<Tensor> {
        Tensor::full(self.shape().clone(), value, self.dtype(), self.device())
    }

    /// Host values of `dtype` computed as f64, placed on `device`.
    pub(crate) fn from_f64_values(
        values: Vec<f64>,
        shape: Shape,
        dtype: DType,
        device: &Device,
    ) -> Result<Tensor> {
        let host = Tensor::from_vec(values, shape)?.to_dtype(dtype)?;
        host.to_device(device)
    }

    /// `start, start + step, ...` up to but excluding `end`. PyTorch equivalent: `torch.arange`.
    pub fn arange(
        start: f64,
        end: f64,
        step: f64,
        dtype: DType,
        device: &Device,
    ) -> Result<Tensor> {
        if step == 0.0 || !((end - start) / step).is_finite() {
            return Err(Error::invalid(
                "arange",
                format!("bad range {start}..{end} step {step}"),
            ));
        }
        let count = ((end - start) / step).ceil().max(0.0);
        // `as usize` saturates: anything at or past isize::MAX elements is refused here.
        if count >= isize::MAX as f64 {
            return Err(Error::Overflow {
                op: "arange",
                what: format!(
                    "the length of range {start:?}..{end:?} step {step:?} ({count:e} values)"
                ),
            });
        }
        let n = count as usize;
        let mut values = try_with_capacity("arange", n)?;
        values.extend((0..n).map(|i| start + i as f64 * step));
        Tensor::from_f64_values(values, Shape::new([n]), dtype, device)
    }

    /// `steps` evenly spaced values from `start` to `end` inclusive. PyTorch equivalent: `torch.linspace`.
    pub fn linspace(
        start: f64,
        end: f64,
        steps: usize,
        dtype: DType,
        device: &Device,
    ) -> Result<Tensor> {
        Shape::new([steps]).checked_elem_count("linspace")?;
        let mut values = try_with_capacity("linspace", steps)?;
        match steps {
            0 => {}
            1 => values.push(start),
            _ => {
                let step = (end - start) / (steps - 1) as f64;
                // Fill from both ends, as PyTorch does, so the last value is exactly `end`.
                values.extend((0..steps).map(|i| {
                    if i < steps / 2 {
                        start + step * i as f64
                    } else {
                        end - step * (steps - 1 - i) as f64
                    }
                }));
            }
        }
        Tensor::from_f64_values(values, Shape::new([steps]), dtype, device)
    }

    /// The `n x n` identity matrix. PyTorch equivalent: `torch.eye`.
    pub fn eye(n: usize, dtype: DType, device: &Device) -> Result<Tensor> {
        let shape = Shape::new([n, n]);
        let mut values = try_vec("eye", shape.checked_elem_count("eye")?, 0.0)?;
        for i in 0..n {
            values[i * n + i] = 1.0;
        }
        Tensor::from_f64_values(values, shape, dtype, device)
    }

    /// A tensor on `device` from a host vector.
    pub fn from_vec_on<T: crate::Element>(
        data: Vec<T>,
        shape: impl Into<Shape>,
        device: &Device,
    ) -> Result<Tensor> {
        let shape = shape.into();
        if shape.checked_elem_count("from_vec_on")? != data.len() {
            return Err(Error::ElementCount {
                op: "from_vec_on",
                len: data.len(),
                shape,
            });
        }
        Tensor::from_cpu_storage(T::into_storage(data), shape, device)
    }

    /// Host storage of a tensor (for crates that need raw data, e.g. serialisation).
    pub fn to_host(&self) -> Result<CpuStorage> {
        self.to_cpu_storage()
    }
}

#[cfg(test)]
mod tests {
    use crate::{DType, Device, Tensor};

    #[test]
    fn ranges_match_pytorch() {
        let cpu = Device::cpu();
        // torch.arange(0, 1, 0.25) = [0, 0.25, 0.5, 0.75]
        assert_eq!(
            Tensor::arange(0.0, 1.0, 0.25, DType::F32, &cpu)
                .unwrap()
                .to_vec::<f32>()
                .unwrap(),
            vec![0.0, 0.25, 0.5, 0.75]
        );
        assert_eq!(
            Tensor::arange(5.0, 0.0, -2.0, DType::I64, &cpu)
                .unwrap()
                .to_vec::<i64>()
                .unwrap(),
            vec![5, 3, 1]
        );
        assert!(Tensor::arange(0.0, 1.0, 0.0, DType::F32, &cpu).is_err());
        // torch.linspace(0, 1, 5) = [0, 0.25, 0.5, 0.75, 1]
        assert_eq!(
            Tensor::linspace(0.0, 1.0, 5, DType::F64, &cpu)
                .unwrap()
                .to_vec::<f64>()
                .unwrap(),
            vec![0.0, 0.25, 0.5, 0.75, 1.0]
        );
        assert_eq!(
            Tensor::linspace(3.0, 9.0, 1, DType::F64, &cpu)
                .unwrap()
                .to_vec::<f64>()
                .unwrap(),
            vec![3.0]
        );
    }

    #[test]
    fn constants_and_eye() {
        let cpu = Device::cpu();
        let e = Tensor::eye(3, DType::F32, &cpu).unwrap();
        assert_eq!(
            e.to_vec::<f32>().unwrap(),
            vec![1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]
        );
        let f = Tensor::full([2], 2.5, DType::BF16, &cpu).unwrap();
        assert_eq!(
            f.to_dtype(DType::F32).unwrap().to_vec::<f32>().unwrap(),
            vec![2.5, 2.5]
        );
        assert_eq!(
            e.zeros_like()
                .unwrap()
                .sum_all()
                .unwrap()
                .to_scalar::<f32>()
                .unwrap(),
            0.0
        );
        assert_eq!(
            Tensor::ones([], DType::U8, &cpu)
                .unwrap()
                .to_vec::<u8>()
                .unwrap(),
            vec![1]
        );
    }
}
