//! 2-d convolution as one autograd node (im2col + matrix product per chunk of images) whose
//! backward recomputes the columns chunk by chunk.
//!
//! Composed from unfold and matmul nodes, a convolution keeps the columns of the whole batch
//! alive until backward: `kh * kw` times the input (75 MB for 64 images of 32 channels at 32x32
//! with a 3x3 kernel). Here the forward unfolds at most `CHUNK_BYTES` (10 MB) of columns at a time and
//! the node saves only its input and weight (the backward unfolds again, a small cost next to
//! the matrix products). The bias, and a ReLU after it (`conv2d_then`), are applied by the
//! convolution's own kernel where the backend has that epilogue (`Backend::conv2d_epilogue`: the
//! GPU's implicit GEMM), else in place on the fresh output.
//! The passes are in `conv2d_chunks.rs`.

use super::conv2d_chunks::{Geometry, backward, bias_grad, forward};
use super::untracked;
use crate::{Activation, Conv2dConfig, Result, Save, Tensor};

impl Tensor {
    /// 2-d convolution (cross-correlation, as in PyTorch) of `[n, c, h, w]` with weight
    /// `[o, c/groups, kh, kw]` and optional bias `[o]`. PyTorch equivalent: `F.conv2d`.
    ///
    /// Backward: the input gradient is col2im of `weight^T @ grad`, the weight gradient
    /// `grad @ columns^T` summed over images, with the columns recomputed per chunk of images
    /// (see the module docs), the bias gradient `grad` summed over images and positions.
    /// Saved: the input and the weight.
    pub fn conv2d(
        &self,
        weight: &Tensor,
        bias: Option<&Tensor>,
        cfg: Conv2dConfig,
    ) -> Result<Tensor> {
        self.conv2d_then(weight, bias, cfg, None)
    }

