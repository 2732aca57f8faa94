// The formulas of the elementwise unary ops as X-macro lists, shared by unary.cu (out of place)
// and inplace.cu (in place): X(op, expression) with the input `x`, the op's parameters `a`, `b`
// and, for floats, the compute type `C` (f32 for f16/bf16); for i64 also `u` = (uint64_t)x.
// Formulas match crates/sinew-tensor/src/cpu/unary.rs (NaN handling included).
#pragma once
#include "common.cuh"

#define ZERO ((C)0)
#define ONE ((C)1)

#define UNARY_FLOAT_OPS(X) \
    X(neg, -x) \
    X(abs, m_fabs(x)) \
    X(exp, m_exp(x)) \
    X(log, m_log(x)) \
    X(log1p, m_log1p(x)) \
    X(sqrt, m_sqrt(x)) \
    X(rsqrt, ONE / m_sqrt(x)) \
    X(sin, m_sin(x)) \
    X(cos, m_cos(x)) \
    X(tanh, m_tanh(x)) \
    X(sigmoid, x >= ZERO ? ONE / (ONE + m_exp(-x)) : m_exp(x) / (ONE + m_exp(x))) \
    X(relu, (x > ZERO || is_nan(x)) ? x : ZERO) \
    X(leaky_relu, x > ZERO ? x : x * a) \
    X(elu, x > ZERO ? x : a * m_expm1(x)) \
    /* Exact GELU, x * Phi(x) with Phi(x) = erfc(-x / sqrt 2) / 2 (no cancellation for x << 0). */ \
    X(gelu, (C)0.5 * x * m_erfc(-x * (C)0.70710678118654752440)) \
    X(erf, m_erf(x)) \
    X(softplus, x * a > b ? x : m_log1p(m_exp(x * a)) / a) \
    X(step, x > ZERO ? ONE : (x < ZERO ? ZERO : (x == ZERO ? a : x))) \
    X(sign, x > ZERO ? ONE : (x < ZERO ? -ONE : x * ZERO)) \
    X(clamp, is_nan(x) ? x : m_min(m_max(x, a), b)) \
    X(powf, m_pow(x, a)) \
    X(recip, ONE / x) \
    X(square, x * x) \
    X(add_scalar, x + a) \
    X(mul_scalar, x * a) \
    X(div_scalar, x / a) \
    X(rsub_scalar, a - x) \
    X(rdiv_scalar, a / x)

// i64: the ops that stay integral. Arithmetic wraps (done in u64); scalars were checked to be
// integers on the host; clamp bounds arrive already rounded inward (ceil(min), floor(max)).
#define UNARY_I64_OPS(X) \
    X(neg, 0ull - u) \
    X(abs, x < 0 ? 0ull - u : u) \
    X(sign, x > 0 ? 1 : (x < 0 ? -1 : 0)) \
    X(relu, x > 0 ? x : 0) \
    X(square, u * u) \
    X(clamp, x < a ? a : (x > b ? b : x)) \
    X(add_scalar, u + (uint64_t)a) \
    X(mul_scalar, u * (uint64_t)a) \
    X(rsub_scalar, (uint64_t)a - u)
