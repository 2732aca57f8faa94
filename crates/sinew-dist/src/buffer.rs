//! [`CommBuffer`]: the flat, typed host buffer that collectives send and receive.

use half::{bf16, f16};
use sinew_tensor::{DType, Device, Error, Result, Tensor, with_no_grad};

/// Elements of one floating-point dtype, contiguous on the host.
#[derive(Clone, Debug, PartialEq)]
pub enum CommBuffer {
    /// 32-bit floats.
    F32(Vec<f32>),
    /// 64-bit floats.
    F64(Vec<f64>),
    /// Half precision (reduced in f32 by backends without native support).
    F16(Vec<f16>),
    /// bfloat16 (reduced in f32 by backends without native support).
    BF16(Vec<bf16>),
}

fn unsupported(op: &'static str, dtype: DType) -> Error {
    Error::UnsupportedDType { op, dtype }
}

impl CommBuffer {
    /// `len` zeros of `dtype` (a floating-point dtype).
    pub fn zeros(dtype: DType, len: usize) -> Result<CommBuffer> {
        Ok(match dtype {
            DType::F32 => CommBuffer::F32(vec![0.0; len]),
            DType::F64 => CommBuffer::F64(vec![0.0; len]),
            DType::F16 => CommBuffer::F16(vec![f16::ZERO; len]),
            DType::BF16 => CommBuffer::BF16(vec![bf16::ZERO; len]),
            other => return Err(unsupported("CommBuffer", other)),
        })
    }

    /// The elements of `tensor` in row-major order (copied to the host when on a device).
    pub fn from_tensor(tensor: &Tensor) -> Result<CommBuffer> {
        Ok(match tensor.dtype() {
            DType::F32 => CommBuffer::F32(tensor.to_vec()?),
            DType::F64 => CommBuffer::F64(tensor.to_vec()?),
            DType::F16 => CommBuffer::F16(tensor.to_vec()?),
            DType::BF16 => CommBuffer::BF16(tensor.to_vec()?),
            other => return Err(unsupported("collective", other)),
        })
    }

    /// Elements `start..start + numel(dims)` as a tensor of shape `dims` on `device`.
    pub fn slice_to_tensor(&self, start: usize, dims: &[usize], device: &Device) -> Result<Tensor> {
        let len = dims
            .iter()
            .try_fold(1usize, |a, &d| a.checked_mul(d))
            .ok_or_else(|| Error::invalid("CommBuffer", "shape overflows usize"))?;
        let end = start
            .checked_add(len)
            .filter(|&e| e <= self.len())
            .ok_or_else(|| Error::invalid("CommBuffer", "slice past the end of the buffer"))?;
        let t = match self {
            CommBuffer::F32(v) => Tensor::from_slice(&v[start..end], dims),
            CommBuffer::F64(v) => Tensor::from_slice(&v[start..end], dims),
            CommBuffer::F16(v) => Tensor::from_slice(&v[start..end], dims),
            CommBuffer::BF16(v) => Tensor::from_slice(&v[start..end], dims),
        }?;
        if device.is_cpu() {
            Ok(t)
        } else {
            t.to_device(device)
        }
    }

    /// The whole buffer as a tensor of shape `dims` on `device`.
    pub fn to_tensor(&self, dims: &[usize], device: &Device) -> Result<Tensor> {
        self.slice_to_tensor(0, dims, device)
    }

    /// Writes the whole buffer into `tensor` (same element count) in place, on its device and
    /// in its dtype, without recording it for autograd.
    pub fn copy_to(&self, tensor: &Tensor) -> Result<()> {
        let value = self.to_tensor(tensor.dims(), tensor.device())?;
        with_no_grad(|| tensor.copy_(&value))
    }

