// Fused softmax cross-entropy over the rows of contiguous [rows, c] logits with int64 class
// targets, the same arithmetic as sinew-tensor's cpu/softmax_xent.rs (formula in its
// ops/softmax_xent.rs): per row the maximum, the log-sum-exp and the loss in double, rounded
// once. One warp per row, 8 rows per 256-thread block. Logits of type T (f32, f64, f16, bf16);
// the class weights, the outputs of the forward, and the statistics, row gradients and divisor
// the backward reads are of type S: T itself, f32 for f16/bf16 logits (whose gradient is
// rounded to T from its S value, as a cast of the f32 gradient would).
//
// xent_forward_<dtype>(x, t, w, out, rows, c, ignore, smoothing, bad, partials, tickets)
//   out = [loss | row weight | shift | log_sum], each [rows], then the sum of the losses, the
//   sum of the row weights and their ratio (the weighted mean), the sums taken in double over
//   the rounded row values and rounded once: each block adds its rows in order and, with more
//   than one block, stores its sums in partials [blocks, 2]; the last block to arrive
//   (tickets.cuh) adds those in a fixed order. w may be null (weights 1). A target outside
//   [0, c) other than `ignore` records its row and itself in the failure slot `bad`
//   (common.cuh's record_bad) and the row counts as ignored; the host reads the slot at its
//   next synchronisation.
// xent_backward_<dtype>(x, t, w, stats, grad, grad_stride, divisor, dx, rows, c, ignore, smoothing)
//   grad_stride 1, or 0 for one gradient for every row (a mean's); with a divisor (else null)
//   the row gradient is grad[row] / divisor[0], divided in the element type (a mean's gradient
//   over the sum of the row weights); dx = g * ((1 - e) w_t (p - [k = t]) + e / c (W p - w_k)),
//   p = exp(x - shift - log_sum), W = sum of the weights; rows that do not count are zeroed.
#include "tickets.cuh"

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

template <typename S> __device__ __forceinline__ double class_weight(const S *w, uint32_t k) {
    return w != nullptr ? (double)w[k] : 1.0;
}

// (shift, log_sum) of a row, on every lane of the warp.
template <typename T> __device__ void row_log_sum_exp(const T *xr, uint32_t c, double &shift, double &log_sum) {
    const uint32_t lane = threadIdx.x & 31u;
    double m = -INFINITY;
    for (uint32_t k = lane; k < c; k += 32u) {
        const double v = to_f64(xr[k]);
        m = (is_nan(v) || is_nan(m)) ? v + m : (v > m ? v : m);
    }
    m = warp_max_f64(m);
    shift = isfinite(m) ? m : 0.0;
    double s = 0.0;
    for (uint32_t k = lane; k < c; k += 32u) s += exp(to_f64(xr[k]) - shift);
    log_sum = log(warp_sum_f64(s));
}

// Row `row`'s (loss, row weight), computed by the warp and written by its lane 0; (0, 0) for a
// row that does not count.
template <typename T, typename S>
__device__ void xent_row(const T *x, const int64_t *t, const S *w, S *out, uint32_t row, uint32_t rows, uint32_t c,
                         int64_t ignore, double e, unsigned long long *bad, double &loss, double &wt) {
    const uint32_t lane = threadIdx.x & 31u;
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
        for (uint32_t k = lane; k < c; k += 32u) smooth += class_weight(w, k) * (lse - to_f64(xr[k]));
        smooth = warp_sum_f64(smooth);
    }
    loss = 0.0;
    wt = 0.0;
    if (counts) {
        wt = class_weight(w, (uint32_t)target);
        loss = (1.0 - e) * wt * (lse - to_f64(xr[target]));
        if (e > 0.0) loss += e / (double)c * smooth;
    }
    // The values as stored, which the totals add.
    loss = (double)(S)loss;
    wt = (double)(S)wt;
    if (lane != 0) return;
    out[row] = (S)loss;
    out[rows + row] = (S)wt;
    out[2ull * rows + row] = (S)shift;
    out[3ull * rows + row] = (S)log_sum;
}

// The sums of s and v over the block, in thread 0 (a fixed order: each warp's, then the warps' in
// order).
__device__ __forceinline__ void block_sum2(double &s, double &v) {
    __shared__ double warp_sums[2][XENT_ROWS_PER_BLOCK];
    const uint32_t lane = threadIdx.x & 31u, warp = threadIdx.x >> 5;
    s = warp_sum_f64(s);
    v = warp_sum_f64(v);
    if (lane == 0) {
        warp_sums[0][warp] = s;
        warp_sums[1][warp] = v;
    }
    __syncthreads();
    if (threadIdx.x == 0) {
        s = 0.0;
        v = 0.0;
        for (uint32_t k = 0; k < XENT_ROWS_PER_BLOCK; k++) {
            s += warp_sums[0][k];
            v += warp_sums[1][k];
        }
    }
}

