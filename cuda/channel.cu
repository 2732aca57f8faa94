// Per-channel kernels of batch norm on contiguous [n, C, inner] tensors (f32, f64, f16, bf16),
// the same arithmetic as sinew-tensor's cpu/channel.rs.
//
// channel_sums_<dtype>(a, b, out, n, c, inner, partials, tickets)
//   out [2, C] f64 = sum(a) and sum(a * b) (a * a when b is null) per channel. Grid (C, splits),
//   256 threads: block (ch, s) sums its share of channel ch in double; with one split it writes
//   out, else it stores its two sums in partials [C, splits, 2] and the last block of the channel
//   to arrive (tickets.cuh) adds the splits' sums in a fixed order (thread t the splits t,
//   t + 256, ... in turn, then the block's tree), so the result does not depend on the order
//   the blocks ran in.
// channel_lincomb_<dtype>(a, mask, b, coef, out, masked, total, c, inner, flags)
//   out = alpha[ch] * a + beta[ch] * b + gamma[ch] (the beta term dropped when b is null),
//   coef = [alpha | beta | gamma] as double [3, C], computed in the element type (f32 for f16
//   and bf16, rounded once at the end) with separate roundings (no FMA contraction), as the CPU
//   backend computes it. a is read as (mask <= 0 ? 0 : a) when mask is not null (the
//   gradient of a ReLU's output taken back through the ReLU, as relu_backward selects it), and
//   that is also stored in masked when not null. flags 1:
//   then ReLU (NaN kept: the unary relu's values); flags 2: b is a residual, added to the map
//   rounded to the element type (beta unused), as binary_add or add_relu would add it.
#include "tickets.cuh"

__device__ __forceinline__ double warp_sum_f64(double v) {
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) v += __shfl_down_sync(0xffffffffu, v, o);
    return v;
}

// The sums of v and w over the block, in thread 0 (a fixed order: warps, then their results).
__device__ __forceinline__ void block_sum2(double &v, double &w) {
    __shared__ double partial[2][32];
    v = warp_sum_f64(v);
    w = warp_sum_f64(w);
    const uint32_t lane = threadIdx.x & 31u, warp = threadIdx.x >> 5;
    if (lane == 0) {
        partial[0][warp] = v;
        partial[1][warp] = w;
    }
    __syncthreads();
    if (warp == 0) {
        const uint32_t warps = (blockDim.x + 31u) >> 5;
        v = warp_sum_f64(lane < warps ? partial[0][lane] : 0.0);
        w = warp_sum_f64(lane < warps ? partial[1][lane] : 0.0);
    }
}

// Element off of a, or 0 where mask (when not null) is <= 0: ReLU's input gradient from its
// output, relu_backward's select (an inf or NaN element of a where the mask is not positive
// gives 0).
template <typename T>
__device__ __forceinline__ double masked_f64(const T *a, const T *mask, uint64_t off) {
    const double v = to_f64(a[off]);
    return (mask != nullptr && to_f64(mask[off]) <= 0.0) ? 0.0 : v;
}

// True in thread 0 of the block that finishes channel blockIdx.x (the only block with one split,
// else the last to arrive), with the channel's sum(a) in s and sum(a * b) in p (a masked by
// mask when not null, as masked_f64 reads it).
template <typename T>
__device__ bool channel_totals(const T *a, const T *mask, const T *b, uint32_t n, uint32_t c, uint64_t inner,
                               double *partials, unsigned long long *tickets, double &s, double &p) {
    const uint32_t ch = blockIdx.x, splits = gridDim.y;
    const uint64_t per_channel = (uint64_t)n * inner;
    const uint64_t step = (uint64_t)splits * blockDim.x;
    s = 0.0;
    p = 0.0;
    for (uint64_t i = (uint64_t)blockIdx.y * blockDim.x + threadIdx.x; i < per_channel; i += step) {
        const uint64_t img = i / inner, k = i - img * inner;
        const uint64_t off = (img * c + ch) * inner + k;
        const double x = masked_f64(a, mask, off);
        s += x;
        p += x * (b != nullptr ? to_f64(b[off]) : x);
    }
    block_sum2(s, p);
    if (splits == 1) return threadIdx.x == 0;
    double *mine = partials + 2 * ((uint64_t)ch * splits + blockIdx.y);
    if (threadIdx.x == 0) {
        mine[0] = s;
        mine[1] = p;
    }
    if (!last_to_arrive(tickets, ch, splits)) return false;
    const double *row = partials + 2 * (uint64_t)ch * splits;
    s = 0.0;
    p = 0.0;
    for (uint32_t k = threadIdx.x; k < splits; k += blockDim.x) {
        s += fresh_load(row + 2 * k);
        p += fresh_load(row + 2 * k + 1);
    }
    __syncthreads();  // block_sum2's shared rows are reused
    block_sum2(s, p);
    reset_ticket(tickets, ch);
    return threadIdx.x == 0;
}

