//! Convolution forward as packed products whose right operand is the im2col columns of one
//! image, written straight into the GEMM's packed panels ([`PackB`]): the columns are never
//! stored whole, read back and packed again, and each image's product writes its
//! `[out, oh, ow]` slice of the output in place (no transposing copy).

use std::mem::MaybeUninit;

use rayon::prelude::*;

#[cfg(target_arch = "x86_64")]
use super::im2col_avx2::{PanelRows, pack_rows};
use super::im2col_pad::{padded_spec, with_padded};
use super::pack::NR;
use super::{MatMut, MatRef, PackB, packed_kernel_available, sgemm_packed_b};
use crate::backend::Unfold2d;
use crate::cpu::CpuStorage;
use crate::cpu::alloc::try_with_capacity;
use crate::cpu::conv::tap_ranges;
use crate::cpu::conv_direct;
use crate::{Error, Layout, Result, Shape};

/// The im2col columns `[cg*kh*kw, oh*ow]` of `cg` channels of one image, as a packed `B`.
pub(crate) struct Im2colB<'a> {
    /// The `cg` channel planes (`[cg, h, w]`, contiguous).
    img: &'a [f32],
    spec: &'a Unfold2d,
    ow: usize,
    /// [`tap_ranges`] of the spec.
    ranges: &'a [(usize, usize)],
}

impl<'a> Im2colB<'a> {
    /// The columns of the planes `img` (`[cg, h, w]` of `spec`'s `h x w`, any `cg`); `ranges`
    /// must be [`tap_ranges`]`(spec, ow)`, `ow` the spec's output width.
    pub(crate) fn new(
        img: &'a [f32],
        spec: &'a Unfold2d,
        ow: usize,
        ranges: &'a [(usize, usize)],
    ) -> Self {
        Im2colB {
            img,
            spec,
            ow,
            ranges,
        }
    }
}

impl PackB for Im2colB<'_> {
    fn pack_panel(&self, row: usize, kc: usize, col: usize, cols: usize, dst: &mut [f32]) {
        let s = self.spec;
        let (ow, (kh, kw)) = (self.ow, s.kernel);
        let (taps, plane) = (kh * kw, s.h * s.w);
        let Some(dst) = dst.get_mut(..kc * NR) else {
            return;
        };
        if ow == 0 || taps == 0 {
            dst.fill(0.0);
            return;
        }
        // The panel's columns as runs inside one output row: (oy * stride, ox, first column,
        // length).
        let mut segs = [(0usize, 0usize, 0usize, 0usize); NR];
        let (mut count, mut j) = (0, 0);
        while j < cols.min(NR) {
            let pos = col + j;
            let (oy, ox) = (pos / ow, pos % ow);
            let len = (ow - ox).min(cols - j);
            segs[count] = (oy * s.stride.0, ox, j, len);
            count += 1;
            j += len;
        }
        let segs = &segs[..count];
        #[cfg(target_arch = "x86_64")]
        if s.stride.1 == 1 && super::kernel_avx2::available() {
            let rows = PanelRows {
                img: self.img,
                spec: s,
                ranges: self.ranges,
                row,
                segs,
            };
            // SAFETY: AVX2 checked just above; `pack_rows` checks every read against `img`.
            unsafe { pack_rows(&rows, dst) };
            return;
        }
        let (sw, pw, dw) = (s.stride.1, s.padding.1, s.dilation.1);
        let (ph, dh) = (s.padding.0, s.dilation.0);
        // Row `row` is tap (ki, kj) of channel `ch`; advanced without divisions.
        let mut tap = Tap::of_row(row, s.kernel);
        for out in dst.chunks_exact_mut(NR) {
            let Tap { ch, ki, kj } = tap;
            let (lo, hi) = self.ranges.get(kj).copied().unwrap_or((0, 0));
            let chan = ch * plane;
            for &(oy_s, ox, j, len) in segs {
                let seg = &mut out[j..j + len];
                // Input row y = oy * sh + ki * dh - ph, inside [0, h) (else all padding).
                let y = (oy_s + ki * dh).checked_sub(ph).filter(|&y| y < s.h);
                let (a, b) = (ox.max(lo), (ox + len).min(hi));
                // In bounds: `tap_ranges` keeps x = o * sw + kj * dw - pw in [0, w) on [lo, hi).
                let src = y
                    .filter(|_| a < b)
                    .and_then(|y| self.img.get(chan + y * s.w + a * sw + kj * dw - pw..));
                let Some(src) = src else {
                    zero(seg);
                    continue;
                };
                zero(&mut seg[..a - ox]);
                zero(&mut seg[b - ox..]);
                let taken = &mut seg[a - ox..b - ox];
                if sw == 1 {
                    copy_short(taken, src);
                } else {
                    for (o, &v) in taken.iter_mut().zip(src.iter().step_by(sw)) {
                        *o = v;
                    }
                }
            }
            zero(&mut out[cols.min(NR)..]);
            tap.advance(s.kernel);
        }
    }
}

