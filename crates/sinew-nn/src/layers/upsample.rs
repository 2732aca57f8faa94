//! Resampling layers: `Upsample` (PyTorch's `F.interpolate` with `mode='nearest'`, or
//! `'linear'`/`'bilinear'`/`'trilinear'` with `align_corners`) and the sub-pixel
//! rearrangements `PixelShuffle` / `PixelUnshuffle`.

use sinew_tensor::{Error, Result, Tensor};

use crate::{Module, summary};

/// The output size or the scale factor of an [`Upsample`].
#[derive(Debug, Clone, PartialEq)]
pub enum UpsampleTo {
    /// The size of each spatial dim (one value for all of them, or one each).
    Size(Vec<usize>),
    /// The factor of every spatial dim; the output size is `floor(size * factor)`.
    Scale(f64),
}

/// An empty vector with room for `n` values, or an out-of-memory error (`n` is an output size
/// the caller chose).
fn with_capacity<T>(n: usize) -> Result<Vec<T>> {
    let mut v = Vec::new();
    v.try_reserve_exact(n).map_err(|_| Error::OutOfMemory {
        op: "interpolate",
        bytes: n as u128 * std::mem::size_of::<T>() as u128,
    })?;
    Ok(v)
}

/// The input position each of `out` positions reads along an axis of `len`, as PyTorch's
/// `nearest_idx`: `min(floor(i * scale), len - 1)` in f32, `scale` being `1 / factor` when a
/// factor was given, else `len / out`. Allocated fallibly (`out` comes from the caller).
fn nearest_sources(len: usize, out: usize, factor: Option<f64>) -> Result<Vec<i64>> {
    let mut index = with_capacity(out)?;
    let scale = match factor {
        Some(f) if f > 0.0 => (1.0 / f) as f32,
        _ => len as f32 / out as f32,
    };
    let last = len as i64 - 1;
    // Positions fit in i64: `out` is the size of an output dim.
    index.extend((0..out).map(|i| {
        if out == len {
            i as i64
        } else if out == 2 * len {
            (i >> 1) as i64
        } else {
            ((i as f32 * scale).floor() as i64).min(last)
        }
    }));
    Ok(index)
}

/// How [`interpolate`] computes each output value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Interpolation {
    /// The nearest input (PyTorch's default `'nearest'`).
    #[default]
    Nearest,
    /// Linear in each spatial dim (`'linear'`, `'bilinear'`, `'trilinear'`); with
    /// `align_corners` the corner pixels' centres meet, else their edges do (PyTorch's
    /// default, false).
    Linear {
        /// PyTorch's `align_corners`.
        align_corners: bool,
    },
}

/// The spatial output sizes of resampling `x` to `to`, checked.
fn output_sizes(op: &'static str, x: &Tensor, to: &UpsampleTo) -> Result<Vec<usize>> {
    let spatial = x.rank().checked_sub(2).filter(|s| (1..=3).contains(s));
    let Some(spatial) = spatial else {
        return Err(Error::invalid(
            op,
            format!("expects [n, C] and 1 to 3 spatial dims, got {}", x.shape()),
        ));
    };
    let sizes: Vec<usize> = match to {
        UpsampleTo::Size(s) if s.len() == spatial => s.clone(),
        UpsampleTo::Size(s) if s.len() == 1 => vec![s[0]; spatial],
        UpsampleTo::Scale(f) if f.is_finite() && *f > 0.0 => x.dims()[2..]
            .iter()
            .map(|&len| (len as f64 * f).floor())
            .map(|v| {
                if v < usize::MAX as f64 {
                    v as usize
                } else {
                    usize::MAX
                }
            })
            .collect(),
        _ => {
            return Err(Error::invalid(
                op,
                format!(
                    "{to:?} is neither a positive finite factor nor {spatial} sizes for {}",
                    x.shape()
                ),
            ));
        }
    };
    if sizes.contains(&0) || x.dims()[2..].contains(&0) {
        return Err(Error::invalid(
            op,
            format!(
                "cannot resample the spatial dims of {} to {sizes:?}: every size must be positive",
                x.shape()
            ),
        ));
    }
    let mut out_dims = x.dims()[..2].to_vec();
    out_dims.extend(&sizes);
    sinew_tensor::Shape::new(out_dims).checked_elem_count(op)?;
    Ok(sizes)
}

