//! The passes of `Tensor::conv2d` (see `conv2d.rs`): a chunk of images at a time, one matrix
//! product per chunk over the images' wide columns `[groups, taps, len*oh*ow]`
//! (`unfold2d_wide`), so the weight is packed once per chunk, not once per image.
//!
//! The product writes `[out, len, oh, ow]`; a transposing copy puts it into the `[n, out, oh,
//! ow]` output. The backward transposes the output gradient the same way, so the weight
//! gradient of a chunk is one product `grad [out, len*l] @ columns^T` and the input gradient
//! the wide col2im of `weight^T @ grad`. The backward is written with differentiable tensor
//! ops, so higher-order gradients still work.
//!
//! Where the backend has direct kernels, they replace those ([`crate::Backend::conv2d`],
//! `conv2d_input_grad`, `conv2d_weight_grad`; the last two when no graph is recorded, as their
//! results are not differentiable). On the CPU in f32 with the packed kernel: the forward makes
//! the columns while packing the product's operand and writes the output in place
//! (`cpu::gemm::im2col`); the input gradient of a stride-1, one-group convolution is itself
//! such a convolution of the output gradient (differentiable, no col2im;
//! `Backend::prefers_input_grad_as_conv`); the weight gradient makes both operands while
//! packing (`cpu::gemm::im2col_grad`) and the other input gradients multiply and fold image by
//! image (`cpu::gemm::col2im_grad`). On a GPU: implicit GEMMs that never store the columns.

use crate::{Activation, BackwardCtx, Conv2dConfig, DType, Result, Tensor, UnaryOp, Unfold2d};

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
        let even = (most.div_ceil(2)..=most)
            .rev()
            .find(|d| spec.n.is_multiple_of(*d));
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
    if parts.len() == 1
        && let Some(only) = parts.pop()
    {
        return Ok(only);
    }
    Tensor::cat(&parts, 0)
}

/// The forward by the backend's direct kernel ([`crate::Backend::conv2d`]: on the CPU in f32
/// the im2col done while packing the products' operand, `cpu::gemm::im2col`; on a GPU an
/// implicit GEMM), written straight into the `[n, out, oh, ow]` output, with `bias` added and
/// ReLU applied (when `relu`) by the same kernel where it has that epilogue
/// ([`crate::Backend::conv2d_epilogue`]: the GPU's); `None` where the backend has no such kernel
/// for these operands.
fn fused_forward(
    x: &Tensor,
    w: &Tensor,
    (bias, relu): (Option<&Tensor>, bool),
    geo: &Geometry,
) -> Result<Option<Tensor>> {
    let others_fit = |t: &Tensor| t.device() == x.device() && t.dtype() == x.dtype();
    if x.device() != w.device() || bias.is_some_and(|b| !others_fit(b)) {
        return Ok(None);
    }
    let backend = x.device().backend();
    let (spec, groups) = (&geo.spec, geo.groups);
    let activation = relu.then_some(Activation::Relu);
    let out = match bias {
        None if !relu => Tensor::with_storages([x, w], |[xs, ws]| {
            backend.conv2d((xs, x.layout()), (ws, w.layout()), spec, groups)
        }),
        None => Tensor::with_storages([x, w], |[xs, ws]| {
            let (x, w) = ((xs, x.layout()), (ws, w.layout()));
            backend.conv2d_epilogue(x, w, None, activation, spec, groups)
        }),
        Some(b) => Tensor::with_storages([x, w, b], |[xs, ws, bs]| {
            let (x, w) = ((xs, x.layout()), (ws, w.layout()));
            backend.conv2d_epilogue(x, w, Some((bs, b.layout())), activation, spec, groups)
        }),
    }?;
    let Some(out) = out else {
        return Ok(None);
    };
    let (oh, ow) = geo.hw;
    let shape = [geo.spec.n, geo.out, oh, ow];
    Tensor::from_storage(out, shape, x.device().clone()).map(Some)
}

