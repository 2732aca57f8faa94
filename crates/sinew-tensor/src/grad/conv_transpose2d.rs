//! Transposed 2-d convolution as one autograd node: the input gradient of a convolution
//! ("deconvolution"), computed by the convolution's own input-gradient path (a backend's direct
//! kernel, on a GPU an implicit GEMM; else a convolution of flipped weights or col2im by
//! chunks, `conv2d_chunks.rs`), so no column buffer of the whole batch is made. Its backward
//! is the convolution's forward (input gradient) and weight gradient with the roles swapped.

use super::conv2d_chunks::{Geometry, backward, bias_grad};
use super::untracked;
use crate::{Conv2dConfig, Error, Result, Save, Tensor, Unfold2d};

const OP: &str = "conv_transpose2d";

/// The output size of one axis: `(i - 1) * s - 2p + d * (k - 1) + extra + 1`.
fn out_size(i: usize, s: usize, p: usize, d: usize, k: usize, extra: usize) -> Result<usize> {
    let grown = (i.max(1) - 1)
        .checked_mul(s)
        .and_then(|v| v.checked_add(d.checked_mul(k.max(1) - 1)?))
        .and_then(|v| v.checked_add(extra.checked_add(1)?));
    let grown = grown.ok_or_else(|| Error::Overflow {
        op: OP,
        what: "the output size".into(),
    })?;
    grown
        .checked_sub(p.saturating_mul(2))
        .ok_or_else(|| Error::invalid(OP, "the padding is larger than the output"))
}

/// The convolution whose input gradient `conv_transpose2d` is: its input is the transposed
/// convolution's output `[n, out, oh, ow]`, its output the transposed convolution's input.
fn adjoint_spec(
    x: &Tensor,
    weight: &Tensor,
    cfg: Conv2dConfig,
    output_padding: (usize, usize),
) -> Result<(Unfold2d, usize)> {
    x.check_same_device(OP, weight)?;
    x.check_same_dtype(OP, weight)?;
    let (&[n, cin, h, w], &[win, cout_g, kh, kw]) = (x.dims(), weight.dims()) else {
        return Err(Error::invalid(
            OP,
            format!(
                "expects x [n, in, h, w] and weight [in, out/groups, kh, kw], got {} and {}",
                x.shape(),
                weight.shape()
            ),
        ));
    };
    let g = cfg.groups;
    if cin != win || g == 0 || cin % g != 0 {
        return Err(Error::ShapeMismatch {
            op: OP,
            lhs: x.shape().clone(),
            rhs: weight.shape().clone(),
        });
    }
    let ((sh, sw), (ph, pw), (dh, dw)) = (cfg.stride, cfg.padding, cfg.dilation);
    if kh == 0 || kw == 0 || sh == 0 || sw == 0 || dh == 0 || dw == 0 {
        return Err(Error::invalid(
            OP,
            "kernel size, stride and dilation must be positive",
        ));
    }
    let (oph, opw) = output_padding;
    if oph >= sh.max(dh) || opw >= sw.max(dw) {
        return Err(Error::invalid(
            OP,
            format!(
                "output_padding {output_padding:?} must be smaller than the stride or the dilation"
            ),
        ));
    }
    let spec = Unfold2d {
        n,
        c: cout_g.checked_mul(g).ok_or_else(|| Error::Overflow {
            op: OP,
            what: "the output channels".into(),
        })?,
        h: out_size(h, sh, ph, dh, kh, oph)?,
        w: out_size(w, sw, pw, dw, kw, opw)?,
        kernel: (kh, kw),
        stride: cfg.stride,
        padding: cfg.padding,
        dilation: cfg.dilation,
        pad_value: 0.0,
    };
    if spec.check(OP)? != (h, w) {
        return Err(Error::invalid(
            OP,
            format!("no output size gives back a {h}x{w} input for {cfg:?}"),
        ));
    }
    Ok((spec, cin))
}

