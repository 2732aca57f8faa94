//! The naming contract between the Rust launches and the CUDA kernels.
//!
//! Every kernel is `extern "C"` and named `<stem>_<dtype>`, where the stem is the op's name from
//! sinew-tensor's op table (`UnaryOp::name()`, ...) behind a family prefix: `unary_exp_f32`,
//! `binary_add_f16`, `cmp_lt_bf16`, `reduce_sum_f64`, `argreduce_argmax_f32`, `softmax_f32`,
//! `log_softmax_f16`, `matmul_bf16`. Dtype-agnostic data movement is named by element width:
//! `copy_b4`, `fill_b2`, `where_b8`, `gather_b8`, `scatter_b2`, `unfold2d_b4`; casts by both
//! dtypes: `cast_f32_f16`; ops that do arithmetic by dtype: `scatter_add_f16`, `fold2d_f32`.
//!
//! The functions here are the only place kernel names are built, and they also decide which
//! dtypes each op supports on the GPU (`None` = unsupported). [`every_kernel`] walks the op table
//! so a test can check that each name exists in the embedded PTX.

use sinew_tensor::op_table::{ARG_REDUCE_OPS, BINARY_OPS, CMP_OPS, REDUCE_OPS, unary_ops};
use sinew_tensor::{ArgReduceOp, BinaryOp, CmpOp, DType, ReduceOp, UnaryOp};

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
    /// `cuda/index.cu`: gather, index_select and scatter.
    Index,
    /// `cuda/conv.cu`: im2col and col2im.
    Conv,
}

impl Family {
    /// Every family, in module-table order.
    pub const ALL: [Family; 9] = [
        Family::Unary,
        Family::Binary,
        Family::Compare,
        Family::Cast,
        Family::Reduce,
        Family::Softmax,
        Family::Gemm,
        Family::Index,
        Family::Conv,
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
            Family::Index => "index",
            Family::Conv => "conv",
        }
    }

    /// Position in [`Family::ALL`].
    pub fn index(self) -> usize {
        self as usize
    }
}

/// One kernel: the module it lives in and its entry name.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Kernel {
    /// The module (PTX file) holding it.
    pub family: Family,
    /// The `extern "C"` entry name.
    pub name: String,
}

fn kernel(family: Family, name: String) -> Kernel {
    Kernel { family, name }
}

fn is_float(dtype: DType) -> bool {
    matches!(dtype, DType::F32 | DType::F64 | DType::F16 | DType::BF16)
}

/// `unary_<op>_<dtype>`: floats for every op, i64 for the integral ones.
pub fn unary(op: &UnaryOp, dtype: DType) -> Option<Kernel> {
    let ok = is_float(dtype) || (dtype == DType::I64 && op.supports_integers());
    ok.then(|| kernel(Family::Unary, format!("unary_{}_{dtype}", op.name())))
}

/// `binary_<op>_<dtype>`: floats for every op; i64 without `pow` (`binary_div_i64` takes an
/// extra error slot for zero divisors).
pub fn binary(op: BinaryOp, dtype: DType) -> Option<Kernel> {
    let ok = is_float(dtype) || (dtype == DType::I64 && !matches!(op, BinaryOp::Pow));
    ok.then(|| kernel(Family::Binary, format!("binary_{}_{dtype}", op.name())))
}

/// `cmp_<op>_<dtype>`, every dtype.
pub fn compare(op: CmpOp, dtype: DType) -> Kernel {
    kernel(Family::Compare, format!("cmp_{}_{dtype}", op.name()))
}

/// `where_b<bytes>`, by element width.
pub fn where_cond(dtype: DType) -> Kernel {
    kernel(Family::Compare, format!("where_b{}", dtype.size_in_bytes()))
}

/// `cast_<from>_<to>`, every pair.
pub fn cast(from: DType, to: DType) -> Kernel {
    kernel(Family::Cast, format!("cast_{from}_{to}"))
}

/// `fill_b<bytes>`, by element width.
pub fn fill(dtype: DType) -> Kernel {
    kernel(Family::Cast, format!("fill_b{}", dtype.size_in_bytes()))
}

/// `copy_b<bytes>`, by element width.
pub fn copy(dtype: DType) -> Kernel {
    kernel(Family::Cast, format!("copy_b{}", dtype.size_in_bytes()))
}

/// `reduce_<op>_<dtype>`: floats and i64.
pub fn reduce(op: ReduceOp, dtype: DType) -> Option<Kernel> {
    (is_float(dtype) || dtype == DType::I64)
        .then(|| kernel(Family::Reduce, format!("reduce_{}_{dtype}", op.name())))
}

/// `argreduce_<op>_<dtype>`: floats, i64 and u8.
pub fn arg_reduce(op: ArgReduceOp, dtype: DType) -> Option<Kernel> {
    (is_float(dtype) || matches!(dtype, DType::I64 | DType::U8))
        .then(|| kernel(Family::Reduce, format!("argreduce_{}_{dtype}", op.name())))
}

