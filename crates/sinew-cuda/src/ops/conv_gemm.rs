//! Host side of `cuda/conv_gemm.cu`: a whole 2-d convolution as one implicit-GEMM launch, with
//! no im2col buffer and the output written straight into `[n, o, oh, ow]`.
//!
//! The input is read in place through its strides; the weight must be a contiguous
//! `[o, c/groups, kh, kw]` (a strided weight is copied first). f16 and bf16 run on the tensor
//! cores (f32 accumulation, one rounding per output); f32 too, in TF32, while
//! [`CudaBackend::set_conv_tf32`] allows it (the default), else on the SIMT kernel. The input
//! gradient runs the phases of the stride ([`super::conv_phase`]), up to four a launch.

use sinew_tensor::{BinaryOp, DType, Error, Layout, Result, Unfold2d};

use super::conv_phase::{Phase, dgrad_phases};
use super::{LaunchConfig, cast};
use crate::device::CudaBackend;
use crate::names::{self, Kernel};
use crate::storage::CudaStorage;

/// Mirrors `ConvArgs` in `cuda/conv_gemm.cu` (#[repr(C)]).
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub(crate) struct ConvArgs {
    /// n, cg, h, w, kh, kw, oh, ow, sh, sw, ph, pw, dh, dw, og, groups, taps, cols (the forward
    /// convolution's sizes).
    sizes: [u32; 18],
    vector: u32,
    /// 1 = 32-row block tiles (few channels), 0 = 128-row (f32) or 64-row (f16/bf16).
    narrow: u32,
    /// The input gradient's phase steps (the stride, or 1 for the identity phase).
    step: [u32; 2],
    /// Phases in this launch (grid z = groups * phases).
    phases: u32,
    /// 1: ReLU after the bias (the forward's epilogue).
    relu: u32,
    /// 1: the input gradient's launch also writes the zeros of each step block's positions
    /// besides the one it computes (the only phase with taps starts at (0, 0)); 0 otherwise.
    zero_rest: u32,
    /// The input gradient's phases (the identity phase for the other kernels).
    phase: [DgradPhase; MAX_PHASES],
    /// Keeps the 8-byte fields aligned as in C.
    unused: u32,
    /// The strided operand (input or output gradient): its n, c, h, w strides and offset.
    view_strides: [u64; 4],
    view_offset: u64,
    /// The dense operand's first element (weight, or the weight gradient's output gradient).
    dense_offset: u64,
    /// The forward's bias `[o]` (device address), or 0 for none.
    bias: u64,
    /// The input gradient's addend: a contiguous `[n, c, h, w]` of the dtype added to the
    /// gradient (autograd's sum so far, device address), or 0 for none.
    add: u64,
    /// The weight gradient's split-0 partial products: the f32 output itself (device address),
    /// or 0 when every split's are in the workspace.
    pub(crate) first_slice: u64,
}

/// Mirrors `DgradPhase` in `cuda/conv_gemm.cuh`: one [`Phase`] of an input gradient (first
/// input row and column, first tap row and column, positions and taps per axis).
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
struct DgradPhase {
    start: [u32; 2],
    first_tap: [u32; 2],
    positions: [u32; 2],
    taps: [u32; 2],
}

impl DgradPhase {
    /// The phase's values (each at most the spec's sizes, which fit u32: ConvShape::new).
    fn of(phase: &Phase) -> DgradPhase {
        let v = |(a, b): (usize, usize)| [a as u32, b as u32];
        DgradPhase {
            start: v(phase.start),
            first_tap: v(phase.first_tap),
            positions: v(phase.positions),
            taps: v(phase.taps),
        }
    }
}

/// Phases per input-gradient launch (`MAX_PHASES` in `cuda/conv_gemm.cuh`): a stride of 2 in
/// one launch.
const MAX_PHASES: usize = 4;

impl ConvArgs {
    /// These arguments for up to [`MAX_PHASES`] phases of the input gradient, which share the
    /// spec's steps.
    fn with_phases(mut self, phases: &[&Phase]) -> ConvArgs {
        let mut count = 0;
        for (slot, phase) in self.phase.iter_mut().zip(phases) {
            *slot = DgradPhase::of(phase);
            // Steps are at most the stride, which fits u32 (ConvShape::new).
            self.step = [phase.step.0 as u32, phase.step.1 as u32];
            count += 1;
        }
        self.phases = count;
        self
    }
}

