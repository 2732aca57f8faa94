//! Host side of `cuda/conv_wgrad.cu`: a convolution's weight gradient as an implicit GEMM over
//! the output positions, split into ranges whose f32 partial products the last block of each
//! weight tile adds in order (deterministic, no atomics; [`crate::tickets`]) and rounds once to
//! the weight's dtype: one kernel. An f32 gradient holds the first range's partials itself.

use sinew_tensor::{DType, Error, Layout, Result, Unfold2d};

use super::conv_gemm::{ConvShape, applicable, contiguous, same_dtype, tf32, tiling};
use super::{LaunchConfig, count_u32};
use crate::device::CudaBackend;
use crate::names;
use crate::storage::CudaStorage;

/// Fewest output positions per split: 8 of the tensor-core kernel's 32-position steps.
const MIN_SPLIT: usize = 256;

/// `(split_len, splits)`: enough splits that `tiles` blocks per split fill about two blocks per
/// multiprocessor, each split at least [`MIN_SPLIT`] positions, lengths multiples of 32.
fn splits(cols: usize, tiles: usize, multiprocessors: usize) -> (usize, usize) {
    let want = (2 * multiprocessors).div_ceil(tiles.max(1)).max(1);
    let most = cols.div_ceil(MIN_SPLIT).max(1);
    let split_len = cols.div_ceil(want.min(most)).next_multiple_of(32).max(32);
    (split_len, cols.div_ceil(split_len).max(1))
}

/// The gradient of the `[o, c/groups, kh, kw]` weight of `w_dims` from the `[n, c, h, w]` input
/// view `x` and the `[n, o, oh, ow]` output gradient view `g`: a fresh contiguous storage of
/// `out` dtype, `g`'s or f32 (f16/bf16 operands: their rounded values, widened); `None` for
/// dtypes without a kernel or when switched off ([`CudaBackend::set_implicit_gemm_conv`]).
pub(crate) fn conv2d_weight_grad(
    dev: &CudaBackend,
    x: (&CudaStorage, &Layout),
    g: (&CudaStorage, &Layout),
    (w_dims, out_dtype): (&[usize], DType),
    spec: &Unfold2d,
    groups: usize,
) -> Result<Option<CudaStorage>> {
    const OP: &str = "conv2d weight gradient";
    let dtype = g.0.dtype_of();
    let tf32 = tf32(dev, dtype);
    let Some(kernel) = applicable(dev, spec, names::conv_wgrad(dtype, tf32)) else {
        return Ok(None);
    };
    if out_dtype != dtype && out_dtype != DType::F32 {
        return Ok(None);
    }
    same_dtype(OP, dtype, x.0)?;
    let shape = ConvShape::new(OP, x.1.dims(), w_dims, spec, groups)?;
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
    let total = shape.out * shape.taps;
    if total == 0 || shape.cols == 0 {
        return super::cast::full(dev, out_dtype, total, 0.0).map(Some);
    }
    let out = dev.alloc(out_dtype, total)?;
    let mut copied = None;
    let (gst, g_offset) = contiguous(dev, g, &mut copied)?;
    let per_group = shape.out / groups;
    let (tile_m, threads) = tiling(dtype, tf32, per_group);
    let tiles = shape.taps.div_ceil(128) * per_group.div_ceil(tile_m) * groups;
    let (split_len, count) = splits(shape.cols, tiles, dev.multiprocessors() as usize);
    let depth = groups * count;
    let cfg = LaunchConfig {
        grid: ConvShape::grid(OP, spec, (per_group, shape.taps), tile_m, depth)?,
        block: (threads, 1, 1),
    };
    // An f32 output holds split 0's partials itself (one weight's worth less workspace; none
    // with one split).
    let in_output = out_dtype == DType::F32;
    let slices = count - usize::from(in_output);
    let workspace = slices.checked_mul(total).ok_or_else(|| Error::Overflow {
        op: OP,
        what: format!("{slices} slices of {total} partial products"),
    })?;
    let partials = dev.alloc(DType::F32, workspace)?;
    let tickets = dev.tickets(tiles)?;
    let mut args = shape.args(x.1, g_offset, false, tile_m);
    if in_output {
        args.first_slice = out.device_ptr();
    }
    let (len32, count32) = (count_u32(OP, split_len)?, count_u32(OP, count)?);
    let (xp, gp, pp) = (x.0.device_ptr(), gst.device_ptr(), partials.device_ptr());
    let (op, tp) = (out.device_ptr(), tickets.device_ptr());
    let wide = u32::from(out_dtype != dtype);
    dev.launch(
        &kernel,
        cfg,
        kernel_args![xp, gp, pp, args, len32, count32, op, wide, tp],
    )?;
    Ok(Some(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_fill_the_gpu_without_tiny_ranges() {
        // ResNet's 64-channel 3x3 layer at batch 128 on 132 SMs: 5 tiles, 264 blocks wanted.
        let (len, count) = splits(128 * 32 * 32, 5, 132);
        assert_eq!((len, count), (2496, 53));
        assert!(len * count >= 128 * 32 * 32 && len * (count - 1) < 128 * 32 * 32);
        // Plenty of tiles: one split.
        assert_eq!(splits(1000, 300, 132), (1024, 1));
        // Few positions: at most one split per 256 of them.
        assert_eq!(splits(600, 1, 132), (224, 3));
        assert_eq!(splits(10, 1, 132), (32, 1));
    }
}