/// The channel and kernel tap `(ki, kj)` of one im2col row, stepped to the next row without
/// divisions (rows run over taps, channel by channel).
#[derive(Clone, Copy, Debug)]
pub(super) struct Tap {
    pub(super) ch: usize,
    pub(super) ki: usize,
    pub(super) kj: usize,
}

impl Tap {
    /// The tap of row `row` for a `kernel` window.
    pub(super) fn of_row(row: usize, (kh, kw): (usize, usize)) -> Tap {
        let taps = kh * kw;
        Tap {
            ch: row / taps,
            ki: row % taps / kw,
            kj: row % kw,
        }
    }

    /// Steps to the next row's tap.
    pub(super) fn advance(&mut self, (kh, kw): (usize, usize)) {
        self.kj += 1;
        if self.kj == kw {
            self.kj = 0;
            self.ki += 1;
            if self.ki == kh {
                (self.ki, self.ch) = (0, self.ch + 1);
            }
        }
    }
}

/// Zeroes a short run (no call for the usual empty one).
#[inline]
pub(super) fn zero(run: &mut [f32]) {
    for o in run {
        *o = 0.0;
    }
}

/// Copies `min(dst.len(), src.len())` elements in fixed-size pieces, so that a short run
/// compiles to a few vector moves instead of a `memcpy` call.
#[inline]
pub(super) fn copy_short(dst: &mut [f32], src: &[f32]) {
    if let (Ok(d), Some(Ok(s))) = (
        <&mut [f32; NR]>::try_from(&mut *dst),
        src.get(..NR).map(<&[f32; NR]>::try_from),
    ) {
        *d = *s;
        return;
    }
    let n = dst.len().min(src.len());
    let (dst, src) = (&mut dst[..n], &src[..n]);
    let mut d = dst.chunks_exact_mut(4);
    let mut s = src.chunks_exact(4);
    for (d, s) in (&mut d).zip(&mut s) {
        if let (Ok(d), Ok(s)) = (<&mut [f32; 4]>::try_from(d), <&[f32; 4]>::try_from(s)) {
            *d = *s;
        }
    }
    for (d, &s) in d.into_remainder().iter_mut().zip(s.remainder()) {
        *d = s;
    }
}

/// `a * b`, or an overflow error naming the conv2d output.
fn mul(a: usize, b: usize) -> Result<usize> {
    a.checked_mul(b).ok_or_else(|| Error::Overflow {
        op: "conv2d",
        what: format!("the output size {a} x {b}"),
    })
}

/// The convolution of the f32 images `x` (`[n, c, h, w]` of `spec`) with the f32 weight `w`
/// (`[out, c/groups, kh, kw]`) into a fresh `[n, out, oh, ow]`: per image and group one packed
/// product `weight [out/groups, taps] @ im2col` whose columns are made while packing, images in
/// parallel. `None` where this path does not apply (other dtypes, no AVX2 + FMA kernel, a
/// non-zero padding value), for the caller's general path.
pub(crate) fn conv2d_f32(
    x: &CpuStorage,
    xl: &Layout,
    w: &CpuStorage,
    wl: &Layout,
    spec: &Unfold2d,
    groups: usize,
) -> Option<Result<Vec<f32>>> {
    let (CpuStorage::F32(xv), CpuStorage::F32(wv)) = (x, w) else {
        return None;
    };
    if !packed_kernel_available() || spec.pad_value != 0.0 {
        return None;
    }
    Some(forward(xv, xl, wv, wl, spec, groups))
}