template <typename T>
__device__ void channel_lincomb(const T *a, const T *mask, const T *b, const double *coef, T *out, T *masked,
                                uint64_t total, uint32_t c, uint64_t inner, uint32_t flags) {
    typedef typename Num<T>::C C;
    const uint64_t step = (uint64_t)gridDim.x * blockDim.x;
    const bool residual = flags & 2u;
    for (uint64_t i = (uint64_t)blockIdx.x * blockDim.x + threadIdx.x; i < total; i += step) {
        const uint32_t ch = (uint32_t)((i / inner) % c);
        const C alpha = (C)coef[ch], gamma = (C)coef[2 * c + ch];
        C x = Num<T>::up(a[i]);
        if (mask != nullptr) {
            if (Num<T>::up(mask[i]) <= (C)0) x = (C)0;
            if (masked != nullptr) masked[i] = Num<T>::down(x);
        }
        C v = mul_rn(x, alpha);
        if (b != nullptr && !residual) v = add_rn(v, mul_rn(Num<T>::up(b[i]), (C)coef[c + ch]));
        v = add_rn(v, gamma);
        if (residual) v = add_rn(Num<T>::up(Num<T>::down(v)), Num<T>::up(b[i]));
        // ReLU before the rounding gives the relu of the rounded value (0 and NaN round to
        // themselves; a value rounding to -0 or +0 gives +0 either way).
        if ((flags & 1u) && !(v > (C)0) && !is_nan(v)) v = (C)0;
        out[i] = Num<T>::down(v);
    }
}

#define CHANNEL_KERNELS(SUFFIX, T)                                                                \
    extern "C" __global__ void channel_sums_##SUFFIX(const T *a, const T *b, double *out,         \
                                                     uint32_t n, uint32_t c, uint64_t inner,      \
                                                     double *partials, unsigned long long *tickets) { \
        double s, p;                                                                              \
        if (channel_totals<T>(a, nullptr, b, n, c, inner, partials, tickets, s, p)) {             \
            out[blockIdx.x] = s;                                                                  \
            out[c + blockIdx.x] = p;                                                              \
        }                                                                                         \
    }                                                                                             \
    extern "C" __global__ void channel_lincomb_##SUFFIX(const T *a, const T *mask, const T *b,    \
                                                        const double *coef, T *out, T *masked,    \
                                                        uint64_t total, uint32_t c, uint64_t inner, \
                                                        uint32_t flags) {                         \
        channel_lincomb<T>(a, mask, b, coef, out, masked, total, c, inner, flags);                \
    }

CHANNEL_KERNELS(f32, float)
CHANNEL_KERNELS(f64, double)
CHANNEL_KERNELS(f16, __half)
CHANNEL_KERNELS(bf16, __nv_bfloat16)

// Batch and layer norm's per-channel step (Backend::channel_norm, sinew-tensor's
// ops/channel_norm.rs), one thread a channel, in f64 with one rounding per operation in the
// order of the tensor ops it replaces (products by __dmul_rn, so none is contracted into an FMA).
// The scale and shift rows are f64, or f32 where flags say so (a layer's parameters, widened
// exactly on read, as their cast to f64 would):
// channel_norm_forward_f64(c, sums, scale, shift, count, eps, flags, out)
//   sums [2, C] (sum x, sum x^2); flags 1: scale given, 2: shift given, 4: scale is f32,
//   8: shift is f32; out [6, C]: k, 0, b, mean, invstd, var with mean = s0 / count,
//   var = max(s1 / count - mean^2, 0) (NaN kept), invstd = 1 / sqrt(var + eps),
//   k = invstd * scale, b = shift - mean * k.
// channel_norm_backward_f64(c, sums, mean, invstd, scale, count, flags, out)
//   sums [2, C] (sum dy, sum dy x); flags 1: scale given, 2: scale is f32; out [6, C]: k1, k2,
//   k3, sum dy (x - mean), sum dy (x - mean) * invstd, sum dy, with sdxm = s1 - mean * s0,
//   k1 = invstd * scale, k2 = k1 * invstd^2 * sdxm / -count, k3 = k1 * s0 / -count - k2 * mean.

