//! Host side of `cuda/gemm.cu`: batched matrix products.
//!
//! Operands are read in place through their row and column strides (transposed views cost no
//! copy); broadcast batch dims reach the kernel as a [`Geometry`] of batch offsets. One kernel per
//! dtype takes every shape and layout: f32 on double-buffered SIMT tiles, f16/bf16 on tensor cores
//! (a cp.async + ldmatrix + `mma.sync` pipeline, f32 accumulation), f64 on plain SIMT tiles. An
//! operand is loaded 16 bytes at a time along its unit stride when its other stride, offset and
//! batch strides are multiples of one load and each load lies wholly inside or outside it (so k,
//! or m for an A read along m, n for a B read along n, is a multiple of one load: 4 f32, 8
//! f16/bf16); any other operand is loaded element by element through both strides, in the same
//! kernel and tiles. Exact tiles (m, n multiples of 128, k of 8 (f32) or 32 (f16/bf16), both
//! operands 16-byte loaded) skip the edge guards; every other shape runs edge tiles whose loads
//! past the edges read zeros and whose stores are guarded ([`plan`]). On an H100/H200, f16/bf16
//! products whose operands TMA can load (the 16-byte-loaded ones with one batch stride) and that
//! fill half the GPU run the wgmma kernel instead, at any size ([`gemm_sm90`]). f32 products
//! run on the tensor cores with TF32 operands instead while
//! [`CudaBackend::set_matmul_tf32`] allows it (off by default, as in PyTorch).
//!
//! A [`MatmulSpec`]'s extras run inside every kernel: f16/bf16 operands may write f32 (the
//! accumulator, unrounded: `matmul_*_f32` kernels), and the epilogue (bias `[n]` of the output
//! dtype added to every row, then ReLU) is applied in the store stage, on the accumulator,
//! before the single rounding to the output dtype (or, where the spec asks for it, a rounding
//! to the operands' dtype before the f32 store: the values of the product in f16/bf16 widened).

use sinew_tensor::{Activation, DType, Error, Layout, MatmulDims, MatmulSpec, Result, Shape};

use super::{LaunchConfig, gemm_sm90, need};
use crate::device::CudaBackend;
use crate::geometry::Geometry;
use crate::names::{self, Kernel};
use crate::storage::CudaStorage;

/// Output tile edge of every GEMM kernel (columns; rows too unless [`Plan::small_m`]).
const TILE: usize = 128;
/// Row tiles of one launch (a grid's y limit); more take further launches.
const MAX_ROW_TILES: usize = 65535;

/// Kernel arguments (mirrors `GemmArgs` in `cuda/gemm.cuh`).
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub(super) struct GemmArgs {
    m: u32,
    n: u32,
    k: u32,
    batch: u32,
    a_rs: u64,
    a_cs: u64,
    b_rs: u64,
    b_cs: u64,
    vector: u32,
    small_m: u32,
    bias: u64,
    bias_stride: u64,
    epilogue: u32,
    edge: u32,
    row_tile0: u32,
    batch_geom: Geometry,
}

/// Bit of `GemmArgs::epilogue`: add the bias.
const EPI_BIAS: u32 = 1;
/// Bit of `GemmArgs::epilogue`: ReLU last.
const EPI_RELU: u32 = 2;
/// Bit of `GemmArgs::epilogue`: round to the operands' dtype before writing a wider output.
const EPI_ROUND: u32 = 4;

/// What one GEMM computes: sizes, output dtype and epilogue (a [`MatmulSpec`] with the bias
/// resolved to a CUDA storage).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Epilogue<'a> {
    dims: MatmulDims,
    out_dtype: Option<DType>,
    bias: Option<(&'a CudaStorage, &'a Layout)>,
    activation: Option<Activation>,
    round_to_operands: bool,
}

impl<'a> Epilogue<'a> {
    /// The spec's sizes, dtype and epilogue, with its bias as `bias`.
    pub(crate) fn of(spec: &MatmulSpec<'_>, bias: Option<(&'a CudaStorage, &'a Layout)>) -> Self {
        Epilogue {
            dims: spec.dims,
            out_dtype: spec.out_dtype,
            bias,
            activation: spec.activation,
            round_to_operands: spec.round_to_operands,
        }
    }
}

