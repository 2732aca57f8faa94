// Elementwise unary ops: unary_<op>_<dtype>(n, geometry, in, out, p0, p1).
// Operand 0 of the geometry is the input view; the output is contiguous. f16/bf16 compute in f32.
// Formulas match crates/sinew-tensor/src/cpu/unary.rs (NaN handling included).
#include "common.cuh"

#define UNARY_KERNEL(NAME, T, EXPR)                                                                 \
    extern "C" __global__ void unary_##NAME(uint32_t n, Geometry g, const T *in, T *out, double p0, \
                                            double p1) {                                            \
        typedef Num<T>::C C;                                                                        \
        const C a = (C)p0, b = (C)p1;                                                               \
        (void)a;                                                                                    \
        (void)b;                                                                                    \
        GRID_STRIDE(i, n) {                                                                         \
            uint64_t off[1];                                                                        \
            element_offsets<1>(g, i, off);                                                          \
            const C x = Num<T>::up(in[off[0]]);                                                     \
            out[i] = Num<T>::down(EXPR);                                                            \
        }                                                                                           \
    }

#define ZERO ((C)0)
#define ONE ((C)1)
#define UNARY_FLOAT(OP, EXPR)                 \
    UNARY_KERNEL(OP##_f32, float, EXPR)       \
    UNARY_KERNEL(OP##_f64, double, EXPR)      \
    UNARY_KERNEL(OP##_f16, __half, EXPR)      \
    UNARY_KERNEL(OP##_bf16, __nv_bfloat16, EXPR)

UNARY_FLOAT(neg, -x)
UNARY_FLOAT(abs, m_fabs(x))
UNARY_FLOAT(exp, m_exp(x))
UNARY_FLOAT(log, m_log(x))
UNARY_FLOAT(log1p, m_log1p(x))
UNARY_FLOAT(sqrt, m_sqrt(x))
UNARY_FLOAT(rsqrt, ONE / m_sqrt(x))
UNARY_FLOAT(sin, m_sin(x))
UNARY_FLOAT(cos, m_cos(x))
UNARY_FLOAT(tanh, m_tanh(x))
UNARY_FLOAT(sigmoid, x >= ZERO ? ONE / (ONE + m_exp(-x)) : m_exp(x) / (ONE + m_exp(x)))
UNARY_FLOAT(relu, (x > ZERO || is_nan(x)) ? x : ZERO)
UNARY_FLOAT(leaky_relu, x > ZERO ? x : x * a)
UNARY_FLOAT(elu, x > ZERO ? x : a * m_expm1(x))
// Exact GELU, x * Phi(x) with Phi(x) = erfc(-x / sqrt 2) / 2 (no cancellation for x << 0).
UNARY_FLOAT(gelu, (C)0.5 * x * m_erfc(-x * (C)0.70710678118654752440))
UNARY_FLOAT(erf, m_erf(x))
UNARY_FLOAT(softplus, x * a > b ? x : m_log1p(m_exp(x * a)) / a)
UNARY_FLOAT(step, x > ZERO ? ONE : (x < ZERO ? ZERO : (x == ZERO ? a : x)))
UNARY_FLOAT(sign, x > ZERO ? ONE : (x < ZERO ? -ONE : x * ZERO))
UNARY_FLOAT(clamp, is_nan(x) ? x : m_min(m_max(x, a), b))
UNARY_FLOAT(powf, m_pow(x, a))
UNARY_FLOAT(recip, ONE / x)
UNARY_FLOAT(square, x * x)
UNARY_FLOAT(add_scalar, x + a)
UNARY_FLOAT(mul_scalar, x * a)
UNARY_FLOAT(div_scalar, x / a)
UNARY_FLOAT(rsub_scalar, a - x)
UNARY_FLOAT(rdiv_scalar, a / x)

// i64: the ops that stay integral. Arithmetic wraps (done in u64); scalars were checked to be
// integers on the host; clamp bounds arrive already rounded inward (ceil(min), floor(max)).
#define UNARY_I64(OP, EXPR)                                                                          \
    extern "C" __global__ void unary_##OP##_i64(uint32_t n, Geometry g, const int64_t *in,           \
                                                int64_t *out, double p0, double p1) {                \
        const int64_t a = from_f64<int64_t>(p0), b = from_f64<int64_t>(p1);                         \
        (void)a;                                                                                     \
        (void)b;                                                                                     \
        GRID_STRIDE(i, n) {                                                                          \
            uint64_t off[1];                                                                         \
            element_offsets<1>(g, i, off);                                                           \
            const int64_t x = in[off[0]];                                                            \
            const uint64_t u = (uint64_t)x;                                                          \
            (void)u;                                                                                 \
            out[i] = (int64_t)(EXPR);                                                                \
        }                                                                                            \
    }

UNARY_I64(neg, 0ull - u)
UNARY_I64(abs, x < 0 ? 0ull - u : u)
UNARY_I64(sign, x > 0 ? 1 : (x < 0 ? -1 : 0))
UNARY_I64(relu, x > 0 ? x : 0)
UNARY_I64(square, u * u)
UNARY_I64(clamp, x < a ? a : (x > b ? b : x))
UNARY_I64(add_scalar, u + (uint64_t)a)
UNARY_I64(mul_scalar, u * (uint64_t)a)
UNARY_I64(rsub_scalar, (uint64_t)a - u)
