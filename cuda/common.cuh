// Shared helpers of every kernel family: the strided-view geometry, dtype conversions and
// overloaded device math. Kernels are `extern "C"` and named `<family>_<op>_<dtype>` (see
// crates/sinew-cuda/src/names.rs, the naming contract with the op table).
#pragma once
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <stdint.h>

#define MAX_DIMS 8
#define MAX_OPERANDS 3

// Up to three views of one shape (mirrors `sinew_cuda::geometry::Geometry`, #[repr(C)]).
// Bit k of `contiguous` set: operand k is a dense run starting at offsets[k].
struct Geometry {
    uint32_t ndim;
    uint32_t contiguous;
    uint32_t dims[MAX_DIMS];
    uint64_t strides[MAX_OPERANDS][MAX_DIMS];
    uint64_t offsets[MAX_OPERANDS];
};

// Storage offsets of element `i` (row-major position in the shape) for the first N operands.
template <int N>
__device__ __forceinline__ void element_offsets(const Geometry &g, uint32_t i, uint64_t (&off)[N]) {
#pragma unroll
    for (int k = 0; k < N; ++k) off[k] = g.offsets[k] + ((g.contiguous >> k) & 1u ? (uint64_t)i : 0);
    if (((g.contiguous + 1u) & ((1u << N) - 1u)) == 0u) return;  // all N contiguous
    uint32_t rest = i;
    for (int d = (int)g.ndim - 1; d >= 0; --d) {
        const uint32_t dim = g.dims[d];
        const uint32_t idx = rest % dim;
        rest /= dim;
#pragma unroll
        for (int k = 0; k < N; ++k)
            if (!((g.contiguous >> k) & 1u)) off[k] += (uint64_t)idx * g.strides[k][d];
    }
}

// A failure slot (crates/sinew-cuda/src/check_slots.rs): two words the host sets to UINT64_MAX,
// in which a kernel records the lowest position i (row-major, below 2^32 - 1) of an element that
// makes its op fail and the value v found there. bad[0] takes the minimum of (i << 32 | low word
// of v), bad[1] of (i << 32 | high word of v): both come from the lowest bad position whatever
// order the threads ran in, so no second kernel has to look the value up.
__device__ __forceinline__ void record_bad(unsigned long long *bad, uint32_t i, int64_t v) {
    const unsigned long long key = (unsigned long long)i << 32, bits = (unsigned long long)v;
    atomicMin(&bad[0], key | (bits & 0xffffffffull));
    atomicMin(&bad[1], key | (bits >> 32));
}

#define GRID_STRIDE(i, n) \
    for (uint32_t i = blockIdx.x * blockDim.x + threadIdx.x; i < (n); i += blockDim.x * gridDim.x)

// Whether two types are the same, at compile time (code only some instantiations need).
template <typename A, typename B> struct SameType {
    static constexpr bool value = false;
};
template <typename A> struct SameType<A, A> {
    static constexpr bool value = true;
};

// Compute type of a storage type: f16/bf16 compute in f32, the rest in themselves.
template <typename T> struct Num {
    typedef T C;
    __device__ static C up(T x) { return x; }
    __device__ static T down(C x) { return x; }
};
template <> struct Num<__half> {
    typedef float C;
    __device__ static float up(__half x) { return __half2float(x); }
    __device__ static __half down(float x) { return __float2half_rn(x); }
};
template <> struct Num<__nv_bfloat16> {
    typedef float C;
    __device__ static float up(__nv_bfloat16 x) { return __bfloat162float(x); }
    __device__ static __nv_bfloat16 down(float x) { return __float2bfloat16_rn(x); }
};

// Overloaded math so templates pick the float or double routine.
#define MATH1(name, f32fn, f64fn) \
    __device__ __forceinline__ float name(float x) { return f32fn(x); } \
    __device__ __forceinline__ double name(double x) { return f64fn(x); }
MATH1(m_exp, expf, exp)
MATH1(m_expm1, expm1f, expm1)
MATH1(m_log, logf, log)
MATH1(m_log1p, log1pf, log1p)
MATH1(m_sqrt, sqrtf, sqrt)
MATH1(m_rsqrt, rsqrtf, rsqrt)
MATH1(m_sin, sinf, sin)
MATH1(m_cos, cosf, cos)
MATH1(m_tanh, tanhf, tanh)
MATH1(m_fabs, fabsf, fabs)
MATH1(m_erf, erff, erf)
MATH1(m_erfc, erfcf, erfc)
__device__ __forceinline__ float m_pow(float x, float y) { return powf(x, y); }
__device__ __forceinline__ double m_pow(double x, double y) { return pow(x, y); }
__device__ __forceinline__ float m_max(float x, float y) { return fmaxf(x, y); }
__device__ __forceinline__ double m_max(double x, double y) { return fmax(x, y); }
__device__ __forceinline__ float m_min(float x, float y) { return fminf(x, y); }
__device__ __forceinline__ double m_min(double x, double y) { return fmin(x, y); }

template <typename T> __device__ __forceinline__ bool is_nan(T x) { return x != x; }

// A product and a sum rounded on their own (__fmul_rn/__fadd_rn, __dmul_rn/__dadd_rn): never
// contracted into an FMA, so a kernel built from them rounds where the CPU backend does (Rust
// never contracts). sinew-cuda's tests/ptx_rounding.rs checks the kernels that rely on it.
__device__ __forceinline__ float mul_rn(float a, float b) { return __fmul_rn(a, b); }
__device__ __forceinline__ double mul_rn(double a, double b) { return __dmul_rn(a, b); }
__device__ __forceinline__ float add_rn(float a, float b) { return __fadd_rn(a, b); }
__device__ __forceinline__ double add_rn(double a, double b) { return __dadd_rn(a, b); }

// Every dtype to f64 and back, with Rust `as` semantics (truncate, saturate, NaN -> 0) for
// integers and round-to-nearest-even for floats: the CPU backend's cast rules.
__device__ __forceinline__ double to_f64(float x) { return (double)x; }
__device__ __forceinline__ double to_f64(double x) { return x; }
__device__ __forceinline__ double to_f64(__half x) { return (double)__half2float(x); }
__device__ __forceinline__ double to_f64(__nv_bfloat16 x) { return (double)__bfloat162float(x); }
__device__ __forceinline__ double to_f64(int64_t x) { return (double)x; }
__device__ __forceinline__ double to_f64(uint8_t x) { return (double)x; }

template <typename T> __device__ T from_f64(double x);
template <> __device__ __forceinline__ float from_f64<float>(double x) { return (float)x; }
template <> __device__ __forceinline__ double from_f64<double>(double x) { return x; }
template <> __device__ __forceinline__ __half from_f64<__half>(double x) { return __double2half(x); }
template <> __device__ __forceinline__ __nv_bfloat16 from_f64<__nv_bfloat16>(double x) {
    return __double2bfloat16(x);
}
template <> __device__ __forceinline__ int64_t from_f64<int64_t>(double x) {
    if (is_nan(x)) return 0;
    if (x >= 9223372036854775807.0) return INT64_MAX;
    if (x <= -9223372036854775808.0) return INT64_MIN;
    return (int64_t)x;
}
template <> __device__ __forceinline__ uint8_t from_f64<uint8_t>(double x) {
    if (is_nan(x) || x <= 0.0) return 0;
    if (x >= 255.0) return 255;
    return (uint8_t)x;
}