template <typename T, typename S>
__device__ void xent_forward(const T *x, const int64_t *t, const S *w, S *out, uint32_t rows, uint32_t c,
                             int64_t ignore, double e, unsigned long long *bad, double *partials,
                             unsigned long long *tickets) {
    const uint32_t row = warp_row(rows), lane = threadIdx.x & 31u;
    double loss = 0.0, wt = 0.0;
    if (row < rows) xent_row(x, t, w, out, row, rows, c, ignore, e, bad, loss, wt);
    // Lane 0 carries its row's values into the block's sums (the other lanes add 0).
    if (lane != 0) loss = wt = 0.0;
    block_sum2(loss, wt);
    if (gridDim.x > 1) {
        if (threadIdx.x == 0) {
            partials[2ull * blockIdx.x] = loss;
            partials[2ull * blockIdx.x + 1] = wt;
        }
        if (!last_to_arrive(tickets, 0, gridDim.x)) return;
        loss = 0.0;
        wt = 0.0;
        for (uint32_t k = threadIdx.x; k < gridDim.x; k += blockDim.x) {
            loss += fresh_load(partials + 2ull * k);
            wt += fresh_load(partials + 2ull * k + 1);
        }
        __syncthreads();  // block_sum2's shared sums are reused
        block_sum2(loss, wt);
        reset_ticket(tickets, 0);
    }
    if (threadIdx.x != 0) return;
    S *totals = out + 4ull * rows;
    totals[0] = (S)loss;
    totals[1] = (S)wt;
    totals[2] = (S)(loss / wt);
}

template <typename T, typename S>
__device__ void xent_backward(const T *x, const int64_t *t, const S *w, const S *stats, const S *grad,
                              uint32_t grad_stride, const S *divisor, T *dx, uint32_t rows, uint32_t c,
                              int64_t ignore, double e) {
    const uint32_t row = warp_row(rows), lane = threadIdx.x & 31u;
    if (row == rows) return;
    T *dr = dx + (uint64_t)row * c;
    const int64_t target = t[row];
    if (target == ignore || target < 0 || (uint64_t)target >= c) {
        for (uint32_t k = lane; k < c; k += 32u) dr[k] = from_f64<T>(0.0);
        return;
    }
    double total = (double)c;
    if (w != nullptr && e > 0.0) {
        total = 0.0;
        for (uint32_t k = lane; k < c; k += 32u) total += (double)w[k];
        total = warp_sum_f64(total);
    }
    const T *xr = x + (uint64_t)row * c;
    const S row_grad = grad[(uint64_t)row * grad_stride];
    const double g = (double)(divisor != nullptr ? row_grad / divisor[0] : row_grad), shift = (double)stats[2ull * rows + row],
                 log_sum = (double)stats[3ull * rows + row];
    const double hard = (1.0 - e) * class_weight(w, (uint32_t)target), soft = e / (double)c;
    for (uint32_t k = lane; k < c; k += 32u) {
        const double p = exp((to_f64(xr[k]) - shift) - log_sum);
        double v = hard * (p - (k == (uint64_t)target ? 1.0 : 0.0));
        if (e > 0.0) v += soft * (total * p - class_weight(w, k));
        // Rounded to S, then (exactly, or once more for f16/bf16) to T.
        dr[k] = from_f64<T>((double)(S)(g * v));
    }
}

#define XENT_KERNELS(SUFFIX, T, S)                                                                \
    extern "C" __global__ void __launch_bounds__(256)                                             \
        xent_forward_##SUFFIX(const T *x, const int64_t *t, const S *w, S *out, uint32_t rows,    \
                              uint32_t c, int64_t ignore, double e, unsigned long long *bad,      \
                              double *partials, unsigned long long *tickets) {                    \
        xent_forward<T, S>(x, t, w, out, rows, c, ignore, e, bad, partials, tickets);             \
    }                                                                                             \
    extern "C" __global__ void __launch_bounds__(256)                                             \
        xent_backward_##SUFFIX(const T *x, const int64_t *t, const S *w, const S *stats,          \
                               const S *grad, uint32_t grad_stride, const S *divisor, T *dx,      \
                               uint32_t rows, uint32_t c, int64_t ignore, double e) {             \
        xent_backward<T, S>(x, t, w, stats, grad, grad_stride, divisor, dx, rows, c, ignore, e);  \
    }

XENT_KERNELS(f32, float, float)
XENT_KERNELS(f64, double, double)
XENT_KERNELS(f16, __half, float)
XENT_KERNELS(bf16, __nv_bfloat16, float)
