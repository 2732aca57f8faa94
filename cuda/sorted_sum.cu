// Sums over an index without atomics: the values that land on one output slot are added in
// ascending position order, each addition rounded to the dtype, which is what the CPU's
// sequential loops compute, so the results are the CPU's bit for bit and the same on every run
// (atomic adds sum colliding values in whatever order the threads land).
//
// The positions (n of them) are sorted stably by their output slot, with the positions carried
// along, by a least-significant-digit radix sort of 8 bits a pass over tiles of 256 positions:
// radix_keys(n, g, idx, step, bound, sentinel, bad, keys, perm)
//   keys[i] = off0 + j * step, the output slot of position i (operand 0 of g: the slot with the
//   indexed dim's stride 0; operand 1: the index view, j its index checked against `bound` as
//   index.cu does), or `sentinel` (after every slot) for a bad index; perm[i] = i.
// radix_histogram(n, keys, shift, hist)
//   hist[digit * tiles + tile] = how many of the tile's keys have that digit ((key >> shift) & 255).
// radix_scan(len, hist)
//   one block: hist becomes its exclusive prefix sum, in place, so hist[digit * tiles + tile] is
//   where that tile's keys with that digit start in the pass's output (digit-major: stable).
// radix_scatter(n, keys, perm, shift, hist, keys_out, perm_out)
//   each key and its position go to their tile's start for the digit plus the count of the tile's
//   earlier keys with the same digit.
// Then, over the sorted positions:
// index_grad_<dtype>(total, rows, inner, n, keys, perm, grad, out)
//   index_select's input gradient: out[o, r, e] (contiguous [outer, rows, inner], `total`
//   elements) = the sum of grad[o, perm[s], e] (contiguous [outer, n, inner]) over the s with
//   keys[s] == r (found by binary search); keys are the 1-d index itself.
// scatter_add_runs_<dtype>(n, keys, perm, g, values, sentinel, out)
//   scatter-add: the first position of each run of equal keys adds the run's values (operand 2
//   of g at each position) to out[key] (a copy of the base) in order.
#include "index_check.cuh"

constexpr uint32_t RADIX_TILE = 256;

extern "C" __global__ void radix_keys(uint32_t n, Geometry g, const int64_t *idx, uint64_t step, uint64_t bound,
                                      uint64_t sentinel, unsigned long long *bad, int64_t *keys, int64_t *perm) {
    GRID_STRIDE(i, n) {
        uint64_t off[2];
        element_offsets<2>(g, i, off);
        const int64_t j = checked_index(idx, off[1], i, bound, bad);
        keys[i] = (int64_t)(j >= 0 ? off[0] + (uint64_t)j * step : sentinel);
        perm[i] = i;
    }
}

extern "C" __global__ void radix_histogram(uint32_t n, const int64_t *keys, uint32_t shift, int64_t *hist) {
    __shared__ uint32_t count[RADIX_TILE];
    count[threadIdx.x] = 0;
    __syncthreads();
    const uint32_t i = blockIdx.x * RADIX_TILE + threadIdx.x;
    if (i < n) atomicAdd(&count[(keys[i] >> shift) & 255], 1u);
    __syncthreads();
    hist[(uint64_t)threadIdx.x * gridDim.x + blockIdx.x] = count[threadIdx.x];
}

// One block of RADIX_SCAN_THREADS: each thread sums a contiguous run, thread 0 scans the run
// totals, then each thread rewrites its run.
constexpr uint32_t RADIX_SCAN_THREADS = 1024;

extern "C" __global__ void radix_scan(uint64_t len, int64_t *hist) {
    __shared__ int64_t start[RADIX_SCAN_THREADS];
    const uint64_t run = (len + RADIX_SCAN_THREADS - 1) / RADIX_SCAN_THREADS;
    const uint64_t begin = min(len, threadIdx.x * run), end = min(len, begin + run);
    int64_t sum = 0;
    for (uint64_t j = begin; j < end; ++j) sum += hist[j];
    start[threadIdx.x] = sum;
    __syncthreads();
    if (threadIdx.x == 0) {
        int64_t total = 0;
        for (uint32_t t = 0; t < RADIX_SCAN_THREADS; ++t) {
            const int64_t s = start[t];
            start[t] = total;
            total += s;
        }
    }
    __syncthreads();
    int64_t at = start[threadIdx.x];
    for (uint64_t j = begin; j < end; ++j) {
        const int64_t c = hist[j];
        hist[j] = at;
        at += c;
    }
}