/// Nearest-neighbour resampling of the spatial dims of `[n, C, ...]` (1 to 3 of them) to
/// `to`. PyTorch: `F.interpolate(x, size=..., scale_factor=..., mode='nearest')`.
pub fn upsample_nearest(x: &Tensor, to: &UpsampleTo) -> Result<Tensor> {
    interpolate(x, to, Interpolation::Nearest)
}

/// Resamples the spatial dims of `[n, C, ...]` (1 to 3 of them) to `to` by `mode`, dim by dim
/// from the last, as PyTorch's kernels combine them. PyTorch: `F.interpolate`.
pub fn interpolate(x: &Tensor, to: &UpsampleTo, mode: Interpolation) -> Result<Tensor> {
    const OP: &str = "interpolate";
    let sizes = output_sizes(OP, x, to)?;
    if matches!(mode, Interpolation::Linear { .. }) && !x.dtype().is_float() {
        // PyTorch: "upsample_linear1d" "not implemented for 'Long'".
        return Err(Error::invalid(
            OP,
            format!(
                "linear interpolation needs a float tensor, got {:?}",
                x.dtype()
            ),
        ));
    }
    let factor = match to {
        UpsampleTo::Scale(f) => Some(*f),
        UpsampleTo::Size(_) => None,
    };
    let mut y = x.clone();
    for (i, &out) in sizes.iter().enumerate().rev() {
        let dim = 2 + i;
        let len = x.dims()[dim];
        y = match mode {
            Interpolation::Nearest => {
                let index = Tensor::from_vec(nearest_sources(len, out, factor)?, [out])?;
                y.index_select(dim as isize, &index.to_device(x.device())?)?
            }
            Interpolation::Linear { align_corners } => {
                linear_along(&y, dim, len, out, factor, align_corners)?
            }
        };
    }
    Ok(y)
}

/// Linear interpolation of `y` along `dim` from `len` to `out` positions, with PyTorch's
/// source positions and weights (`area_pixel_compute_source_index`, in f32).
fn linear_along(
    y: &Tensor,
    dim: usize,
    len: usize,
    out: usize,
    factor: Option<f64>,
    align_corners: bool,
) -> Result<Tensor> {
    let scale = if align_corners {
        if out > 1 {
            (len as f32 - 1.0) / (out as f32 - 1.0)
        } else {
            0.0
        }
    } else {
        match factor {
            Some(f) if f > 0.0 => (1.0 / f) as f32,
            _ => len as f32 / out as f32,
        }
    };
    let (mut lower, mut upper) = (with_capacity::<i64>(out)?, with_capacity::<i64>(out)?);
    let mut upper_weight = with_capacity::<f32>(out)?;
    for i in 0..out {
        let source = if align_corners {
            scale * i as f32
        } else {
            (scale * (i as f32 + 0.5) - 0.5).max(0.0)
        };
        // `source` lies in [0, len - 1]: its floor is an index.
        let below = (source as i64).min(len as i64 - 1);
        let above = below + i64::from(below < len as i64 - 1);
        lower.push(below);
        upper.push(above);
        upper_weight.push(source - below as f32);
    }
    let weight_shape: Vec<usize> = (0..y.rank())
        .map(|d| if d == dim { out } else { 1 })
        .collect();
    let w1 = Tensor::from_vec(upper_weight, weight_shape)?;
    let w0 = w1.rsub_scalar(1.0)?;
    let (device, dtype) = (y.device(), y.dtype());
    let on = |t: Tensor| t.to_dtype(dtype)?.to_device(device);
    let pick = |index: Vec<i64>| -> Result<Tensor> {
        y.index_select(
            dim as isize,
            &Tensor::from_vec(index, [out])?.to_device(device)?,
        )
    };
    pick(lower)?
        .mul(&on(w0)?)?
        .add(&pick(upper)?.mul(&on(w1)?)?)
}

/// Resampling of the spatial dims (`nn.Upsample(size=..., scale_factor=..., mode=...)`;
/// nearest by default, or linear with [`Upsample::mode`]; PyTorch's `'bicubic'` and `'area'`
/// are not offered).
#[derive(Debug, Clone, PartialEq)]
pub struct Upsample {
    /// The output size or scale factor.
    pub to: UpsampleTo,
    /// How output values are computed (default nearest).
    pub mode: Interpolation,
}

