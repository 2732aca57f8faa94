//! 2-d convolution as one autograd node (im2col + matrix product per chunk of images) whose
//! backward recomputes the columns chunk by chunk.
//!
//! Composed from unfold and matmul nodes, a convolution keeps the columns of the whole batch
//! alive until backward: `kh * kw` times the input (75 MB for 64 images of 32 channels at 32x32
//! with a 3x3 kernel). Here the forward unfolds at most [`CHUNK_BYTES`] of columns at a time and
//! the node saves only its input and weight (the backward unfolds again, a small cost next to
//! the matrix products). The bias is added in place into the fresh output. The backward is
//! written with differentiable tensor ops, so higher-order gradients still work.

use super::untracked;
use crate::{Conv2dConfig, Result, Save, Tensor, Unfold2d};

/// Most bytes of im2col columns unfolded at once.
pub const CHUNK_BYTES: usize = 8 << 20;

/// A convolution's sizes: groups, output channels, taps per group, output positions, and the
/// number of images per chunk.
#[derive(Clone, Copy)]
struct Geometry {
    spec: Unfold2d,
    groups: usize,
    out: usize,
    taps: usize,
    hw: (usize, usize),
    chunk: usize,
}

impl Geometry {
    fn new(spec: Unfold2d, groups: usize, out: usize, elem_bytes: usize) -> Geometry {
        let (oh, ow) = spec.out_hw();
        let taps = spec.c / groups * spec.kernel.0 * spec.kernel.1;
        // Bounded by the column shape's element count, checked by `conv2d_spec`.
        let per_image = (spec.c * spec.kernel.0 * spec.kernel.1 * oh * ow * elem_bytes).max(1);
        let chunk = (CHUNK_BYTES / per_image).clamp(1, spec.n.max(1));
        Geometry {
            spec,
            groups,
            out,
            taps,
            hw: (oh, ow),
            chunk,
        }
    }

    /// `(start, len, spec)` of each chunk of images (one empty chunk for an empty batch).
    fn chunks(&self) -> impl Iterator<Item = (usize, usize, Unfold2d)> + '_ {
        let count = self.spec.n.div_ceil(self.chunk).max(1);
        (0..count).map(|i| {
            let start = i * self.chunk;
            let len = self.chunk.min(self.spec.n - start);
            (
                start,
                len,
                Unfold2d {
                    n: len,
                    ..self.spec
                },
            )
        })
    }

    /// Columns of images `[start, start + len)` of `x` as `[len, groups, taps, oh*ow]`.
    fn cols(&self, x: &Tensor, start: usize, len: usize, spec: &Unfold2d) -> Result<Tensor> {
        let part = if len == self.spec.n {
            x.clone()
        } else {
            x.narrow(0, start, len)?
        };
        let l = self.hw.0 * self.hw.1;
        part.unfold2d(spec)?
            .reshape([len, self.groups, self.taps, l])
    }

    /// The weight as `[groups, out/groups, taps]`.
    fn weight(&self, w: &Tensor) -> Result<Tensor> {
        w.reshape([self.groups, self.out / self.groups, self.taps])
    }
}

fn cat(mut parts: Vec<Tensor>) -> Result<Tensor> {
    if parts.len() == 1 {
        if let Some(only) = parts.pop() {
            return Ok(only);
        }
    }
    Tensor::cat(&parts, 0)
}

/// The forward pass (no graph), chunk by chunk into one output, plus the bias in place.
fn forward(x: &Tensor, w: &Tensor, bias: Option<&Tensor>, geo: &Geometry) -> Result<Tensor> {
    let wm = geo.weight(w)?;
    let (oh, ow) = geo.hw;
    let (n, o) = (geo.spec.n, geo.out);
    let mut out = None;
    for (start, len, spec) in geo.chunks() {
        let part = wm
            .matmul(&geo.cols(x, start, len, &spec)?)?
            .reshape([len, o, oh, ow])?;
        if len == n {
            out = Some(part);
        } else {
            let dst = match &out {
                Some(dst) => dst,
                None => out.insert(Tensor::zeros([n, o, oh, ow], x.dtype(), x.device())?),
            };
            dst.narrow(0, start, len)?.copy_(&part)?;
        }
    }
    let out = match out {
        Some(out) => out,
        None => Tensor::zeros([n, o, oh, ow], x.dtype(), x.device())?,
    };
    if let Some(b) = bias {
        out.add_(&b.reshape([1, o, 1, 1])?)?;
    }
    Ok(out)
}

