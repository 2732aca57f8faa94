// Per-channel kernels of batch norm on contiguous [n, C, inner] tensors (f32 and f64), the
// same arithmetic as sinew-tensor's cpu/channel.rs.
//
// channel_sums_<dtype>(a, b, out, n, c, inner)
//   grid (C, splits), 256 threads: block (ch, s) sums its share of channel ch in double and
//   atomically adds sum(a) to out[ch] and sum(a * b) (a * a when b is null) to out[C + ch];
//   `out` is zeroed by the host.
// channel_lincomb_<dtype>(a, b, coef, out, total, c, inner)
//   out = alpha[ch] * a + beta[ch] * b + gamma[ch] (the beta term dropped when b is null),
//   coef = [alpha | beta | gamma] as double [3, C], computed in the element type with separate
//   roundings (no FMA contraction), as the CPU backend computes it.
#include "common.cuh"

__device__ __forceinline__ double warp_sum_f64(double v) {
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) v += __shfl_down_sync(0xffffffffu, v, o);
    return v;
}

template <typename T>
__device__ void channel_sums(const T *a, const T *b, double *out, uint32_t n, uint32_t c, uint64_t inner) {
    const uint32_t ch = blockIdx.x;
    const uint64_t per_channel = (uint64_t)n * inner;
    const uint64_t step = (uint64_t)gridDim.y * blockDim.x;
    double s = 0.0, p = 0.0;
    for (uint64_t i = (uint64_t)blockIdx.y * blockDim.x + threadIdx.x; i < per_channel; i += step) {
        const uint64_t img = i / inner, k = i - img * inner;
        const uint64_t off = (img * c + ch) * inner + k;
        const double x = (double)a[off];
        s += x;
        p += x * (b != nullptr ? (double)b[off] : x);
    }
    __shared__ double partial[2][32];
    s = warp_sum_f64(s);
    p = warp_sum_f64(p);
    const uint32_t lane = threadIdx.x & 31u, warp = threadIdx.x >> 5;
    if (lane == 0) {
        partial[0][warp] = s;
        partial[1][warp] = p;
    }
    __syncthreads();
    if (warp == 0) {
        const uint32_t warps = (blockDim.x + 31u) >> 5;
        s = lane < warps ? partial[0][lane] : 0.0;
        p = lane < warps ? partial[1][lane] : 0.0;
        s = warp_sum_f64(s);
        p = warp_sum_f64(p);
        if (lane == 0) {
            atomicAdd(&out[ch], s);
            atomicAdd(&out[c + ch], p);
        }
    }
}

__device__ __forceinline__ float mul_rn(float x, float y) { return __fmul_rn(x, y); }
__device__ __forceinline__ double mul_rn(double x, double y) { return __dmul_rn(x, y); }
__device__ __forceinline__ float add_rn(float x, float y) { return __fadd_rn(x, y); }
__device__ __forceinline__ double add_rn(double x, double y) { return __dadd_rn(x, y); }

template <typename T>
__device__ void channel_lincomb(const T *a, const T *b, const double *coef, T *out, uint64_t total, uint32_t c,
                                uint64_t inner) {
    const uint64_t step = (uint64_t)gridDim.x * blockDim.x;
    for (uint64_t i = (uint64_t)blockIdx.x * blockDim.x + threadIdx.x; i < total; i += step) {
        const uint32_t ch = (uint32_t)((i / inner) % c);
        const T alpha = (T)coef[ch], gamma = (T)coef[2 * c + ch];
        T v = mul_rn(a[i], alpha);
        if (b != nullptr) v = add_rn(v, mul_rn(b[i], (T)coef[c + ch]));
        out[i] = add_rn(v, gamma);
    }
}

#define CHANNEL_KERNELS(SUFFIX, T)                                                                \
    extern "C" __global__ void channel_sums_##SUFFIX(const T *a, const T *b, double *out,         \
                                                     uint32_t n, uint32_t c, uint64_t inner) {    \
        channel_sums<T>(a, b, out, n, c, inner);                                                  \
    }                                                                                             \
    extern "C" __global__ void channel_lincomb_##SUFFIX(const T *a, const T *b, const double *coef, \
                                                        T *out, uint64_t total, uint32_t c,       \
                                                        uint64_t inner) {                         \
        channel_lincomb<T>(a, b, coef, out, total, c, inner);                                     \
    }

CHANNEL_KERNELS(f32, float)
CHANNEL_KERNELS(f64, double)
