//! The naming contract between the Rust launches and the CUDA kernels.
//!
//! Every kernel is `extern "C"` and named `<stem>_<dtype>`, where the stem is the op's name from
//! sinew-tensor's op table (`UnaryOp::name()`, ...) behind a family prefix: `unary_exp_f32`,
//! `binary_add_f16`, `cmp_lt_bf16`, `reduce_sum_f64`, `argreduce_argmax_f32`, `softmax_f32`,
//! `log_softmax_f16`, `matmul_bf16`. Dtype-agnostic data movement is named by element width:
//! `copy_b4`, `fill_b2`, `where_b8`, `gather_b8`, `scatter_b2`, `unfold2d_b4`; casts by both
//! dtypes: `cast_f32_f16`; ops that do arithmetic by dtype: `index_grad_f16`, `fold2d_f32`.
//! GEMMs that change the dtype name both: `matmul_f16_f32`. In-place updates of a strided view:
//! `inplace_binary_add_f32`, `inplace_unary_clamp_f16`, `inplace_axpy_bf16`, `inplace_fill_b4`.
//!
//! The functions here are the only place kernel names are built, and they also decide which
//! dtypes each op supports on the GPU (`None` = unsupported). [`every_kernel`] walks the op table
//! so a test can check that each name exists in the embedded PTX. A [`Kernel`] holds the parts of
//! its name, not a string, so naming a kernel per launch formats nothing.

use sinew_tensor::op_table::{ARG_REDUCE_OPS, BINARY_OPS, CMP_OPS, REDUCE_OPS, unary_ops};
use sinew_tensor::{ArgReduceOp, BinaryOp, CmpOp, DType, FusedStep, InplaceOp, ReduceOp, UnaryOp};

/// A `.cu` file in `cuda/` and its PTX module; one per op family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Family {
    /// `cuda/unary.cu`: elementwise unary and scalar ops.
    Unary,
    /// `cuda/binary.cu`: elementwise binary arithmetic.
    Binary,
    /// `cuda/compare.cu`: comparisons and `where`.
    Compare,
    /// `cuda/cast.cu`: casts, fills and strided copies.
    Cast,
    /// `cuda/reduce.cu`: reductions and arg-reductions.
    Reduce,
    /// `cuda/softmax.cu`: softmax and log-softmax.
    Softmax,
    /// `cuda/gemm.cu`: matrix products.
    Gemm,
    /// `cuda/gemm_mixed.cu`: f16/bf16 matrix products written as f32 (own module: loaded only
    /// when used).
    GemmMixed,
    /// `cuda/index.cu`: gather, index_select and scatter.
    Index,
    /// `cuda/conv.cu`: im2col and col2im.
    Conv,
    /// `cuda/inplace.cu`: in-place updates of strided views (`add_`, `axpy_`, `fill_`, ...).
    Inplace,
    /// `cuda/random.cu`: counter-based random numbers (Philox4x32-10).
    Random,
    /// `cuda/channel.cu`: batch norm's per-channel sums and affine maps.
    Channel,
    /// `cuda/xent.cu`: fused softmax cross-entropy, forward and backward.
    Xent,
    /// `cuda/conv_gemm.cu`: implicit-GEMM convolution (no column buffer).
    ConvGemm,
    /// `cuda/conv_wgrad.cu`: implicit-GEMM convolution weight gradient.
    ConvWgrad,
    /// `cuda/sorted_sum.cu`: sums over an index in position order (a stable radix sort of the
    /// positions by output slot): index_select's gradient and float scatter-adds.
    SortedSum,
    /// `cuda/gemm_sm90.cu`: the Hopper GEMM (TMA + wgmma; PTX for sm_90a, loaded only on
    /// compute capability 9.0).
    GemmSm90,
    /// `cuda/fused_step.cu`: optimizer steps in one pass (every optimizer of sinew-optim;
    /// Adafactor's in three) and the loss scaler's unscale.
    FusedStep,
}