/// `softmax_<dtype>` / `log_softmax_<dtype>`: floats.
pub fn softmax(log: bool, dtype: DType) -> Option<Kernel> {
    let stem = if log { "log_softmax" } else { "softmax" };
    is_float(dtype).then(|| kernel(Family::Softmax, format!("{stem}_{dtype}")))
}

/// `matmul_<dtype>`: SIMT tiles for f32/f64, tensor cores for f16/bf16.
pub fn matmul(dtype: DType) -> Option<Kernel> {
    is_float(dtype).then(|| kernel(Family::Gemm, format!("matmul_{dtype}")))
}

/// `matmul_fast_<dtype>`: the fast path for tile-multiple shapes with 16-byte loadable operands;
/// f32 (SIMT, double-buffered) and f16/bf16 (pipelined `mma.sync` tensor cores).
pub fn matmul_fast(dtype: DType) -> Option<Kernel> {
    matches!(dtype, DType::F32 | DType::F16 | DType::BF16)
        .then(|| kernel(Family::Gemm, format!("matmul_fast_{dtype}")))
}

/// `gather_b<bytes>`, by element width (also serves index_select), every dtype.
pub fn gather(dtype: DType) -> Kernel {
    kernel(Family::Index, format!("gather_b{}", dtype.size_in_bytes()))
}

/// `scatter_b<bytes>`, by element width: scatter with replacement, every dtype.
pub fn scatter(dtype: DType) -> Kernel {
    kernel(Family::Index, format!("scatter_b{}", dtype.size_in_bytes()))
}

/// `scatter_claim`: picks the last writer of each slot, so scatter-replace is deterministic.
pub fn scatter_claim() -> Kernel {
    kernel(Family::Index, "scatter_claim".to_string())
}

/// `scatter_add_<dtype>` (atomic adds): floats and i64.
pub fn scatter_add(dtype: DType) -> Option<Kernel> {
    (is_float(dtype) || dtype == DType::I64)
        .then(|| kernel(Family::Index, format!("scatter_add_{dtype}")))
}

/// `unfold2d_b<bytes>` (im2col), by element width, every dtype.
pub fn unfold2d(dtype: DType) -> Kernel {
    kernel(Family::Conv, format!("unfold2d_b{}", dtype.size_in_bytes()))
}

/// `fold2d_<dtype>` (col2im, summing in f64): floats and i64, like the CPU backend.
pub fn fold2d(dtype: DType) -> Option<Kernel> {
    (is_float(dtype) || dtype == DType::I64)
        .then(|| kernel(Family::Conv, format!("fold2d_{dtype}")))
}

/// Every kernel the Rust side can launch, from the op table's lists and every dtype.
pub fn every_kernel() -> Vec<Kernel> {
    let mut out = Vec::new();
    for dtype in DType::ALL {
        out.extend(unary_ops().iter().filter_map(|op| unary(op, dtype)));
        out.extend(BINARY_OPS.iter().filter_map(|&op| binary(op, dtype)));
        out.extend(CMP_OPS.iter().map(|&op| compare(op, dtype)));
        out.extend(REDUCE_OPS.iter().filter_map(|&op| reduce(op, dtype)));
        out.extend(
            ARG_REDUCE_OPS
                .iter()
                .filter_map(|&op| arg_reduce(op, dtype)),
        );
        out.extend([false, true].iter().filter_map(|&log| softmax(log, dtype)));
        out.extend(matmul(dtype));
        out.extend(matmul_fast(dtype));
        out.extend([where_cond(dtype), fill(dtype), copy(dtype)]);
        out.extend([gather(dtype), scatter(dtype), unfold2d(dtype)]);
        out.extend(scatter_add(dtype));
        out.extend(fold2d(dtype));
        out.extend(DType::ALL.iter().map(|&to| cast(dtype, to)));
    }
    out.push(scatter_claim());
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out.dedup();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_contract() {
        assert_eq!(
            unary(&UnaryOp::LeakyRelu(0.1), DType::F16).unwrap().name,
            "unary_leaky_relu_f16"
        );
        assert_eq!(
            binary(BinaryOp::Maximum, DType::BF16).unwrap().name,
            "binary_maximum_bf16"
        );
        assert_eq!(cast(DType::F32, DType::Bool).name, "cast_f32_bool");
        assert_eq!(where_cond(DType::I64).name, "where_b8");
        assert_eq!(softmax(true, DType::F32).unwrap().name, "log_softmax_f32");
        assert!(unary(&UnaryOp::Exp, DType::I64).is_none());
        assert!(binary(BinaryOp::Pow, DType::I64).is_none());
        assert_eq!(
            binary(BinaryOp::Div, DType::I64).unwrap().name,
            "binary_div_i64"
        );
        assert_eq!(gather(DType::Bool).name, "gather_b1");
        assert_eq!(scatter_add(DType::BF16).unwrap().name, "scatter_add_bf16");
        assert!(scatter_add(DType::U8).is_none());
        assert_eq!(unfold2d(DType::F16).name, "unfold2d_b2");
        assert_eq!(fold2d(DType::F64).unwrap().name, "fold2d_f64");
        assert!(fold2d(DType::Bool).is_none());
        assert!(matmul(DType::U8).is_none());
    }
}
