// Softmax and log-softmax over the rows of a contiguous [rows, cols] array:
// softmax_<dtype>(in, out, rows, cols) and log_softmax_<dtype>(...). blockDim.x threads per row,
// blockDim.y rows per block. The maximum propagates NaN; a row whose maximum is not finite is
// shifted by 0 (as the CPU backend does); exp sums accumulate in f64.
#include "common.cuh"

template <typename A> __device__ __forceinline__ A row_fold_sum(A v) {
    for (int o = 16; o > 0; o >>= 1) v += __shfl_down_sync(0xffffffffu, v, o);
    return v;
}

template <typename A> __device__ __forceinline__ A row_fold_max(A v) {
    for (int o = 16; o > 0; o >>= 1) {
        const A w = __shfl_down_sync(0xffffffffu, v, o);
        v = (is_nan(v) || is_nan(w)) ? v + w : (w > v ? w : v);
    }
    return v;
}

// Broadcasts a per-group value (held by thread x == 0 after the folds) to the whole group.
template <typename A, typename F> __device__ A group_all(A v, F fold, A *scratch, A identity) {
    v = fold(v);
    if (blockDim.x > 32) {
        const unsigned lane = threadIdx.x & 31u, warp = threadIdx.x >> 5;
        __syncthreads();
        if (lane == 0) scratch[warp] = v;
        __syncthreads();
        if (warp == 0) {
            v = lane < (blockDim.x >> 5) ? scratch[lane] : identity;
            v = fold(v);
            if (lane == 0) scratch[0] = v;
        }
        __syncthreads();
        return scratch[0];
    }
    return __shfl_sync(0xffffffffu, v, 0);
}

template <typename T, bool LOG> __device__ void softmax_rows(const T *in, T *out, uint32_t rows, uint32_t cols) {
    typedef typename Num<T>::C C;
    __shared__ C max_scratch[32];
    __shared__ double sum_scratch[32];
    const uint64_t row = (uint64_t)blockIdx.x * blockDim.y + threadIdx.y;
    const bool active = row < rows;
    const T *src = in + (active ? row : 0) * cols;
    C m = -INFINITY;
    if (active)
        for (uint32_t c = threadIdx.x; c < cols; c += blockDim.x) {
            const C x = Num<T>::up(src[c]);
            m = (is_nan(x) || is_nan(m)) ? x + m : (x > m ? x : m);
        }
    // Identity for the padding lanes of a partial last group is -inf, which never wins.
    m = group_all(m, [](C v) { return row_fold_max(v); }, max_scratch, (C)-INFINITY);
    const C shift = isfinite(m) ? m : (C)0;
    double s = 0.0;
    if (active)
        for (uint32_t c = threadIdx.x; c < cols; c += blockDim.x) s += (double)m_exp(Num<T>::up(src[c]) - shift);
    s = group_all(s, [](double v) { return row_fold_sum(v); }, sum_scratch, 0.0);
    const C sum = (C)s;
    const C log_sum = m_log(sum);
    if (active)
        for (uint32_t c = threadIdx.x; c < cols; c += blockDim.x) {
            const C x = Num<T>::up(src[c]) - shift;
            out[row * cols + c] = Num<T>::down(LOG ? x - log_sum : m_exp(x) / sum);
        }
}

#define SOFTMAX_KERNELS(SUFFIX, T)                                                               \
    extern "C" __global__ void softmax_##SUFFIX(const T *in, T *out, uint32_t rows, uint32_t cols) { \
        softmax_rows<T, false>(in, out, rows, cols);                                             \
    }                                                                                            \
    extern "C" __global__ void log_softmax_##SUFFIX(const T *in, T *out, uint32_t rows,          \
                                                    uint32_t cols) {                             \
        softmax_rows<T, true>(in, out, rows, cols);                                              \
    }

SOFTMAX_KERNELS(f32, float)
SOFTMAX_KERNELS(f64, double)
SOFTMAX_KERNELS(f16, __half)
SOFTMAX_KERNELS(bf16, __nv_bfloat16)