extern "C" __global__ void radix_scatter(uint32_t n, const int64_t *keys, const int64_t *perm, uint32_t shift,
                                         const int64_t *hist, int64_t *keys_out, int64_t *perm_out) {
    __shared__ uint32_t digits[RADIX_TILE];
    const uint32_t i = blockIdx.x * RADIX_TILE + threadIdx.x;
    const bool live = i < n;
    const int64_t key = live ? keys[i] : 0;
    const uint32_t digit = (uint32_t)(key >> shift) & 255;
    digits[threadIdx.x] = live ? digit : 256;  // 256: no digit
    __syncthreads();
    if (!live) return;
    uint32_t rank = 0;
    for (uint32_t t = 0; t < threadIdx.x; ++t) rank += digits[t] == digit;
    const int64_t dest = hist[(uint64_t)digit * gridDim.x + blockIdx.x] + rank;
    keys_out[dest] = key;
    perm_out[dest] = perm[i];
}

// The first s in the sorted keys[0..n) with keys[s] >= key.
__device__ __forceinline__ uint32_t lower_bound(const int64_t *keys, uint32_t n, int64_t key) {
    uint32_t lo = 0, hi = n;
    while (lo < hi) {
        const uint32_t mid = lo + (hi - lo) / 2;
        if (keys[mid] < key)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

// a + b rounded to T: the f32 sum of two f16/bf16 values rounded once more is the correctly
// rounded sum (f32 carries more than twice their precision), as on the CPU (which adds in f64).
template <typename T> __device__ __forceinline__ T add_rounded(T a, T b) {
    return Num<T>::down(Num<T>::up(a) + Num<T>::up(b));
}

#define SORTED_SUM_KERNELS(SUFFIX, T)                                                               \
    extern "C" __global__ void index_grad_##SUFFIX(uint64_t total, uint64_t rows, uint64_t inner,  \
                                                   uint32_t n, const int64_t *keys,                \
                                                   const int64_t *perm, const T *grad, T *out) {   \
        for (uint64_t at = (uint64_t)blockIdx.x * blockDim.x + threadIdx.x; at < total;            \
             at += (uint64_t)blockDim.x * gridDim.x) {                                             \
            const uint64_t e = at % inner, r = (at / inner) % rows, o = at / (inner * rows);       \
            const uint32_t end = lower_bound(keys, n, (int64_t)r + 1);                             \
            T acc = Num<T>::down(0.0f);                                                            \
            for (uint32_t s = lower_bound(keys, n, (int64_t)r); s < end; ++s)                      \
                acc = add_rounded(acc, grad[(o * n + perm[s]) * inner + e]);                       \
            out[at] = acc;                                                                         \
        }                                                                                          \
    }                                                                                              \
    extern "C" __global__ void scatter_add_runs_##SUFFIX(uint32_t n, const int64_t *keys,          \
                                                         const int64_t *perm, Geometry g,          \
                                                         const T *values, uint64_t sentinel,       \
                                                         T *out) {                                 \
        GRID_STRIDE(s, n) {                                                                        \
            const int64_t key = keys[s];                                                           \
            if ((uint64_t)key == sentinel || (s > 0 && keys[s - 1] == key)) continue;              \
            T acc = out[key];                                                                      \
            for (uint32_t t = s; t < n && keys[t] == key; ++t) {                                   \
                uint64_t off[3];                                                                   \
                element_offsets<3>(g, (uint32_t)perm[t], off);                                     \
                acc = add_rounded(acc, values[off[2]]);                                            \
            }                                                                                      \
            out[key] = acc;                                                                        \
        }                                                                                          \
    }

SORTED_SUM_KERNELS(f32, float)
SORTED_SUM_KERNELS(f64, double)
SORTED_SUM_KERNELS(f16, __half)
SORTED_SUM_KERNELS(bf16, __nv_bfloat16)
