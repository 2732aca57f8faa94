// Elementwise unary ops: unary_<op>_<dtype>(n, geometry, in, out, p0, p1).
// Operand 0 of the geometry is the input view; the output is contiguous. f16/bf16 compute in f32.
// The formulas are in unary_ops.cuh (shared with inplace.cu).
#include "unary_ops.cuh"

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

#define UNARY_FLOAT(OP, EXPR)                 \
    UNARY_KERNEL(OP##_f32, float, EXPR)       \
    UNARY_KERNEL(OP##_f64, double, EXPR)      \
    UNARY_KERNEL(OP##_f16, __half, EXPR)      \
    UNARY_KERNEL(OP##_bf16, __nv_bfloat16, EXPR)

UNARY_FLOAT_OPS(UNARY_FLOAT)

// i64 (see unary_ops.cuh).
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

UNARY_I64_OPS(UNARY_I64)
