//! Max and average pooling, built on `unfold2d` (window axis) plus a reduction.

use crate::backend::Unfold2d;
use crate::{DType, Device, Error, Result, Tensor};

/// Options of 2-d pooling, with PyTorch's defaults (`stride` defaults to the kernel size).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pool2dConfig {
    /// Window (height, width).
    pub kernel: (usize, usize),
    /// Step between windows; `None` means the kernel size.
    pub stride: Option<(usize, usize)>,
    /// Implicit padding on each side (at most half the kernel, as PyTorch requires).
    pub padding: (usize, usize),
    /// Spacing of window taps (max pooling only); default 1.
    pub dilation: (usize, usize),
    /// Average pooling divides by the full window, padding included (PyTorch default true).
    pub count_include_pad: bool,
}

impl Pool2dConfig {
    /// The 2-d window that pools an `[n, c, l]` input viewed as `[n, c, 1, l]`.
    pub fn for_1d(kernel: usize, stride: Option<usize>, padding: usize) -> Self {
        Pool2dConfig {
            kernel: (1, kernel),
            stride: stride.map(|s| (1, s)),
            padding: (0, padding),
            ..Pool2dConfig::new(1)
        }
    }

    /// A square window of `k` with stride `k` and no padding.
    pub fn new(k: usize) -> Self {
        Pool2dConfig {
            kernel: (k, k),
            stride: None,
            padding: (0, 0),
            dilation: (1, 1),
            count_include_pad: true,
        }
    }

    /// Checks the window against `x` (`[n, c, h, w]`) and returns the unfold geometry, reading
    /// `pad_value` from the padding (shared with autograd).
    pub fn spec(&self, op: &'static str, x: &Tensor, pad_value: f64) -> Result<Unfold2d> {
        let (kh, kw) = self.kernel;
        if self.padding.0 * 2 > kh || self.padding.1 * 2 > kw {
            return Err(Error::invalid(
                op,
                format!(
                    "padding {:?} must be at most half the kernel {:?}",
                    self.padding, self.kernel
                ),
            ));
        }
        x.unfold_spec(
            op,
            self.kernel,
            self.stride.unwrap_or(self.kernel),
            self.padding,
            self.dilation,
            pad_value,
        )
    }
}

impl Tensor {
    /// Max pooling of `[n, c, h, w]`; returns the values and, like PyTorch's `return_indices`,
    /// the flat index (into each `h*w` plane) of every maximum. PyTorch: `F.max_pool2d`.
    /// The work is [`crate::Backend::max_pool2d`] (a direct kernel on the CPU).
    pub(crate) fn max_pool2d_untracked(&self, cfg: Pool2dConfig) -> Result<(Tensor, Tensor)> {
        const OP: &str = "max_pool2d";
        self.check_float(OP)?;
        let spec = cfg.spec(OP, self, f64::NEG_INFINITY)?;
        let (oh, ow) = spec.out_hw();
        let device = self.device();
        let backend = device.backend();
        let (values, indices) = self.with_storage(|s, l| backend.max_pool2d(s, l, &spec))?;
        let shape = [spec.n, spec.c, oh, ow];
        Ok((
            Tensor::from_storage(values, shape, device.clone())?,
            Tensor::from_storage(indices, shape, device.clone())?,
        ))
    }