impl Family {
    /// Every family, in module-table order.
    pub const ALL: [Family; 19] = [
        Family::Unary,
        Family::Binary,
        Family::Compare,
        Family::Cast,
        Family::Reduce,
        Family::Softmax,
        Family::Gemm,
        Family::GemmMixed,
        Family::Index,
        Family::Conv,
        Family::Inplace,
        Family::Random,
        Family::Channel,
        Family::Xent,
        Family::ConvGemm,
        Family::ConvWgrad,
        Family::SortedSum,
        Family::GemmSm90,
        Family::FusedStep,
    ];

    /// File stem of the `.cu` source and the `.ptx` output.
    pub fn file_stem(self) -> &'static str {
        match self {
            Family::Unary => "unary",
            Family::Binary => "binary",
            Family::Compare => "compare",
            Family::Cast => "cast",
            Family::Reduce => "reduce",
            Family::Softmax => "softmax",
            Family::Gemm => "gemm",
            Family::GemmMixed => "gemm_mixed",
            Family::Index => "index",
            Family::Conv => "conv",
            Family::Inplace => "inplace",
            Family::Random => "random",
            Family::Channel => "channel",
            Family::Xent => "xent",
            Family::ConvGemm => "conv_gemm",
            Family::ConvWgrad => "conv_wgrad",
            Family::SortedSum => "sorted_sum",
            Family::GemmSm90 => "gemm_sm90",
            Family::FusedStep => "fused_step",
        }
    }

    /// Position in [`Family::ALL`].
    pub fn index(self) -> usize {
        self as usize
    }
}

/// One part of a kernel name after its stem: a dtype (`_f32`) or an element width (`_b4`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Suffix {
    /// No part.
    None,
    /// `_<dtype>`.
    DType(DType),
    /// `_b<bytes>`.
    Bytes(u8),
}

/// One kernel: the module it lives in and the parts of its entry name. Cheap to build, copy and
/// hash (no string is formatted), so launches key the per-device function cache with it; the
/// name itself is only written out to load the function or to report an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Kernel {
    /// The module (PTX file) holding it.
    pub family: Family,
    prefix: &'static str,
    op: &'static str,
    suffixes: [Suffix; 2],
}

impl Kernel {
    /// The `extern "C"` entry name, e.g. `unary_exp_f32` (formats a string).
    pub fn name(&self) -> String {
        self.to_string()
    }
}

impl std::fmt::Display for Kernel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.prefix)?;
        if !self.op.is_empty() {
            write!(f, "_{}", self.op)?;
        }
        for suffix in self.suffixes {
            match suffix {
                Suffix::None => {}
                Suffix::DType(d) => write!(f, "_{d}")?,
                Suffix::Bytes(b) => write!(f, "_b{b}")?,
            }
        }
        Ok(())
    }
}

fn kernel(family: Family, prefix: &'static str, op: &'static str, dtype: DType) -> Kernel {
    Kernel {
        family,
        prefix,
        op,
        suffixes: [Suffix::DType(dtype), Suffix::None],
    }
}

fn by_width(family: Family, prefix: &'static str, dtype: DType) -> Kernel {
    Kernel {
        family,
        prefix,
        op: "",
        suffixes: [Suffix::Bytes(dtype.size_in_bytes() as u8), Suffix::None],
    }
}

fn is_float(dtype: DType) -> bool {
    matches!(dtype, DType::F32 | DType::F64 | DType::F16 | DType::BF16)
}

/// `unary_<op>_<dtype>`: floats for every op, i64 for the integral ones.
pub fn unary(op: &UnaryOp, dtype: DType) -> Option<Kernel> {
    let ok = is_float(dtype) || (dtype == DType::I64 && op.supports_integers());
    ok.then(|| kernel(Family::Unary, "unary", op.name(), dtype))
}

/// `binary_<op>_<dtype>`: floats for every op; i64 without `pow` (`binary_div_i64` takes an
/// extra error slot for zero divisors).
pub fn binary(op: BinaryOp, dtype: DType) -> Option<Kernel> {
    let ok = is_float(dtype) || (dtype == DType::I64 && !matches!(op, BinaryOp::Pow));
    ok.then(|| kernel(Family::Binary, "binary", op.name(), dtype))
}

/// `relu_backward_<dtype>`: floats.
pub fn relu_backward(dtype: DType) -> Option<Kernel> {
    is_float(dtype).then(|| kernel(Family::Binary, "relu_backward", "", dtype))
}

