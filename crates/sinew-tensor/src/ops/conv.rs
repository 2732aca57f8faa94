//! Convolution options and checks, and the unfold/fold primitives convolution is built from
//! (`grad/conv2d.rs` composes them with matmul). CPU kernels: `cpu/conv.rs`.

use crate::backend::Unfold2d;
use crate::{Error, Result, Shape, Tensor};

/// Options of [`Tensor::conv2d`], with PyTorch's defaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Conv2dConfig {
    /// Step between windows (height, width); default 1.
    pub stride: (usize, usize),
    /// Zero padding on each side (height, width); default 0.
    pub padding: (usize, usize),
    /// Spacing of kernel taps (height, width); default 1.
    pub dilation: (usize, usize),
    /// Channel groups; input and output channels must divide by it; default 1.
    pub groups: usize,
}

impl Default for Conv2dConfig {
    fn default() -> Self {
        Conv2dConfig {
            stride: (1, 1),
            padding: (0, 0),
            dilation: (1, 1),
            groups: 1,
        }
    }
}

/// Options of [`Tensor::conv1d`], with PyTorch's defaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Conv1dConfig {
    /// Step between windows; default 1.
    pub stride: usize,
    /// Zero padding on each side; default 0.
    pub padding: usize,
    /// Spacing of kernel taps; default 1.
    pub dilation: usize,
    /// Channel groups; default 1.
    pub groups: usize,
}

impl Default for Conv1dConfig {
    fn default() -> Self {
        Conv1dConfig {
            stride: 1,
            padding: 0,
            dilation: 1,
            groups: 1,
        }
    }
}

impl Conv1dConfig {
    /// The equivalent 2-d configuration for a `[n, c, 1, l]` input (conv1d runs as conv2d).
    pub fn as_2d(&self) -> Conv2dConfig {
        Conv2dConfig {
            stride: (1, self.stride),
            padding: (0, self.padding),
            dilation: (1, self.dilation),
            groups: self.groups,
        }
    }

    /// Errors unless the input is `[n, c, l]` and the weight `[o, c/groups, k]`.
    pub fn check_ranks(&self, input: &Shape, weight: &Shape) -> Result<()> {
        if input.rank() != 3 || weight.rank() != 3 {
            return Err(Error::ShapeMismatch {
                op: "conv1d",
                lhs: input.clone(),
                rhs: weight.clone(),
            });
        }
        Ok(())
    }
}

impl Tensor {
    /// Checks a `[n, c, h, w]` input against a window spec and returns the unfold geometry.
    pub fn unfold_spec(
        &self,
        op: &'static str,
        kernel: (usize, usize),
        stride: (usize, usize),
        padding: (usize, usize),
        dilation: (usize, usize),
        pad_value: f64,
    ) -> Result<Unfold2d> {
        let &[n, c, h, w] = self.dims() else {
            return Err(Error::invalid(
                op,
                format!("expects a [n, c, h, w] input, got shape {}", self.shape()),
            ));
        };
        if kernel.0 == 0
            || kernel.1 == 0
            || stride.0 == 0
            || stride.1 == 0
            || dilation.0 == 0
            || dilation.1 == 0
        {
            return Err(Error::invalid(
                op,
                "kernel size, stride and dilation must be positive",
            ));
        }
        let spec = Unfold2d {
            n,
            c,
            h,
            w,
            kernel,
            stride,
            padding,
            dilation,
            pad_value,
        };
        let (oh, ow) = spec.check(op)?;
        if oh == 0 || ow == 0 {
            return Err(Error::invalid(
                op,
                format!(
                    "window {kernel:?} (dilation {dilation:?}, padding {padding:?}) is larger than the input {h}x{w}"
                ),
            ));
        }
        Ok(spec)
    }

    /// Checks `spec` (for op `op`) and that it describes this `[n, c, h, w]` tensor; returns
    /// the output height and width. Shared by the per-image and the wide im2col.
    pub(crate) fn check_unfold_input(
        &self,
        op: &'static str,
        spec: &Unfold2d,
    ) -> Result<(usize, usize)> {
        let out_hw = spec.check(op)?;
        let input = Shape::new([spec.n, spec.c, spec.h, spec.w]);
        if self.shape() != &input {
            return Err(Error::invalid(
                op,
                format!(
                    "window spec for input {input} does not match the tensor's shape {}",
                    self.shape()
                ),
            ));
        }
        Ok(out_hw)
    }

    /// Checks that this tensor has the column shape `cols` (`what`: "columns" or "wide
    /// columns", for the message). Shared by the per-image and the wide col2im.
    pub(crate) fn check_unfold_columns(
        &self,
        op: &'static str,
        what: &str,
        cols: &Shape,
    ) -> Result<()> {
        if self.shape() != cols {
            return Err(Error::invalid(
                op,
                format!(
                    "window spec expects {what} {cols}, the tensor has shape {}",
                    self.shape()
                ),
            ));
        }
        Ok(())
    }