fn forward(
    xv: &[f32],
    xl: &Layout,
    wv: &[f32],
    wl: &Layout,
    spec: &Unfold2d,
    groups: usize,
) -> Result<Vec<f32>> {
    const OP: &str = "conv2d";
    let (oh, ow) = spec.check(OP)?;
    let (kh, kw) = spec.kernel;
    let &[out_ch, cg, wkh, wkw] = wl.dims() else {
        return Err(Error::invalid(OP, format!("weight shape {}", wl.shape())));
    };
    let input = Shape::new([spec.n, spec.c, spec.h, spec.w]);
    if groups == 0
        || xl.shape() != &input
        || (wkh, wkw) != (kh, kw)
        || cg.checked_mul(groups) != Some(spec.c)
        || out_ch % groups != 0
    {
        return Err(Error::ShapeMismatch {
            op: OP,
            lhs: xl.shape().clone(),
            rhs: wl.shape().clone(),
        });
    }
    let x = crate::cpu::contiguous_slice(OP, xv, xl)?;
    let w = crate::cpu::contiguous_slice(OP, wv, wl)?;
    // Bounded by the checked input, column and weight sizes.
    let (l, og, taps, plane) = (oh * ow, out_ch / groups, cg * kh * kw, spec.h * spec.w);
    let per_image = mul(out_ch, l)?;
    let total = mul(spec.n, per_image)?;
    // Not zero-filled: each product overwrites its whole `[og, l]` block (beta 0).
    let mut buffer = try_with_capacity::<f32>(OP, total)?;
    if total == 0 {
        return Ok(buffer);
    }
    // Width-stride-1 convolutions read their input with the padding written out (see
    // `im2col_pad.rs`), through the same windows.
    let padded = padded_spec(spec);
    let read_spec = padded.as_ref().unwrap_or(spec);
    let ranges = tap_ranges(read_spec, ow);
    let read_plane = read_spec.h * read_spec.w;
    let direct = conv_direct::applies(read_spec, og);
    let x = &x[..];
    let w = &w[..];
    // The image's groups from its (padded or not) planes `img`.
    let groups_of = |img: &[f32], dst: &mut [MaybeUninit<f32>], parallel: bool| -> Result<()> {
        for g in 0..groups {
            let planes = img
                .get(g * cg * read_plane..(g + 1) * cg * read_plane)
                .ok_or_else(|| Error::invalid(OP, "input shorter than its shape"))?;
            let wg = w
                .get(g * og * taps..(g + 1) * og * taps)
                .ok_or_else(|| Error::invalid(OP, "weight shorter than its shape"))?;
            let c = &mut dst[g * og * l..(g + 1) * og * l];
            // Few output channels: the direct kernel, without columns (`conv_direct.rs`).
            if direct && conv_direct::conv_group(planes, read_spec, wg, og, cg, c) {
                continue;
            }
            let b = Im2colB::new(planes, read_spec, ow, &ranges);
            let a = MatRef {
                ptr: wg.as_ptr(),
                row_stride: taps as isize,
                col_stride: 1,
            };
            let c = MatMut {
                ptr: c.as_mut_ptr().cast::<f32>(),
                row_stride: l as isize,
                col_stride: 1,
            };
            // SAFETY: `a` is the row-major `og x taps` slice `wg` (checked by `get`), `c` the
            // row-major `og x l` chunk of this image's output (sliced above), distinct
            // elements written by this call only and overwritten without being read (beta 0),
            // so it may be uninitialised; `b` checks its own reads.
            unsafe { sgemm_packed_b(og, taps, l, a, &b, c, false, parallel)? };
        }
        Ok(())
    };
    let image = |(i, dst): (usize, &mut [MaybeUninit<f32>]), parallel: bool| -> Result<()> {
        let img = x
            .get(i * spec.c * plane..(i + 1) * spec.c * plane)
            .ok_or_else(|| Error::invalid(OP, "input shorter than its shape"))?;
        match &padded {
            Some(p) => with_padded(img, spec, p, |img| groups_of(img, dst, parallel)),
            None => groups_of(img, dst, parallel),
        }
    };
    let out = &mut buffer.spare_capacity_mut()[..total];
    let threads = rayon::current_num_threads();
    if threads > 1 && spec.n >= 2 * threads {
        out.par_chunks_mut(per_image)
            .enumerate()
            .try_for_each(|item| image(item, false))?;
    } else {
        out.chunks_mut(per_image)
            .enumerate()
            .try_for_each(|item| image(item, true))?;
    }
    // SAFETY: capacity >= total (`try_with_capacity`); every one of the first `total`
    // elements was written above: `n` images of `groups` blocks of `og * l`, each written
    // whole by its beta-0 product; an error returned early with the length still 0.
    unsafe { buffer.set_len(total) };
    Ok(buffer)
}

