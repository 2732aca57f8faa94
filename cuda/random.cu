// Counter-based random numbers: Philox4x32-10 (Salmon et al. 2011), the same bits as
// sinew-tensor's `philox` module, so a GPU draw equals the CPU's for the same key.
// Element i of a draw is lane i % 4 of the block for counter [i / 4 (low), i / 4 (high), 0, 0]
// under key [key (low), key (high)]; a word w becomes the f32 (w >> 8) * 2^-24 in [0, 1).
#include "common.cuh"

__device__ __forceinline__ uint4 philox4x32_10(uint4 c, uint2 k) {
#pragma unroll
    for (int round = 0; round < 10; ++round) {
        if (round > 0) {
            k.x += 0x9E3779B9u;
            k.y += 0xBB67AE85u;
        }
        const uint32_t hi0 = __umulhi(0xD2511F53u, c.x), lo0 = 0xD2511F53u * c.x;
        const uint32_t hi1 = __umulhi(0xCD9E8D57u, c.z), lo1 = 0xCD9E8D57u * c.z;
        c = make_uint4(hi1 ^ c.y ^ k.x, lo1, hi0 ^ c.w ^ k.y, lo0);
    }
    return c;
}

// The top 24 bits of w times 2^-24: exact in f32, uniform on [0, 1).
__device__ __forceinline__ float unit_f32(uint32_t w) { return (float)(w >> 8) * (1.0f / 16777216.0f); }

// out[0 .. len): one Philox block (four elements) per thread and grid-stride step; `out` is the
// start of an allocation (256-byte aligned), so the four-element stores are aligned.
extern "C" __global__ void philox_uniform_f32(float *out, uint64_t len, uint64_t key) {
    const uint2 k = make_uint2((uint32_t)key, (uint32_t)(key >> 32));
    const uint64_t blocks = (len + 3) / 4;
    const uint64_t step = (uint64_t)blockDim.x * gridDim.x;
    for (uint64_t b = (uint64_t)blockIdx.x * blockDim.x + threadIdx.x; b < blocks; b += step) {
        const uint4 r = philox4x32_10(make_uint4((uint32_t)b, (uint32_t)(b >> 32), 0u, 0u), k);
        const float4 u = make_float4(unit_f32(r.x), unit_f32(r.y), unit_f32(r.z), unit_f32(r.w));
        const uint64_t i = 4 * b;
        if (i + 4 <= len) {
            *reinterpret_cast<float4 *>(out + i) = u;
        } else {
            const float lanes[4] = {u.x, u.y, u.z, u.w};
            for (uint64_t j = 0; i + j < len; ++j) out[i + j] = lanes[j];
        }
    }
}