/// `add_relu_<dtype>`: floats.
pub fn add_relu(dtype: DType) -> Option<Kernel> {
    is_float(dtype).then(|| kernel(Family::Binary, "add_relu", "", dtype))
}

/// `cmp_<op>_<dtype>`, every dtype.
pub fn compare(op: CmpOp, dtype: DType) -> Kernel {
    kernel(Family::Compare, "cmp", op.name(), dtype)
}

/// `range_check_<dtype>` (the first value outside a range, into a failure slot): floats.
pub fn range_check(dtype: DType) -> Option<Kernel> {
    is_float(dtype).then(|| kernel(Family::Compare, "range_check", "", dtype))
}

/// `where_b<bytes>`, by element width.
pub fn where_cond(dtype: DType) -> Kernel {
    by_width(Family::Compare, "where", dtype)
}

/// `cast_<from>_<to>`, every pair.
pub fn cast(from: DType, to: DType) -> Kernel {
    Kernel {
        family: Family::Cast,
        prefix: "cast",
        op: "",
        suffixes: [Suffix::DType(from), Suffix::DType(to)],
    }
}

/// `cast_many_<from>_<to>` (a table of dense runs converted in one launch): f32 to f16 and
/// bf16, autocast's weight casts.
pub fn cast_many(from: DType, to: DType) -> Option<Kernel> {
    (from == DType::F32 && matches!(to, DType::F16 | DType::BF16)).then_some(Kernel {
        family: Family::Cast,
        prefix: "cast_many",
        op: "",
        suffixes: [Suffix::DType(from), Suffix::DType(to)],
    })
}

/// `fill_b<bytes>`, by element width.
pub fn fill(dtype: DType) -> Kernel {
    by_width(Family::Cast, "fill", dtype)
}

/// `copy_b<bytes>`, by element width.
pub fn copy(dtype: DType) -> Kernel {
    by_width(Family::Cast, "copy", dtype)
}

/// `reduce_<op>_<dtype>`: floats and i64.
pub fn reduce(op: ReduceOp, dtype: DType) -> Option<Kernel> {
    (is_float(dtype) || dtype == DType::I64)
        .then(|| kernel(Family::Reduce, "reduce", op.name(), dtype))
}

/// `reduce_mid_<op>_<dtype>` (the middle axis of `[outer, len, inner]`): floats and i64.
pub fn reduce_middle(op: ReduceOp, dtype: DType) -> Option<Kernel> {
    (is_float(dtype) || dtype == DType::I64)
        .then(|| kernel(Family::Reduce, "reduce_mid", op.name(), dtype))
}

/// The stem of each fused optimizer step's kernels, in [`FusedStep`]'s order.
const FUSED_STEP_STEMS: [&str; 10] = [
    "fused_sgd",
    "fused_adam",
    "fused_adamax",
    "fused_adagrad",
    "fused_rmsprop",
    "fused_adadelta",
    "fused_nadam",
    "fused_radam",
    "fused_rprop",
    "fused_asgd",
];

/// `fused_<optimizer>_<dtype>` (an optimizer step over one parameter in one pass), or with
/// `many` `fused_<optimizer>_many_<dtype>` (over a table of parameters): floats.
pub fn fused_step(step: &FusedStep, dtype: DType, many: bool) -> Option<Kernel> {
    let index = match step {
        FusedStep::Sgd(_) => 0,
        FusedStep::Adam(_) => 1,
        FusedStep::Adamax(_) => 2,
        FusedStep::Adagrad(_) => 3,
        FusedStep::Rmsprop(_) => 4,
        FusedStep::Adadelta(_) => 5,
        FusedStep::Nadam(_) => 6,
        FusedStep::Radam(_) => 7,
        FusedStep::Rprop(_) => 8,
        FusedStep::Asgd(_) => 9,
        _ => return None,
    };
    let stem = FUSED_STEP_STEMS[index];
    let op = if many { "many" } else { "" };
    is_float(dtype).then(|| kernel(Family::FusedStep, stem, op, dtype))
}

