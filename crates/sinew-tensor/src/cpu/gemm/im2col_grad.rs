//! Convolution weight gradient as packed products over blocks of images, both operands made
//! while packing: `dW^T [taps, out] = columns [taps, positions] @ grad^T [positions, out]`, the
//! im2col columns ([`Im2colA`]) and the output gradient read in its `[n, out, oh, ow]` layout
//! ([`GradB`]). Nothing is stored whole: no columns, no transposed gradient. Each thread sums
//! its block of images into its own `[taps, out]`, and the blocks are added at the end.

use rayon::prelude::*;

use super::KC;
use super::im2col::{copy_short, zero};
use super::im2col_pad::{padded_spec, with_padded};
use super::pack::{MR, View};
use super::{MatMut, PackA, PackB, packed_kernel_available, sgemm_packed};
use crate::backend::Unfold2d;
use crate::cpu::CpuStorage;
use crate::cpu::alloc::try_vec;
use crate::cpu::conv::{source, tap_ranges};
use crate::cpu::conv_direct_grad;
use crate::{Error, Layout, Result, Shape};

/// The im2col columns `[c*kh*kw, len*oh*ow]` of `len` whole images, as a packed `A`.
struct Im2colA<'a> {
    /// The images (`[len, c, h, w]`, contiguous).
    x: &'a [f32],
    spec: &'a Unfold2d,
    oh: usize,
    ow: usize,
    ranges: &'a [(usize, usize)],
}

impl PackA for Im2colA<'_> {
    fn pack_panel(&self, row: usize, rows: usize, col: usize, kc: usize, dst: &mut [f32]) {
        let s = self.spec;
        let Some(dst) = dst.get_mut(..kc * MR) else {
            return;
        };
        let (kh, kw) = s.kernel;
        let (taps, plane, l, ow) = (kh * kw, s.h * s.w, self.oh * self.ow, self.ow);
        if l == 0 || ow == 0 || taps == 0 {
            dst.fill(0.0);
            return;
        }
        let (sw, pw, dw) = (s.stride.1, s.padding.1, s.dilation.1);
        // Each row unfolded contiguously into `rows` (L1), then interleaved into the panel.
        let mut tmp = [[0.0f32; KC]; MR];
        for (c0, dst) in (col..col + kc).step_by(KC).zip(dst.chunks_mut(KC * MR)) {
            let kc = dst.len() / MR;
            if s.padding == (0, 0) && sw == 1 {
                self.unpadded_rows(row, rows.min(MR), c0, &mut tmp, kc);
                interleave(&tmp, dst);
                continue;
            }
            for (r, buf) in tmp.iter_mut().enumerate().take(rows.min(MR)) {
                let (ch, tap) = ((row + r) / taps, (row + r) % taps);
                let (ki, kj) = (tap / kw, tap % kw);
                let (lo, hi) = self.ranges.get(kj).copied().unwrap_or((0, 0));
                // Runs of positions inside one output row: `len` positions from `pos`.
                let mut p = 0;
                while p < kc {
                    let pos = c0 + p;
                    let (img, q) = (pos / l, pos % l);
                    let (oy, ox) = (q / ow, q % ow);
                    let len = (ow - ox).min(kc - p);
                    let run = &mut buf[p..p + len];
                    p += len;
                    let (a, b) = (ox.max(lo), (ox + len).min(hi));
                    let y = source(oy, ki, s.stride.0, s.padding.0, s.dilation.0, s.h);
                    let chan = (img * s.c + ch) * plane;
                    // In bounds: `tap_ranges` keeps x = o * sw + kj * dw - pw in [0, w) for
                    // output columns o in [lo, hi).
                    let src = y
                        .filter(|_| a < b)
                        .and_then(|y| self.x.get(chan + y * s.w..chan + (y + 1) * s.w))
                        .and_then(|src| src.get(a * sw + kj * dw - pw..));
                    let Some(src) = src else {
                        zero(run);
                        continue;
                    };
                    zero(&mut run[..a - ox]);
                    zero(&mut run[b - ox..]);
                    let taken = &mut run[a - ox..b - ox];
                    if sw == 1 {
                        copy_short(taken, src);
                    } else {
                        for (o, &v) in taken.iter_mut().zip(src.iter().step_by(sw)) {
                            *o = v;
                        }
                    }
                }
            }
            interleave(&tmp, dst);
        }
    }
}