/// Product columns per block (every kernel) and output channels per block (f32 on the SIMT
/// cores, tensor cores).
const TILE_N: usize = 128;
const TILE_M_SIMT: usize = 128;
const TILE_M_TC: usize = 64;
/// Output channels per block of the narrow tiles (both kernels).
const TILE_M_NARROW: usize = 32;

fn too_large(op: &'static str, spec: &Unfold2d) -> Error {
    Error::invalid(op, format!("{spec:?} is too large for the CUDA kernels"))
}

/// A convolution's sizes, checked against its input view and weight shape.
pub(crate) struct ConvShape {
    args: ConvArgs,
    /// Output channels (all groups).
    pub(crate) out: usize,
    /// Taps per output channel (`c/groups * kh * kw`).
    pub(crate) taps: usize,
    /// Output positions of the batch (`n * oh * ow`).
    pub(crate) cols: usize,
}

impl ConvShape {
    /// Checks the input dims `x` (`[n, c, h, w]`) and the weight dims `[o, c/groups, kh, kw]`
    /// against `spec` and the u32 limits of the kernels.
    pub(crate) fn new(
        op: &'static str,
        x: &[usize],
        w_dims: &[usize],
        spec: &Unfold2d,
        groups: usize,
    ) -> Result<ConvShape> {
        let (oh, ow) = spec.check(op)?;
        let (kh, kw) = spec.kernel;
        let &[o, cg, wkh, wkw] = w_dims else {
            return Err(Error::invalid(op, format!("weight dims {w_dims:?}")));
        };
        if x != [spec.n, spec.c, spec.h, spec.w]
            || groups == 0
            || (wkh, wkw) != (kh, kw)
            || cg.checked_mul(groups) != Some(spec.c)
            || !o.is_multiple_of(groups)
        {
            return Err(Error::invalid(
                op,
                format!("input {x:?} and weight {w_dims:?} do not fit {spec:?} in {groups} groups"),
            ));
        }
        let big = || too_large(op, spec);
        let cols = oh
            .checked_mul(ow)
            .and_then(|l| l.checked_mul(spec.n))
            .ok_or_else(big)?;
        let taps = cg
            .checked_mul(kh)
            .and_then(|t| t.checked_mul(kw))
            .ok_or_else(big)?;
        cols.checked_mul(o).ok_or_else(big)?;
        o.checked_mul(taps).ok_or_else(big)?;
        // The input gradient's columns (n*h*w) and inner size (o/groups * kh*kw) are u32 too,
        // and its output (n*c*h*w) has a size.
        let positions = spec
            .n
            .checked_mul(spec.h)
            .and_then(|v| v.checked_mul(spec.w));
        let inner = (o / groups).checked_mul(kh * kw);
        for size in [positions, inner] {
            u32::try_from(size.ok_or_else(big)?).map_err(|_| big())?;
        }
        positions
            .and_then(|p| p.checked_mul(spec.c))
            .ok_or_else(big)?;
        let sizes = [
            spec.n,
            cg,
            spec.h,
            spec.w,
            kh,
            kw,
            oh,
            ow,
            spec.stride.0,
            spec.stride.1,
            spec.padding.0,
            spec.padding.1,
            spec.dilation.0,
            spec.dilation.1,
            o / groups,
            groups,
            taps,
            cols,
        ];
        let mut args = ConvArgs {
            sizes: [0; 18],
            vector: 0,
            narrow: 0,
            step: [1, 1],
            phases: 1,
            relu: 0,
            zero_rest: 0,
            phase: [DgradPhase::default(); MAX_PHASES],
            unused: 0,
            view_strides: [0; 4],
            view_offset: 0,
            dense_offset: 0,
            bias: 0,
            add: 0,
            first_slice: 0,
        };
        for (slot, &size) in args.sizes.iter_mut().zip(&sizes) {
            *slot = u32::try_from(size).map_err(|_| big())?;
        }
        // The identity phase: every position, every tap (sizes fit u32: checked above).
        let [_, _, h, w, kh, kw, ..] = args.sizes;
        args.phase[0] = DgradPhase {
            positions: [h, w],
            taps: [kh, kw],
            ..DgradPhase::default()
        };
        Ok(ConvShape {
            args,
            out: o,
            taps,
            cols,
        })
    }