    /// The gradient of max pooling's input: this `[n, c, oh, ow]` gradient added at `indices`
    /// (from [`Tensor::max_pool2d`] with the window `spec`; `trusted` when unmodified since,
    /// see [`crate::Backend::max_pool2d_backward`]) into `[n, c, h, w]` zeros.
    pub(crate) fn max_pool2d_backward_untracked(
        &self,
        indices: &Tensor,
        spec: &Unfold2d,
        trusted: bool,
    ) -> Result<Tensor> {
        const OP: &str = "max_pool2d backward";
        let (oh, ow) = spec.check(OP)?;
        let expected = crate::Shape::new([spec.n, spec.c, oh, ow]);
        for t in [self, indices] {
            if t.shape() != &expected {
                return Err(Error::ShapeMismatch {
                    op: OP,
                    lhs: t.shape().clone(),
                    rhs: expected,
                });
            }
        }
        if indices.dtype() != DType::I64 || self.device() != indices.device() {
            return Err(Error::invalid(
                OP,
                format!(
                    "expects i64 indices on the gradient's device, got {:?} on {:?}",
                    indices.dtype(),
                    indices.device()
                ),
            ));
        }
        let device = self.device();
        let backend = device.backend();
        let out = Tensor::with_storages([self, indices], |[g, i]| {
            backend.max_pool2d_backward(g, self.layout(), i, indices.layout(), spec, trusted)
        })?;
        Tensor::from_storage(out, [spec.n, spec.c, spec.h, spec.w], device.clone())
    }

    /// Checks an average pooling of this tensor and returns its window.
    pub(crate) fn avg_pool2d_spec(&self, cfg: Pool2dConfig) -> Result<Unfold2d> {
        const OP: &str = "avg_pool2d";
        self.check_float(OP)?;
        if cfg.dilation != (1, 1) {
            return Err(Error::invalid(OP, "average pooling has no dilation"));
        }
        cfg.spec(OP, self, 0.0)
    }

    /// The backend's direct average pooling ([`crate::Backend::avg_pool2d`]), untracked;
    /// `None` where it has none.
    pub(crate) fn avg_pool2d_direct(
        &self,
        spec: &Unfold2d,
        count_include_pad: bool,
    ) -> Result<Option<Tensor>> {
        let device = self.device();
        let backend = device.backend();
        let out = self.with_storage(|s, l| backend.avg_pool2d(s, l, spec, count_include_pad))?;
        let (oh, ow) = spec.out_hw();
        out.map(|o| Tensor::from_storage(o, [spec.n, spec.c, oh, ow], device.clone()))
            .transpose()
    }

    /// Average pooling composed from `unfold2d`, a sum over the window axis and a division
    /// (differentiable through them). f16/bf16 go through f32, rounded once after the division,
    /// as PyTorch's kernels (and the CUDA one) do: a window's f16 sum may overflow where its
    /// average does not.
    pub(crate) fn avg_pool2d_composed(&self, cfg: Pool2dConfig) -> Result<Tensor> {
        if matches!(self.dtype(), DType::F16 | DType::BF16) {
            let wide = self.to_dtype(DType::F32)?.avg_pool2d_composed(cfg)?;
            return wide.to_dtype(self.dtype());
        }
        let spec = self.avg_pool2d_spec(cfg)?;
        let (oh, ow) = spec.out_hw();
        let (kh, kw) = spec.kernel;
        let sums = self
            .unfold2d(&spec)?
            .reshape([spec.n, spec.c, kh * kw, oh * ow])?
            .sum(&[2], false)?;
        let out = if cfg.count_include_pad {
            sums.div_scalar((kh * kw) as f64)?
        } else {
            sums.div(&window_counts(&spec, self.dtype(), self.device())?)?
        };
        out.reshape([spec.n, spec.c, oh, ow])
    }

    /// Max pooling of `[n, c, l]`; values and indices into `l`. PyTorch: `F.max_pool1d`.
    pub fn max_pool1d(
        &self,
        kernel: usize,
        stride: Option<usize>,
        padding: usize,
    ) -> Result<(Tensor, Tensor)> {
        let cfg = Pool2dConfig::for_1d(kernel, stride, padding);
        let (v, i) = self.unsqueeze(2)?.max_pool2d(cfg)?;
        Ok((v.squeeze(2)?, i.squeeze(2)?))
    }

    /// Average pooling of `[n, c, l]`. PyTorch equivalent: `F.avg_pool1d`.
    pub fn avg_pool1d(
        &self,
        kernel: usize,
        stride: Option<usize>,
        padding: usize,
    ) -> Result<Tensor> {
        let cfg = Pool2dConfig::for_1d(kernel, stride, padding);
        self.unsqueeze(2)?.avg_pool2d(cfg)?.squeeze(2)
    }
}