/// Adds `bias` (`[o]`) to the fresh output `out` and applies ReLU when `relu`, in place.
fn epilogue_in_place(out: Tensor, (bias, relu): (Option<&Tensor>, bool)) -> Result<Tensor> {
    if let Some(b) = bias {
        out.add_(&b.reshape([1, b.elem_count(), 1, 1])?)?;
    }
    if relu {
        out.unary_(UnaryOp::Relu)?;
    }
    Ok(out)
}

/// The forward pass (no graph), chunk by chunk into one output, plus the bias and ReLU (when
/// `relu`) in the kernel's epilogue or in place.
pub(super) fn forward(
    x: &Tensor,
    w: &Tensor,
    epilogue: (Option<&Tensor>, bool),
    geo: &Geometry,
) -> Result<Tensor> {
    let (oh, ow) = geo.hw;
    let (n, o) = (geo.spec.n, geo.out);
    if (epilogue.0.is_some() || epilogue.1)
        && let Some(out) = fused_forward(x, w, epilogue, geo)?
    {
        return Ok(out);
    }
    if let Some(out) = fused_forward(x, w, (None, false), geo)? {
        return epilogue_in_place(out, epilogue);
    }
    let wm = geo.weight(w)?;
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
    epilogue_in_place(out, epilogue)
}

/// Whether the input gradient runs as a convolution of the output gradient
/// ([`input_grad_as_conv`]): a backend that prefers it for the dtype (CPU f32 with the packed
/// kernel, whose forward fuses the im2col), stride 1, one group, padding at most the dilated
/// window's reach and at least half of it, and 16 or more input channels. A "valid"
/// convolution (little padding) would make the gradient's convolution pad by nearly the whole
/// window and multiply mostly zeros, and few input channels make a product too thin to pay for
/// packing its columns (LeNet-5's second layer, 6 channels without padding, was twice as slow
/// this way); the columns + col2im path is faster there.
fn input_grad_is_conv(x: &Tensor, geo: &Geometry) -> bool {
    let s = &geo.spec;
    x.device().backend().prefers_input_grad_as_conv(x.dtype())
        && s.stride == (1, 1)
        && geo.groups == 1
        && s.c >= 16
        && s.padding.0 <= s.dilation.0 * (s.kernel.0 - 1)
        && s.padding.1 <= s.dilation.1 * (s.kernel.1 - 1)
        && 2 * s.padding.0 >= s.dilation.0 * (s.kernel.0 - 1)
        && 2 * s.padding.1 >= s.dilation.1 * (s.kernel.1 - 1)
}

/// The input gradient of a stride-1 convolution as the convolution of the output gradient
/// with the weight's channels swapped and its window flipped, padded by the dilated window's
/// reach minus the padding: `dx[c, y, x] = sum g[o, y + p - i*d, x + p - j*d] w[o, c, i, j]`.
/// One differentiable op, its forward fused (no columns stored, no col2im).
fn input_grad_as_conv(g: &Tensor, w: &Tensor, geo: &Geometry) -> Result<Tensor> {
    let s = &geo.spec;
    let (kh, kw) = s.kernel;
    let taps = kh * kw;
    let reversed: Vec<i64> = (0..taps as i64).rev().collect();
    let reversed = Tensor::from_vec(reversed, [taps])?.to_device(w.device())?;
    let flipped = w
        .transpose(0, 1)?
        .contiguous()?
        .reshape([s.c, geo.out, taps])?
        .index_select(2, &reversed)?
        .reshape([s.c, geo.out, kh, kw])?;
    let cfg = Conv2dConfig {
        stride: (1, 1),
        padding: (
            s.dilation.0 * (kh - 1) - s.padding.0,
            s.dilation.1 * (kw - 1) - s.padding.1,
        ),
        dilation: s.dilation,
        groups: 1,
    };
    g.conv2d(&flipped, None, cfg)
}