    /// im2col: `[n, c, h, w]` to `[n, c*kh*kw, oh*ow]`. PyTorch equivalent: `F.unfold`.
    ///
    /// Errors (never panics) when `spec` does not describe this tensor's shape or its
    /// geometry is invalid (zero stride, overflowing sizes).
    pub(crate) fn unfold2d_untracked(&self, spec: &Unfold2d) -> Result<Tensor> {
        const OP: &str = "unfold2d";
        let (oh, ow) = self.check_unfold_input(OP, spec)?;
        let shape = spec.cols_shape(OP, oh, ow)?;
        self.map_storage(shape, |b, s, l| b.unfold2d(s, l, spec))
    }

    /// col2im, the adjoint of [`Tensor::unfold2d`]: sums overlapping windows back into
    /// `[n, c, h, w]`. PyTorch equivalent: `F.fold`.
    ///
    /// Errors (never panics) when this tensor is not the `[n, c*kh*kw, oh*ow]` column tensor
    /// of `spec`.
    pub(crate) fn fold2d_untracked(&self, spec: &Unfold2d) -> Result<Tensor> {
        const OP: &str = "fold2d";
        let (oh, ow) = spec.check(OP)?;
        self.check_unfold_columns(OP, "columns", &spec.cols_shape(OP, oh, ow)?)?;
        let shape = Shape::new([spec.n, spec.c, spec.h, spec.w]);
        self.map_storage(shape, |b, s, l| b.fold2d(s, l, spec))
    }

    /// Checks a convolution's operands (`[n, c, h, w]` input, `[o, c/groups, kh, kw]` weight,
    /// optional `[o]` bias) and returns the unfold geometry; shared with autograd.
    pub fn conv2d_spec(
        &self,
        weight: &Tensor,
        bias: Option<&Tensor>,
        cfg: Conv2dConfig,
    ) -> Result<Unfold2d> {
        const OP: &str = "conv2d";
        self.check_same_device(OP, weight)?;
        self.check_same_dtype(OP, weight)?;
        let &[o, cg, kh, kw] = weight.dims() else {
            return Err(Error::invalid(
                OP,
                format!(
                    "weight must be [out, in/groups, kh, kw], got {}",
                    weight.shape()
                ),
            ));
        };
        let spec = self.unfold_spec(OP, (kh, kw), cfg.stride, cfg.padding, cfg.dilation, 0.0)?;
        let g = cfg.groups;
        if g == 0 || spec.c % g != 0 || o % g != 0 || cg * g != spec.c {
            return Err(Error::ShapeMismatch {
                op: OP,
                lhs: self.shape().clone(),
                rhs: weight.shape().clone(),
            });
        }
        if let Some(b) = bias
            && b.dims() != [o]
        {
            return Err(Error::ShapeMismatch {
                op: "conv2d (bias)",
                lhs: weight.shape().clone(),
                rhs: b.shape().clone(),
            });
        }
        Ok(spec)
    }

