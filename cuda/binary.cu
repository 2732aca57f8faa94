// Elementwise binary arithmetic on broadcast views: binary_<op>_<dtype>(n, geometry, lhs, rhs, out),
// Geometry operands: 0 = lhs, 1 = rhs (stride 0 where broadcast); the output is contiguous.
// f16/bf16 compute in f32 and round once, like the CPU backend; and ReLU fused with its neighbours
// (at the end): its backward, and a residual connection's relu(a + b).
#include "binary_ops.cuh"

// ENTRY(n, g, lhs, rhs, out): out = EXPR of x = lhs and y = rhs in the compute type C.
#define ELEMENTWISE2(ENTRY, T, EXPR)                                                               \
    extern "C" __global__ void ENTRY(uint32_t n, Geometry g, const T *lhs, const T *rhs, T *out) { \
        typedef Num<T>::C C;                                                                       \
        GRID_STRIDE(i, n) {                                                                        \
            uint64_t off[2];                                                                       \
            element_offsets<2>(g, i, off);                                                         \
            const C x = Num<T>::up(lhs[off[0]]);                                                   \
            const C y = Num<T>::up(rhs[off[1]]);                                                   \
            out[i] = Num<T>::down(EXPR);                                                           \
        }                                                                                          \
    }

// STEM_<dtype> for the four float dtypes.
#define FLOAT_KERNELS(STEM, EXPR)                        \
    ELEMENTWISE2(STEM##_f32, float, EXPR)                \
    ELEMENTWISE2(STEM##_f64, double, EXPR)               \
    ELEMENTWISE2(STEM##_f16, __half, EXPR)               \
    ELEMENTWISE2(STEM##_bf16, __nv_bfloat16, EXPR)

#define BINARY_FLOAT(OP, EXPR) FLOAT_KERNELS(binary_##OP, EXPR)

BINARY_FLOAT_OPS(BINARY_FLOAT)

// i64 (wrapping, computed in u64).
#define BINARY_I64(OP, EXPR)                                                                        \
    extern "C" __global__ void binary_##OP##_i64(uint32_t n, Geometry g, const int64_t *lhs,        \
                                                 const int64_t *rhs, int64_t *out) {                \
        GRID_STRIDE(i, n) {                                                                         \
            uint64_t off[2];                                                                        \
            element_offsets<2>(g, i, off);                                                          \
            const int64_t x = lhs[off[0]], y = rhs[off[1]];                                         \
            const uint64_t ux = (uint64_t)x, uy = (uint64_t)y;                                      \
            (void)ux;                                                                               \
            (void)uy;                                                                               \
            out[i] = (int64_t)(EXPR);                                                               \
        }                                                                                           \
    }

BINARY_I64_OPS(BINARY_I64)

// i64 division truncates like Rust (i64::MIN / -1 wraps to i64::MIN). A zero divisor records the
// lowest such position in the failure slot `bad` (common.cuh's record_bad), which turns into the
// CPU backend's "integer division by zero" error.
extern "C" __global__ void binary_div_i64(uint32_t n, Geometry g, const int64_t *lhs, const int64_t *rhs,
                                          int64_t *out, unsigned long long *bad) {
    GRID_STRIDE(i, n) {
        uint64_t off[2];
        element_offsets<2>(g, i, off);
        const int64_t x = lhs[off[0]], y = rhs[off[1]];
        if (y == 0) {
            record_bad(bad, i, 0);
            out[i] = 0;
        } else {
            out[i] = (x == INT64_MIN && y == -1) ? INT64_MIN : x / y;
        }
    }
}

// ReLU's input gradient from its output: relu_backward_<dtype>(n, geometry, grad, output, out) =
// output <= 0 ? 0 : grad, a select (PyTorch's threshold_backward): the values of the CPU
// backend's relu_backward and of the composed comparison and where (an inf or NaN gradient where
// the output is not positive gives 0; a NaN output passes the gradient).
FLOAT_KERNELS(relu_backward, y <= C(0) ? C(0) : x)

// A residual connection's sum and ReLU: add_relu_<dtype>(n, geometry, lhs, rhs, out) =
// relu(lhs + rhs), the sum in the compute type and ReLU as the unary kernel has it (NaN kept,
// -0 to +0), rounded once: the values of binary_add then unary relu (rounding commutes with ReLU).
template <typename C> __device__ __forceinline__ C relu_of_sum(C x, C y) {
    const C s = x + y;
    return (s > C(0) || is_nan(s)) ? s : C(0);
}
FLOAT_KERNELS(add_relu, relu_of_sum<C>(x, y))