/// `amp_unscale_<dtype>` (the loss scaler's unscale and non-finite check of a view), or with
/// `many` `amp_unscale_many_<dtype>` (of a table of dense gradients): floats.
pub fn amp_unscale(dtype: DType, many: bool) -> Option<Kernel> {
    let op = if many { "many" } else { "" };
    is_float(dtype).then(|| kernel(Family::FusedStep, "amp_unscale", op, dtype))
}

/// `adafactor_<stage>_<dtype>`, a stage of Adafactor's step (`moments`, `norm`, `apply`):
/// floats.
pub fn adafactor_step(stage: &'static str, dtype: DType) -> Option<Kernel> {
    let known = ADAFACTOR_STAGES.contains(&stage);
    (known && is_float(dtype)).then(|| kernel(Family::FusedStep, "adafactor", stage, dtype))
}

/// The stages of Adafactor's step, in launch order.
const ADAFACTOR_STAGES: [&str; 3] = ["moments", "norm", "apply"];

/// `pow_sum_many_<dtype>` (gradient clipping's per-block sums of `|x|^p` over a table of dense
/// runs): floats.
pub fn pow_sum_many(dtype: DType) -> Option<Kernel> {
    is_float(dtype).then(|| kernel(Family::FusedStep, "pow_sum", "many", dtype))
}

/// `average_many_<dtype>` (weight averaging's update over a table of dense pairs): floats.
pub fn average_many(dtype: DType) -> Option<Kernel> {
    is_float(dtype).then(|| kernel(Family::FusedStep, "average", "many", dtype))
}

/// `mul_many_<dtype>` (a table of dense runs scaled by one element in place): floats.
pub fn mul_many(dtype: DType) -> Option<Kernel> {
    is_float(dtype).then(|| kernel(Family::FusedStep, "mul", "many", dtype))
}

/// `argreduce_<op>_<dtype>`: floats, i64 and u8.
pub fn arg_reduce(op: ArgReduceOp, dtype: DType) -> Option<Kernel> {
    (is_float(dtype) || matches!(dtype, DType::I64 | DType::U8))
        .then(|| kernel(Family::Reduce, "argreduce", op.name(), dtype))
}

/// `softmax_<dtype>` / `log_softmax_<dtype>`: floats.
pub fn softmax(log: bool, dtype: DType) -> Option<Kernel> {
    let stem = if log { "log_softmax" } else { "softmax" };
    is_float(dtype).then(|| kernel(Family::Softmax, stem, "", dtype))
}

/// Whether a GEMM of `dtype` operands may write `out` (the operands' dtype, or f32 from f16/bf16).
fn gemm_out_ok(dtype: DType, out: DType) -> bool {
    out == dtype || (out == DType::F32 && matches!(dtype, DType::F16 | DType::BF16))
}

fn gemm_kernel(family: Family, prefix: &'static str, dtype: DType, out: DType) -> Kernel {
    Kernel {
        family,
        prefix,
        op: "",
        suffixes: [
            Suffix::DType(dtype),
            if out == dtype {
                Suffix::None
            } else {
                Suffix::DType(out)
            },
        ],
    }
}

/// `matmul_<dtype>`, the one GEMM kernel of a dtype, for every shape and layout (SIMT tiles for
/// f32/f64, pipelined `mma.sync` tensor cores for f16/bf16), or `matmul_<dtype>_f32` for f16/bf16
/// operands written as f32 (accumulated in f32 either way).
pub fn matmul(dtype: DType, out: DType) -> Option<Kernel> {
    let family = if out == dtype {
        Family::Gemm
    } else {
        Family::GemmMixed
    };
    (is_float(dtype) && gemm_out_ok(dtype, out)).then(|| gemm_kernel(family, "matmul", dtype, out))
}

/// `matmul_tf32_f32`: f32 operands on the tensor cores, rounded to TF32, writing f32.
pub fn matmul_tf32() -> Kernel {
    kernel(Family::Gemm, "matmul", "tf32", DType::F32)
}

/// `matmul_sm90_<f16|bf16>[_f32]`: the Hopper (wgmma) GEMM of f16/bf16 operands writing their
/// dtype or f32, for operands TMA can load on compute capability 9.0 only (`ops::gemm_sm90`).
pub fn matmul_sm90(dtype: DType, out: DType) -> Option<Kernel> {
    (matches!(dtype, DType::F16 | DType::BF16) && gemm_out_ok(dtype, out))
        .then(|| gemm_kernel(Family::GemmSm90, "matmul_sm90", dtype, out))
}