/// The epilogue's `(bias address, bias stride, flags)` for `dtype` operands writing `out`,
/// after checking the bias: `[n]`, of the output dtype, inside its storage.
fn epilogue_args(
    dev: &CudaBackend,
    spec: &Epilogue<'_>,
    (dtype, out): (DType, DType),
) -> Result<(u64, u64, u32)> {
    const OP: &str = "matmul";
    let mut flags = match spec.activation {
        None => 0,
        Some(Activation::Relu) => EPI_RELU,
        Some(_) => {
            return Err(Error::NotImplemented {
                op: "matmul activation",
                device: dev.location(),
            });
        }
    };
    if spec.round_to_operands && out != dtype {
        flags |= EPI_ROUND;
    }
    let Some((bias, layout)) = spec.bias else {
        return Ok((0, 0, flags));
    };
    let n = spec.dims.n;
    if layout.dims() != [n] {
        return Err(Error::invalid(
            OP,
            format!(
                "bias of shape {} for an output with {n} columns",
                layout.shape()
            ),
        ));
    }
    if bias.dtype_of() != out {
        return Err(Error::DTypeMismatch {
            op: OP,
            lhs: out,
            rhs: bias.dtype_of(),
        });
    }
    if layout.storage_extent() > bias.elem_count() {
        return Err(Error::invalid(OP, "bias view exceeds its storage"));
    }
    flags |= EPI_BIAS;
    Ok((
        bias.ptr_at(layout.offset()),
        layout.strides()[0] as u64,
        flags,
    ))
}

/// Whether an operand of `rows x cols` may be loaded `chunk` elements (16 bytes) at a time along
/// its unit stride (the kernels prefer a unit column stride): the other stride, the offset and the
/// batch strides are multiples of `chunk`, and so is the length along the unit stride (each load
/// lies wholly inside or outside the operand). `len_along_rows` is that length when the rows are
/// the unit stride.
fn vector_ok(layout: &Layout, chunk: usize) -> bool {
    let rank = layout.dims().len();
    let (rows, cols) = (layout.dims()[rank - 2], layout.dims()[rank - 1]);
    let (rs, cs) = (layout.strides()[rank - 2], layout.strides()[rank - 1]);
    let axis = if cs == 1 {
        (rows == 1 || rs % chunk == 0) && cols % chunk == 0
    } else if rs == 1 {
        (cols == 1 || cs % chunk == 0) && rows % chunk == 0
    } else {
        false
    };
    let batch = layout.dims()[..rank - 2]
        .iter()
        .zip(&layout.strides()[..rank - 2])
        .all(|(&d, &s)| d == 1 || s % chunk == 0);
    axis && batch && layout.offset().is_multiple_of(chunk)
}

/// Elements in one 16-byte load.
fn chunk_elems(dtype: DType) -> usize {
    16 / dtype.size_in_bytes()
}

/// The launches of `row_tiles` row tiles: `(first tile, tiles)`, at most [`MAX_ROW_TILES`] each.
fn row_launches(row_tiles: usize) -> impl Iterator<Item = (usize, usize)> {
    (0..row_tiles)
        .step_by(MAX_ROW_TILES)
        .map(move |first| (first, (row_tiles - first).min(MAX_ROW_TILES)))
}

/// How one GEMM runs: which loads are vectorised and which tiles run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Plan {
    /// Bit 0: A is loaded 16 bytes at a time ([`vector_ok`]); bit 1: B. A clear bit: element by
    /// element.
    pub(super) vector: u32,
    /// Loads and stores are guarded: m, n or k is not a tile multiple, or an operand is loaded
    /// element-wise (f32 reads this; f16/bf16 run such shapes on [`Plan::small_m`] tiles).
    edge: bool,
    /// f16/bf16: 64-row block tiles of 4 warps, which also take the edges (and small problems,
    /// where 128-row tiles would leave multiprocessors idle).
    pub(super) small_m: bool,
}

impl Plan {
    /// Rows of one block tile.
    pub(super) fn rows(&self) -> usize {
        if self.small_m { TILE / 2 } else { TILE }
    }
}

