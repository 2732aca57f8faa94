//! Public tensor operations, one family per file, and the op descriptors backends receive.
//!
//! Each family file (`unary.rs`, `binary.rs`, ...) holds the `Tensor` methods: argument checks,
//! shape logic and the call into the device's [`Backend`](crate::Backend). The CPU kernels live in
//! the same-named files under `cpu/`.

pub mod binary;
pub mod channel;
pub mod channel_norm;
pub mod conv;
mod conv_wide;
pub mod creation;
pub mod custom;
pub mod fused_step;
pub mod index;
pub mod inplace;
pub mod matmul;
pub mod matmul_with;
pub mod pool;
mod range_check;
pub mod reduce;
pub mod running_stats;
pub mod softmax_xent;
pub mod statistics;
pub mod unary;
pub mod view;

pub use conv::{Conv1dConfig, Conv2dConfig};
pub(crate) use fused_step::{groups_by, with_dense_runs};
pub use pool::Pool2dConfig;

/// Elementwise unary operations. Parameters are carried as `f64` and converted per dtype.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum UnaryOp {
    /// `-x`
    Neg,
    /// `|x|`
    Abs,
    /// `e^x`
    Exp,
    /// natural logarithm
    Log,
    /// `ln(1 + x)`, accurate near 0
    Log1p,
    /// square root
    Sqrt,
    /// `1 / sqrt(x)`
    Rsqrt,
    /// sine
    Sin,
    /// cosine
    Cos,
    /// hyperbolic tangent
    Tanh,
    /// `1 / (1 + e^-x)`
    Sigmoid,
    /// `max(x, 0)`
    Relu,
    /// `x` if positive, else `slope * x`
    LeakyRelu(f64),
    /// `x` if positive, else `alpha * (e^x - 1)`
    Elu(f64),
    /// exact GELU: `x * Φ(x)` (PyTorch `approximate='none'`)
    Gelu,
    /// the error function (used by GELU's derivative)
    Erf,
    /// `ln(1 + e^(beta x)) / beta`, linear above `threshold` (PyTorch defaults 1, 20)
    Softplus {
        /// Sharpness.
        beta: f64,
        /// Above `beta * x > threshold` the result is `x`.
        threshold: f64,
    },
    /// Heaviside step: 1 where `x > 0`, 0 where `x < 0`, `at_zero` at 0.
    Step {
        /// Value at exactly zero.
        at_zero: f64,
    },
    /// -1, 0 or 1 (NaN stays NaN)
    Sign,
    /// `min(max(x, min), max)`; use infinities for one-sided clamps
    Clamp {
        /// Lower bound.
        min: f64,
        /// Upper bound.
        max: f64,
    },
    /// `x^p`
    Powf(f64),
    /// `1 / x`
    Recip,
    /// `x * x`
    Square,
    /// `x + s`
    AddScalar(f64),
    /// `x * s`
    MulScalar(f64),
    /// `x / s`
    DivScalar(f64),
    /// `s - x`
    RSubScalar(f64),
    /// `s / x`
    RDivScalar(f64),
}