/// `inplace_binary_<op>_<dtype>` (`dst = dst op src`): floats, and i64 without `div` and `pow`.
pub fn inplace_binary(op: BinaryOp, dtype: DType) -> Option<Kernel> {
    let ok =
        is_float(dtype) || (dtype == DType::I64 && !matches!(op, BinaryOp::Pow | BinaryOp::Div));
    ok.then(|| kernel(Family::Inplace, "inplace_binary", op.name(), dtype))
}

/// `inplace_unary_<op>_<dtype>` (`dst = op(dst)`): the dtypes [`unary`] supports.
pub fn inplace_unary(op: &UnaryOp, dtype: DType) -> Option<Kernel> {
    unary(op, dtype).map(|_| kernel(Family::Inplace, "inplace_unary", op.name(), dtype))
}

/// `inplace_<axpy|addcmul|addcdiv|lerp>_<dtype>`: floats. `None` for the other ops.
pub fn inplace_scaled(op: InplaceOp, dtype: DType) -> Option<Kernel> {
    let stem = match op {
        InplaceOp::Axpy(_) => "axpy",
        InplaceOp::Addcmul(_) => "addcmul",
        InplaceOp::Addcdiv(_) => "addcdiv",
        InplaceOp::Lerp(_) => "lerp",
        InplaceOp::MulAxpy { .. } => "mul_axpy",
        InplaceOp::MulAddcmul { .. } => "mul_addcmul",
        InplaceOp::AddcdivSqrt { .. } => "addcdiv_sqrt",
        InplaceOp::MulMaxAbs { .. } => "mul_max_abs",
        _ => return None,
    };
    is_float(dtype).then(|| kernel(Family::Inplace, "inplace", stem, dtype))
}

/// `inplace_fill_b<bytes>`: fills a strided view, by element width, every dtype.
pub fn inplace_fill(dtype: DType) -> Kernel {
    by_width(Family::Inplace, "inplace_fill", dtype)
}

/// `gather_b<bytes>`, by element width (also serves index_select), every dtype.
pub fn gather(dtype: DType) -> Kernel {
    by_width(Family::Index, "gather", dtype)
}

/// `scatter_b<bytes>`, by element width: scatter with replacement, every dtype.
pub fn scatter(dtype: DType) -> Kernel {
    by_width(Family::Index, "scatter", dtype)
}

/// `scatter_claim`: picks the last writer of each slot, so scatter-replace is deterministic.
pub fn scatter_claim() -> Kernel {
    Kernel {
        family: Family::Index,
        prefix: "scatter",
        op: "claim",
        suffixes: [Suffix::None; 2],
    }
}

/// `scatter_add_i64` (atomic adds; floats sum in order: [`scatter_add_runs`]).
pub fn scatter_add(dtype: DType) -> Option<Kernel> {
    (dtype == DType::I64).then(|| kernel(Family::Index, "scatter", "add", dtype))
}

/// `unfold2d_b<bytes>` (im2col), by element width, every dtype.
pub fn unfold2d(dtype: DType) -> Kernel {
    by_width(Family::Conv, "unfold2d", dtype)
}

/// `fold2d_<dtype>` (col2im, summing in f64): floats and i64, like the CPU backend.
pub fn fold2d(dtype: DType) -> Option<Kernel> {
    (is_float(dtype) || dtype == DType::I64).then(|| kernel(Family::Conv, "fold2d", "", dtype))
}

/// Whether the implicit-GEMM convolution kernels take `dtype`: f32, f16 and bf16, or with
/// `tf32` (f32 on the tensor cores, inputs rounded to TF32) f32 only.
fn conv_dtype(dtype: DType, tf32: bool) -> bool {
    match dtype {
        DType::F32 => true,
        DType::F16 | DType::BF16 => !tf32,
        _ => false,
    }
}

/// `conv_gemm_<dtype>` (implicit-GEMM convolution): f32, f16 and bf16; with `tf32`,
/// `conv_gemm_tf32_f32`.
pub fn conv_gemm(dtype: DType, tf32: bool) -> Option<Kernel> {
    let op = if tf32 { "tf32" } else { "" };
    conv_dtype(dtype, tf32).then(|| kernel(Family::ConvGemm, "conv_gemm", op, dtype))
}