    /// 1-d convolution of `[n, c, l]` with weight `[o, c/groups, k]`. PyTorch equivalent: `F.conv1d`.
    pub fn conv1d(
        &self,
        weight: &Tensor,
        bias: Option<&Tensor>,
        cfg: Conv1dConfig,
    ) -> Result<Tensor> {
        cfg.check_ranks(self.shape(), weight.shape())?;
        self.unsqueeze(2)?
            .conv2d(&weight.unsqueeze(2)?, bias, cfg.as_2d())?
            .squeeze(2)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{DType, Device};

    /// Direct 7-loop convolution, the reference for the im2col path.
    fn naive_conv(
        x: &[f64],
        xs: [usize; 4],
        w: &[f64],
        ws: [usize; 4],
        cfg: Conv2dConfig,
    ) -> (Vec<f64>, [usize; 4]) {
        let [n, c, h, wd] = xs;
        let [o, cg, kh, kw] = ws;
        let (sh, sw) = cfg.stride;
        let (ph, pw) = cfg.padding;
        let (dh, dw) = cfg.dilation;
        let oh = (h + 2 * ph - dh * (kh - 1) - 1) / sh + 1;
        let ow = (wd + 2 * pw - dw * (kw - 1) - 1) / sw + 1;
        let og = o / cfg.groups;
        let mut out = vec![0.0; n * o * oh * ow];
        for b in 0..n {
            for oc in 0..o {
                let g = oc / og;
                for y in 0..oh {
                    for xo in 0..ow {
                        let mut acc = 0.0;
                        for ic in 0..cg {
                            for i in 0..kh {
                                for j in 0..kw {
                                    let yy = (y * sh + i * dh) as isize - ph as isize;
                                    let xx = (xo * sw + j * dw) as isize - pw as isize;
                                    if yy >= 0 && xx >= 0 && (yy as usize) < h && (xx as usize) < wd
                                    {
                                        let c_in = g * cg + ic;
                                        acc += x
                                            [((b * c + c_in) * h + yy as usize) * wd + xx as usize]
                                            * w[((oc * cg + ic) * kh + i) * kw + j];
                                    }
                                }
                            }
                        }
                        out[((b * o + oc) * oh + y) * ow + xo] = acc;
                    }
                }
            }
        }
        (out, [n, o, oh, ow])
    }

    #[test]
    fn conv2d_matches_a_direct_loop() {
        let cfg = Conv2dConfig {
            stride: (2, 1),
            padding: (1, 2),
            dilation: (1, 2),
            groups: 2,
        };
        let mut g = crate::Generator::new(11);
        let x = g.randn([2, 4, 7, 6], DType::F64, &Device::cpu()).unwrap();
        let w = g.randn([6, 2, 3, 2], DType::F64, &Device::cpu()).unwrap();
        let out = x.conv2d(&w, None, cfg).unwrap();
        let (expect, dims) = naive_conv(
            &x.to_vec().unwrap(),
            [2, 4, 7, 6],
            &w.to_vec().unwrap(),
            [6, 2, 3, 2],
            cfg,
        );
        assert_eq!(out.dims(), &dims);
        for (a, b) in out.to_vec::<f64>().unwrap().iter().zip(expect) {
            assert!((a - b).abs() < 1e-10);
        }
    }

    #[test]
    fn conv2d_small_value_matches_pytorch() {
        // F.conv2d(torch.arange(16.).reshape(1,1,4,4), torch.ones(1,1,2,2), torch.tensor([1.]))
        //   = [[[[11, 15, 19], [27, 31, 35], [43, 47, 51]]]]
        let x = Tensor::arange(0.0, 16.0, 1.0, DType::F32, &Device::cpu())
            .unwrap()
            .reshape([1, 1, 4, 4])
            .unwrap();
        let w = Tensor::ones([1, 1, 2, 2], DType::F32, &Device::cpu()).unwrap();
        let b = Tensor::ones([1], DType::F32, &Device::cpu()).unwrap();
        let out = x.conv2d(&w, Some(&b), Conv2dConfig::default()).unwrap();
        assert_eq!(
            out.to_vec::<f32>().unwrap(),
            vec![11.0, 15.0, 19.0, 27.0, 31.0, 35.0, 43.0, 47.0, 51.0]
        );
    }

    #[test]
    fn conv1d_and_errors() {
        // F.conv1d(torch.tensor([[[1., 2., 3., 4.]]]), torch.tensor([[[1., -1.]]]), padding=1)
        //   = [[[-1, -1, -1, -1, 4]]]
        let x = Tensor::from_vec(vec![1.0f32, 2.0, 3.0, 4.0], [1, 1, 4]).unwrap();
        let w = Tensor::from_vec(vec![1.0f32, -1.0], [1, 1, 2]).unwrap();
        let out = x
            .conv1d(
                &w,
                None,
                Conv1dConfig {
                    padding: 1,
                    ..Default::default()
                },
            )
            .unwrap();
        assert_eq!(
            out.to_vec::<f32>().unwrap(),
            vec![-1.0, -1.0, -1.0, -1.0, 4.0]
        );
        let big = Tensor::ones([1, 1, 9], DType::F32, &Device::cpu()).unwrap();
        assert!(x.conv1d(&big, None, Conv1dConfig::default()).is_err());
    }

    #[test]
    fn fold_is_the_adjoint_of_unfold() {
        // <unfold(x), y> == <x, fold(y)> for any x, y.
        let mut g = crate::Generator::new(2);
        let x = g.randn([2, 3, 5, 4], DType::F64, &Device::cpu()).unwrap();
        let spec = x
            .unfold_spec("t", (2, 3), (2, 1), (1, 1), (1, 1), 0.0)
            .unwrap();
        let ux = x.unfold2d(&spec).unwrap();
        let y = g
            .randn(ux.shape().clone(), DType::F64, &Device::cpu())
            .unwrap();
        let lhs = ux
            .mul(&y)
            .unwrap()
            .sum_all()
            .unwrap()
            .to_scalar::<f64>()
            .unwrap();
        let rhs = x
            .mul(&y.fold2d(&spec).unwrap())
            .unwrap()
            .sum_all()
            .unwrap()
            .to_scalar::<f64>()
            .unwrap();
        assert!((lhs - rhs).abs() < 1e-9, "{lhs} vs {rhs}");
    }
}
