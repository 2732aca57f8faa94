// dtype conversions, fills and strided copies.
// cast_<from>_<to>(n, geometry, in, out): operand 0 = input view, output contiguous. Every
// conversion goes through f64 (exact for all source types but i64, where it is what the CPU
// backend does too), so results match `sinew_tensor`'s CPU cast bit for bit.
// cast_many_<from>_<to>(table): the same conversion over the dense runs of a StepTable (run j:
// n[j] elements from g[j] into p[j]; the slots unused): autocast's weight casts in one launch,
// f32 to f16 and bf16.
// fill_b<bytes>(out, n, pattern): writes the low <bytes> bytes of `pattern` n times.
// copy_b<bytes>(n, geometry, src, dst): operand 0 = source view, 1 = destination view.
#include "common.cuh"
#include "step_table.cuh"


template <typename To> __device__ __forceinline__ To convert(double x) { return from_f64<To>(x); }

// Bool storage is one byte 0/1; converting into it is `x != 0` (so NaN -> true, as in Rust).
struct Bool8 {
    uint8_t v;
};
template <> __device__ __forceinline__ Bool8 convert<Bool8>(double x) { return Bool8{(uint8_t)(x != 0.0)}; }
__device__ __forceinline__ double to_f64(Bool8 x) { return x.v ? 1.0 : 0.0; }

#define CAST_KERNEL(FROM, FT, TO, TT)                                                              \
    extern "C" __global__ void cast_##FROM##_##TO(uint32_t n, Geometry g, const FT *in, TT *out) { \
        GRID_STRIDE(i, n) {                                                                        \
            uint64_t off[1];                                                                       \
            element_offsets<1>(g, i, off);                                                         \
            out[i] = convert<TT>(to_f64(in[off[0]]));                                              \
        }                                                                                          \
    }

#define CAST_FROM(FROM, FT)                        \
    CAST_KERNEL(FROM, FT, f32, float)              \
    CAST_KERNEL(FROM, FT, f64, double)             \
    CAST_KERNEL(FROM, FT, f16, __half)             \
    CAST_KERNEL(FROM, FT, bf16, __nv_bfloat16)     \
    CAST_KERNEL(FROM, FT, i64, int64_t)            \
    CAST_KERNEL(FROM, FT, u8, uint8_t)             \
    CAST_KERNEL(FROM, FT, bool, Bool8)

CAST_FROM(f32, float)
CAST_FROM(f64, double)
CAST_FROM(f16, __half)
CAST_FROM(bf16, __nv_bfloat16)
CAST_FROM(i64, int64_t)
CAST_FROM(u8, uint8_t)
CAST_FROM(bool, Bool8)

#define CAST_MANY_KERNEL(FROM, FT, TO, TT)                                       \
    extern "C" __global__ void cast_many_##FROM##_##TO(StepTable t) {           \
        uint32_t j;                                                              \
        const Span s = in_table(t, j);                                           \
        const FT *in = (const FT *)t.g[j];                                       \
        TT *out = (TT *)t.p[j];                                                  \
        SPAN_LOOP(i, s) { out[i] = convert<TT>(to_f64(in[i])); }                 \
    }

CAST_MANY_KERNEL(f32, float, f16, __half)
CAST_MANY_KERNEL(f32, float, bf16, __nv_bfloat16)

#define FILL_KERNEL(BYTES, T)                                                                    \
    extern "C" __global__ void fill_b##BYTES(T *out, uint32_t n, uint64_t pattern) {             \
        const T v = (T)pattern;                                                                  \
        GRID_STRIDE(i, n) { out[i] = v; }                                                        \
    }

#define COPY_KERNEL(BYTES, T)                                                                    \
    extern "C" __global__ void copy_b##BYTES(uint32_t n, Geometry g, const T *src, T *dst) {     \
        GRID_STRIDE(i, n) {                                                                      \
            uint64_t off[2];                                                                     \
            element_offsets<2>(g, i, off);                                                       \
            dst[off[1]] = src[off[0]];                                                           \
        }                                                                                        \
    }

FILL_KERNEL(1, uint8_t)
FILL_KERNEL(2, uint16_t)
FILL_KERNEL(4, uint32_t)
FILL_KERNEL(8, uint64_t)
COPY_KERNEL(1, uint8_t)
COPY_KERNEL(2, uint16_t)
COPY_KERNEL(4, uint32_t)
COPY_KERNEL(8, uint64_t)