/// Gradients of the input and the weight from the output gradient `g` `[n, out, oh, ow]`.
fn backward(
    x: &Tensor,
    w: &Tensor,
    g: &Tensor,
    need: (bool, bool),
    geo: &Geometry,
) -> Result<(Option<Tensor>, Option<Tensor>)> {
    let wm = geo.weight(w)?;
    let per_group = geo.out / geo.groups;
    let l = geo.hw.0 * geo.hw.1;
    let (mut dxs, mut dw) = (Vec::new(), None::<Tensor>);
    for (start, len, spec) in geo.chunks() {
        let gs = if len == geo.spec.n {
            g.clone()
        } else {
            g.narrow(0, start, len)?
        };
        let gs = gs.reshape([len, geo.groups, per_group, l])?;
        if need.1 {
            let cols = geo.cols(x, start, len, &spec)?;
            let part = gs.matmul(&cols.transpose(-1, -2)?)?.sum(&[0], false)?;
            dw = Some(match dw {
                None => part,
                Some(acc) => acc.add(&part)?,
            });
        }
        if need.0 {
            let dcols = wm.transpose(-1, -2)?.matmul(&gs)?;
            let dcols = dcols.reshape([len, geo.groups * geo.taps, l])?;
            dxs.push(dcols.fold2d(&Unfold2d {
                pad_value: 0.0,
                ..spec
            })?);
        }
    }
    let dx = if need.0 { Some(cat(dxs)?) } else { None };
    let dw = dw.map(|d| d.reshape(w.shape().clone())).transpose()?;
    Ok((dx, dw))
}

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
        let spec = self.conv2d_spec(weight, bias, cfg)?;
        let o = weight.dims()[0];
        let geo = Geometry::new(spec, cfg.groups, o, self.dtype().size_in_bytes());
        let out = untracked(|| forward(self, weight, bias, &geo))?;
        let has_bias = bias.is_some();
        let mut inputs = vec![self, weight];
        inputs.extend(bias);
        Ok(Tensor::from_op(
            out,
            "conv2d",
            &inputs,
            Save::input(0).and_input(1),
            move |ctx, g| {
                let (x, w) = (ctx.input(0)?, ctx.input(1)?);
                let need = (ctx.needs_grad(0), ctx.needs_grad(1));
                let (dx, dw) = backward(&x, &w, g, need, &geo)?;
                let mut grads = vec![dx, dw];
                if has_bias {
                    let db = ctx
                        .needs_grad(2)
                        .then(|| g.sum(&[0, 2, 3], false))
                        .transpose()?;
                    grads.push(db);
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
        let (a, b) = (a.to_vec::<f64>().unwrap(), b.to_vec::<f64>().unwrap());
        assert_eq!(a.len(), b.len());
        a.iter()
            .zip(&b)
            .map(|(x, y)| (x - y).abs())
            .fold(0.0, f64::max)
    }

    #[test]
    fn chunked_convolution_and_gradients_equal_the_composition() {
        // 64x64 images, 8 channels in 2 groups, 3x3: 2.4 MB of f64 columns per image, so the
        // 7 images run in chunks of 3, 3 and 1.
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
        assert_eq!(geo.chunks().map(|c| c.1).collect::<Vec<_>>(), [3, 3, 1]);
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
            // A weighted sum, so every output position gets a different gradient.
            let weights = Tensor::arange(0.0, y.elem_count() as f64, 1.0, DType::F64, &cpu)
                .unwrap()
                .reshape(y.shape().clone())
                .unwrap()
                .cos()
                .unwrap();
            y.mul(&weights)
                .unwrap()
                .sum_all()
                .unwrap()
                .backward()
                .unwrap();
            grads.push([
                y.detach(),
                x.grad().unwrap(),
                w.grad().unwrap(),
                b.grad().unwrap(),
            ]);
        }
        for (i, (a, b)) in grads[0].iter().zip(&grads[1]).enumerate() {
            assert!(
                max_diff(a, b) < 1e-9,
                "tensor {i} differs by {}",
                max_diff(a, b)
            );
        }
    }
}
