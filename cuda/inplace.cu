// In-place updates of a strided destination view (Backend::inplace). Geometry operand 0 is the
// destination; operands 1 and 2 are the sources (same shape, stride 0 where broadcast). Dims are
// merged on the host, and a contiguous destination and sources take element_offsets' dense path.
// Each thread reads and writes only its own destination element, so no element is read after
// another thread wrote it (sources never alias the destination: the host copies them first).
// f16/bf16 compute in f32 and round once, like the CPU backend.
//   inplace_binary_<op>_<dtype>(n, g, dst, src)            dst = dst op src
//   inplace_unary_<op>_<dtype>(n, g, dst, p0, p1)          dst = op(dst)
//   inplace_axpy_<dtype>(n, g, dst, src, alpha)            dst += alpha * src
//   inplace_addcmul_<dtype>(n, g, dst, s0, s1, value)      dst += value * s0 * s1
//   inplace_addcdiv_<dtype>(n, g, dst, s0, s1, value)      dst += value * (s0 / s1)
//   inplace_lerp_<dtype>(n, g, dst, src, weight)           dst += weight * (src - dst) (two-sided)
//   inplace_fill_b<bytes>(n, g, dst, pattern)              dst = low <bytes> bytes of pattern
//   inplace_mul_axpy_<dtype>(n, g, dst, src, s0, s1)       dst = s0 * dst + s1 * src
//   inplace_mul_addcmul_<dtype>(n, g, dst, a, b, s0, s1, _) dst = s0 * dst + s1 * a * b
//   inplace_addcdiv_sqrt_<dtype>(n, g, dst, a, b, s0, s1, s2) dst += s0 * a / (sqrt(b) * s1 + s2)
//   inplace_mul_max_abs_<dtype>(n, g, dst, src, s0, s1)    dst = max(s0 * dst, |src| + s1)
#include "binary_ops.cuh"
#include "unary_ops.cuh"

#define FOR_FLOATS(M, OP, EXPR)        \
    M(OP##_f32, float, EXPR)           \
    M(OP##_f64, double, EXPR)          \
    M(OP##_f16, __half, EXPR)          \
    M(OP##_bf16, __nv_bfloat16, EXPR)

// ---- dst = dst op src ----
#define INPLACE_BINARY_KERNEL(NAME, T, EXPR)                                                       \
    extern "C" __global__ void inplace_binary_##NAME(uint32_t n, Geometry g, T *dst, const T *src) { \
        typedef Num<T>::C C;                                                                       \
        GRID_STRIDE(i, n) {                                                                        \
            uint64_t off[2];                                                                       \
            element_offsets<2>(g, i, off);                                                         \
            const C x = Num<T>::up(dst[off[0]]);                                                   \
            const C y = Num<T>::up(src[off[1]]);                                                   \
            dst[off[0]] = Num<T>::down(EXPR);                                                      \
        }                                                                                          \
    }
#define INPLACE_BINARY_FLOAT(OP, EXPR) FOR_FLOATS(INPLACE_BINARY_KERNEL, OP, EXPR)
BINARY_FLOAT_OPS(INPLACE_BINARY_FLOAT)

#define INPLACE_BINARY_I64(OP, EXPR)                                                               \
    extern "C" __global__ void inplace_binary_##OP##_i64(uint32_t n, Geometry g, int64_t *dst,     \
                                                         const int64_t *src) {                     \
        GRID_STRIDE(i, n) {                                                                        \
            uint64_t off[2];                                                                       \
            element_offsets<2>(g, i, off);                                                         \
            const int64_t x = dst[off[0]], y = src[off[1]];                                        \
            const uint64_t ux = (uint64_t)x, uy = (uint64_t)y;                                     \
            (void)ux;                                                                              \
            (void)uy;                                                                              \
            dst[off[0]] = (int64_t)(EXPR);                                                         \
        }                                                                                          \
    }
BINARY_I64_OPS(INPLACE_BINARY_I64)

// ---- dst = op(dst) ----
#define INPLACE_UNARY_KERNEL(NAME, T, EXPR)                                                        \
    extern "C" __global__ void inplace_unary_##NAME(uint32_t n, Geometry g, T *dst, double p0,     \
                                                    double p1) {                                   \
        typedef Num<T>::C C;                                                                       \
        const C a = (C)p0, b = (C)p1;                                                              \
        (void)a;                                                                                   \
        (void)b;                                                                                   \
        GRID_STRIDE(i, n) {                                                                        \
            uint64_t off[1];                                                                       \
            element_offsets<1>(g, i, off);                                                         \
            const C x = Num<T>::up(dst[off[0]]);                                                   \
            dst[off[0]] = Num<T>::down(EXPR);                                                      \
        }                                                                                          \
    }
#define INPLACE_UNARY_FLOAT(OP, EXPR) FOR_FLOATS(INPLACE_UNARY_KERNEL, OP, EXPR)
UNARY_FLOAT_OPS(INPLACE_UNARY_FLOAT)

#define INPLACE_UNARY_I64(OP, EXPR)                                                                \
    extern "C" __global__ void inplace_unary_##OP##_i64(uint32_t n, Geometry g, int64_t *dst,      \
                                                        double p0, double p1) {                    \
        const int64_t a = from_f64<int64_t>(p0), b = from_f64<int64_t>(p1);                       \
        (void)a;                                                                                   \
        (void)b;                                                                                   \
        GRID_STRIDE(i, n) {                                                                        \
            uint64_t off[1];                                                                       \
            element_offsets<1>(g, i, off);                                                         \
            const int64_t x = dst[off[0]];                                                         \
            const uint64_t u = (uint64_t)x;                                                        \
            (void)u;                                                                               \
            dst[off[0]] = (int64_t)(EXPR);                                                         \
        }                                                                                          \
    }