impl UnaryOp {
    /// Kernel name stem (`exp`, `leaky_relu`, ...): the naming contract shared with GPU kernels.
    pub fn name(&self) -> &'static str {
        match self {
            UnaryOp::Neg => "neg",
            UnaryOp::Abs => "abs",
            UnaryOp::Exp => "exp",
            UnaryOp::Log => "log",
            UnaryOp::Log1p => "log1p",
            UnaryOp::Sqrt => "sqrt",
            UnaryOp::Rsqrt => "rsqrt",
            UnaryOp::Sin => "sin",
            UnaryOp::Cos => "cos",
            UnaryOp::Tanh => "tanh",
            UnaryOp::Sigmoid => "sigmoid",
            UnaryOp::Relu => "relu",
            UnaryOp::LeakyRelu(_) => "leaky_relu",
            UnaryOp::Elu(_) => "elu",
            UnaryOp::Gelu => "gelu",
            UnaryOp::Erf => "erf",
            UnaryOp::Softplus { .. } => "softplus",
            UnaryOp::Step { .. } => "step",
            UnaryOp::Sign => "sign",
            UnaryOp::Clamp { .. } => "clamp",
            UnaryOp::Powf(_) => "powf",
            UnaryOp::Recip => "recip",
            UnaryOp::Square => "square",
            UnaryOp::AddScalar(_) => "add_scalar",
            UnaryOp::MulScalar(_) => "mul_scalar",
            UnaryOp::DivScalar(_) => "div_scalar",
            UnaryOp::RSubScalar(_) => "rsub_scalar",
            UnaryOp::RDivScalar(_) => "rdiv_scalar",
        }
    }

    /// The op's two parameters (unused ones are 0), in the order GPU kernels take them.
    pub fn params(&self) -> [f64; 2] {
        match *self {
            UnaryOp::LeakyRelu(a)
            | UnaryOp::Elu(a)
            | UnaryOp::Powf(a)
            | UnaryOp::AddScalar(a)
            | UnaryOp::MulScalar(a)
            | UnaryOp::DivScalar(a)
            | UnaryOp::RSubScalar(a)
            | UnaryOp::RDivScalar(a) => [a, 0.0],
            UnaryOp::Softplus { beta, threshold } => [beta, threshold],
            UnaryOp::Step { at_zero } => [at_zero, 0.0],
            UnaryOp::Clamp { min, max } => [min, max],
            _ => [0.0, 0.0],
        }
    }

    /// True when the op is defined on integer dtypes (arithmetic that stays integral).
    pub fn supports_integers(&self) -> bool {
        matches!(
            self,
            UnaryOp::Neg
                | UnaryOp::Abs
                | UnaryOp::Sign
                | UnaryOp::Relu
                | UnaryOp::Square
                | UnaryOp::Clamp { .. }
                | UnaryOp::AddScalar(_)
                | UnaryOp::MulScalar(_)
                | UnaryOp::RSubScalar(_)
        )
    }
}

/// Elementwise binary arithmetic with broadcasting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BinaryOp {
    /// `a + b`
    Add,
    /// `a - b`
    Sub,
    /// `a * b`
    Mul,
    /// `a / b` (true division; integer division truncates)
    Div,
    /// `a ^ b` (floats only)
    Pow,
    /// larger of the two (NaN propagates)
    Maximum,
    /// smaller of the two (NaN propagates)
    Minimum,
}

impl BinaryOp {
    /// Kernel name stem.
    pub fn name(&self) -> &'static str {
        match self {
            BinaryOp::Add => "add",
            BinaryOp::Sub => "sub",
            BinaryOp::Mul => "mul",
            BinaryOp::Div => "div",
            BinaryOp::Pow => "pow",
            BinaryOp::Maximum => "maximum",
            BinaryOp::Minimum => "minimum",
        }
    }
}

/// Elementwise comparisons producing `Bool` tensors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CmpOp {
    /// `a == b`
    Eq,
    /// `a != b`
    Ne,
    /// `a < b`
    Lt,
    /// `a <= b`
    Le,
    /// `a > b`
    Gt,
    /// `a >= b`
    Ge,
}

impl CmpOp {
    /// Kernel name stem.
    pub fn name(&self) -> &'static str {
        match self {
            CmpOp::Eq => "eq",
            CmpOp::Ne => "ne",
            CmpOp::Lt => "lt",
            CmpOp::Le => "le",
            CmpOp::Gt => "gt",
            CmpOp::Ge => "ge",
        }
    }
}

/// Reductions over one or more dimensions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ReduceOp {
    /// Sum (0 for an empty reduction).
    Sum,
    /// Product (1 for an empty reduction).
    Prod,
    /// Largest value (NaN propagates).
    Max,
    /// Smallest value (NaN propagates).
    Min,
}

impl ReduceOp {
    /// Kernel name stem.
    pub fn name(&self) -> &'static str {
        match self {
            ReduceOp::Sum => "sum",
            ReduceOp::Prod => "prod",
            ReduceOp::Max => "max",
            ReduceOp::Min => "min",
        }
    }
}

/// Index-of-extreme reductions along one dimension.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ArgReduceOp {
    /// Index of the largest value (first on ties).
    ArgMax,
    /// Index of the smallest value (first on ties).
    ArgMin,
}

impl ArgReduceOp {
    /// Kernel name stem.
    pub fn name(&self) -> &'static str {
        match self {
            ArgReduceOp::ArgMax => "argmax",
            ArgReduceOp::ArgMin => "argmin",
        }
    }
}