/// How many real (non-padding) inputs each output window covers, shape `[oh*ow]`.
pub fn window_counts(spec: &Unfold2d, dtype: DType, device: &Device) -> Result<Tensor> {
    let one_plane = Unfold2d {
        n: 1,
        c: 1,
        ..*spec
    };
    let ones = Tensor::ones([1, 1, spec.h, spec.w], dtype, device)?;
    ones.unfold2d(&one_plane)?.sum(&[1], false)?.flatten_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn x() -> Tensor {
        // torch.tensor([[[[1., 5., 2., 0.], [3., 4., 8., 7.], [0., 9., 1., 1.], [6., 2., 3., 5.]]]])
        Tensor::from_vec(
            vec![
                1.0f32, 5.0, 2.0, 0.0, 3.0, 4.0, 8.0, 7.0, 0.0, 9.0, 1.0, 1.0, 6.0, 2.0, 3.0, 5.0,
            ],
            [1, 1, 4, 4],
        )
        .unwrap()
    }

    #[test]
    fn max_pool_values_and_indices_match_pytorch() {
        // F.max_pool2d(x, 2, return_indices=True) = ([[5, 8], [9, 5]], [[1, 6], [9, 15]])
        let (v, i) = x().max_pool2d(Pool2dConfig::new(2)).unwrap();
        assert_eq!(v.to_vec::<f32>().unwrap(), vec![5.0, 8.0, 9.0, 5.0]);
        assert_eq!(i.to_vec::<i64>().unwrap(), vec![1, 6, 9, 15]);
        // F.max_pool2d(x, 3, stride=1, padding=1, return_indices=True)[1][0, 0, 0] = [1, 6, 6, 6]
        let cfg = Pool2dConfig {
            stride: Some((1, 1)),
            padding: (1, 1),
            ..Pool2dConfig::new(3)
        };
        let (v, i) = x().max_pool2d(cfg).unwrap();
        assert_eq!(v.dims(), &[1, 1, 4, 4]);
        assert_eq!(i.to_vec::<i64>().unwrap()[..4], [1, 6, 6, 6]);
    }

    #[test]
    fn avg_pool_with_and_without_padding_counts() {
        // F.avg_pool2d(x, 2) = [[3.25, 4.25], [4.25, 2.5]]
        let a = x().avg_pool2d(Pool2dConfig::new(2)).unwrap();
        assert_eq!(a.to_vec::<f32>().unwrap(), vec![3.25, 4.25, 4.25, 2.5]);
        // F.avg_pool2d(x, 2, padding=1)[0, 0, 0] = [0.25, 1.75, 0.0]; count_include_pad=False -> [1, 3.5, 0]
        let cfg = Pool2dConfig {
            padding: (1, 1),
            ..Pool2dConfig::new(2)
        };
        assert_eq!(
            x().avg_pool2d(cfg).unwrap().to_vec::<f32>().unwrap()[..3],
            [0.25, 1.75, 0.0]
        );
        let cfg = Pool2dConfig {
            count_include_pad: false,
            ..cfg
        };
        assert_eq!(
            x().avg_pool2d(cfg).unwrap().to_vec::<f32>().unwrap()[..3],
            [1.0, 3.5, 0.0]
        );
    }

    #[test]
    fn one_d_pooling() {
        let s = Tensor::from_vec(vec![1.0f32, 3.0, 2.0, 5.0, 4.0], [1, 1, 5]).unwrap();
        let (v, i) = s.max_pool1d(2, None, 0).unwrap();
        assert_eq!(v.to_vec::<f32>().unwrap(), vec![3.0, 5.0]);
        assert_eq!(i.to_vec::<i64>().unwrap(), vec![1, 3]);
        assert_eq!(
            s.avg_pool1d(2, Some(1), 0)
                .unwrap()
                .to_vec::<f32>()
                .unwrap(),
            vec![2.0, 2.5, 3.5, 4.5]
        );
    }
}