    /// [`Tensor::conv2d`] followed by `activation` (a convolution followed by ReLU), applied in
    /// the convolution's epilogue where the backend has one
    /// ([`crate::Backend::conv2d_epilogue`]: one kernel on the GPU), else in place on its fresh
    /// output; the values of the two ops, recorded as one node that also saves its output (the
    /// backward masks the gradient with it first, ReLU's rule). PyTorch equivalent:
    /// `F.relu(F.conv2d(...))`.
    pub fn conv2d_then(
        &self,
        weight: &Tensor,
        bias: Option<&Tensor>,
        cfg: Conv2dConfig,
        activation: Option<Activation>,
    ) -> Result<Tensor> {
        let mut inputs = vec![self, weight];
        inputs.extend(bias);
        if let Some(cast) = crate::autocast::lowered(&inputs)? {
            return cast[0].conv2d_then(&cast[1], cast.get(2), cfg, activation);
        }
        let spec = self.conv2d_spec(weight, bias, cfg)?;
        let o = weight.dims()[0];
        let geo = Geometry::new(spec, cfg.groups, o, self.dtype().size_in_bytes());
        let relu = match activation {
            None => false,
            Some(Activation::Relu) => true,
        };
        let out = untracked(|| forward(self, weight, (bias, relu), &geo))?;
        let has_bias = bias.is_some();
        let save = Save::input(0).and_input(1);
        Ok(Tensor::from_op(
            out,
            "conv2d",
            &inputs,
            if relu { save.and_output() } else { save },
            move |ctx, g| {
                let masked;
                let g = if relu {
                    masked = super::unary::relu_input_grad(g, &ctx.output()?)?;
                    &masked
                } else {
                    g
                };
                let (x, w) = (ctx.input(0)?, ctx.input(1)?);
                let need = (ctx.needs_grad(0), ctx.needs_grad(1));
                // Also the input's gradient from its other users (a residual block's shortcut),
                // and the weight's in the dtype it was cast from (autocast's f32 weight).
                let (dx, dw) = backward(&x, &w, g, need, &geo, Some(ctx))?;
                let mut grads = vec![dx, dw];
                if has_bias {
                    grads.push(bias_grad(ctx, g)?);
                }
                Ok(grads)
            },
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{DType, Device, Generator};

    /// The convolution composed from unfold and matmul nodes (autograd differentiates it).
    fn composed(x: &Tensor, w: &Tensor, b: &Tensor, cfg: Conv2dConfig) -> Result<Tensor> {
        let spec = x.conv2d_spec(w, Some(b), cfg)?;
        let (g, o) = (cfg.groups, w.dims()[0]);
        let (oh, ow) = spec.out_hw();
        let taps = spec.c / g * spec.kernel.0 * spec.kernel.1;
        let cols = x.unfold2d(&spec)?.reshape([spec.n, g, taps, oh * ow])?;
        w.reshape([g, o / g, taps])?
            .matmul(&cols)?
            .reshape([spec.n, o, oh, ow])?
            .add(&b.reshape([1, o, 1, 1])?)
    }

    fn max_diff(a: &Tensor, b: &Tensor) -> f64 {
        let (a, b) = (a.to_vec_f64().unwrap(), b.to_vec_f64().unwrap());
        assert_eq!(a.len(), b.len());
        a.iter()
            .zip(&b)
            .map(|(x, y)| (x - y).abs())
            .fold(0.0, f64::max)
    }

    type ConvFn = fn(&Tensor, &Tensor, &Tensor, Conv2dConfig) -> Result<Tensor>;

    /// Weights of `y`'s shape with a different value at every position: `cos` of the index
    /// (so every output position gets a different gradient).
    fn cosine_weights(y: &Tensor) -> Tensor {
        Tensor::arange(0.0, y.elem_count() as f64, 1.0, y.dtype(), y.device())
            .unwrap()
            .reshape(y.shape().clone())
            .unwrap()
            .cos()
            .unwrap()
    }

    /// The output and the gradients of x, w and b of a cosine-weighted sum of the output (every
    /// output position gets a different gradient), from the fused op and from [`composed`].
    fn outputs_and_grads(
        x: &Tensor,
        w: &Tensor,
        b: &Tensor,
        cfg: Conv2dConfig,
    ) -> Vec<[Tensor; 4]> {
        let fused: ConvFn = |x, w, b, cfg| x.conv2d(w, Some(b), cfg);
        [fused, composed as ConvFn]
            .into_iter()
            .map(|f| {
                let (x, w, b) = (
                    x.detach().requires_grad_(),
                    w.detach().requires_grad_(),
                    b.detach().requires_grad_(),
                );
                let y = f(&x, &w, &b, cfg).unwrap();
                y.mul(&cosine_weights(&y))
                    .unwrap()
                    .sum_all()
                    .unwrap()
                    .backward()
                    .unwrap();
                [
                    y.detach(),
                    x.grad().unwrap(),
                    w.grad().unwrap(),
                    b.grad().unwrap(),
                ]
            })
            .collect()
    }

    #[test]
    fn chunked_convolution_and_gradients_equal_the_composition() {
        // 64x64 images, 8 channels in 2 groups, 3x3: 2.4 MB of f64 columns per image, so the
        // 7 images run in chunks of 4 and 3.
        let mut rng = Generator::new(7);
        let cpu = Device::cpu();
        let x = rng
            .uniform([7, 8, 64, 64], -1.0, 1.0, DType::F64, &cpu)
            .unwrap();
        let w = rng
            .uniform([6, 4, 3, 3], -1.0, 1.0, DType::F64, &cpu)
            .unwrap();
        let b = rng.uniform([6], -1.0, 1.0, DType::F64, &cpu).unwrap();
        let cfg = Conv2dConfig {
            padding: (1, 2),
            dilation: (1, 2),
            groups: 2,
            ..Conv2dConfig::default()
        };
        let spec = x.conv2d_spec(&w, Some(&b), cfg).unwrap();
        let geo = Geometry::new(spec, 2, 6, 8);
        assert_eq!(geo.chunks().map(|c| c.1).collect::<Vec<_>>(), [4, 3]);
        let grads = outputs_and_grads(&x, &w, &b, cfg);
        for (i, (a, b)) in grads[0].iter().zip(&grads[1]).enumerate() {
            assert!(
                max_diff(a, b) < 1e-9,
                "tensor {i} differs by {}",
                max_diff(a, b)
            );
        }
    }

    #[test]
    fn f32_fused_passes_equal_the_composition() {
        // f32 on the CPU: the fused forward, the input gradient as a convolution (stride 1,
        // one group, "same" padding, 16+ channels) and the fused weight gradient, against
        // unfold + matmul; 4 channels, no padding, stride 2 and groups take the general
        // backward.
        let cpu = Device::cpu();
        let cfgs = [
            ((1, 1), (1, 2), (1, 2), 1, 4),
            ((1, 1), (0, 0), (1, 1), 1, 4),
            ((2, 1), (1, 1), (1, 1), 1, 4),
            ((1, 1), (1, 1), (1, 1), 2, 4),
            ((1, 1), (1, 1), (1, 1), 1, 16),
            ((1, 1), (1, 2), (1, 2), 1, 16),
            ((1, 1), (0, 0), (1, 1), 1, 16),
        ];
        for (stride, padding, dilation, groups, channels) in cfgs {
            let cfg = Conv2dConfig {
                stride,
                padding,
                dilation,
                groups,
            };
            let mut rng = Generator::new(13);
            let x = rng
                .uniform([3, channels, 9, 11], -1.0, 1.0, DType::F32, &cpu)
                .unwrap();
            let w = rng
                .uniform([6, channels / groups, 3, 3], -1.0, 1.0, DType::F32, &cpu)
                .unwrap();
            let b = rng.uniform([6], -1.0, 1.0, DType::F32, &cpu).unwrap();
            let results = outputs_and_grads(&x, &w, &b, cfg);
            for (i, (a, b)) in results[0].iter().zip(&results[1]).enumerate() {
                let d = max_diff(a, b);
                assert!(d < 1e-4, "{cfg:?}: tensor {i} differs by {d}");
            }
        }
    }

    #[test]
    fn second_order_gradients_equal_the_composition() {
        // 5 images of 8x64x64 f64 in chunks of 4 and 1 (2.4 MB of columns each), groups of 2.
        let mut rng = Generator::new(11);
        let cpu = Device::cpu();
        let x = rng
            .uniform([5, 8, 64, 64], -1.0, 1.0, DType::F64, &cpu)
            .unwrap();
        let w = rng
            .uniform([4, 4, 3, 3], -1.0, 1.0, DType::F64, &cpu)
            .unwrap();
        let b = rng.uniform([4], -1.0, 1.0, DType::F64, &cpu).unwrap();
        let cfg = Conv2dConfig {
            stride: (2, 1),
            padding: (1, 1),
            groups: 2,
            ..Conv2dConfig::default()
        };
        let mut grads = Vec::new();
        for f in [
            |x: &Tensor, w: &Tensor, b: &Tensor, cfg| x.conv2d(w, Some(b), cfg),
            composed,
        ] {
            let (x, w, b) = (
                x.detach().requires_grad_(),
                w.detach().requires_grad_(),
                b.detach().requires_grad_(),
            );
            let y = f(&x, &w, &b, cfg).unwrap();
            y.mul(&y)
                .unwrap()
                .sum_all()
                .unwrap()
                .backward_with(
                    None,
                    crate::BackwardOptions {
                        create_graph: true,
                        ..Default::default()
                    },
                )
                .unwrap();
            // Differentiate the input gradient again: reaches the weight through the backward.
            let dx = x.grad().unwrap();
            dx.mul(&dx).unwrap().sum_all().unwrap().backward().unwrap();
            grads.push([dx.detach(), w.grad().unwrap().detach()]);
        }
        for (i, (a, b)) in grads[0].iter().zip(&grads[1]).enumerate() {
            let scale = max_diff(b, &b.zeros_like().unwrap()).max(1.0);
            assert!(
                max_diff(a, b) < 1e-9 * scale,
                "tensor {i} differs by {}",
                max_diff(a, b)
            );
        }
    }

    #[test]
    fn chunks_divide_the_batch_evenly_when_they_can() {
        let cpu = Device::cpu();
        let chunks = |n: usize, c: usize| {
            let x = Tensor::zeros([n, c, 32, 32], DType::F32, &cpu).unwrap();
            let w = Tensor::zeros([4, c, 3, 3], DType::F32, &cpu).unwrap();
            let cfg = Conv2dConfig {
                padding: (1, 1),
                ..Conv2dConfig::default()
            };
            let spec = x.conv2d_spec(&w, None, cfg).unwrap();
            Geometry::new(spec, 1, 4, 4)
                .chunks()
                .map(|c| c.1)
                .collect::<Vec<_>>()
        };
        // 1.2 MB of columns per image of 32 channels: at most 8 per chunk.
        assert_eq!(chunks(64, 32), [8; 8]);
        // At most 8, and 60 = 6 * 10.
        assert_eq!(chunks(60, 32), [6; 10]);
        // 67 is prime: 8 per chunk and the rest.
        assert_eq!(chunks(67, 32), [8, 8, 8, 8, 8, 8, 8, 8, 3]);
        assert_eq!(chunks(0, 32), [0]);
    }

    #[test]
    fn a_residual_inputs_gradient_is_the_bitwise_sum_of_its_paths() {
        // A residual block's input: the 3x3 convolution is recorded before the 1x1 shortcut, so
        // backward runs the shortcut's rule first and the 3x3 rule takes that gradient as
        // pending and adds it (inside the CPU's f32 input-gradient kernel at stride 2; after
        // the input gradient as a convolution at stride 1, and after col2im in f64).
        let mut rng = Generator::new(31);
        let cpu = Device::cpu();
        for (dtype, stride) in [(DType::F32, 1), (DType::F32, 2), (DType::F64, 2)] {
            let x = rng.randn([2, 16, 9, 9], dtype, &cpu).unwrap();
            let w3 = rng.randn([8, 16, 3, 3], dtype, &cpu).unwrap();
            let w1 = rng.randn([8, 16, 1, 1], dtype, &cpu).unwrap();
            let main = Conv2dConfig {
                stride: (stride, stride),
                padding: (1, 1),
                ..Conv2dConfig::default()
            };
            let shortcut = Conv2dConfig {
                stride: (stride, stride),
                ..Conv2dConfig::default()
            };
            // x's gradient through the 3x3 path, the shortcut, or both (summed by backward),
            // from the same output gradient.
            let grad = |paths: [bool; 2]| {
                let x = x.detach().requires_grad_();
                let ys: Vec<Tensor> = [(&w3, main), (&w1, shortcut)]
                    .into_iter()
                    .zip(paths)
                    .filter(|p| p.1)
                    .map(|((w, cfg), _)| x.conv2d(w, None, cfg).unwrap())
                    .collect();
                let y = ys[1..].iter().fold(ys[0].clone(), |y, s| y.add(s).unwrap());
                y.mul(&cosine_weights(&y))
                    .unwrap()
                    .sum_all()
                    .unwrap()
                    .backward()
                    .unwrap();
                x.grad().unwrap()
            };
            let sum = grad([true, false]).add(&grad([false, true])).unwrap();
            let both = grad([true, true]);
            let (both, sum) = (both.to_vec_f64().unwrap(), sum.to_vec_f64().unwrap());
            assert_eq!(both.len(), sum.len());
            let differs = both
                .iter()
                .zip(&sum)
                .position(|(a, b)| a.to_bits() != b.to_bits());
            assert_eq!(
                differs, None,
                "{dtype} stride {stride}: first differing element"
            );
        }
    }

    #[test]
    fn relu_epilogue_has_the_values_and_gradients_of_conv_then_relu() {
        let cfg = Conv2dConfig {
            padding: (1, 0),
            stride: (1, 2),
            ..Conv2dConfig::default()
        };
        let mut g = Generator::new(77);
        let cpu = Device::cpu();
        for dtype in [DType::F32, DType::F64] {
            let x = g.randn([2, 3, 7, 8], dtype, &cpu).unwrap();
            let w = g.randn([4, 3, 3, 3], dtype, &cpu).unwrap();
            let b = g.randn([4], dtype, &cpu).unwrap();
            let run = |fused: bool| {
                let (x, w, b) = (
                    x.detach().requires_grad_(),
                    w.detach().requires_grad_(),
                    b.detach().requires_grad_(),
                );
                let y = if fused {
                    x.conv2d_then(&w, Some(&b), cfg, Some(Activation::Relu))
                } else {
                    x.conv2d(&w, Some(&b), cfg).and_then(|y| y.relu())
                }
                .unwrap();
                y.square().unwrap().sum_all().unwrap().backward().unwrap();
                [y, x.grad().unwrap(), w.grad().unwrap(), b.grad().unwrap()]
                    .map(|t| t.to_vec_f64().unwrap())
            };
            let (want, got) = (run(false), run(true));
            let zeros = got[0].iter().filter(|&&v| v == 0.0).count();
            assert!(zeros > 0 && zeros < got[0].len(), "{dtype}: {zeros} zeros");
            for (k, (a, b)) in got.iter().zip(&want).enumerate() {
                let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                assert_eq!(bits(a), bits(b), "{dtype}: tensor {k}");
            }
        }
    }
}
