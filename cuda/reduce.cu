// Row reductions of a contiguous [rows, cols] array (and, below, of the middle axis of an
// [outer, len, inner] one).
// reduce_<op>_<dtype>(in, out, rows, cols, chunk, pass, divisor): each group of blockDim.x
// threads folds cols [part * chunk, min(cols, (part + 1) * chunk)) of one row into
// out[row * parts + part], parts = ceil(cols / chunk) (chunk >= cols gives one value per row).
// blockDim.y groups per block. `pass` (by_pass) picks the types read and written; each value
// written is the fold divided by `divisor` in the accumulator, then rounded to the output type
// (`finish`): 1 for a plain reduction, the count for a mean (PyTorch's: an f16 mean of values
// whose sum overflows f16 is still finite).
// Sums and products accumulate in f64 (i64: wrapping u64), max/min propagate NaN.
// argreduce_<op>_<dtype>(in, out_i64, rows, cols): index of the first extreme per row (NaN counts
// as the extreme), one group per row.
#include "common.cuh"

template <typename A> __device__ __forceinline__ A shfl_down(A v, int o) {
    return __shfl_down_sync(0xffffffffu, v, o);
}

// Folds `v` across the group (blockDim.x threads of row threadIdx.y); thread x == 0 gets it.
template <typename A, typename F> __device__ A group_fold(A v, A identity, F f) {
    for (int o = 16; o > 0; o >>= 1) v = f(v, shfl_down(v, o));
    if (blockDim.x <= 32) return v;
    __shared__ A partial[32];
    const unsigned lane = threadIdx.x & 31u, warp = threadIdx.x >> 5;
    __syncthreads();
    if (lane == 0) partial[warp] = v;
    __syncthreads();
    v = threadIdx.x < (blockDim.x >> 5) ? partial[threadIdx.x] : identity;
    if (warp == 0)
        for (int o = 16; o > 0; o >>= 1) v = f(v, shfl_down(v, o));
    return v;
}

struct SumOp {
    template <typename A> __device__ A operator()(A a, A b) const { return a + b; }
};
struct ProdOp {
    template <typename A> __device__ A operator()(A a, A b) const { return a * b; }
};
struct MaxOp {
    template <typename A> __device__ A operator()(A a, A b) const {
        return (is_nan(a) || is_nan(b)) ? a + b : (a > b ? a : b);
    }
};
struct MinOp {
    template <typename A> __device__ A operator()(A a, A b) const {
        return (is_nan(a) || is_nan(b)) ? a + b : (a < b ? a : b);
    }
};

// The value a reduction writes: the fold `acc` divided by `divisor` in the accumulator (a mean's
// count; float folds accumulate in f64), then rounded to Out; for divisor 1 the plain rounding
// (exact for the integer folds).
template <typename Out, typename A> __device__ __forceinline__ Out finish(A acc, double divisor) {
    typedef typename Num<Out>::C C;
    if (divisor == 1.0) return Num<Out>::down((C)acc);
    return Num<Out>::down((C)((double)acc / divisor));
}

template <typename In, typename Out, typename A, typename F>
__device__ void reduce_rows(const In *in, Out *out, uint32_t rows, uint32_t cols, uint32_t chunk, A identity,
                            F f, double divisor) {
    const uint32_t parts = cols == 0 ? 1 : (cols + chunk - 1) / chunk;
    const uint64_t group = (uint64_t)blockIdx.x * blockDim.y + threadIdx.y;
    const bool active = group < (uint64_t)rows * parts;  // the whole group agrees
    A acc = identity;
    uint64_t row = 0, part = 0;
    if (active) {
        row = group / parts;
        part = group % parts;
        const uint64_t start = part * chunk;
        const uint64_t end = min((uint64_t)cols, start + chunk);
        const In *src = in + row * cols;
        for (uint64_t c = start + threadIdx.x; c < end; c += blockDim.x) acc = f(acc, (A)Num<In>::up(src[c]));
    }
    acc = group_fold(acc, identity, f);
    if (active && threadIdx.x == 0) out[row * parts + part] = finish<Out>(acc, divisor);
}

