//! The one list of tensor ops. Gradcheck (`cargo xtask gradcheck`), the autograd coverage test,
//! the CUDA kernel-name check and the GPU parity tests all walk it, so an op added here without
//! its backward rule or kernel fails a test instead of going unnoticed.

use crate::ops::{ArgReduceOp, BinaryOp, CmpOp, ReduceOp, UnaryOp};

/// Which family an op belongs to (one file per family in `ops/`, `cpu/`, autograd and CUDA).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OpFamily {
    /// Elementwise, one input.
    Unary,
    /// Elementwise, two broadcast inputs.
    Binary,
    /// Elementwise comparisons (Bool output).
    Compare,
    /// `where` / masked selection.
    Select,
    /// Reductions over dims.
    Reduce,
    /// argmax / argmin.
    ArgReduce,
    /// softmax / log_softmax.
    Softmax,
    /// Matrix products.
    Matmul,
    /// Views and reshapes.
    View,
    /// Joining, splitting and indexing.
    Index,
    /// Convolution and its unfold/fold primitives.
    Conv,
    /// Pooling.
    Pool,
    /// dtype conversion and copies.
    Cast,
}

/// One entry of the op table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpInfo {
    /// The op's name: the `Tensor` method and the kernel name stem.
    pub name: &'static str,
    /// Its family.
    pub family: OpFamily,
    /// Whether autograd must provide a backward rule for it.
    pub differentiable: bool,
}

const fn op(name: &'static str, family: OpFamily, differentiable: bool) -> OpInfo {
    OpInfo {
        name,
        family,
        differentiable,
    }
}

use OpFamily::*;

/// Every tensor op of sinew-tensor.
pub const OP_TABLE: &[OpInfo] = &[
    op("neg", Unary, true),
    op("abs", Unary, true),
    op("exp", Unary, true),
    op("log", Unary, true),
    op("log1p", Unary, true),
    op("sqrt", Unary, true),
    op("rsqrt", Unary, true),
    op("sin", Unary, true),
    op("cos", Unary, true),
    op("tanh", Unary, true),
    op("sigmoid", Unary, true),
    op("relu", Unary, true),
    op("leaky_relu", Unary, true),
    op("elu", Unary, true),
    op("gelu", Unary, true),
    op("erf", Unary, true),
    op("softplus", Unary, true),
    op("step", Unary, true),
    op("sign", Unary, true),
    op("clamp", Unary, true),
    op("powf", Unary, true),
    op("recip", Unary, true),
    op("square", Unary, true),
    op("add_scalar", Unary, true),
    op("mul_scalar", Unary, true),
    op("div_scalar", Unary, true),
    op("rsub_scalar", Unary, true),
    op("rdiv_scalar", Unary, true),
    op("add", Binary, true),
    op("sub", Binary, true),
    op("mul", Binary, true),
    op("div", Binary, true),
    op("pow", Binary, true),
    op("maximum", Binary, true),
    op("minimum", Binary, true),
    op("add_relu", Binary, true),
    op("eq", Compare, false),
    op("ne", Compare, false),
    op("lt", Compare, false),
    op("le", Compare, false),
    op("gt", Compare, false),
    op("ge", Compare, false),
    op("where_cond", Select, true),
    op("masked_fill", Select, true),
    op("sum", Reduce, true),
    op("mean", Reduce, true),
    op("prod", Reduce, true),
    op("max", Reduce, true),
    op("min", Reduce, true),
    op("var", Reduce, true),
    op("std", Reduce, true),
    op("logsumexp", Reduce, true),
    op("norm", Reduce, true),
    op("argmax", ArgReduce, false),
    op("argmin", ArgReduce, false),
    op("softmax", Softmax, true),
    op("log_softmax", Softmax, true),
    op("matmul", Matmul, true),
    op("matmul_with", Matmul, true),
    op("reshape", View, true),
    op("permute", View, true),
    op("transpose", View, true),
    op("narrow", View, true),
    op("slice", View, true),
    op("squeeze", View, true),
    op("unsqueeze", View, true),
    op("broadcast_to", View, true),
    op("flatten", View, true),
    op("contiguous", View, true),
    op("cat", Index, true),
    op("stack", Index, true),
    op("split", Index, true),
    op("chunk", Index, true),
    op("index_select", Index, true),
    op("gather", Index, true),
    op("scatter", Index, true),
    op("scatter_add", Index, true),
    op("one_hot", Index, false),
    op("pad", Index, true),
    op("unfold2d", Conv, true),
    op("fold2d", Conv, true),
    op("conv1d", Conv, true),
    op("conv2d", Conv, true),
    op("max_pool1d", Pool, true),
    op("max_pool2d", Pool, true),
    op("avg_pool1d", Pool, true),
    op("avg_pool2d", Pool, true),
    op("to_dtype", Cast, true),
];