    /// The kernel arguments: the strided operand's view, the dense operand's first element,
    /// whether its rows may be loaded 16 bytes at a time, and the block tile's rows.
    pub(crate) fn args(
        &self,
        view: &Layout,
        dense_offset: usize,
        vector: bool,
        tile_m: usize,
    ) -> ConvArgs {
        let mut view_strides = [0u64; 4];
        for (slot, &s) in view_strides.iter_mut().zip(view.strides()) {
            *slot = s as u64;
        }
        ConvArgs {
            view_strides,
            view_offset: view.offset() as u64,
            dense_offset: dense_offset as u64,
            vector: vector as u32,
            narrow: (tile_m == TILE_M_NARROW) as u32,
            ..self.args
        }
    }

    /// The launch grid: 128-column tiles of `cols`, `tile_m`-row tiles of `rows` (per group)
    /// and `depth` blocks deep.
    pub(crate) fn grid(
        op: &'static str,
        spec: &Unfold2d,
        (rows, cols): (usize, usize),
        tile_m: usize,
        depth: usize,
    ) -> Result<(u32, u32, u32)> {
        let dim = |n: usize, most: u32| {
            u32::try_from(n)
                .ok()
                .filter(|&d| d <= most)
                .ok_or_else(|| too_large(op, spec))
        };
        Ok((
            dim(cols.div_ceil(TILE_N), i32::MAX as u32)?,
            dim(rows.div_ceil(tile_m), 65535)?,
            dim(depth, 65535)?,
        ))
    }
}

/// `(storage, element offset)` of a contiguous copy of the view (the view itself when it is).
pub(crate) fn contiguous<'a>(
    dev: &CudaBackend,
    view: (&'a CudaStorage, &Layout),
    copied: &'a mut Option<CudaStorage>,
) -> Result<(&'a CudaStorage, usize)> {
    if view.1.is_contiguous() {
        return Ok((view.0, view.1.offset()));
    }
    Ok((copied.insert(cast::copy_strided(dev, view.0, view.1)?), 0))
}

/// Whether a convolution of `dtype` runs the TF32 kernels: f32 while
/// [`CudaBackend::set_conv_tf32`] allows it (f16 and bf16 have tensor-core kernels of their own).
pub(crate) fn tf32(dev: &CudaBackend, dtype: DType) -> bool {
    dtype == DType::F32 && dev.conv_tf32()
}

/// Rows (channels) per block and threads per block of the kernels for `dtype` (`tf32`: f32 on
/// the tensor cores) when the product has `rows` rows per group: 32-row tiles for 32 rows or
/// fewer (ResNet-20's 16- and 32-channel stages), wasting less of each tile.
pub(crate) fn tiling(dtype: DType, tf32: bool, rows: usize) -> (usize, u32) {
    let simt = dtype == DType::F32 && !tf32;
    let threads = if simt { 256 } else { 128 };
    if rows <= TILE_M_NARROW {
        (TILE_M_NARROW, threads)
    } else if simt {
        (TILE_M_SIMT, threads)
    } else {
        (TILE_M_TC, threads)
    }
}

/// `kernel` where the implicit-GEMM path applies: a kernel for the dtype, a zero padding value,
/// and the path switched on ([`CudaBackend::set_implicit_gemm_conv`]).
pub(crate) fn applicable(
    dev: &CudaBackend,
    spec: &Unfold2d,
    kernel: Option<Kernel>,
) -> Option<Kernel> {
    kernel.filter(|_| spec.pad_value == 0.0 && dev.implicit_gemm_conv())
}

/// Checks that `other` has `dtype`.
pub(crate) fn same_dtype(op: &'static str, dtype: DType, other: &CudaStorage) -> Result<()> {
    if other.dtype_of() == dtype {
        return Ok(());
    }
    Err(Error::DTypeMismatch {
        op,
        lhs: dtype,
        rhs: other.dtype_of(),
    })
}

