//! Per-channel kernels of batch norm (`Backend::channel_sums`, `Backend::channel_lincomb`) on
//! `[n, C, inner]` views: the statistics and the backward reductions in one read, the output
//! and the input gradient in one pass. Floats: sums in f64; f16 and bf16 map in f32 and round
//! once (batch norm keeps a half-precision input's dtype, as PyTorch's does under autocast);
//! other dtypes are `UnsupportedDType`.

use half::{bf16, f16};
use rayon::prelude::*;

use crate::cpu::CpuStorage;
use crate::cpu::alloc::try_vec;
use std::borrow::Cow;

use crate::backend::check_operand_pair;
use crate::{DType, Element, Error, Layout, Result};

/// `(n, C, inner)` of a `[n, C, ...]` layout, checked.
fn split(op: &'static str, layout: &Layout) -> Result<(usize, usize, usize)> {
    let dims = layout.dims();
    if dims.len() < 2 {
        return Err(Error::invalid(
            op,
            format!("expects [n, C, ...], got {}", layout.shape()),
        ));
    }
    let inner = dims[2..]
        .iter()
        .try_fold(1usize, |a, &d| a.checked_mul(d))
        .ok_or_else(|| Error::invalid(op, "shape overflows usize"))?;
    Ok((dims[0], dims[1], inner))
}

/// The contiguous elements of a view (borrowed when it is one dense run, else gathered).
fn dense<'a, T: Copy + Default + Send + Sync + 'static>(
    op: &'static str,
    v: &'a [T],
    l: &Layout,
) -> Result<Cow<'a, [T]>> {
    if let Some((start, end)) = l.contiguous_offset() {
        return v
            .get(start..end)
            .map(Cow::Borrowed)
            .ok_or_else(|| Error::invalid(op, "view exceeds its storage"));
    }
    if l.storage_extent() > v.len() {
        return Err(Error::invalid(op, "view exceeds its storage"));
    }
    let mut out = try_vec(op, l.elem_count(), T::default())?;
    for (o, off) in out.iter_mut().zip(l.offsets()) {
        *o = v[off];
    }
    Ok(Cow::Owned(out))
}

/// A float element: widened to f64 for sums, and the per-channel formulas in its own type.
trait ChannelFloat: Copy + Default + Send + Sync + 'static {
    fn wide(self) -> f64;
    /// `a * alpha + gamma`, the coefficients rounded to this type first.
    fn affine(a: Self, alpha: f64, gamma: f64) -> Self;
    /// `a * alpha + b * beta + gamma`, likewise.
    fn affine2(a: Self, alpha: f64, b: Self, beta: f64, gamma: f64) -> Self;
}

impl ChannelFloat for f32 {
    fn wide(self) -> f64 {
        f64::from(self)
    }
    fn affine(a: f32, alpha: f64, gamma: f64) -> f32 {
        a * alpha as f32 + gamma as f32
    }
    fn affine2(a: f32, alpha: f64, b: f32, beta: f64, gamma: f64) -> f32 {
        a * alpha as f32 + b * beta as f32 + gamma as f32
    }
}

impl ChannelFloat for f64 {
    fn wide(self) -> f64 {
        self
    }
    fn affine(a: f64, alpha: f64, gamma: f64) -> f64 {
        a * alpha + gamma
    }
    fn affine2(a: f64, alpha: f64, b: f64, beta: f64, gamma: f64) -> f64 {
        a * alpha + b * beta + gamma
    }
}

/// f16 and bf16: exact in f64; the map in f32 (each product and sum rounded to f32, as the GPU's
/// `mul_rn`/`add_rn` do), rounded once to the half type.
macro_rules! half_channel_float {
    ($t:ty) => {
        impl ChannelFloat for $t {
            fn wide(self) -> f64 {
                self.to_f64()
            }
            fn affine(a: $t, alpha: f64, gamma: f64) -> $t {
                <$t>::from_f32(f32::affine(a.to_f32(), alpha, gamma))
            }
            fn affine2(a: $t, alpha: f64, b: $t, beta: f64, gamma: f64) -> $t {
                <$t>::from_f32(f32::affine2(a.to_f32(), alpha, b.to_f32(), beta, gamma))
            }
        }
    };
}
half_channel_float!(f16);
half_channel_float!(bf16);

fn sums_typed<T: ChannelFloat>(
    a: &[T],
    b: Option<&[T]>,
    (n, c, inner): (usize, usize, usize),
) -> Result<Vec<f64>> {
    let per_channel: Vec<(f64, f64)> = (0..c)
        .into_par_iter()
        .map(|ch| {
            let (mut s, mut p) = (0.0f64, 0.0f64);
            for img in 0..n {
                let start = (img * c + ch) * inner;
                let xa = &a[start..start + inner];
                match b {
                    None => {
                        for &v in xa {
                            let v = v.wide();
                            s += v;
                            p += v * v;
                        }
                    }
                    Some(b) => {
                        for (&v, &w) in xa.iter().zip(&b[start..start + inner]) {
                            let v = v.wide();
                            s += v;
                            p += v * w.wide();
                        }
                    }
                }
            }
            (s, p)
        })
        .collect();
    let mut out = try_vec("channel_sums", 2 * c, 0.0f64)?;
    for (ch, (s, p)) in per_channel.into_iter().enumerate() {
        out[ch] = s;
        out[c + ch] = p;
    }
    Ok(out)
}