impl Upsample {
    /// Every spatial dim times `factor` (rounded down).
    pub fn scale(factor: f64) -> Self {
        Upsample {
            to: UpsampleTo::Scale(factor),
            mode: Interpolation::Nearest,
        }
    }

    /// To `size` (one value for every spatial dim, or one each).
    pub fn size(size: &[usize]) -> Self {
        Upsample {
            to: UpsampleTo::Size(size.to_vec()),
            mode: Interpolation::Nearest,
        }
    }

    /// With `mode` (`Upsample::scale(2.0).mode(Interpolation::Linear { align_corners: false })`
    /// is PyTorch's `mode='bilinear'` on images).
    pub fn mode(self, mode: Interpolation) -> Self {
        Upsample { mode, ..self }
    }
}

impl Module for Upsample {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let y = interpolate(x, &self.to, self.mode)?;
        summary::note(self, &y);
        Ok(y)
    }
}

/// `[..., C r^2, H, W] -> [..., C, H r, W r]`: each group of `r^2` channels becomes an `r x r`
/// block of pixels. PyTorch: `F.pixel_shuffle`.
pub fn pixel_shuffle(x: &Tensor, r: usize) -> Result<Tensor> {
    const OP: &str = "pixel_shuffle";
    let rr = r.checked_mul(r).filter(|&rr| rr > 0);
    let (lead, [c, h, w]) = split_image(OP, x)?;
    let Some(rr) = rr.filter(|rr| c % rr == 0) else {
        return Err(Error::invalid(
            OP,
            format!("{c} channels of {} do not divide by {r}^2", x.shape()),
        ));
    };
    let k = lead.len();
    let mut dims = lead.clone();
    dims.extend([c / rr, r, r, h, w]);
    // [.., c', r, r, h, w] -> [.., c', h, r, w, r]
    let mut order: Vec<usize> = (0..k).collect();
    order.extend([k, k + 3, k + 1, k + 4, k + 2]);
    let mut out = lead;
    out.extend([c / rr, h * r, w * r]);
    x.reshape(dims)?.permute(&order)?.reshape(out)
}

/// The inverse of [`pixel_shuffle`]: `[..., C, H r, W r] -> [..., C r^2, H, W]`. PyTorch:
/// `F.pixel_unshuffle`.
pub fn pixel_unshuffle(x: &Tensor, r: usize) -> Result<Tensor> {
    const OP: &str = "pixel_unshuffle";
    let (lead, [c, h, w]) = split_image(OP, x)?;
    if r == 0 || h % r != 0 || w % r != 0 {
        return Err(Error::invalid(
            OP,
            format!("height and width of {} do not divide by {r}", x.shape()),
        ));
    }
    let k = lead.len();
    let mut dims = lead.clone();
    dims.extend([c, h / r, r, w / r, r]);
    // [.., c, h', r, w', r] -> [.., c, r, r, h', w']
    let mut order: Vec<usize> = (0..k).collect();
    order.extend([k, k + 2, k + 4, k + 1, k + 3]);
    let mut out = lead;
    out.extend([c * r * r, h / r, w / r]);
    x.reshape(dims)?.permute(&order)?.reshape(out)
}

/// The leading dims and `[C, H, W]` of an input of rank 3 or more.
fn split_image(op: &'static str, x: &Tensor) -> Result<(Vec<usize>, [usize; 3])> {
    match x.dims() {
        [lead @ .., c, h, w] => Ok((lead.to_vec(), [*c, *h, *w])),
        _ => Err(Error::invalid(
            op,
            format!("expects [..., C, H, W], got {}", x.shape()),
        )),
    }
}

/// [`pixel_shuffle`] by `upscale_factor` (`nn.PixelShuffle`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PixelShuffle {
    /// `r`.
    pub upscale_factor: usize,
}

impl Module for PixelShuffle {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let y = pixel_shuffle(x, self.upscale_factor)?;
        summary::note(self, &y);
        Ok(y)
    }
}

/// [`pixel_unshuffle`] by `downscale_factor` (`nn.PixelUnshuffle`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PixelUnshuffle {
    /// `r`.
    pub downscale_factor: usize,
}

impl Module for PixelUnshuffle {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let y = pixel_unshuffle(x, self.downscale_factor)?;
        summary::note(self, &y);
        Ok(y)
    }
}