// Element i of a parameter row: f32 when `narrow`, else f64.
__device__ __forceinline__ double param_at(const void *row, uint32_t i, bool narrow) {
    return narrow ? (double)((const float *)row)[i] : ((const double *)row)[i];
}

// The forward step for channel i from its sums s0 = sum x, s1 = sum x^2.
__device__ __forceinline__ void norm_forward_at(uint32_t i, uint32_t c, double s0, double s1, const void *scale,
                                                const void *shift, double count, double eps, uint32_t flags,
                                                double *out) {
    const double mean = s0 / count;
    const double spread = s1 / count - __dmul_rn(mean, mean);
    const double var = is_nan(spread) ? spread : (spread < 0.0 ? 0.0 : spread);
    const double invstd = 1.0 / sqrt(var + eps);
    const double k = (flags & 1u) ? __dmul_rn(invstd, param_at(scale, i, flags & 4u)) : invstd;
    const double mk = __dmul_rn(mean, k);
    out[i] = k;
    out[c + i] = 0.0;
    out[2 * c + i] = ((flags & 2u) ? param_at(shift, i, flags & 8u) : 0.0) - mk;
    out[3 * c + i] = mean;
    out[4 * c + i] = invstd;
    out[5 * c + i] = var;
}

// The backward step for channel i from its sums s0 = sum dy, s1 = sum dy x.
__device__ __forceinline__ void norm_backward_at(uint32_t i, uint32_t c, double s0, double s1, const double *mean,
                                                 const double *invstd, const void *scale, double count,
                                                 uint32_t flags, double *out) {
    const double m = mean[i], is = invstd[i];
    const double sdxm = s1 - __dmul_rn(m, s0);
    const double k1 = (flags & 1u) ? __dmul_rn(is, param_at(scale, i, flags & 2u)) : is;
    const double k2 = __dmul_rn(__dmul_rn(k1, __dmul_rn(is, is)), sdxm) / -count;
    const double k3 = __dmul_rn(k1, s0) / -count - __dmul_rn(k2, m);
    out[i] = k1;
    out[c + i] = k2;
    out[2 * c + i] = k3;
    out[3 * c + i] = sdxm;
    out[4 * c + i] = __dmul_rn(sdxm, is);
    out[5 * c + i] = s0;
}

extern "C" __global__ void channel_norm_forward_f64(uint32_t c, const double *sums, const void *scale,
                                                    const void *shift, double count, double eps,
                                                    uint32_t flags, double *out) {
    GRID_STRIDE(i, c) { norm_forward_at(i, c, sums[i], sums[c + i], scale, shift, count, eps, flags, out); }
}

extern "C" __global__ void channel_norm_backward_f64(uint32_t c, const double *sums, const double *mean,
                                                     const double *invstd, const void *scale, double count,
                                                     uint32_t flags, double *out) {
    GRID_STRIDE(i, c) { norm_backward_at(i, c, sums[i], sums[c + i], mean, invstd, scale, count, flags, out); }
}

// Batch norm's running statistics update (Backend::update_running_stats, sinew-tensor's
// ops/running_stats.rs), as its in-place ops compute it: for channel i from the batch's mean and
// biased variance (f64), running_mean = lerp(running_mean, (T)mean, momentum),
// running_var = lerp(running_var, (T)(var * unbias), momentum), lerp being PyTorch's two-sided
// formula with `small` for its first branch (|momentum| < 0.5, decided on the host).
// running_stats_<dtype>(c, mean, var, running_mean, running_var, momentum, unbias, flags, count)
//   mean, var [C] f64; running_* [C] of the dtype; count an i64 (num_batches_tracked) that the
//   first thread increments, or null; flags 1: small.
template <typename T>
__device__ __forceinline__ T lerp_rn(T x, T y, T w, bool small) {
    return small ? add_rn(x, mul_rn(w, y - x)) : y - mul_rn(y - x, (T)1 - w);
}

