// The multi-tensor launch's table of dense runs (sinew-cuda's ops/step_table.rs mirrors it),
// shared by the fused optimizer steps (fused_step.cu) and the multi-tensor casts (cast.cu).
#pragma once
#include "common.cuh"

// The elements a thread updates: first, first + stride, ... below n. A single-tensor kernel's
// threads cover one tensor (whole()); a multi-tensor kernel's blocks split among the tensors of
// its table (in_table()).
struct Span {
    uint32_t first, stride, n;
};
#define SPAN_LOOP(i, s) for (uint32_t i = (s).first; i < (s).n; i += (s).stride)

__device__ __forceinline__ Span whole(uint32_t n) {
    return Span{blockIdx.x * blockDim.x + threadIdx.x, blockDim.x * gridDim.x, n};
}

// Up to STEP_TABLE_LEN parameters of one multi-tensor launch (sinew-cuda's StepTable, the same
// layout): parameter j has n[j] elements at p[j], its state buffers at slot0..slot2[j] (in the
// order of the single-tensor kernel's buffer arguments; 0 for a slot the step does not use), its
// gradient at g[j], and is updated by blocks start[j] to start[j + 1] - 1. When skip is not 0 it
// is the address of an f32 flag (the loss scaler's inf/NaN flag, set by amp_unscale): if the
// flag is non-zero the launch writes nothing.
#define STEP_TABLE_LEN 32
struct StepTable {
    uint64_t p[STEP_TABLE_LEN], slot0[STEP_TABLE_LEN], slot1[STEP_TABLE_LEN], slot2[STEP_TABLE_LEN],
        g[STEP_TABLE_LEN];
    uint64_t skip;
    uint32_t n[STEP_TABLE_LEN];
    uint32_t start[STEP_TABLE_LEN + 1];
    uint32_t count;
};

// The parameter of `t` this block updates, and this thread's elements of it (none when the
// table's skip flag is set).
__device__ __forceinline__ Span in_table(const StepTable &t, uint32_t &j) {
    j = 0;
    while (j + 1 < t.count && blockIdx.x >= t.start[j + 1]) ++j;
    const uint32_t blocks = t.start[j + 1] - t.start[j];
    const bool skipped = t.skip != 0 && *(const float *)t.skip != 0.0f;
    return Span{(blockIdx.x - t.start[j]) * blockDim.x + threadIdx.x, blocks * blockDim.x,
                skipped ? 0u : t.n[j]};
}