/// The weight gradient from the backend's direct kernel ([`crate::Backend::conv2d_weight_grad`]:
/// on the CPU in f32 and one group the kernel that makes the columns and reads `g` while
/// packing, `cpu::gemm::im2col_grad`; on a GPU an implicit GEMM), when no graph is recorded
/// (the result is not differentiable), in `dtype` where the backend writes it (the weight's
/// source dtype before a cast, see [`crate::BackwardCtx::cast_from_dtype`]), else in the
/// operands'; `None` where that path does not apply.
fn fused_weight_grad(
    x: &Tensor,
    g: &Tensor,
    geo: &Geometry,
    dtype: DType,
) -> Result<Option<Tensor>> {
    let recorded = crate::is_grad_enabled() && (x.requires_grad() || g.requires_grad());
    if recorded || x.device() != g.device() {
        return Ok(None);
    }
    let (kh, kw) = geo.spec.kernel;
    let dims = [geo.out, geo.spec.c / geo.groups, kh, kw];
    let backend = x.device().backend();
    let run = |dtype| {
        Tensor::with_storages([x, g], |[xs, gs]| {
            let (x, g) = ((xs, x.layout()), (gs, g.layout()));
            backend.conv2d_weight_grad(x, g, (&dims, dtype), &geo.spec, geo.groups)
        })
    };
    let dw = match run(dtype)? {
        None if dtype != g.dtype() => run(g.dtype())?,
        dw => dw,
    };
    dw.map(|dw| Tensor::from_storage(dw, dims, x.device().clone()))
        .transpose()
}

/// The input gradient from the backend's direct kernel ([`crate::Backend::conv2d_input_grad`]:
/// on the CPU in f32 and one group the kernel that multiplies and folds image by image,
/// `cpu::gemm::col2im_grad`; on a GPU an implicit GEMM), when no graph is recorded (the result
/// is not differentiable); `None` where that path does not apply. The kernel also adds
/// `pending` (the input's gradient from its other users) when it is a contiguous tensor of the
/// gradient's dtype and device, and then takes it out of `pending`.
fn fused_input_grad(
    g: &Tensor,
    w: &Tensor,
    geo: &Geometry,
    pending: &mut Option<Tensor>,
) -> Result<Option<Tensor>> {
    let recorded = crate::is_grad_enabled() && (w.requires_grad() || g.requires_grad());
    if recorded || w.device() != g.device() {
        return Ok(None);
    }
    let s = &geo.spec;
    let input = [s.n, s.c, s.h, s.w];
    let add = pending.as_ref().filter(|p| {
        p.dims() == input
            && p.dtype() == g.dtype()
            && p.device() == g.device()
            && p.layout().is_contiguous()
    });
    let backend = g.device().backend();
    let dx = match add {
        None => Tensor::with_storages([g, w], |[gs, ws]| {
            backend.conv2d_input_grad((gs, g.layout()), (ws, w.layout()), s, geo.groups, None)
        })?,
        Some(add) => Tensor::with_storages([g, w, add], |[gs, ws, adds]| {
            let add = Some((adds, add.layout()));
            backend.conv2d_input_grad((gs, g.layout()), (ws, w.layout()), s, geo.groups, add)
        })?,
    };
    if dx.is_some() && add.is_some() {
        *pending = None;
    }
    dx.map(|dx| Tensor::from_storage(dx, input, g.device().clone()))
        .transpose()
}

/// `pending + dx` (backward's sum, which the kernel did not make), or `dx`.
fn with_pending(dx: Option<Tensor>, pending: Option<Tensor>) -> Result<Option<Tensor>> {
    match (dx, pending) {
        (Some(dx), Some(pending)) => pending.add(&dx).map(Some),
        (None, Some(_)) => Err(crate::Error::invalid(
            "conv2d backward",
            "a pending input gradient without an input gradient",
        )),
        (dx, None) => Ok(dx),
    }
}

