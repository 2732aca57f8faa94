// Fused softmax cross-entropy over the rows of contiguous [rows, c] logits with int64 class
// targets (f32 and f64), the same arithmetic as sinew-tensor's cpu/softmax_xent.rs (formula in
// its ops/softmax_xent.rs): per row the maximum, the log-sum-exp and the loss in double,
// rounded once. One warp per row, 8 rows per 256-thread block.
//
// xent_forward_<dtype>(x, t, w, out, rows, c, ignore, smoothing, bad)
//   out = [loss | row weight | shift | log_sum], each [rows]; w may be null (weights 1). A
//   target outside [0, c) other than `ignore` records its row and itself in the failure slot
//   `bad` (common.cuh's record_bad) and the row counts as ignored; the host reads the slot at
//   its next synchronisation.
// xent_backward_<dtype>(x, t, w, stats, grad, grad_stride, dx, rows, c, ignore, smoothing)
//   grad_stride 1, or 0 for one gradient for every row (a mean's); dx = grad[row] * ((1 - e) w_t (p - [k = t]) + e / c (W p - w_k)), p = exp(x - shift - log_sum),
//   W = sum of the weights; rows that do not count are zeroed.
#include "common.cuh"

#define XENT_ROWS_PER_BLOCK 8u

__device__ __forceinline__ double warp_sum_f64(double v) {
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

// The maximum of the warp's values on every lane; a NaN anywhere wins.
__device__ __forceinline__ double warp_max_f64(double v) {
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) {
        const double w = __shfl_xor_sync(0xffffffffu, v, o);
        v = (is_nan(v) || is_nan(w)) ? v + w : (w > v ? w : v);
    }
    return v;
}

// The row this warp handles, or rows when it has none.
__device__ __forceinline__ uint32_t warp_row(uint32_t rows) {
    const uint64_t row = (uint64_t)blockIdx.x * XENT_ROWS_PER_BLOCK + (threadIdx.x >> 5);
    return row < rows ? (uint32_t)row : rows;
}

template <typename T> __device__ __forceinline__ double class_weight(const T *w, uint32_t k) {
    return w != nullptr ? (double)w[k] : 1.0;
}

// (shift, log_sum) of a row, on every lane of the warp.
template <typename T> __device__ void row_log_sum_exp(const T *xr, uint32_t c, double &shift, double &log_sum) {
    const uint32_t lane = threadIdx.x & 31u;
    double m = -INFINITY;
    for (uint32_t k = lane; k < c; k += 32u) {
        const double v = (double)xr[k];
        m = (is_nan(v) || is_nan(m)) ? v + m : (v > m ? v : m);
    }
    m = warp_max_f64(m);
    shift = isfinite(m) ? m : 0.0;
    double s = 0.0;
    for (uint32_t k = lane; k < c; k += 32u) s += exp((double)xr[k] - shift);
    log_sum = log(warp_sum_f64(s));
}

template <typename T>
__device__ void xent_forward(const T *x, const int64_t *t, const T *w, T *out, uint32_t rows, uint32_t c,
                             int64_t ignore, double e, unsigned long long *bad) {
    const uint32_t row = warp_row(rows), lane = threadIdx.x & 31u;
    if (row == rows) return;
    const T *xr = x + (uint64_t)row * c;
    double shift, log_sum;
    row_log_sum_exp(xr, c, shift, log_sum);
    const double lse = shift + log_sum;
    const int64_t target = t[row];
    const bool in_range = target >= 0 && (uint64_t)target < c;
    if (target != ignore && !in_range && lane == 0) record_bad(bad, row, target);
    const bool counts = target != ignore && in_range;
    double smooth = 0.0;
    if (counts && e > 0.0) {
        for (uint32_t k = lane; k < c; k += 32u) smooth += class_weight(w, k) * (lse - (double)xr[k]);
        smooth = warp_sum_f64(smooth);
    }
    if (lane != 0) return;
    double loss = 0.0, wt = 0.0;
    if (counts) {
        wt = class_weight(w, (uint32_t)target);
        loss = (1.0 - e) * wt * (lse - (double)xr[target]);
        if (e > 0.0) loss += e / (double)c * smooth;
    }
    out[row] = (T)loss;
    out[rows + row] = (T)wt;
    out[2ull * rows + row] = (T)shift;
    out[3ull * rows + row] = (T)log_sum;
}

template <typename T>
__device__ void xent_backward(const T *x, const int64_t *t, const T *w, const T *stats, const T *grad,
                              uint32_t grad_stride, T *dx, uint32_t rows, uint32_t c, int64_t ignore, double e) {
    const uint32_t row = warp_row(rows), lane = threadIdx.x & 31u;
    if (row == rows) return;
    T *dr = dx + (uint64_t)row * c;
    const int64_t target = t[row];
    if (target == ignore || target < 0 || (uint64_t)target >= c) {
        for (uint32_t k = lane; k < c; k += 32u) dr[k] = (T)0;
        return;
    }
    double total = (double)c;
    if (w != nullptr && e > 0.0) {
        total = 0.0;
        for (uint32_t k = lane; k < c; k += 32u) total += (double)w[k];
        total = warp_sum_f64(total);
    }
    const T *xr = x + (uint64_t)row * c;
    const double g = (double)grad[(uint64_t)row * grad_stride], shift = (double)stats[2ull * rows + row],
                 log_sum = (double)stats[3ull * rows + row];
    const double hard = (1.0 - e) * class_weight(w, (uint32_t)target), soft = e / (double)c;
    for (uint32_t k = lane; k < c; k += 32u) {
        const double p = exp(((double)xr[k] - shift) - log_sum);
        double v = hard * (p - (k == (uint64_t)target ? 1.0 : 0.0));
        if (e > 0.0) v += soft * (total * p - class_weight(w, k));
        dr[k] = (T)(g * v);
    }
}

#define XENT_KERNELS(SUFFIX, T)                                                                   \
    extern "C" __global__ void __launch_bounds__(256)                                             \
        xent_forward_##SUFFIX(const T *x, const int64_t *t, const T *w, T *out, uint32_t rows,    \
                              uint32_t c, int64_t ignore, double e, unsigned long long *bad) {    \
        xent_forward<T>(x, t, w, out, rows, c, ignore, e, bad);                                   \
    }                                                                                             \
    extern "C" __global__ void __launch_bounds__(256)                                             \
        xent_backward_##SUFFIX(const T *x, const int64_t *t, const T *w, const T *stats,          \
                               const T *grad, uint32_t grad_stride, T *dx, uint32_t rows,         \
                               uint32_t c, int64_t ignore, double e) {                            \
        xent_backward<T>(x, t, w, stats, grad, grad_stride, dx, rows, c, ignore, e);              \
    }

XENT_KERNELS(f32, float)
XENT_KERNELS(f64, double)