UNARY_I64_OPS(INPLACE_UNARY_I64)

// ---- dst += s * f(src0[, src1]) with a scalar s: x = dst, y = src0, z = src1 ----
#define INPLACE_SCALED1(NAME, T, EXPR)                                                            \
    extern "C" __global__ void inplace_##NAME(uint32_t n, Geometry g, T *dst, const T *src,       \
                                              double scalar) {                                    \
        typedef Num<T>::C C;                                                                      \
        const C s = (C)scalar;                                                                    \
        GRID_STRIDE(i, n) {                                                                       \
            uint64_t off[2];                                                                      \
            element_offsets<2>(g, i, off);                                                        \
            const C x = Num<T>::up(dst[off[0]]);                                                  \
            const C y = Num<T>::up(src[off[1]]);                                                  \
            dst[off[0]] = Num<T>::down(EXPR);                                                     \
        }                                                                                         \
    }
#define INPLACE_SCALED2(NAME, T, EXPR)                                                            \
    extern "C" __global__ void inplace_##NAME(uint32_t n, Geometry g, T *dst, const T *src0,      \
                                              const T *src1, double scalar) {                     \
        typedef Num<T>::C C;                                                                      \
        const C s = (C)scalar;                                                                    \
        GRID_STRIDE(i, n) {                                                                       \
            uint64_t off[3];                                                                      \
            element_offsets<3>(g, i, off);                                                        \
            const C x = Num<T>::up(dst[off[0]]);                                                  \
            const C y = Num<T>::up(src0[off[1]]);                                                 \
            const C z = Num<T>::up(src1[off[2]]);                                                 \
            dst[off[0]] = Num<T>::down(EXPR);                                                     \
        }                                                                                         \
    }
// Products and sums by mul_rn/add_rn, never an FMA: the CPU backend's values bit for bit.
FOR_FLOATS(INPLACE_SCALED1, axpy, add_rn(x, mul_rn(s, y)))
// PyTorch's two-sided lerp (exact at weight 0 and 1), as the CPU backend computes it.
FOR_FLOATS(INPLACE_SCALED1, lerp, (s < (C)0.5 && s > (C)-0.5) ? add_rn(x, mul_rn(s, y - x)) : y - mul_rn(y - x, (C)1 - s))
FOR_FLOATS(INPLACE_SCALED2, addcmul, add_rn(x, mul_rn(mul_rn(s, y), z)))
FOR_FLOATS(INPLACE_SCALED2, addcdiv, add_rn(x, mul_rn(s, y / z)))