impl Im2colA<'_> {
    /// Rows `row..row + rows` of positions `c0..c0 + kc` into `tmp`, for a spec without
    /// padding and width stride 1 (the padding written out by `im2col_pad.rs`): every run of
    /// positions inside one output row is a plain run of one input row, and positions advance
    /// by counters instead of divisions.
    fn unpadded_rows(
        &self,
        row: usize,
        rows: usize,
        c0: usize,
        tmp: &mut [[f32; KC]; MR],
        kc: usize,
    ) {
        let s = self.spec;
        let (kh, kw) = s.kernel;
        let (taps, plane, l, ow) = (kh * kw, s.h * s.w, self.oh * self.ow, self.ow);
        for (r, buf) in tmp.iter_mut().enumerate().take(rows) {
            let (ch, tap) = ((row + r) / taps, (row + r) % taps);
            let (ki, kj) = (tap / kw, tap % kw);
            let (mut img, q) = (c0 / l, c0 % l);
            let (mut oy, mut ox) = (q / ow, q % ow);
            let mut p = 0;
            while p < kc {
                let len = (ow - ox).min(kc - p);
                let start = (img * s.c + ch) * plane
                    + (oy * s.stride.0 + ki * s.dilation.0) * s.w
                    + ox
                    + kj * s.dilation.1;
                let run = &mut buf[p..p + len];
                match self.x.get(start..start + len) {
                    Some(src) => run.copy_from_slice(src),
                    None => zero(run),
                }
                p += len;
                ox += len;
                if ox == ow {
                    ox = 0;
                    oy += 1;
                    if oy == self.oh {
                        (oy, img) = (0, img + 1);
                    }
                }
            }
        }
    }
}

/// The `MR` unfolded rows `tmp` interleaved into the packed panel `dst` (`kc * MR`).
fn interleave(tmp: &[[f32; KC]; MR], dst: &mut [f32]) {
    let kc = (dst.len() / MR).min(KC);
    let done = if super::pack_avx512::available() {
        // SAFETY: AVX-512F checked; each `tmp` row holds `KC >= kc` elements; `dst` holds
        // `kc * MR` (at least; only those are written).
        unsafe { super::pack_avx512::pack_a_rows(tmp.each_ref().map(|r| r.as_ptr()), kc, dst) }
    } else {
        0
    };
    for (p, out) in dst.chunks_exact_mut(MR).enumerate().take(kc).skip(done) {
        for (o, buf) in out.iter_mut().zip(tmp) {
            *o = buf[p];
        }
    }
}

/// The output gradient `[len, out, l]` (contiguous) read as `[len*l, out]`, as a packed `B`.
struct GradB<'a> {
    g: &'a [f32],
    out: usize,
    l: usize,
}

impl PackB for GradB<'_> {
    fn pack_panel(&self, row: usize, kc: usize, col: usize, cols: usize, dst: &mut [f32]) {
        const NR: usize = super::pack::NR;
        let Some(dst) = dst.get_mut(..kc * NR) else {
            return;
        };
        if cols < NR || self.l == 0 {
            dst.fill(0.0);
        }
        if self.l == 0 {
            return;
        }
        let cols = cols.min(NR);
        let mut p = 0;
        while p < kc {
            // A run of positions inside one image: for each of the panel's channels, `len`
            // contiguous gradient values (`l` apart from one channel to the next).
            let pos = row + p;
            let (img, q) = (pos / self.l, pos % self.l);
            let len = (self.l - q).min(kc - p);
            let start = (img * self.out + col) * self.l + q;
            let run = &mut dst[p * NR..(p + len) * NR];
            let whole = cols.saturating_sub(1) * self.l + len;
            // Full panels in whole blocks of 16 positions: transposed in registers.
            let done = match self.g.get(start..start + whole) {
                Some(src) if cols == NR && super::pack_avx512::available() => {
                    let b = View {
                        ptr: src.as_ptr(),
                        rs: 1,
                        cs: self.l as isize,
                    };
                    // SAFETY: AVX-512F checked; `src` holds the `NR` channels' `len` values,
                    // `l` apart (`whole` elements, checked by `get`): a `len x NR` view with
                    // row stride 1; `run` holds `len * NR` elements.
                    unsafe { super::pack_avx512::pack_b_columns(b, len, run) }
                }
                _ => 0,
            };
            for j in (0..cols).filter(|_| done < len) {
                let from = start + j * self.l + done;
                let src = self.g.get(from..from + (len - done)).unwrap_or(&[]);
                for (d, &v) in run[done * NR + j..].iter_mut().step_by(NR).zip(src) {
                    *d = v;
                }
            }
            p += len;
        }
    }
}