#[cfg(test)]
mod tests {
    use crate::{Conv2dConfig, DType, Device, Generator};

    /// The fused forward against the composition of the per-image im2col and a matmul.
    #[test]
    fn fused_forward_matches_unfold_and_matmul() {
        let cpu = Device::cpu();
        let mut g = Generator::new(3);
        // (input, weight, stride, padding, dilation, groups): odd sizes, strides, dilation,
        // padding wider than the window, groups, outputs narrower than a panel.
        let cases = [
            ([5, 3, 9, 11], [7, 3, 3, 3], (1, 1), (1, 1), (1, 1), 1),
            ([2, 4, 13, 7], [6, 2, 2, 3], (2, 1), (1, 2), (1, 2), 2),
            ([1, 2, 5, 5], [3, 2, 1, 1], (3, 2), (0, 0), (1, 1), 1),
            ([3, 1, 6, 20], [4, 1, 3, 2], (1, 3), (2, 0), (2, 1), 1),
            ([9, 2, 4, 4], [2, 2, 3, 3], (1, 1), (3, 3), (1, 1), 1),
        ];
        for (xs, ws, stride, padding, dilation, groups) in cases {
            let x = g.uniform(xs, -1.0, 1.0, DType::F32, &cpu).unwrap();
            let w = g.uniform(ws, -1.0, 1.0, DType::F32, &cpu).unwrap();
            let cfg = Conv2dConfig {
                stride,
                padding,
                dilation,
                groups,
            };
            let spec = x.conv2d_spec(&w, None, cfg).unwrap();
            let got = crate::Tensor::with_storages([&x, &w], |[xs, ws]| {
                let xs = xs
                    .as_any()
                    .downcast_ref::<crate::cpu::CpuStorage>()
                    .unwrap();
                let ws = ws
                    .as_any()
                    .downcast_ref::<crate::cpu::CpuStorage>()
                    .unwrap();
                super::conv2d_f32(xs, x.layout(), ws, w.layout(), &spec, groups)
            });
            let Some(got) = got else {
                return; // No AVX2 + FMA on this CPU: the path is not used.
            };
            let got = got.unwrap();
            let (oh, ow) = spec.out_hw();
            let (o, cg) = (ws[0], ws[1]);
            let taps = cg * ws[2] * ws[3];
            let cols = x
                .unfold2d(&spec)
                .unwrap()
                .reshape([xs[0], groups, taps, oh * ow])
                .unwrap();
            let want = w
                .reshape([groups, o / groups, taps])
                .unwrap()
                .matmul(&cols)
                .unwrap()
                .to_vec::<f32>()
                .unwrap();
            assert_eq!(got.len(), want.len());
            for (a, b) in got.iter().zip(&want) {
                assert!((a - b).abs() < 1e-5, "{xs:?} {ws:?}: {a} vs {b}");
            }
        }
    }
}