// ---- fused optimizer updates with two or three scalars s0, s1[, s2]; each step rounds where
// the CPU backend's does (separate multiplies and adds, no FMA contraction: mul_rn/add_rn), so
// results match it bit for bit.
#define INPLACE_FUSED1(NAME, T, EXPR)                                                             \
    extern "C" __global__ void inplace_##NAME(uint32_t n, Geometry g, T *dst, const T *src,       \
                                              double scalar0, double scalar1) {                   \
        typedef Num<T>::C C;                                                                      \
        const C s0 = (C)scalar0, s1 = (C)scalar1;                                                 \
        GRID_STRIDE(i, n) {                                                                       \
            uint64_t off[2];                                                                      \
            element_offsets<2>(g, i, off);                                                        \
            const C x = Num<T>::up(dst[off[0]]);                                                  \
            const C y = Num<T>::up(src[off[1]]);                                                  \
            dst[off[0]] = Num<T>::down(EXPR);                                                     \
        }                                                                                         \
    }
#define INPLACE_FUSED2(NAME, T, EXPR)                                                             \
    extern "C" __global__ void inplace_##NAME(uint32_t n, Geometry g, T *dst, const T *src0,      \
                                              const T *src1, double scalar0, double scalar1,      \
                                              double scalar2) {                                   \
        typedef Num<T>::C C;                                                                      \
        const C s0 = (C)scalar0, s1 = (C)scalar1, s2 = (C)scalar2;                                \
        (void)s2;                                                                                 \
        GRID_STRIDE(i, n) {                                                                       \
            uint64_t off[3];                                                                      \
            element_offsets<3>(g, i, off);                                                        \
            const C x = Num<T>::up(dst[off[0]]);                                                  \
            const C y = Num<T>::up(src0[off[1]]);                                                 \
            const C z = Num<T>::up(src1[off[2]]);                                                 \
            dst[off[0]] = Num<T>::down(EXPR);                                                     \
        }                                                                                         \
    }
// dst = s0 * dst + s1 * y (SGD's momentum buffer).
FOR_FLOATS(INPLACE_FUSED1, mul_axpy, add_rn(mul_rn(x, s0), mul_rn(s1, y)))
// dst = s0 * dst + s1 * y * z (squared-gradient averages); s2 unused.
FOR_FLOATS(INPLACE_FUSED2, mul_addcmul, add_rn(mul_rn(x, s0), mul_rn(mul_rn(s1, y), z)))
// dst += s0 * y / (sqrt(z) * s1 + s2) (the Adam/RMSprop/Adagrad step).
FOR_FLOATS(INPLACE_FUSED2, addcdiv_sqrt, add_rn(x, mul_rn(s0, y / add_rn(mul_rn(m_sqrt(z), s1), s2))))
// The maximum as `maximum_` takes it: NaN when either side is NaN.
template <typename C> __device__ __forceinline__ C max_nan(C a, C b) { return (is_nan(a) || is_nan(b)) ? a + b : m_max(a, b); }
// dst = max(s0 * dst, |y| + s1) (Adamax's infinity-norm buffer).
FOR_FLOATS(INPLACE_FUSED1, mul_max_abs, max_nan(mul_rn(x, s0), add_rn(m_fabs(y), s1)))

// ---- dst = value (its bits, converted on the host as the CPU backend converts) ----
#define INPLACE_FILL(B, T)                                                                         \
    extern "C" __global__ void inplace_fill_b##B(uint32_t n, Geometry g, T *dst, uint64_t pattern) { \
        const T v = (T)pattern;                                                                    \
        GRID_STRIDE(i, n) {                                                                        \
            uint64_t off[1];                                                                       \
            element_offsets<1>(g, i, off);                                                         \
            dst[off[0]] = v;                                                                       \
        }                                                                                          \
    }
INPLACE_FILL(1, uint8_t)
INPLACE_FILL(2, uint16_t)
INPLACE_FILL(4, uint32_t)
INPLACE_FILL(8, uint64_t)
