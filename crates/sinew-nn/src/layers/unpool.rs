//! `MaxUnpool2d` (PyTorch's `nn.MaxUnpool2d`, `F.max_unpool2d`): the partial inverse of max
//! pooling, each value put back at the position its index names (the flat indices into each
//! `h * w` plane that [`super::pool::max_pool2d_with_indices`] returns) and zeros elsewhere.

use sinew_tensor::{DType, Error, Result, Tensor};

use crate::{Module, summary};

/// The unpooled plane's size: `(h - 1) * stride - 2 * padding + kernel` along each axis, or
/// `output_size`, which PyTorch allows within a stride of it.
fn unpooled_size(
    (h, w): (usize, usize),
    options: &MaxUnpool2d,
    output_size: Option<(usize, usize)>,
) -> Result<(usize, usize)> {
    const OP: &str = "max_unpool2d";
    let (sh, sw) = options.stride.unwrap_or(options.kernel_size);
    let axis = |len: usize, stride: usize, pad: usize, k: usize| {
        len.checked_sub(1)
            .and_then(|l| l.checked_mul(stride))
            .and_then(|l| l.checked_add(k))
            .and_then(|l| l.checked_sub(pad.checked_mul(2)?))
            .ok_or_else(|| {
                Error::invalid(
                    OP,
                    format!("no output size for {len} values (stride {stride}, padding {pad}, kernel {k})"),
                )
            })
    };
    let (ph, pw) = options.padding;
    let (kh, kw) = options.kernel_size;
    let default = (axis(h, sh, ph, kh)?, axis(w, sw, pw, kw)?);
    let Some(size) = output_size else {
        return Ok(default);
    };
    let near = |want: usize, base: usize, stride: usize| {
        want + stride > base && want < base.saturating_add(stride)
    };
    if near(size.0, default.0, sh) && near(size.1, default.1, sw) {
        Ok(size)
    } else {
        Err(Error::invalid(
            OP,
            format!("output_size {size:?} must be within a stride of {default:?}"),
        ))
    }
}

/// PyTorch's `F.max_unpool2d`: `x` (`[n, c, h, w]` or `[c, h, w]`) scattered into zero planes
/// at `indices` (i64, `x`'s shape, flat positions in each output plane), the planes of
/// `output_size` or of the size max pooling with `options` came from. An index outside the
/// plane is an error.
pub fn max_unpool2d(
    x: &Tensor,
    indices: &Tensor,
    options: &MaxUnpool2d,
    output_size: Option<(usize, usize)>,
) -> Result<Tensor> {
    const OP: &str = "max_unpool2d";
    if x.rank() == 3 && indices.rank() == 3 {
        let batch = (x.unsqueeze(0)?, indices.unsqueeze(0)?);
        return max_unpool2d(&batch.0, &batch.1, options, output_size)?.squeeze(0);
    }
    let &[n, c, h, w] = x.dims() else {
        return Err(Error::invalid(
            OP,
            format!("expects [n, c, h, w] or [c, h, w], got {}", x.shape()),
        ));
    };
    if indices.dims() != x.dims() || indices.dtype() != DType::I64 {
        return Err(Error::invalid(
            OP,
            format!(
                "indices must be i64 of the input's shape {}, got {} {}",
                x.shape(),
                indices.dtype(),
                indices.shape()
            ),
        ));
    }
    let (oh, ow) = unpooled_size((h, w), options, output_size)?;
    let plane = oh.checked_mul(ow).ok_or_else(|| Error::Overflow {
        op: OP,
        what: format!("an output plane of {oh}x{ow}"),
    })?;
    let zeros = Tensor::zeros([n, c, plane], x.dtype(), x.device())?;
    let flat = |t: &Tensor| t.reshape([n, c, h * w]);
    zeros
        .scatter(2, &flat(indices)?, &flat(x)?)?
        .reshape([n, c, oh, ow])
}

/// PyTorch's `nn.MaxUnpool2d(kernel_size, stride=None, padding=0)`: see [`max_unpool2d`]. As a
/// [`Module`] it cannot take the indices; call [`MaxUnpool2d::forward_with`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MaxUnpool2d {
    /// The pooling window (height, width).
    pub kernel_size: (usize, usize),
    /// The pooling stride (default `None`: the kernel).
    pub stride: Option<(usize, usize)>,
    /// The pooling padding (default 0).
    pub padding: (usize, usize),
}

impl MaxUnpool2d {
    /// The inverse of max pooling with `kernel_size` windows at stride `kernel_size`.
    pub fn new(kernel_size: (usize, usize)) -> Self {
        MaxUnpool2d {
            kernel_size,
            stride: None,
            padding: (0, 0),
        }
    }

    /// Unpools `x` at `indices` (PyTorch's `forward(input, indices, output_size=None)`).
    pub fn forward_with(
        &self,
        x: &Tensor,
        indices: &Tensor,
        output_size: Option<(usize, usize)>,
    ) -> Result<Tensor> {
        let y = max_unpool2d(x, indices, self, output_size)?;
        summary::note(self, &y);
        Ok(y)
    }
}

impl Module for MaxUnpool2d {
    /// An error: unpooling needs the pooling's indices ([`MaxUnpool2d::forward_with`]).
    fn forward(&self, _: &Tensor) -> Result<Tensor> {
        Err(Error::invalid(
            "MaxUnpool2d",
            "needs the pooling's indices: call forward_with(x, indices, output_size)",
        ))
    }
}

#[cfg(test)]
mod tests {
    use sinew_tensor::Device;

    use super::*;
    use crate::{PoolOptions, functional as F};

    /// Unpooling a max pooling's output puts each maximum back where it was, zeros elsewhere;
    /// indices outside the plane and sizes beyond a stride are errors.
    #[test]
    fn unpooling_restores_the_maxima_in_place() -> Result<()> {
        let v: Vec<f32> = (0..16).map(|i| ((i * 7) % 16) as f32).collect();
        let x = Tensor::from_vec(v.clone(), [1, 1, 4, 4])?;
        let (y, idx) = F::max_pool2d_with_indices(&x, &PoolOptions::new(2))?;
        let unpool = MaxUnpool2d::new((2, 2));
        let back = unpool.forward_with(&y, &idx, None)?.to_vec::<f32>()?;
        let kept: Vec<usize> = idx.to_vec::<i64>()?.iter().map(|&i| i as usize).collect();
        for (i, b) in back.iter().enumerate() {
            let want = if kept.contains(&i) { v[i] } else { 0.0 };
            assert_eq!(*b, want, "position {i}");
        }
        let wider = unpool.forward_with(&y, &idx, Some((5, 5)))?;
        assert_eq!(wider.dims(), [1, 1, 5, 5]);
        assert!(unpool.forward_with(&y, &idx, Some((6, 4))).is_err());
        let bad = Tensor::full([1, 1, 2, 2], 16.0, DType::I64, &Device::cpu())?;
        assert!(unpool.forward_with(&y, &bad, None).is_err());
        assert!(unpool.forward(&y).is_err());
        Ok(())
    }
}