/// The weight gradient `[out, c*kh*kw]` of a one-group convolution of the f32 images `x`
/// (`[n, c, h, w]` of `spec`) from the f32 output gradient `g` (`[n, out, oh, ow]`). `None`
/// where this path does not apply (other dtypes, no AVX2 + FMA kernel).
pub(crate) fn conv2d_weight_grad_f32(
    x: &CpuStorage,
    xl: &Layout,
    g: &CpuStorage,
    gl: &Layout,
    spec: &Unfold2d,
) -> Option<Result<Vec<f32>>> {
    let (CpuStorage::F32(xv), CpuStorage::F32(gv)) = (x, g) else {
        return None;
    };
    if !packed_kernel_available() {
        return None;
    }
    Some(weight_grad(xv, xl, gv, gl, spec))
}

fn weight_grad(
    xv: &[f32],
    xl: &Layout,
    gv: &[f32],
    gl: &Layout,
    spec: &Unfold2d,
) -> Result<Vec<f32>> {
    const OP: &str = "conv2d (weight gradient)";
    let (oh, ow) = spec.check(OP)?;
    let &[gn, out, goh, gow] = gl.dims() else {
        return Err(Error::invalid(OP, format!("gradient shape {}", gl.shape())));
    };
    let input = Shape::new([spec.n, spec.c, spec.h, spec.w]);
    if xl.shape() != &input || (gn, goh, gow) != (spec.n, oh, ow) {
        return Err(Error::ShapeMismatch {
            op: OP,
            lhs: xl.shape().clone(),
            rhs: gl.shape().clone(),
        });
    }
    let x = crate::cpu::contiguous_slice(OP, xv, xl)?;
    let g = crate::cpu::contiguous_slice(OP, gv, gl)?;
    // Bounded by the checked input, column and gradient sizes.
    let (l, taps, image) = (
        oh * ow,
        spec.c * spec.kernel.0 * spec.kernel.1,
        spec.c * spec.h * spec.w,
    );
    let size = taps.checked_mul(out).ok_or_else(|| Error::Overflow {
        op: OP,
        what: format!("the weight gradient {out} x {taps}"),
    })?;
    let ranges = tap_ranges(spec, ow);
    // Width-stride-1 convolutions read their input with the padding written out.
    let padded = padded_spec(spec);
    let padded_ranges = padded
        .as_ref()
        .map(|p| tap_ranges(p, ow))
        .unwrap_or_default();
    let threads = rayon::current_num_threads();
    let blocks = threads.min(spec.n).max(1);
    let per = spec.n.div_ceil(blocks);
    let (x, g) = (&x[..], &g[..]);
    // `[taps, out]` sum over images `[i0, i0 + len)`.
    let block = |i0: usize, len: usize, parallel: bool| -> Result<Vec<f32>> {
        let mut acc = try_vec(OP, size, 0.0f32)?;
        let xs = x
            .get(i0 * image..(i0 + len) * image)
            .ok_or_else(|| Error::invalid(OP, "input shorter than its shape"))?;
        let gs = g
            .get(i0 * out * l..(i0 + len) * out * l)
            .ok_or_else(|| Error::invalid(OP, "gradient shorter than its shape"))?;
        let b = GradB { g: gs, out, l };
        let c = MatMut {
            ptr: acc.as_mut_ptr(),
            row_stride: out as isize,
            col_stride: 1,
        };
        let product = |xs: &[f32], sub: &Unfold2d, ranges: &[(usize, usize)]| -> Result<()> {
            // Few output channels: the direct kernel, without columns (`conv_direct_grad.rs`).
            if conv_direct_grad::applies(sub, out) {
                // SAFETY: `c` is `acc`'s `size` elements (made just above), not otherwise
                // borrowed while this slice lives.
                let acc = unsafe { std::slice::from_raw_parts_mut(c.ptr, size) };
                if conv_direct_grad::weight_grad(xs, sub, gs, out, acc)? {
                    return Ok(());
                }
            }
            let a = Im2colA {
                x: xs,
                spec: sub,
                oh,
                ow,
                ranges,
            };
            // SAFETY: `c` is the row-major `taps x out` buffer `acc` (zeroed, `size`
            // elements), written by this call only; `a` and `b` check their own reads.
            unsafe { sgemm_packed(taps, len * l, out, &a, &b, c, false, parallel) }
        };
        let sub = Unfold2d { n: len, ..*spec };
        match &padded {
            // The block's `len * c` planes padded at once, read without padding.
            Some(p) => with_padded(
                xs,
                &Unfold2d {
                    c: len * spec.c,
                    ..*spec
                },
                &Unfold2d {
                    c: len * spec.c,
                    ..*p
                },
                |xp| product(xp, &Unfold2d { n: len, ..*p }, &padded_ranges),
            )?,
            None => product(xs, &sub, &ranges)?,
        }
        Ok(acc)
    };
    let parts: Vec<Vec<f32>> = if blocks > 1 {
        (0..blocks)
            .into_par_iter()
            .map(|i| block(i * per, per.min(spec.n.saturating_sub(i * per)), false))
            .collect::<Result<_>>()?
    } else {
        vec![block(0, spec.n, true)?]
    };
    // Sum the blocks and transpose `[taps, out]` into `[out, taps]`.
    let mut dw = try_vec(OP, size, 0.0f32)?;
    for part in &parts {
        for (t, row) in part.chunks_exact(out.max(1)).enumerate() {
            for (o, &v) in row.iter().enumerate() {
                dw[o * taps + t] += v;
            }
        }
    }
    Ok(dw)
}