template <typename T>
__device__ __forceinline__ void running_at(uint32_t i, double mean, double var, T *running_mean, T *running_var,
                                           double momentum, double unbias, bool small) {
    const T w = (T)momentum;
    running_mean[i] = lerp_rn(running_mean[i], (T)mean, w, small);
    running_var[i] = lerp_rn(running_var[i], (T)__dmul_rn(var, unbias), w, small);
}

#define RUNNING_STATS(SUFFIX, T)                                                                      \
    extern "C" __global__ void running_stats_##SUFFIX(uint32_t c, const double *mean, const double *var, \
                                                      T *running_mean, T *running_var, double momentum,  \
                                                      double unbias, uint32_t flags, int64_t *count) {    \
        if (count != nullptr && blockIdx.x == 0 && threadIdx.x == 0) *count += 1;                         \
        GRID_STRIDE(i, c) { running_at(i, mean[i], var[i], running_mean, running_var, momentum, unbias, flags & 1u); } \
    }
RUNNING_STATS(f32, float)
RUNNING_STATS(f64, double)

// The running statistics' update a forward channel_stats launch makes (run.flags 1: update,
// 2: the buffers are f64 (else f32), 4: lerp's first branch), count incremented with channel 0.
struct RunningArgs {
    void *mean, *var;
    int64_t *count;
    double momentum, unbias;
    uint32_t flags;
};

// channel_stats_<dtype>(a, mask, b, n, c, inner, partials, tickets, r0, r1, r2, count, eps, flags,
//                       backward, out, run, params)
//   channel_sums (a masked by mask when not null, as channel_totals reads it) and then
//   channel_norm's step (forward: r0 = scale, r1 = shift; backward:
//   r0 = mean, r1 = invstd, r2 = scale; flags as theirs) in one kernel: the block that finishes
//   a channel's sums computes that channel's [6, C] rows, the same bits as the two kernels, and
//   (forward, run.flags 1) updates its running statistics from them as running_stats does, or
//   (backward, params not null) writes the affine parameters' gradients, rows 4 and 5, as f32
//   [2, C] (rounded once, as their cast would be).
template <typename T>
__device__ void channel_stats(const T *a, const T *mask, const T *b, uint32_t n, uint32_t c, uint64_t inner,
                              double *partials, unsigned long long *tickets, const void *r0, const void *r1,
                              const void *r2, double count, double eps, uint32_t flags, uint32_t backward, double *out,
                              RunningArgs run, float *params) {
    double s, p;
    if (!channel_totals(a, mask, b, n, c, inner, partials, tickets, s, p)) return;
    const uint32_t i = blockIdx.x;
    if (backward) {
        norm_backward_at(i, c, s, p, (const double *)r0, (const double *)r1, r2, count, flags, out);
        if (params != nullptr) {
            params[i] = (float)out[4 * c + i];
            params[c + i] = (float)out[5 * c + i];
        }
        return;
    }
    norm_forward_at(i, c, s, p, r0, r1, count, eps, flags, out);
    if (!(run.flags & 1u)) return;
    if (run.count != nullptr && i == 0) *run.count += 1;
    const bool small = run.flags & 4u;
    const double mean = out[3 * c + i], var = out[5 * c + i];
    if (run.flags & 2u)
        running_at(i, mean, var, (double *)run.mean, (double *)run.var, run.momentum, run.unbias, small);
    else
        running_at(i, mean, var, (float *)run.mean, (float *)run.var, run.momentum, run.unbias, small);
}

#define CHANNEL_STATS_KERNEL(SUFFIX, T)                                                                    \
    extern "C" __global__ void channel_stats_##SUFFIX(const T *a, const T *mask, const T *b, uint32_t n,  \
                                                      uint32_t c, uint64_t inner, double *partials,       \
                                                      unsigned long long *tickets, const void *r0,        \
                                                      const void *r1, const void *r2, double count,       \
                                                      double eps, uint32_t flags, uint32_t backward,      \
                                                      double *out, RunningArgs run, float *params) {      \
        channel_stats<T>(a, mask, b, n, c, inner, partials, tickets, r0, r1, r2, count, eps, flags,      \
                         backward, out, run, params);                                                      \
    }
CHANNEL_STATS_KERNEL(f32, float)
CHANNEL_STATS_KERNEL(f64, double)
CHANNEL_STATS_KERNEL(f16, __half)
CHANNEL_STATS_KERNEL(bf16, __nv_bfloat16)