/// The device address of the view `layout` of `storage` where it is a dense (contiguous) array
/// of exactly `dims` lying inside its storage, which a kernel may then read by flat index.
fn dense_ptr(storage: &CudaStorage, layout: &Layout, dims: &[usize]) -> Option<u64> {
    let (start, end) = layout.contiguous_offset()?;
    (layout.dims() == dims && end <= storage.elem_count()).then(|| storage.ptr_at(start))
}

/// The convolution of the `[n, c, h, w]` view `x` with the `[o, c/groups, kh, kw]` view `w` into
/// a fresh contiguous `[n, o, oh, ow]`, plus `bias` (a dense `[o]` of their dtype, added to the
/// accumulator before its one rounding) when given, then ReLU when `relu`; `None` for dtypes without a kernel (f64,
/// integers), a non-zero padding value, a bias that is not a dense `[o]`, or when switched off
/// ([`CudaBackend::set_implicit_gemm_conv`]), which the caller computes otherwise.
pub(crate) fn conv2d(
    dev: &CudaBackend,
    x: (&CudaStorage, &Layout),
    w: (&CudaStorage, &Layout),
    (bias, relu): (Option<(&CudaStorage, &Layout)>, bool),
    spec: &Unfold2d,
    groups: usize,
) -> Result<Option<CudaStorage>> {
    const OP: &str = "conv2d";
    let dtype = x.0.dtype_of();
    let tf32 = tf32(dev, dtype);
    let Some(kernel) = applicable(dev, spec, names::conv_gemm(dtype, tf32)) else {
        return Ok(None);
    };
    same_dtype(OP, dtype, w.0)?;
    let shape = ConvShape::new(OP, x.1.dims(), w.1.dims(), spec, groups)?;
    let bias_ptr = match bias {
        None => 0,
        Some((b, l)) => match dense_ptr(b, l, &[shape.out]) {
            Some(ptr) if b.dtype_of() == dtype => ptr,
            _ => return Ok(None),
        },
    };
    let out = dev.alloc(dtype, shape.cols * shape.out)?;
    if shape.cols * shape.out == 0 {
        return Ok(Some(out));
    }
    // The kernel reads the weight as contiguous rows of `taps` elements (16 bytes at a time in
    // f16/bf16 where the rows allow it).
    let mut copied = None;
    let (wst, w_offset) = contiguous(dev, w, &mut copied)?;
    let bytes = dtype.size_in_bytes() as u64;
    let vector = dtype != DType::F32
        && shape.taps.is_multiple_of(8)
        && (wst.device_ptr() + w_offset as u64 * bytes).is_multiple_of(16);
    let (tile_m, threads) = tiling(dtype, tf32, shape.out / groups);
    let args = ConvArgs {
        bias: bias_ptr,
        relu: relu as u32,
        ..shape.args(x.1, w_offset, vector, tile_m)
    };
    let cfg = LaunchConfig {
        grid: ConvShape::grid(OP, spec, (shape.out / groups, shape.cols), tile_m, groups)?,
        block: (threads, 1, 1),
    };
    let (xp, wp, yp) = (x.0.device_ptr(), wst.device_ptr(), out.device_ptr());
    dev.launch(&kernel, cfg, kernel_args![xp, wp, yp, args])?;
    Ok(Some(out))
}

