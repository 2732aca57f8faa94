// The bounds check every index kernel shares (index.cu, sorted_sum.cu).
#pragma once
#include "common.cuh"

// The index at position i, or -1 (recording it in the failure slot `bad`) when it is outside
// [0, bound).
__device__ __forceinline__ int64_t checked_index(const int64_t *idx, uint64_t off, uint32_t i, uint64_t bound,
                                                 unsigned long long *bad) {
    const int64_t j = idx[off];
    if (j < 0 || (uint64_t)j >= bound) {
        record_bad(bad, i, j);
        return -1;
    }
    return j;
}
