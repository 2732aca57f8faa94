// Indexing by i64 index views: gather (and index_select, a gather with a broadcast index) and
// scatter with replace or add.
//
// Every kernel walks the positions of the index view (row-major, `n` of them) through a Geometry
// and checks each index against `bound`; the first bad position (lowest, so the one the CPU
// reports) and its index are recorded in the failure slot `*bad` (common.cuh's record_bad) and
// that position is skipped, so no out-of-range address is ever touched.
//
// gather_b<bytes>(n, g, src, idx, out, step, bound, bad)
//   g: 0 = src view with the gathered dim's stride 0, 1 = index view; out is contiguous.
//   out[i] = src[off0 + idx[off1] * step].
// scatter_claim(n, g, idx, step, bound, bad, winner)
//   g: 0 = target offsets in the (contiguous) output with the dim's stride 0, 1 = index view.
//   winner[target] = max(i + 1) over positions writing to it: the last write in row-major order,
//   which is the one the CPU keeps, so scatter-replace is deterministic.
// scatter_b<bytes>(n, g, values, idx, out, step, bound, bad, winner)
//   g: 0 = target, 1 = index view, 2 = values view. Writes values where winner[target] == i + 1,
//   or unconditionally when winner is null (no two positions can share a target).
// scatter_add_i64(n, g, values, idx, out, step, bound, bad)
//   atomicAdd into the output (wrapping, as unsigned; integer sums do not depend on the order).
//   Float scatter-adds sum in position order instead (sorted_sum.cu).
#include "index_check.cuh"

#define GATHER_KERNEL(BYTES, T)                                                                   \
    extern "C" __global__ void gather_b##BYTES(uint32_t n, Geometry g, const T *src,              \
                                               const int64_t *idx, T *out, uint64_t step,         \
                                               uint64_t bound, unsigned long long *bad) {         \
        GRID_STRIDE(i, n) {                                                                       \
            uint64_t off[2];                                                                      \
            element_offsets<2>(g, i, off);                                                        \
            const int64_t j = checked_index(idx, off[1], i, bound, bad);                          \
            if (j >= 0) out[i] = src[off[0] + (uint64_t)j * step];                                \
        }                                                                                         \
    }

extern "C" __global__ void scatter_claim(uint32_t n, Geometry g, const int64_t *idx, uint64_t step,
                                         uint64_t bound, unsigned long long *bad,
                                         unsigned long long *winner) {
    GRID_STRIDE(i, n) {
        uint64_t off[2];
        element_offsets<2>(g, i, off);
        const int64_t j = checked_index(idx, off[1], i, bound, bad);
        if (j >= 0) atomicMax(&winner[off[0] + (uint64_t)j * step], (unsigned long long)i + 1ull);
    }
}

#define SCATTER_KERNEL(BYTES, T)                                                                  \
    extern "C" __global__ void scatter_b##BYTES(uint32_t n, Geometry g, const T *values,          \
                                                const int64_t *idx, T *out, uint64_t step,        \
                                                uint64_t bound, unsigned long long *bad,          \
                                                const unsigned long long *winner) {               \
        GRID_STRIDE(i, n) {                                                                       \
            uint64_t off[3];                                                                      \
            element_offsets<3>(g, i, off);                                                        \
            const int64_t j = checked_index(idx, off[1], i, bound, bad);                          \
            if (j < 0) continue;                                                                  \
            const uint64_t target = off[0] + (uint64_t)j * step;                                  \
            if (winner == nullptr || winner[target] == (unsigned long long)i + 1ull)              \
                out[target] = values[off[2]];                                                     \
        }                                                                                         \
    }

GATHER_KERNEL(1, uint8_t)
GATHER_KERNEL(2, uint16_t)
GATHER_KERNEL(4, uint32_t)
GATHER_KERNEL(8, uint64_t)
SCATTER_KERNEL(1, uint8_t)
SCATTER_KERNEL(2, uint16_t)
SCATTER_KERNEL(4, uint32_t)
SCATTER_KERNEL(8, uint64_t)

__device__ __forceinline__ void atomic_add(int64_t *p, int64_t v) {
    atomicAdd((unsigned long long *)p, (unsigned long long)v);
}

#define SCATTER_ADD_KERNEL(SUFFIX, T)                                                             \
    extern "C" __global__ void scatter_add_##SUFFIX(uint32_t n, Geometry g, const T *values,      \
                                                    const int64_t *idx, T *out, uint64_t step,    \
                                                    uint64_t bound, unsigned long long *bad) {    \
        GRID_STRIDE(i, n) {                                                                       \
            uint64_t off[3];                                                                      \
            element_offsets<3>(g, i, off);                                                        \
            const int64_t j = checked_index(idx, off[1], i, bound, bad);                          \
            if (j >= 0) atomic_add(&out[off[0] + (uint64_t)j * step], values[off[2]]);            \
        }                                                                                         \
    }

SCATTER_ADD_KERNEL(i64, int64_t)