/// The plan of `[batch.., m, k] @ [batch.., k, n]` with operands `a`, `b` of `dtype` on a GPU with
/// `multiprocessors` SMs. f64 runs the plain SIMT kernel, which reads everything element-wise.
pub(super) fn plan(
    dtype: DType,
    a: &Layout,
    b: &Layout,
    dims: MatmulDims,
    multiprocessors: usize,
) -> Plan {
    let MatmulDims { batch, m, n, k } = dims;
    if dtype == DType::F64 {
        return Plan {
            vector: 0,
            edge: true,
            small_m: false,
        };
    }
    let chunk = chunk_elems(dtype);
    let vector = vector_ok(a, chunk) as u32 | (vector_ok(b, chunk) as u32) << 1;
    let k_step = if dtype == DType::F32 { 8 } else { 32 };
    let exact = vector == 3
        && k > 0
        && m.is_multiple_of(TILE)
        && n.is_multiple_of(TILE)
        && k.is_multiple_of(k_step);
    // The tensor-core kernel runs 128-row tiles only where they fill the GPU.
    let fills = (m / TILE) * (n / TILE) * batch >= multiprocessors;
    Plan {
        vector,
        edge: !exact,
        small_m: dtype != DType::F32 && !(exact && fills),
    }
}

fn batch_layout(layout: &Layout) -> Layout {
    let rank = layout.dims().len();
    Layout::from_parts(
        Shape::new(layout.dims()[..rank - 2].to_vec()),
        layout.strides()[..rank - 2].to_vec(),
        layout.offset(),
    )
}

/// `[batch.., m, k] @ [batch.., k, n]` into a contiguous `[batch.., m, n]`.
pub(crate) fn matmul(
    dev: &CudaBackend,
    lhs: &CudaStorage,
    ll: &Layout,
    rhs: &CudaStorage,
    rl: &Layout,
    spec: &Epilogue<'_>,
) -> Result<CudaStorage> {
    let dims = spec.dims;
    const OP: &str = "matmul";
    let dtype = lhs.dtype_of();
    if rhs.dtype_of() != dtype {
        return Err(Error::DTypeMismatch {
            op: OP,
            lhs: dtype,
            rhs: rhs.dtype_of(),
        });
    }
    let MatmulDims { batch, m, n, .. } = dims;
    let out_dtype = spec.out_dtype.unwrap_or(dtype);
    need(names::matmul(dtype, dtype), OP, dtype)?;
    let kernel = names::matmul(dtype, out_dtype).ok_or_else(|| {
        Error::invalid(
            OP,
            format!("{dtype} operands cannot be written as {out_dtype} (f16/bf16 may write f32)"),
        )
    })?;
    let (bias, bias_stride, epilogue) = epilogue_args(dev, spec, (dtype, out_dtype))?;
    let total = batch
        .checked_mul(m)
        .and_then(|bm| bm.checked_mul(n))
        .ok_or_else(|| Error::invalid(OP, format!("output size overflows ({dims:?})")))?;
    let out = dev.alloc(out_dtype, total)?;
    if total == 0 {
        return Ok(out);
    }
    let plan = plan(dtype, ll, rl, dims, dev.multiprocessors() as usize);
    let args = gemm_args(ll, rl, dims, plan, (bias, bias_stride, epilogue))?;
    let (a, b, c) = (lhs.device_ptr(), rhs.device_ptr(), out.device_ptr());
    // f32 in TF32 where allowed: the tensor cores' 64-row tiles, every shape and layout.
    if dtype == DType::F32 && dev.matmul_tf32() {
        let launch = Launch {
            kernel: names::matmul_tf32(),
            rows: TILE / 2,
            threads: 128,
        };
        run(dev, &launch, args, dims, [a, b, c])?;
        return Ok(out);
    }
    // f16/bf16 on a Hopper GPU: the wgmma kernel (once it has passed its check), where TMA can
    // load the operands.
    if let Some(k) = names::matmul_sm90(dtype, out_dtype)
        && gemm_sm90::fits(&plan, ll, rl, dims, dev.multiprocessors() as usize)
        && gemm_sm90::ready(dev)?
        && gemm_sm90::launch(dev, &k, (ll, rl), args, dims, [a, b, c])?
    {
        return Ok(out);
    }
    let launch = Launch {
        kernel,
        rows: plan.rows(),
        threads: if dtype == DType::F32 || dtype == DType::F64 {
            256
        } else {
            128
        },
    };
    run(dev, &launch, args, dims, [a, b, c])?;
    Ok(out)
}