/// The bias gradient (input 2 of `ctx`'s op) of a convolution (or transposed convolution) from
/// its `[n, out, oh, ow]` output gradient, when needed: `g` summed over images and positions, in
/// f32 where the bias is autocast's cast of an f32 one (`grad/widened.rs`).
pub(super) fn bias_grad(ctx: &BackwardCtx<'_>, g: &Tensor) -> Result<Option<Tensor>> {
    let wide = super::widened::f32_gradient(ctx, 2);
    ctx.needs_grad(2)
        .then(|| g.sum_as(&[0, 2, 3], wide))
        .transpose()
}

/// Gradients of the input and the weight from the output gradient `g` `[n, out, oh, ow]`. With
/// the context of a convolution's rule (input 0 the input, input 1 the weight), the input's
/// gradient includes its sum so far from the input's other users
/// ([`crate::BackwardCtx::take_pending_grad`]: `pending + dx`, in the input-gradient kernel
/// where it can), and the weight's comes in the dtype it was cast from where the kernel writes
/// that ([`crate::BackwardCtx::cast_from_dtype`]).
pub(super) fn backward(
    x: &Tensor,
    w: &Tensor,
    g: &Tensor,
    need: (bool, bool),
    geo: &Geometry,
    ctx: Option<&BackwardCtx<'_>>,
) -> Result<(Option<Tensor>, Option<Tensor>)> {
    let mut pending = ctx.and_then(|c| c.take_pending_grad(0));
    let dw_dtype = ctx.and_then(|c| c.cast_from_dtype(1)).unwrap_or(w.dtype());
    let wm = geo.weight(w)?;
    let per_group = geo.out / geo.groups;
    let l = geo.hw.0 * geo.hw.1;
    let (mut dxs, mut dw) = (Vec::new(), None::<Tensor>);
    let dx_as_conv = need.0 && input_grad_is_conv(x, geo);
    if dx_as_conv {
        dxs.push(input_grad_as_conv(g, w, geo)?);
    }
    let dx_fused = need.0 && !dx_as_conv && {
        let fused = fused_input_grad(g, w, geo, &mut pending)?;
        let found = fused.is_some();
        dxs.extend(fused);
        found
    };
    let dx_cols = need.0 && !dx_as_conv && !dx_fused;
    let fused_dw = if need.1 {
        fused_weight_grad(x, g, geo, dw_dtype)?
    } else {
        None
    };
    let need_w = need.1 && fused_dw.is_none();
    if !need_w && !dx_cols {
        return Ok((with_pending(dxs.pop(), pending)?, fused_dw));
    }
    for (start, len, spec) in geo.chunks() {
        // [len, out, oh, ow] to [out, len, oh, ow], i.e. [groups, out/groups, len*l].
        let gs = geo
            .part(g, start, len)?
            .permute(&[1, 0, 2, 3])?
            .contiguous()?
            .reshape([geo.groups, per_group, len * l])?;
        if need_w {
            // Computed transposed, `columns @ grad^T`: the columns (the larger operand, `taps`
            // rows against `out/groups`) are then the GEMM's row-major left operand, packed
            // with contiguous reads, and only the smaller gradient is read across its rows.
            let cols = geo.cols(x, start, len, &spec)?;
            let part = cols.matmul(&gs.transpose(-1, -2)?)?.transpose(-1, -2)?;
            dw = Some(match dw {
                None => part,
                Some(acc) => acc.add(&part)?,
            });
        }
        if dx_cols {
            let dcols = wm.transpose(-1, -2)?.matmul(&gs)?;
            let dcols = dcols.reshape([geo.groups * geo.taps, len * l])?;
            dxs.push(dcols.fold2d_wide(&Unfold2d {
                pad_value: 0.0,
                ..spec
            })?);
        }
    }
    let dx = if need.0 { Some(cat(dxs)?) } else { None };
    let dx = with_pending(dx, pending)?;
    let dw = match fused_dw {
        Some(dw) => Some(dw),
        None => dw
            .map(|d| d.contiguous()?.reshape(w.shape().clone()))
            .transpose()?,
    };
    Ok((dx, dw))
}