impl Tensor {
    /// Transposed 2-d convolution of `[n, in, h, w]` with weight `[in, out/groups, kh, kw]` and
    /// optional bias `[out]`, into `[n, out, oh, ow]` with `oh = (h - 1) * stride - 2 * padding
    /// + dilation * (kh - 1) + output_padding + 1` (likewise `ow`); `output_padding` must be
    /// smaller than the stride or the dilation. PyTorch equivalent: `F.conv_transpose2d`.
    ///
    /// Backward: the input gradient is the convolution of the output gradient with the same
    /// weight, the weight gradient that of a convolution of the output gradient producing the
    /// input, the bias gradient the output gradient summed over images and positions. Saved:
    /// the input and the weight.
    pub fn conv_transpose2d(
        &self,
        weight: &Tensor,
        bias: Option<&Tensor>,
        cfg: Conv2dConfig,
        output_padding: (usize, usize),
    ) -> Result<Tensor> {
        let mut inputs = vec![self, weight];
        inputs.extend(bias);
        if let Some(cast) = crate::autocast::lowered(&inputs)? {
            return cast[0].conv_transpose2d(&cast[1], cast.get(2), cfg, output_padding);
        }
        let (spec, cin) = adjoint_spec(self, weight, cfg, output_padding)?;
        if let Some(b) = bias
            && b.dims() != [spec.c]
        {
            return Err(Error::ShapeMismatch {
                op: OP,
                lhs: b.shape().clone(),
                rhs: crate::Shape::new([spec.c]),
            });
        }
        let geo = Geometry::new(spec, cfg.groups, cin, self.dtype().size_in_bytes());
        let out = untracked(|| {
            // The adjoint convolution's input gradient, `self` as its output gradient (its
            // input, the first argument, is only asked for its device and dtype when no weight
            // gradient is wanted).
            let (y, _) = backward(self, weight, self, (true, false), &geo, None)?;
            let y = y.ok_or_else(|| Error::invalid(OP, "no input gradient was computed"))?;
            if let Some(b) = bias {
                y.add_(&b.reshape([1, spec.c, 1, 1])?)?;
            }
            Ok(y)
        })?;
        let has_bias = bias.is_some();
        Ok(Tensor::from_op(
            out,
            OP,
            &inputs,
            Save::input(0).and_input(1),
            move |ctx, g| {
                let (x, w) = (ctx.input(0)?, ctx.input(1)?);
                let dx = ctx
                    .needs_grad(0)
                    .then(|| g.conv2d(&w, None, cfg))
                    .transpose()?;
                let dw = if ctx.needs_grad(1) {
                    backward(g, &w, &x, (false, true), &geo, None)?.1
                } else {
                    None
                };
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

    /// The transposed convolution composed from matmul and fold2d nodes, group by group
    /// (autograd differentiates it).
    fn composed(
        x: &Tensor,
        w: &Tensor,
        b: &Tensor,
        cfg: Conv2dConfig,
        output_padding: (usize, usize),
    ) -> Result<Tensor> {
        let (spec, cin) = adjoint_spec(x, w, cfg, output_padding)?;
        let (n, h, wd) = (x.dims()[0], x.dims()[2], x.dims()[3]);
        let (g, (kh, kw)) = (cfg.groups, spec.kernel);
        let (cin_g, cout_g) = (cin / g, spec.c / g);
        let mut parts = Vec::new();
        for gi in 0..g {
            let wg = w
                .narrow(0, gi * cin_g, cin_g)?
                .reshape([cin_g, cout_g * kh * kw])?;
            let xg = x
                .narrow(1, gi * cin_g, cin_g)?
                .reshape([n, cin_g, h * wd])?;
            let cols = wg.t()?.matmul(&xg)?;
            parts.push(cols.fold2d(&Unfold2d { c: cout_g, ..spec })?);
        }
        Tensor::cat(&parts, 1)?.add(&b.reshape([1, spec.c, 1, 1])?)
    }

    fn max_diff(a: &Tensor, b: &Tensor) -> f64 {
        let (a, b) = (a.to_vec_f64().unwrap(), b.to_vec_f64().unwrap());
        assert_eq!(a.len(), b.len());
        a.iter()
            .zip(&b)
            .map(|(x, y)| (x - y).abs())
            .fold(0.0, f64::max)
    }

    #[test]
    fn values_and_gradients_equal_the_composition() {
        // (stride, padding, dilation, groups, output_padding, channels in/out): stride 2 with
        // output padding, dilation, groups, and 16+ channels with stride 1 (the CPU takes its
        // convolution-of-flipped-weights and fused paths there in f32).
        let cases = [
            ((2, 2), (1, 1), (1, 1), 1, (1, 1), (4, 6)),
            ((2, 1), (0, 1), (2, 1), 2, (1, 0), (4, 6)),
            ((1, 1), (1, 1), (1, 1), 1, (0, 0), (16, 8)),
            ((3, 2), (1, 0), (1, 2), 1, (2, 1), (3, 5)),
        ];
        let cpu = Device::cpu();
        for dtype in [DType::F64, DType::F32] {
            for (i, (stride, padding, dilation, groups, out_pad, (cin, cout))) in
                cases.into_iter().enumerate()
            {
                let cfg = Conv2dConfig {
                    stride,
                    padding,
                    dilation,
                    groups,
                };
                let mut rng = Generator::new(5 + i as u64);
                let x = rng.uniform([2, cin, 5, 7], -1.0, 1.0, dtype, &cpu).unwrap();
                let w = rng
                    .uniform([cin, cout / groups, 3, 3], -1.0, 1.0, dtype, &cpu)
                    .unwrap();
                let b = rng.uniform([cout], -1.0, 1.0, dtype, &cpu).unwrap();
                let mut results = Vec::new();
                for fused in [true, false] {
                    let (x, w, b) = (
                        x.detach().requires_grad_(),
                        w.detach().requires_grad_(),
                        b.detach().requires_grad_(),
                    );
                    let y = if fused {
                        x.conv_transpose2d(&w, Some(&b), cfg, out_pad).unwrap()
                    } else {
                        composed(&x, &w, &b, cfg, out_pad).unwrap()
                    };
                    let n = y.elem_count() as f64;
                    let weights = Tensor::arange(0.0, n, 1.0, dtype, &cpu)
                        .unwrap()
                        .sin()
                        .unwrap()
                        .reshape(y.shape().clone())
                        .unwrap();
                    y.mul(&weights)
                        .unwrap()
                        .sum_all()
                        .unwrap()
                        .backward()
                        .unwrap();
                    results.push([
                        y.detach(),
                        x.grad().unwrap(),
                        w.grad().unwrap(),
                        b.grad().unwrap(),
                    ]);
                }
                let tol = if dtype == DType::F64 { 1e-12 } else { 1e-5 };
                for (t, (a, b)) in results[0].iter().zip(&results[1]).enumerate() {
                    let d = max_diff(a, b);
                    assert!(d < tol, "{dtype} case {i}: tensor {t} differs by {d}");
                }
            }
        }
    }

    #[test]
    fn bad_shapes_and_output_padding_are_errors() {
        let cpu = Device::cpu();
        let x = Tensor::zeros([1, 4, 5, 5], DType::F32, &cpu).unwrap();
        let w = Tensor::zeros([4, 2, 3, 3], DType::F32, &cpu).unwrap();
        let cfg = Conv2dConfig {
            stride: (2, 2),
            ..Conv2dConfig::default()
        };
        let y = x.conv_transpose2d(&w, None, cfg, (1, 1)).unwrap();
        // (5 - 1) * 2 + (3 - 1) + 1 + 1 = 12.
        assert_eq!(y.dims(), &[1, 2, 12, 12]);
        assert!(
            x.conv_transpose2d(&w, None, cfg, (2, 0)).is_err(),
            "output padding"
        );
        let wrong = Tensor::zeros([3, 2, 3, 3], DType::F32, &cpu).unwrap();
        assert!(
            x.conv_transpose2d(&wrong, None, cfg, (0, 0)).is_err(),
            "channels"
        );
        let padded = Conv2dConfig {
            padding: (9, 9),
            ..cfg
        };
        assert!(
            x.conv_transpose2d(&w, None, padded, (0, 0)).is_err(),
            "padding"
        );
        let bias = Tensor::zeros([3], DType::F32, &cpu).unwrap();
        assert!(
            x.conv_transpose2d(&w, Some(&bias), cfg, (0, 0)).is_err(),
            "bias"
        );
    }
}