// An f32 output holding values rounded to T (f16/bf16): what a reduction in T converted to
// f32 holds, written by the reduction itself (autocast's bias gradients).
template <typename T> struct Widened {
    float v;
};
template <typename T> struct Num<Widened<T>> {
    typedef float C;
    __device__ static float up(Widened<T> x) { return x.v; }
    __device__ static Widened<T> down(float x) { return Widened<T>{Num<T>::up(Num<T>::down(x))}; }
};

// The passes of a row or middle-axis reduction (`pass` of the kernels): 0 reads and writes the
// dtype (one pass); 1 writes the chunks' partial results in the compute type (f32 for f16/bf16),
// which 2 reads to write the dtype, so a long half-precision reduction is rounded once. 3 and 4
// (f16/bf16 only) are 0 and 2 writing f32 rounded to the dtype (`Widened`).
template <typename T, typename Run> __device__ __forceinline__ void by_pass(const void *in, void *out, uint32_t pass,
                                                                         Run run) {
    typedef typename Num<T>::C P;
    if (pass == 1)
        run((const T *)in, (P *)out);
    else if (pass == 2)
        run((const P *)in, (T *)out);
    else if (pass >= 3) {
        if constexpr (!SameType<P, T>::value) {  // f16/bf16 only; the host sends 3 and 4 for nothing else
            if (pass == 3)
                run((const T *)in, (Widened<T> *)out);
            else
                run((const P *)in, (Widened<T> *)out);
        }
    } else
        run((const T *)in, (T *)out);
}

#define REDUCE_KERNEL(OP, FN, SUFFIX, T, A, IDENTITY)                                                          \
    extern "C" __global__ void reduce_##OP##_##SUFFIX(const void *in, void *out, uint32_t rows, uint32_t cols, \
                                                      uint32_t chunk, uint32_t pass, double divisor) {         \
        by_pass<T>(in, out, pass, [&](auto src, auto dst) {                                                    \
            reduce_rows(src, dst, rows, cols, chunk, (A)(IDENTITY), FN(), divisor);                             \
        });                                                                                                    \
    }

// Every (op, combine, dtype suffix, storage type, accumulator, identity) a reduction kernel
// family is built for: K is REDUCE_KERNEL (rows) or REDUCE_MID_KERNEL (middle axis).
#define REDUCE_FLOAT(K, SUFFIX, T, EXT)         \
    K(sum, SumOp, SUFFIX, T, double, 0.0)       \
    K(prod, ProdOp, SUFFIX, T, double, 1.0)     \
    K(max, MaxOp, SUFFIX, T, EXT, -INFINITY)    \
    K(min, MinOp, SUFFIX, T, EXT, INFINITY)
#define REDUCE_INSTANCES(K)                          \
    REDUCE_FLOAT(K, f32, float, float)               \
    REDUCE_FLOAT(K, f64, double, double)             \
    REDUCE_FLOAT(K, f16, __half, float)              \
    REDUCE_FLOAT(K, bf16, __nv_bfloat16, float)      \
    K(sum, SumOp, i64, int64_t, uint64_t, 0)         \
    K(prod, ProdOp, i64, int64_t, uint64_t, 1)       \
    K(max, MaxOp, i64, int64_t, int64_t, INT64_MIN)  \
    K(min, MinOp, i64, int64_t, int64_t, INT64_MAX)

REDUCE_INSTANCES(REDUCE_KERNEL)

// Middle-axis reductions of a contiguous [outer, len, inner] array (reduced dims that are not
// the last ones: a bias gradient's sum over the batch), read in place instead of copied to rows.
// reduce_mid_<op>_<dtype>(in, out, outer, len, inner, chunk, pass, divisor): thread j of
// outer * parts * inner (parts = ceil(len / chunk)) folds l in [p * chunk, min(len, (p + 1) *
// chunk)) of in[(o * len + l) * inner + i] into out[j], laid out [outer, parts, inner];
// neighbouring threads take neighbouring i, so each step of the fold is one coalesced row of
// loads (`pass` and `divisor` as for the rows). Same accumulators as the row kernels, l
// ascending.
template <typename In, typename Out, typename A, typename F>
__device__ void reduce_mid(const In *in, Out *out, uint32_t outer, uint32_t len, uint32_t inner, uint32_t chunk,
                           A identity, F f, double divisor) {
    const uint64_t parts = len == 0 ? 1 : (len + chunk - 1) / chunk;
    const uint64_t total = (uint64_t)outer * parts * inner;
    for (uint64_t j = (uint64_t)blockIdx.x * blockDim.x + threadIdx.x; j < total;
         j += (uint64_t)gridDim.x * blockDim.x) {
        const uint64_t i = j % inner, p = (j / inner) % parts, o = j / (inner * parts);
        const uint64_t start = p * chunk, end = min((uint64_t)len, start + chunk);
        const In *src = in + o * len * inner + i;
        A acc = identity;
        for (uint64_t l = start; l < end; ++l) acc = f(acc, (A)Num<In>::up(src[l * inner]));
        out[j] = finish<Out>(acc, divisor);
    }
}

