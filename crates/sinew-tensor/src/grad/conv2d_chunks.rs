//! The passes of `Tensor::conv2d` (see `conv2d.rs`): a chunk of images at a time, one matrix
//! product per chunk over the images' wide columns `[groups, taps, len*oh*ow]`
//! (`unfold2d_wide`), so the weight is packed once per chunk, not once per image.
//!
//! The product writes `[out, len, oh, ow]`; a transposing copy puts it into the `[n, out, oh,
//! ow]` output. The backward transposes the output gradient the same way, so the weight
//! gradient of a chunk is one product `grad [out, len*l] @ columns^T` and the input gradient
//! the wide col2im of `weight^T @ grad`. The backward is written with differentiable tensor
//! ops, so higher-order gradients still work.

use crate::{Result, Tensor, Unfold2d};

/// Most bytes of im2col columns unfolded at once.
pub(super) const CHUNK_BYTES: usize = 10 << 20;

/// A convolution's sizes: groups, output channels, taps per group, output positions, and the
/// number of images per chunk.
#[derive(Clone, Copy)]
pub(super) struct Geometry {
    pub(super) spec: Unfold2d,
    groups: usize,
    out: usize,
    taps: usize,
    hw: (usize, usize),
    chunk: usize,
}

impl Geometry {
    /// The sizes of a convolution of `spec`'s input with `out` filters in `groups` groups
    /// (checked by `conv2d_spec`), chunked for elements of `elem_bytes`.
    pub(super) fn new(spec: Unfold2d, groups: usize, out: usize, elem_bytes: usize) -> Geometry {
        let (oh, ow) = spec.out_hw();
        let taps = spec.c / groups * spec.kernel.0 * spec.kernel.1;
        // Bounded by the column shape's element count, checked by `conv2d_spec`.
        let per_image = (spec.c * spec.kernel.0 * spec.kernel.1 * oh * ow * elem_bytes).max(1);
        let most = (CHUNK_BYTES / per_image).clamp(1, spec.n.max(1));
        // Equal chunks when a divisor of the batch is not much smaller: every chunk's buffers
        // then have one size, which the buffer pool serves again (a last, smaller chunk's
        // sizes would be fresh memory every step).
        let even = (most.div_ceil(2)..=most).rev().find(|d| spec.n % d == 0);
        let chunk = even.unwrap_or(most);
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
    pub(super) fn chunks(&self) -> impl Iterator<Item = (usize, usize, Unfold2d)> + '_ {
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

    /// Images `[start, start + len)` of `t` (`t` itself when that is all of it).
    fn part(&self, t: &Tensor, start: usize, len: usize) -> Result<Tensor> {
        if len == self.spec.n {
            Ok(t.clone())
        } else {
            t.narrow(0, start, len)
        }
    }

    /// Wide columns of images `[start, start + len)` of `x` as `[groups, taps, len*oh*ow]`.
    fn cols(&self, x: &Tensor, start: usize, len: usize, spec: &Unfold2d) -> Result<Tensor> {
        let l = self.hw.0 * self.hw.1;
        self.part(x, start, len)?
            .unfold2d_wide(spec)?
            .reshape([self.groups, self.taps, len * l])
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
pub(super) fn forward(
    x: &Tensor,
    w: &Tensor,
    bias: Option<&Tensor>,
    geo: &Geometry,
) -> Result<Tensor> {
    let wm = geo.weight(w)?;
    let (oh, ow) = geo.hw;
    let (n, o) = (geo.spec.n, geo.out);
    let mut out = None;
    for (start, len, spec) in geo.chunks() {
        // [groups, out/groups, len*l] is [out, len, oh, ow]; the output wants [len, out, ..].
        let part = wm
            .matmul(&geo.cols(x, start, len, &spec)?)?
            .reshape([o, len, oh, ow])?
            .permute(&[1, 0, 2, 3])?;
        if len == n {
            out = Some(part.contiguous()?);
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
pub(super) fn backward(
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
        // [len, out, oh, ow] to [out, len, oh, ow], i.e. [groups, out/groups, len*l].
        let gs = geo
            .part(g, start, len)?
            .permute(&[1, 0, 2, 3])?
            .contiguous()?
            .reshape([geo.groups, per_group, len * l])?;
        if need.1 {
            let cols = geo.cols(x, start, len, &spec)?;
            let part = gs.matmul(&cols.transpose(-1, -2)?)?;
            dw = Some(match dw {
                None => part,
                Some(acc) => acc.add(&part)?,
            });
        }
        if need.0 {
            let dcols = wm.transpose(-1, -2)?.matmul(&gs)?;
            let dcols = dcols.reshape([geo.groups * geo.taps, len * l])?;
            dxs.push(dcols.fold2d_wide(&Unfold2d {
                pad_value: 0.0,
                ..spec
            })?);
        }
    }
    let dx = if need.0 { Some(cat(dxs)?) } else { None };
    let dw = dw.map(|d| d.reshape(w.shape().clone())).transpose()?;
    Ok((dx, dw))
}