/// `conv_gemm_dgrad_<dtype>` (implicit-GEMM convolution input gradient): f32, f16 and bf16;
/// with `tf32`, `conv_gemm_dgrad_tf32_f32`.
pub fn conv_gemm_dgrad(dtype: DType, tf32: bool) -> Option<Kernel> {
    let op = if tf32 { "dgrad_tf32" } else { "dgrad" };
    conv_dtype(dtype, tf32).then(|| kernel(Family::ConvGemm, "conv_gemm", op, dtype))
}

/// `conv_wgrad_<dtype>` (implicit-GEMM weight gradient, its split partials added in the same
/// kernel) or, with `tf32`, `conv_wgrad_tf32_f32`: f32, f16 and bf16.
pub fn conv_wgrad(dtype: DType, tf32: bool) -> Option<Kernel> {
    let op = if tf32 { "tf32" } else { "" };
    conv_dtype(dtype, tf32).then(|| kernel(Family::ConvWgrad, "conv_wgrad", op, dtype))
}

/// `max_pool2d_<dtype>` or, with `backward`, `max_pool2d_backward_<dtype>`: floats.
pub fn max_pool2d(backward: bool, dtype: DType) -> Option<Kernel> {
    let op = if backward { "backward" } else { "" };
    is_float(dtype).then(|| kernel(Family::Conv, "max_pool2d", op, dtype))
}

/// `avg_pool2d_<dtype>` or, with `backward`, `avg_pool2d_backward_<dtype>`: floats.
pub fn avg_pool2d(backward: bool, dtype: DType) -> Option<Kernel> {
    let op = if backward { "backward" } else { "" };
    is_float(dtype).then(|| kernel(Family::Conv, "avg_pool2d", op, dtype))
}

/// `max_pool2d_check`: flags max-pooling indices outside their own window (dtype-free).
pub fn max_pool2d_check() -> Kernel {
    Kernel {
        family: Family::Conv,
        prefix: "max_pool2d",
        op: "check",
        suffixes: [Suffix::None; 2],
    }
}

/// `philox_uniform_f32`: f32 uniforms from Philox4x32-10 (the backend's `philox_uniform`).
pub fn philox_uniform() -> Kernel {
    kernel(Family::Random, "philox_uniform", "", DType::F32)
}

/// `channel_sums_<dtype>` and `channel_lincomb_<dtype>` (`lincomb` true): floats.
pub fn channel(lincomb: bool, dtype: DType) -> Option<Kernel> {
    let stem = if lincomb { "lincomb" } else { "sums" };
    is_float(dtype).then(|| kernel(Family::Channel, "channel", stem, dtype))
}

/// `channel_norm_forward_f64` / `channel_norm_backward_f64`: a normalisation's per-channel
/// step (f64 only).
pub fn channel_norm(forward: bool) -> Kernel {
    let op = if forward { "forward" } else { "backward" };
    kernel(Family::Channel, "channel_norm", op, DType::F64)
}

/// `channel_stats_<dtype>`: per-channel sums and a normalisation's step on them in one kernel
/// (`Backend::channel_norm_of`): floats.
pub fn channel_stats(dtype: DType) -> Option<Kernel> {
    is_float(dtype).then(|| kernel(Family::Channel, "channel_stats", "", dtype))
}

/// `running_stats_<dtype>` (batch norm's running statistics update from f64 statistics): f32
/// and f64 running buffers.
pub fn running_stats(dtype: DType) -> Option<Kernel> {
    matches!(dtype, DType::F32 | DType::F64)
        .then(|| kernel(Family::Channel, "running_stats", "", dtype))
}

/// `xent_forward_<dtype>` and `xent_backward_<dtype>` (`backward` true) for logits of `dtype`:
/// the float dtypes.
pub fn xent(backward: bool, dtype: DType) -> Option<Kernel> {
    let stem = if backward { "backward" } else { "forward" };
    dtype
        .is_float()
        .then(|| kernel(Family::Xent, "xent", stem, dtype))
}