/// The input gradient `[n, c, h, w]` (contiguous, `spec`'s input) of a convolution with the
/// `[o, c/groups, kh, kw]` view `w`, from the `[n, o, oh, ow]` output gradient view `g`, plus
/// `add` (a contiguous view of that shape and dtype) when given, in the kernel's store (binary
/// add's values); `None` where [`conv2d`] would be `None`.
pub(crate) fn conv2d_input_grad(
    dev: &CudaBackend,
    g: (&CudaStorage, &Layout),
    w: (&CudaStorage, &Layout),
    spec: &Unfold2d,
    groups: usize,
    add: Option<(&CudaStorage, &Layout)>,
) -> Result<Option<CudaStorage>> {
    const OP: &str = "conv2d input gradient";
    let dtype = g.0.dtype_of();
    let tf32 = tf32(dev, dtype);
    let Some(kernel) = applicable(dev, spec, names::conv_gemm_dgrad(dtype, tf32)) else {
        return Ok(None);
    };
    same_dtype(OP, dtype, w.0)?;
    let input = [spec.n, spec.c, spec.h, spec.w];
    let shape = ConvShape::new(OP, &input, w.1.dims(), spec, groups)?;
    let (oh, ow) = spec.out_hw();
    if g.1.dims() != [spec.n, shape.out, oh, ow] {
        return Err(Error::invalid(
            OP,
            format!(
                "output gradient {} does not fit {spec:?} with {} channels",
                g.1.shape(),
                shape.out
            ),
        ));
    }
    let add_ptr = match add {
        None => 0,
        Some((a, l)) => {
            same_dtype(OP, dtype, a)?;
            dense_ptr(a, l, &input).ok_or_else(|| {
                let why = format!("the gradient to add {} is not a dense {input:?}", l.shape());
                Error::invalid(OP, why)
            })?
        }
    };
    let total = input.iter().product::<usize>();
    // One launch per MAX_PHASES phases with taps; positions no tap reaches are zeros (plus the
    // addend), written by the launch of the only phase with taps when it starts at (0, 0) (its step
    // blocks cover the input), else filled first (and the addend added after).
    let phases = dgrad_phases(spec);
    let tapped: Vec<&Phase> = phases.iter().filter(|p| p.has_taps()).collect();
    let zero_rest = tapped.len() < phases.len() && tapped.len() == 1 && tapped[0].start == (0, 0);
    let covered = tapped.len() == phases.len() || zero_rest;
    let out = if covered {
        dev.alloc(dtype, total)?
    } else {
        dev.zeros(dtype, total)?
    };
    if total == 0 {
        return Ok(Some(out));
    }
    let mut copied = None;
    let (wst, w_offset) = contiguous(dev, w, &mut copied)?;
    let (tile_m, threads) = tiling(dtype, tf32, spec.c / groups);
    let args = shape.args(g.1, w_offset, false, tile_m);
    let (gp, wp, xp) = (g.0.device_ptr(), wst.device_ptr(), out.device_ptr());
    for launch in tapped.chunks(MAX_PHASES) {
        // Rows: a group's input channels; columns: each phase's input positions in the batch,
        // as many column tiles as the widest phase needs.
        let positions = launch
            .iter()
            .map(|p| spec.n * p.positions.0 * p.positions.1)
            .max()
            .unwrap_or(0);
        let depth = groups
            .checked_mul(launch.len())
            .ok_or_else(|| too_large(OP, spec))?;
        let cfg = LaunchConfig {
            grid: ConvShape::grid(OP, spec, (spec.c / groups, positions), tile_m, depth)?,
            block: (threads, 1, 1),
        };
        let mut args = args.with_phases(launch);
        args.zero_rest = u32::from(zero_rest);
        args.add = if covered { add_ptr } else { 0 };
        dev.launch(&kernel, cfg, kernel_args![gp, wp, xp, args])?;
    }
    match add {
        Some((a, l)) if !covered => {
            let dense = Layout::contiguous(input);
            super::binary::binary(dev, BinaryOp::Add, a, l, &out, &dense).map(Some)
        }
        _ => Ok(Some(out)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conv_args_match_the_c_layout() {
        assert_eq!(std::mem::size_of::<DgradPhase>(), 32);
        assert_eq!(std::mem::size_of::<ConvArgs>(), 232 + 72);
        assert_eq!(std::mem::offset_of!(ConvArgs, vector), 72);
        assert_eq!(std::mem::offset_of!(ConvArgs, narrow), 76);
        assert_eq!(std::mem::offset_of!(ConvArgs, step), 80);
        assert_eq!(std::mem::offset_of!(ConvArgs, phases), 88);
        assert_eq!(std::mem::offset_of!(ConvArgs, relu), 92);
        assert_eq!(std::mem::offset_of!(ConvArgs, zero_rest), 96);
        assert_eq!(std::mem::offset_of!(ConvArgs, phase), 100);
        assert_eq!(std::mem::offset_of!(ConvArgs, view_strides), 232);
        assert_eq!(std::mem::offset_of!(ConvArgs, dense_offset), 272);
        assert_eq!(std::mem::offset_of!(ConvArgs, bias), 280);
        assert_eq!(std::mem::offset_of!(ConvArgs, add), 288);
        assert_eq!(std::mem::offset_of!(ConvArgs, first_slice), 296);
    }
}