    /// Copies `tensor`'s elements (same dtype) to positions `start..`.
    pub fn write_at(&mut self, start: usize, tensor: &Tensor) -> Result<()> {
        let src = CommBuffer::from_tensor(tensor)?;
        let len = src.len();
        let end = start
            .checked_add(len)
            .filter(|&e| e <= self.len())
            .ok_or_else(|| Error::invalid("CommBuffer", "write past the end of the buffer"))?;
        match (self, src) {
            (CommBuffer::F32(d), CommBuffer::F32(s)) => d[start..end].copy_from_slice(&s),
            (CommBuffer::F64(d), CommBuffer::F64(s)) => d[start..end].copy_from_slice(&s),
            (CommBuffer::F16(d), CommBuffer::F16(s)) => d[start..end].copy_from_slice(&s),
            (CommBuffer::BF16(d), CommBuffer::BF16(s)) => d[start..end].copy_from_slice(&s),
            (d, s) => {
                return Err(Error::DTypeMismatch {
                    op: "CommBuffer",
                    lhs: d.dtype(),
                    rhs: s.dtype(),
                });
            }
        }
        Ok(())
    }

    /// The element type.
    pub fn dtype(&self) -> DType {
        match self {
            CommBuffer::F32(_) => DType::F32,
            CommBuffer::F64(_) => DType::F64,
            CommBuffer::F16(_) => DType::F16,
            CommBuffer::BF16(_) => DType::BF16,
        }
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        match self {
            CommBuffer::F32(v) => v.len(),
            CommBuffer::F64(v) => v.len(),
            CommBuffer::F16(v) => v.len(),
            CommBuffer::BF16(v) => v.len(),
        }
    }

    /// Whether there are no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Size in bytes.
    pub fn byte_len(&self) -> usize {
        self.len() * self.dtype().size_in_bytes()
    }

    /// Multiplies every element by `factor` (a mean is a sum scaled by 1 / world size).
    pub fn scale(&mut self, factor: f64) {
        match self {
            CommBuffer::F32(v) => v.iter_mut().for_each(|x| *x = (*x as f64 * factor) as f32),
            CommBuffer::F64(v) => v.iter_mut().for_each(|x| *x *= factor),
            CommBuffer::F16(v) => v
                .iter_mut()
                .for_each(|x| *x = f16::from_f64(x.to_f64() * factor)),
            CommBuffer::BF16(v) => v
                .iter_mut()
                .for_each(|x| *x = bf16::from_f64(x.to_f64() * factor)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tensors_round_trip_through_slices() {
        let t = Tensor::from_vec(vec![1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0], [2, 3]).unwrap();
        let mut buf = CommBuffer::zeros(DType::F32, 8).unwrap();
        buf.write_at(1, &t).unwrap();
        assert_eq!(
            buf,
            CommBuffer::F32(vec![0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 0.0])
        );
        let back = buf.slice_to_tensor(1, &[3, 2], &Device::cpu()).unwrap();
        assert_eq!(back.dims(), &[3, 2]);
        assert_eq!(
            back.to_vec::<f32>().unwrap(),
            vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0]
        );
        assert!(buf.write_at(4, &t).is_err(), "past the end");
        assert!(buf.slice_to_tensor(7, &[2], &Device::cpu()).is_err());
        let wrong = Tensor::from_vec(vec![1.0f64], [1]).unwrap();
        assert!(buf.write_at(0, &wrong).is_err(), "dtype mismatch");
    }

    #[test]
    fn scaling_applies_per_dtype_and_integers_are_refused() {
        let mut b = CommBuffer::F16(vec![f16::from_f32(3.0), f16::from_f32(-1.0)]);
        b.scale(0.5);
        assert_eq!(
            b,
            CommBuffer::F16(vec![f16::from_f32(1.5), f16::from_f32(-0.5)])
        );
        assert_eq!(b.byte_len(), 4);
        let labels = Tensor::from_vec(vec![1i64, 2], [2]).unwrap();
        assert!(CommBuffer::from_tensor(&labels).is_err());
    }
}