/// The contiguous elements of a host view of type `T` (the dtype was checked by the caller).
fn typed<'a, T: Element + Default>(
    op: &'static str,
    s: &'a CpuStorage,
    l: &Layout,
) -> Result<Cow<'a, [T]>> {
    let v = T::slice_of(s).ok_or(Error::UnsupportedDType {
        op,
        dtype: s.dtype(),
    })?;
    dense(op, v, l)
}

/// The dense elements of the first operand and of the optional second one.
type Operands<'a, T> = (Cow<'a, [T]>, Option<Cow<'a, [T]>>);

/// Checks `b` against `a` and returns the dense elements of both.
fn operands<'a, T: Element + Default>(
    op: &'static str,
    (a, al): (&'a CpuStorage, &Layout),
    b: Option<(&'a CpuStorage, &Layout)>,
) -> Result<Operands<'a, T>> {
    let b = match b {
        Some((bs, bl)) => {
            check_operand_pair(op, (a.dtype(), al), (bs.dtype(), bl))?;
            Some(typed(op, bs, bl)?)
        }
        None => None,
    };
    Ok((typed(op, a, al)?, b))
}

/// `Backend::channel_sums` on host storages.
pub(crate) fn channel_sums(
    a: &CpuStorage,
    al: &Layout,
    b: Option<(&CpuStorage, &Layout)>,
) -> Result<CpuStorage> {
    const OP: &str = "channel_sums";
    let dims = split(OP, al)?;
    let out = match a.dtype() {
        DType::F32 => {
            let (a, b) = operands::<f32>(OP, (a, al), b)?;
            sums_typed(&a, b.as_deref(), dims)?
        }
        DType::F64 => {
            let (a, b) = operands::<f64>(OP, (a, al), b)?;
            sums_typed(&a, b.as_deref(), dims)?
        }
        DType::F16 => {
            let (a, b) = operands::<f16>(OP, (a, al), b)?;
            sums_typed(&a, b.as_deref(), dims)?
        }
        DType::BF16 => {
            let (a, b) = operands::<bf16>(OP, (a, al), b)?;
            sums_typed(&a, b.as_deref(), dims)?
        }
        dtype => return Err(Error::UnsupportedDType { op: OP, dtype }),
    };
    Ok(CpuStorage::F64(out))
}

fn lincomb_typed<T: ChannelFloat>(
    a: &[T],
    b: Option<&[T]>,
    coef: &[f64],
    (n, c, inner): (usize, usize, usize),
) -> Result<Vec<T>> {
    let mut out = try_vec("channel_lincomb", n * c * inner, T::default())?;
    if inner == 0 {
        return Ok(out);
    }
    out.par_chunks_mut(inner)
        .enumerate()
        .for_each(|(row, dst)| {
            let ch = row % c;
            let (alpha, beta, gamma) = (coef[ch], coef[c + ch], coef[2 * c + ch]);
            let start = row * inner;
            let xa = &a[start..start + inner];
            match b {
                None => {
                    for (o, &v) in dst.iter_mut().zip(xa) {
                        *o = T::affine(v, alpha, gamma);
                    }
                }
                Some(b) => {
                    for ((o, &v), &w) in dst.iter_mut().zip(xa).zip(&b[start..start + inner]) {
                        *o = T::affine2(v, alpha, w, beta, gamma);
                    }
                }
            }
        });
    Ok(out)
}

/// `Backend::channel_lincomb` on host storages.
pub(crate) fn channel_lincomb(
    a: &CpuStorage,
    al: &Layout,
    b: Option<(&CpuStorage, &Layout)>,
    coef: &CpuStorage,
) -> Result<CpuStorage> {
    const OP: &str = "channel_lincomb";
    let dims = split(OP, al)?;
    let CpuStorage::F64(coef) = coef else {
        return Err(Error::UnsupportedDType {
            op: OP,
            dtype: coef.dtype(),
        });
    };
    if coef.len() < 3 * dims.1 {
        return Err(Error::invalid(
            OP,
            format!(
                "{} coefficients for {} channels (need 3 per channel)",
                coef.len(),
                dims.1
            ),
        ));
    }
    Ok(match a.dtype() {
        DType::F32 => {
            let (a, b) = operands::<f32>(OP, (a, al), b)?;
            CpuStorage::F32(lincomb_typed(&a, b.as_deref(), coef, dims)?)
        }
        DType::F64 => {
            let (a, b) = operands::<f64>(OP, (a, al), b)?;
            CpuStorage::F64(lincomb_typed(&a, b.as_deref(), coef, dims)?)
        }
        DType::F16 => {
            let (a, b) = operands::<f16>(OP, (a, al), b)?;
            CpuStorage::F16(lincomb_typed(&a, b.as_deref(), coef, dims)?)
        }
        DType::BF16 => {
            let (a, b) = operands::<bf16>(OP, (a, al), b)?;
            CpuStorage::BF16(lincomb_typed(&a, b.as_deref(), coef, dims)?)
        }
        dtype => return Err(Error::UnsupportedDType { op: OP, dtype }),
    })
}
