// Comparisons into Bool (one byte, 0 or 1) and `where`.
// cmp_<op>_<dtype>(n, geometry, lhs, rhs, out): operands 0 = lhs, 1 = rhs.
// where_b<bytes>(n, geometry, cond, on_true, on_false, out): operands 0 = cond, 1 = on_true,
// 2 = on_false; by element width, so one kernel serves every dtype of that size.
// range_check_<dtype>(n, geometry, x, lo, hi, bad): records in the failure slot `bad` (as the
// index checks do, common.cuh's record_bad) the first position whose value is outside [lo, hi]
// or NaN, with the value's f64 bits as the value recorded; writes nothing else (the deferred
// check of Backend::defer_range_check).
#include "common.cuh"

#define CMP_KERNEL(OP, SUFFIX, T, EXPR)                                                            \
    extern "C" __global__ void cmp_##OP##_##SUFFIX(uint32_t n, Geometry g, const T *lhs,           \
                                                   const T *rhs, uint8_t *out) {                   \
        typedef Num<T>::C C;                                                                       \
        GRID_STRIDE(i, n) {                                                                        \
            uint64_t off[2];                                                                       \
            element_offsets<2>(g, i, off);                                                         \
            const C x = Num<T>::up(lhs[off[0]]);                                                   \
            const C y = Num<T>::up(rhs[off[1]]);                                                   \
            out[i] = (EXPR) ? 1 : 0;                                                               \
        }                                                                                          \
    }

#define CMP_ALL(OP, EXPR)                          \
    CMP_KERNEL(OP, f32, float, EXPR)               \
    CMP_KERNEL(OP, f64, double, EXPR)              \
    CMP_KERNEL(OP, f16, __half, EXPR)              \
    CMP_KERNEL(OP, bf16, __nv_bfloat16, EXPR)      \
    CMP_KERNEL(OP, i64, int64_t, EXPR)             \
    CMP_KERNEL(OP, u8, uint8_t, EXPR)              \
    CMP_KERNEL(OP, bool, uint8_t, EXPR)

CMP_ALL(eq, x == y)
CMP_ALL(ne, x != y)
CMP_ALL(lt, x < y)
CMP_ALL(le, x <= y)
CMP_ALL(gt, x > y)
CMP_ALL(ge, x >= y)

#define WHERE_KERNEL(BYTES, T)                                                                     \
    extern "C" __global__ void where_b##BYTES(uint32_t n, Geometry g, const uint8_t *cond,         \
                                              const T *on_true, const T *on_false, T *out) {       \
        GRID_STRIDE(i, n) {                                                                        \
            uint64_t off[3];                                                                       \
            element_offsets<3>(g, i, off);                                                         \
            out[i] = cond[off[0]] ? on_true[off[1]] : on_false[off[2]];                            \
        }                                                                                          \
    }

WHERE_KERNEL(1, uint8_t)
WHERE_KERNEL(2, uint16_t)
WHERE_KERNEL(4, uint32_t)
WHERE_KERNEL(8, uint64_t)

#define RANGE_CHECK_KERNEL(SUFFIX, T)                                                              \
    extern "C" __global__ void range_check_##SUFFIX(uint32_t n, Geometry g, const T *x, double lo, \
                                                    double hi, unsigned long long *bad) {          \
        GRID_STRIDE(i, n) {                                                                        \
            uint64_t off[1];                                                                       \
            element_offsets<1>(g, i, off);                                                         \
            union {                                                                                \
                double value;                                                                      \
                int64_t bits;                                                                      \
            } v;                                                                                   \
            v.value = (double)Num<T>::up(x[off[0]]);                                               \
            if (!(v.value >= lo && v.value <= hi)) record_bad(bad, i, v.bits);                     \
        }                                                                                          \
    }

RANGE_CHECK_KERNEL(f32, float)
RANGE_CHECK_KERNEL(f64, double)
RANGE_CHECK_KERNEL(f16, __half)
RANGE_CHECK_KERNEL(bf16, __nv_bfloat16)