/// The kernel arguments of `[batch.., m, k] @ [batch.., k, n]` under `plan`, with the epilogue's
/// `(bias address, bias stride, flags)`.
pub(super) fn gemm_args(
    ll: &Layout,
    rl: &Layout,
    dims: MatmulDims,
    plan: Plan,
    (bias, bias_stride, epilogue): (u64, u64, u32),
) -> Result<GemmArgs> {
    const OP: &str = "matmul";
    let MatmulDims { batch, m, n, k } = dims;
    // The kernels index rows, columns and k in 32 bits, past the last tile too.
    let too_big =
        |what: &str| Error::invalid(OP, format!("{what} too large for the CUDA GEMM ({dims:?})"));
    let u32_of = |v: usize, what: &str| {
        u32::try_from(v)
            .ok()
            .filter(|&v| v <= i32::MAX as u32)
            .ok_or_else(|| too_big(what))
    };
    let mut batch_geom = Geometry::new(OP, &[&batch_layout(ll), &batch_layout(rl)])?;
    batch_geom.contiguous = 0; // batch offsets always go through the strides
    let rank = ll.dims().len();
    Ok(GemmArgs {
        m: u32_of(m, "m")?,
        n: u32_of(n, "n")?,
        k: u32_of(k, "k")?,
        batch: u32_of(batch, "batch")?,
        a_rs: ll.strides()[rank - 2] as u64,
        a_cs: ll.strides()[rank - 1] as u64,
        b_rs: rl.strides()[rank - 2] as u64,
        b_cs: rl.strides()[rank - 1] as u64,
        vector: plan.vector,
        small_m: plan.small_m as u32,
        bias,
        bias_stride,
        epilogue,
        edge: plan.edge as u32,
        row_tile0: 0,
        batch_geom,
    })
}

/// Which GEMM kernel runs and how: rows of one block tile, threads per block.
pub(super) struct Launch {
    pub(super) kernel: Kernel,
    pub(super) rows: usize,
    pub(super) threads: u32,
}