#define REDUCE_MID_KERNEL(OP, FN, SUFFIX, T, A, IDENTITY)                                                       \
    extern "C" __global__ void reduce_mid_##OP##_##SUFFIX(const void *in, void *out, uint32_t outer,            \
                                                          uint32_t len, uint32_t inner, uint32_t chunk,          \
                                                          uint32_t pass, double divisor) {                       \
        by_pass<T>(in, out, pass, [&](auto src, auto dst) {                                                     \
            reduce_mid(src, dst, outer, len, inner, chunk, (A)(IDENTITY), FN(), divisor);                       \
        });                                                                                                     \
    }

REDUCE_INSTANCES(REDUCE_MID_KERNEL)

// (value, index) candidates; index UINT32_MAX means "none yet".
template <typename V> struct Cand {
    V v;
    uint32_t i;
};

template <bool MAX, typename V> __device__ __forceinline__ bool better(Cand<V> a, Cand<V> b) {
    if (a.i == UINT32_MAX) return false;
    if (b.i == UINT32_MAX) return true;
    const bool an = is_nan(a.v), bn = is_nan(b.v);
    if (an || bn) return an && (!bn || a.i < b.i);
    if (MAX ? a.v > b.v : a.v < b.v) return true;
    if (a.v == b.v) return a.i < b.i;
    return false;
}

template <bool MAX, typename T, typename V>
__device__ void arg_rows(const T *in, int64_t *out, uint32_t rows, uint32_t cols) {
    const uint64_t row = (uint64_t)blockIdx.x * blockDim.y + threadIdx.y;
    Cand<V> best{V(0), UINT32_MAX};
    if (row < rows) {
        const T *src = in + row * cols;
        for (uint32_t c = threadIdx.x; c < cols; c += blockDim.x) {
            const Cand<V> cand{(V)Num<T>::up(src[c]), c};
            if (better<MAX>(cand, best)) best = cand;
        }
    }
    for (int o = 16; o > 0; o >>= 1) {
        const Cand<V> other{shfl_down(best.v, o), shfl_down(best.i, o)};
        if (better<MAX>(other, best)) best = other;
    }
    if (blockDim.x > 32) {
        __shared__ Cand<V> partial[32];
        const unsigned lane = threadIdx.x & 31u, warp = threadIdx.x >> 5;
        if (lane == 0) partial[warp] = best;
        __syncthreads();
        best = threadIdx.x < (blockDim.x >> 5) ? partial[threadIdx.x] : Cand<V>{V(0), UINT32_MAX};
        if (warp == 0)
            for (int o = 16; o > 0; o >>= 1) {
                const Cand<V> other{shfl_down(best.v, o), shfl_down(best.i, o)};
                if (better<MAX>(other, best)) best = other;
            }
    }
    if (row < rows && threadIdx.x == 0) out[row] = (int64_t)best.i;
}

#define ARG_KERNELS(SUFFIX, T, V)                                                                   \
    extern "C" __global__ void argreduce_argmax_##SUFFIX(const T *in, int64_t *out, uint32_t rows,  \
                                                         uint32_t cols) {                           \
        arg_rows<true, T, V>(in, out, rows, cols);                                                  \
    }                                                                                               \
    extern "C" __global__ void argreduce_argmin_##SUFFIX(const T *in, int64_t *out, uint32_t rows,  \
                                                         uint32_t cols) {                           \
        arg_rows<false, T, V>(in, out, rows, cols);                                                 \
    }

ARG_KERNELS(f32, float, float)
ARG_KERNELS(f64, double, double)
ARG_KERNELS(f16, __half, float)
ARG_KERNELS(bf16, __nv_bfloat16, float)
ARG_KERNELS(i64, int64_t, int64_t)
ARG_KERNELS(u8, uint8_t, int)