#[cfg(test)]
mod tests {
    use crate::{Conv2dConfig, DType, Device, Generator, Tensor};

    /// The fused weight gradient against `grad @ columns^T` summed over images.
    #[test]
    fn fused_weight_grad_matches_unfold_and_matmul() {
        let cpu = Device::cpu();
        let mut rng = Generator::new(5);
        let cases = [
            ([5, 3, 9, 11], [7, 3, 3, 3], (1, 1), (1, 1), (1, 1)),
            ([2, 4, 13, 7], [6, 4, 2, 3], (2, 1), (1, 2), (1, 2)),
            ([1, 2, 5, 5], [17, 2, 1, 1], (3, 2), (0, 0), (1, 1)),
            ([3, 1, 6, 20], [4, 1, 3, 2], (1, 3), (2, 0), (2, 1)),
            ([9, 2, 4, 4], [2, 2, 3, 3], (1, 1), (3, 3), (1, 1)),
            ([3, 3, 7, 9], [5, 3, 2, 3], (2, 1), (0, 0), (1, 2)),
            // Full 16-channel panels over runs of 16 positions and more (register transpose).
            ([3, 3, 12, 12], [20, 3, 3, 3], (1, 1), (1, 1), (1, 1)),
        ];
        for (xs, ws, stride, padding, dilation) in cases {
            let x = rng.uniform(xs, -1.0, 1.0, DType::F32, &cpu).unwrap();
            let w = Tensor::zeros(ws, DType::F32, &cpu).unwrap();
            let cfg = Conv2dConfig {
                stride,
                padding,
                dilation,
                groups: 1,
            };
            let spec = x.conv2d_spec(&w, None, cfg).unwrap();
            let (oh, ow) = spec.out_hw();
            let g = rng
                .uniform([xs[0], ws[0], oh, ow], -1.0, 1.0, DType::F32, &cpu)
                .unwrap();
            let got = Tensor::with_storages([&x, &g], |[xs, gs]| {
                let xs = xs
                    .as_any()
                    .downcast_ref::<crate::cpu::CpuStorage>()
                    .unwrap();
                let gs = gs
                    .as_any()
                    .downcast_ref::<crate::cpu::CpuStorage>()
                    .unwrap();
                super::conv2d_weight_grad_f32(xs, x.layout(), gs, g.layout(), &spec)
            });
            let Some(got) = got else {
                return; // No AVX2 + FMA on this CPU: the path is not used.
            };
            let got = got.unwrap();
            let cols = x.unfold2d(&spec).unwrap();
            let want = g
                .reshape([xs[0], ws[0], oh * ow])
                .unwrap()
                .matmul(&cols.transpose(1, 2).unwrap())
                .unwrap()
                .sum(&[0], false)
                .unwrap()
                .to_vec::<f32>()
                .unwrap();
            assert_eq!(got.len(), want.len());
            for (a, b) in got.iter().zip(&want) {
                assert!((a - b).abs() < 1e-4, "{xs:?} {ws:?}: {a} vs {b}");
            }
        }
    }
}
