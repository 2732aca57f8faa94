// Reductions across blocks finished in the same kernel by the block that arrives last
// (crates/sinew-cuda/src/tickets.rs owns the counters): each block stores its partial result,
// then every thread calls last_to_arrive, which makes those stores visible to the whole device
// and takes the block's ticket from tickets[group]. It returns true, in every thread, only in the
// last of the group's `blocks` blocks to arrive; that block reads the partials with fresh_load
// (`ld.global.cg`: from L2, past this multiprocessor's L1, which may hold stale lines; not
// volatile, so a loop's loads can be in flight together), adds them in a fixed order and calls
// reset_ticket so the next launch finds the counter at 0 again.
#pragma once
#include "common.cuh"

__device__ __forceinline__ bool last_to_arrive(unsigned long long *tickets, uint64_t group, uint32_t blocks) {
    __shared__ bool last;
    __threadfence();
    __syncthreads();
    if (threadIdx.x == 0 && threadIdx.y == 0 && threadIdx.z == 0)
        last = atomicAdd(&tickets[group], 1ull) == (unsigned long long)blocks - 1ull;
    __syncthreads();
    if (last) __threadfence();
    return last;
}

__device__ __forceinline__ void reset_ticket(unsigned long long *tickets, uint64_t group) {
    if (threadIdx.x == 0 && threadIdx.y == 0 && threadIdx.z == 0) tickets[group] = 0ull;
}

template <typename T> __device__ __forceinline__ T fresh_load(const T *p) { return __ldcg(p); }