/// `radix_<step>`, a step of the stable radix sort of a 1-d i64 index (dtype-free): `keys`,
/// `histogram`, `scan`, `scatter`.
pub fn radix(step: &'static str) -> Kernel {
    Kernel {
        family: Family::SortedSum,
        prefix: "radix",
        op: step,
        suffixes: [Suffix::None; 2],
    }
}

/// `index_grad_<dtype>`: index_select's input gradient summed over the sorted index: floats.
pub fn index_grad(dtype: DType) -> Option<Kernel> {
    is_float(dtype).then(|| kernel(Family::SortedSum, "index_grad", "", dtype))
}

/// `scatter_add_runs_<dtype>`: a float scatter-add over the positions sorted by output slot.
pub fn scatter_add_runs(dtype: DType) -> Option<Kernel> {
    is_float(dtype).then(|| kernel(Family::SortedSum, "scatter", "add_runs", dtype))
}

/// Every kernel the Rust side can launch, from the op table's lists and every dtype.
pub fn every_kernel() -> Vec<Kernel> {
    let mut out = Vec::new();
    for dtype in DType::ALL {
        out.extend(unary_ops().iter().filter_map(|op| unary(op, dtype)));
        out.extend(BINARY_OPS.iter().filter_map(|&op| binary(op, dtype)));
        out.extend(relu_backward(dtype));
        out.extend(add_relu(dtype));
        if is_float(dtype) {
            for op in ["", "many"] {
                out.extend(
                    FUSED_STEP_STEMS
                        .iter()
                        .map(|stem| kernel(Family::FusedStep, stem, op, dtype)),
                );
            }
        }
        out.extend(amp_unscale(dtype, false));
        out.extend(amp_unscale(dtype, true));
        out.extend(
            [pow_sum_many(dtype), mul_many(dtype), average_many(dtype)]
                .into_iter()
                .flatten(),
        );
        out.extend(
            ADAFACTOR_STAGES
                .iter()
                .filter_map(|&stage| adafactor_step(stage, dtype)),
        );
        if dtype == DType::F64 {
            out.extend([channel_norm(true), channel_norm(false)]);
        }
        out.extend(running_stats(dtype));
        out.extend(channel_stats(dtype));
        out.extend(CMP_OPS.iter().map(|&op| compare(op, dtype)));
        out.extend(range_check(dtype));
        out.extend(REDUCE_OPS.iter().filter_map(|&op| reduce(op, dtype)));
        out.extend(REDUCE_OPS.iter().filter_map(|&op| reduce_middle(op, dtype)));
        out.extend(
            ARG_REDUCE_OPS
                .iter()
                .filter_map(|&op| arg_reduce(op, dtype)),
        );
        out.extend([false, true].iter().filter_map(|&log| softmax(log, dtype)));
        for out_dtype in [dtype, DType::F32] {
            out.extend(matmul(dtype, out_dtype));
            out.extend(matmul_sm90(dtype, out_dtype));
        }
        out.extend(
            BINARY_OPS
                .iter()
                .filter_map(|&op| inplace_binary(op, dtype)),
        );
        out.extend(unary_ops().iter().filter_map(|op| inplace_unary(op, dtype)));
        out.extend(
            [
                InplaceOp::Axpy(1.0),
                InplaceOp::Addcmul(1.0),
                InplaceOp::Addcdiv(1.0),
                InplaceOp::Lerp(0.5),
                InplaceOp::MulAxpy {
                    scale: 1.0,
                    alpha: 1.0,
                },
                InplaceOp::MulAddcmul {
                    scale: 1.0,
                    value: 1.0,
                },
                InplaceOp::AddcdivSqrt {
                    value: 1.0,
                    scale: 1.0,
                    eps: 0.0,
                },
                InplaceOp::MulMaxAbs {
                    scale: 1.0,
                    eps: 0.0,
                },
            ]
            .into_iter()
            .filter_map(|op| inplace_scaled(op, dtype)),
        );
        out.push(inplace_fill(dtype));
        out.extend([where_cond(dtype), fill(dtype), copy(dtype)]);
        out.extend([gather(dtype), scatter(dtype), unfold2d(dtype)]);
        out.extend(scatter_add(dtype));
        out.extend(fold2d(dtype));
        out.extend(DType::ALL.iter().map(|&to| cast(dtype, to)));
        out.extend(DType::ALL.iter().filter_map(|&to| cast_many(dtype, to)));
        out.extend([false, true].iter().filter_map(|&l| channel(l, dtype)));
        out.extend([false, true].iter().filter_map(|&b| xent(b, dtype)));
        for tf32 in [false, true] {
            out.extend(conv_gemm(dtype, tf32));
            out.extend(conv_gemm_dgrad(dtype, tf32));
            out.extend(conv_wgrad(dtype, tf32));
        }
        for backward in [false, true] {
            out.extend(max_pool2d(backward, dtype));
            out.extend(avg_pool2d(backward, dtype));
        }
        out.extend(index_grad(dtype));
        out.extend(scatter_add_runs(dtype));
    }
    out.extend(["keys", "histogram", "scan", "scatter"].map(radix));
    out.push(scatter_claim());
    out.push(max_pool2d_check());
    out.push(matmul_tf32());
    out.push(philox_uniform());
    out.sort_by_key(Kernel::name);
    out.dedup();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_contract() {
        assert_eq!(
            unary(&UnaryOp::LeakyRelu(0.1), DType::F16).unwrap().name(),
            "unary_leaky_relu_f16"
        );
        assert_eq!(
            binary(BinaryOp::Maximum, DType::BF16).unwrap().name(),
            "binary_maximum_bf16"
        );
        assert_eq!(cast(DType::F32, DType::Bool).name(), "cast_f32_bool");
        assert_eq!(
            cast_many(DType::F32, DType::BF16).map(|k| k.name()),
            Some("cast_many_f32_bf16".to_string())
        );
        assert!(cast_many(DType::F16, DType::F32).is_none());
        assert_eq!(where_cond(DType::I64).name(), "where_b8");
        assert_eq!(softmax(true, DType::F32).unwrap().name(), "log_softmax_f32");
        assert!(unary(&UnaryOp::Exp, DType::I64).is_none());
        assert!(binary(BinaryOp::Pow, DType::I64).is_none());
        assert_eq!(
            binary(BinaryOp::Div, DType::I64).unwrap().name(),
            "binary_div_i64"
        );
        assert_eq!(gather(DType::Bool).name(), "gather_b1");
        assert_eq!(scatter_add(DType::I64).unwrap().name(), "scatter_add_i64");
        assert!(scatter_add(DType::BF16).is_none());
        assert_eq!(
            scatter_add_runs(DType::BF16).unwrap().name(),
            "scatter_add_runs_bf16"
        );
        assert!(scatter_add_runs(DType::U8).is_none());
        assert_eq!(unfold2d(DType::F16).name(), "unfold2d_b2");
        assert_eq!(fold2d(DType::F64).unwrap().name(), "fold2d_f64");
        assert!(fold2d(DType::Bool).is_none());
        assert!(matmul(DType::U8, DType::U8).is_none());
        assert_eq!(matmul(DType::F16, DType::F16).unwrap().name(), "matmul_f16");
        assert_eq!(
            matmul(DType::BF16, DType::F32).unwrap().name(),
            "matmul_bf16_f32"
        );
        assert!(matmul(DType::F32, DType::F16).is_none());
        assert_eq!(
            inplace_binary(BinaryOp::Add, DType::F16).unwrap().name(),
            "inplace_binary_add_f16"
        );
        assert!(inplace_binary(BinaryOp::Div, DType::I64).is_none());
        assert_eq!(
            inplace_unary(&UnaryOp::Clamp { min: 0.0, max: 1.0 }, DType::I64)
                .unwrap()
                .name(),
            "inplace_unary_clamp_i64"
        );
        assert_eq!(
            inplace_scaled(InplaceOp::Addcdiv(0.5), DType::BF16)
                .unwrap()
                .name(),
            "inplace_addcdiv_bf16"
        );
        assert!(inplace_scaled(InplaceOp::Fill(0.0), DType::F32).is_none());
        assert_eq!(inplace_fill(DType::Bool).name(), "inplace_fill_b1");
        assert_eq!(scatter_claim().name(), "scatter_claim");
    }
}