/// Looks an op up by name.
pub fn find_op(name: &str) -> Option<&'static OpInfo> {
    OP_TABLE.iter().find(|o| o.name == name)
}

/// One instance of every [`UnaryOp`] variant, with typical parameters (used by GPU parity tests).
pub fn unary_ops() -> Vec<UnaryOp> {
    vec![
        UnaryOp::Neg,
        UnaryOp::Abs,
        UnaryOp::Exp,
        UnaryOp::Log,
        UnaryOp::Log1p,
        UnaryOp::Sqrt,
        UnaryOp::Rsqrt,
        UnaryOp::Sin,
        UnaryOp::Cos,
        UnaryOp::Tanh,
        UnaryOp::Sigmoid,
        UnaryOp::Relu,
        UnaryOp::LeakyRelu(0.01),
        UnaryOp::Elu(1.0),
        UnaryOp::Gelu,
        UnaryOp::Erf,
        UnaryOp::Softplus {
            beta: 1.0,
            threshold: 20.0,
        },
        UnaryOp::Step { at_zero: 0.5 },
        UnaryOp::Sign,
        UnaryOp::Clamp {
            min: -0.5,
            max: 0.5,
        },
        UnaryOp::Powf(2.5),
        UnaryOp::Recip,
        UnaryOp::Square,
        UnaryOp::AddScalar(1.5),
        UnaryOp::MulScalar(-2.0),
        UnaryOp::DivScalar(4.0),
        UnaryOp::RSubScalar(3.0),
        UnaryOp::RDivScalar(2.0),
    ]
}

/// Every [`BinaryOp`].
pub const BINARY_OPS: [BinaryOp; 7] = [
    BinaryOp::Add,
    BinaryOp::Sub,
    BinaryOp::Mul,
    BinaryOp::Div,
    BinaryOp::Pow,
    BinaryOp::Maximum,
    BinaryOp::Minimum,
];

/// Every [`CmpOp`].
pub const CMP_OPS: [CmpOp; 6] = [
    CmpOp::Eq,
    CmpOp::Ne,
    CmpOp::Lt,
    CmpOp::Le,
    CmpOp::Gt,
    CmpOp::Ge,
];

/// Every [`ReduceOp`].
pub const REDUCE_OPS: [ReduceOp; 4] = [ReduceOp::Sum, ReduceOp::Prod, ReduceOp::Max, ReduceOp::Min];

/// Every [`ArgReduceOp`].
pub const ARG_REDUCE_OPS: [ArgReduceOp; 2] = [ArgReduceOp::ArgMax, ArgReduceOp::ArgMin];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kernel_op_is_in_the_table() {
        let names = unary_ops()
            .into_iter()
            .map(|o| o.name())
            .chain(BINARY_OPS.iter().map(|o| o.name()))
            .chain(CMP_OPS.iter().map(|o| o.name()))
            .chain(REDUCE_OPS.iter().map(|o| o.name()))
            .chain(ARG_REDUCE_OPS.iter().map(|o| o.name()));
        for name in names {
            assert!(find_op(name).is_some(), "{name} is missing from OP_TABLE");
        }
    }

    #[test]
    fn names_are_unique() {
        let mut names: Vec<_> = OP_TABLE.iter().map(|o| o.name).collect();
        names.sort_unstable();
        let n = names.len();
        names.dedup();
        assert_eq!(names.len(), n);
    }
}