/// Queues the launches of one GEMM: `[a, b, c]` are the operands' and the output's device
/// addresses (the output contiguous `[batch, m, n]`).
pub(super) fn run(
    dev: &CudaBackend,
    launch: &Launch,
    mut args: GemmArgs,
    dims: MatmulDims,
    [a, b, c]: [u64; 3],
) -> Result<()> {
    let MatmulDims { batch, m, n, .. } = dims;
    for (tile0, tiles) in row_launches(m.div_ceil(launch.rows)) {
        args.row_tile0 = tile0 as u32; // < row tiles <= m, which fits (gemm_args checks)
        let cfg = LaunchConfig {
            grid: (
                n.div_ceil(TILE) as u32,
                tiles as u32,
                batch.min(65535) as u32,
            ),
            block: (launch.threads, 1, 1),
        };
        dev.launch(&launch.kernel, cfg, kernel_args![a, b, c, args])?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gemm_args_match_the_c_layout() {
        assert_eq!(std::mem::size_of::<GemmArgs>(), 88 + 256);
        assert_eq!(std::mem::offset_of!(GemmArgs, bias), 56);
        assert_eq!(std::mem::offset_of!(GemmArgs, epilogue), 72);
        assert_eq!(std::mem::offset_of!(GemmArgs, row_tile0), 80);
        assert_eq!(std::mem::offset_of!(GemmArgs, batch_geom), 88);
    }

    #[test]
    fn vector_loads_need_aligned_strides_and_whole_loads() {
        let l = Layout::contiguous([4, 64, 32]);
        assert!(vector_ok(&l, 8));
        assert!(vector_ok(&l.permute(&[0, 2, 1]).unwrap(), 8));
        assert!(!vector_ok(&Layout::contiguous([4, 64, 30]), 8));
        assert!(!vector_ok(&l.slice(2, 1, 16, 1).unwrap(), 8));
        assert!(!vector_ok(&l.slice(2, 0, 16, 2).unwrap(), 8));
        // 12 columns: whole f32 loads (4) but not f16 ones (8); 10 columns: neither.
        assert!(vector_ok(&Layout::contiguous([64, 12]), 4));
        assert!(!vector_ok(&Layout::contiguous([64, 12]), 8));
        assert!(!vector_ok(&Layout::contiguous([64, 10]), 4));
        // Read along the rows (a transposed view): the row count must be whole loads.
        let t = Layout::contiguous([10, 64]).permute(&[1, 0]).unwrap();
        assert!(
            vector_ok(&t, 4)
                && !vector_ok(
                    &Layout::contiguous([10, 64])
                        .permute(&[1, 0])
                        .unwrap()
                        .slice(0, 0, 62, 1)
                        .unwrap(),
                    4
                )
        );
    }

    #[test]
    fn tall_products_take_one_launch_per_65535_row_tiles() {
        let launches = |t: usize| row_launches(t).collect::<Vec<_>>();
        assert_eq!(launches(1), [(0, 1)]);
        assert_eq!(launches(65535), [(0, 65535)]);
        assert_eq!(launches(65536), [(0, 65535), (65535, 1)]);
        assert_eq!(
            launches(140_000),
            [(0, 65535), (65535, 65535), (131_070, 8930)]
        );
        // f16 rows beyond 65535 64-row tiles (4,194,240 rows): two launches.
        let p = plan(
            DType::F16,
            &Layout::contiguous([5_000_000, 27]),
            &Layout::contiguous([27, 8]),
            dims(1, 5_000_000, 27, 8),
            132,
        );
        assert_eq!(launches(5_000_000usize.div_ceil(p.rows())).len(), 2);
    }

    fn dims(batch: usize, m: usize, k: usize, n: usize) -> MatmulDims {
        MatmulDims { batch, m, n, k }
    }

    #[test]
    fn every_shape_runs_the_one_kernel_with_a_plan_for_its_loads() {
        // (dtype, A stored transposed, (m, k, n), (vector bits, edge, small_m)) on 132 SMs; B is
        // a contiguous [k, n].
        let cases = [
            // Tile multiples, aligned: the exact tiles, 128 rows where they fill the SMs...
            (DType::F32, false, (256, 64, 256), (3, false, false)),
            (DType::F16, false, (1536, 96, 1408), (3, false, false)),
            // ... and 64-row tiles where they would not (which guard their edges anyway).
            (DType::F16, false, (256, 96, 256), (3, false, true)),
            // A 10-class layer's backward: dY [64, 10] @ W [10, 128] (k = 10 is no whole load:
            // A element-wise, B vector) and dY^T [10, 64] @ X [64, 784] (A read along its 10
            // rows: element-wise).
            (DType::F32, false, (64, 10, 128), (2, true, false)),
            (DType::BF16, true, (10, 64, 784), (2, true, true)),
            // A first convolution's columns, k = 27: both element-wise in f16.
            (DType::F16, false, (64, 27, 100), (0, true, true)),
            // k = 0 never runs the unguarded exact tiles (they would load a first k-tile).
            (DType::F32, false, (128, 0, 128), (3, true, false)),
            // f64: the plain SIMT kernel.
            (DType::F64, false, (256, 64, 256), (0, true, false)),
        ];
        for (dtype, transposed, (m, k, n), (vector, edge, small_m)) in cases {
            let a = if transposed {
                Layout::contiguous([k, m]).permute(&[1, 0]).unwrap()
            } else {
                Layout::contiguous([m, k])
            };
            let p = plan(
                dtype,
                &a,
                &Layout::contiguous([k, n]),
                dims(1, m, k, n),
                132,
            );
            let want = Plan {
                vector,
                edge,
                small_m,
            };
            assert_eq!(p, want, "{dtype} {m}x{k}x{n}");
            assert_eq!(p.rows(), if small_m { 64 } else { 128 });
        }
    }
}
