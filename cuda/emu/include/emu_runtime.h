// The CUDA device language on the CPU, for `cargo xtask cuda-emu`: each kernel file of cuda/ is
// compiled by the host C++ compiler with this header forced in front, and the fake driver
// (driver.cpp) runs a launch's blocks one after another, each block's threads as fibers.
// Built-ins (threadIdx, __syncthreads, warp shuffles, atomics, the _rn arithmetic) and the
// tensor-core instructions the GEMM kernels use (cp.async, ldmatrix, mma.sync, wgmma, mbarriers,
// TMA tensor loads) are implemented with their documented semantics; floating point is IEEE
// with no contraction, as the kernels' explicit roundings assume. Slow and only for checking
// kernels' logic.
#pragma once
#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <type_traits>

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __launch_bounds__(...)
#define __shared__ static
#define __align__(n) __attribute__((aligned(n)))
#define __restrict__

struct dim3 {
    uint32_t x = 1, y = 1, z = 1;
};

namespace emu {
// This thread's coordinates, and the launch's (one launch runs at a time).
extern thread_local dim3 thread_idx;
extern thread_local dim3 block_idx;
extern dim3 block_dim;
extern dim3 grid_dim;
// Every thread of the block / of this thread's warp arrives before any leaves.
void sync_block();
void sync_warp();
// Warp exchange: this lane offers `bits`, then reads lane `src`'s offer (its own when `src` is
// outside the warp or past its last thread).
uint64_t exchange(uint64_t bits, int src);
// Warp gather: this lane offers `n` words; `all[l * n + i]` receives lane l's word i (lanes past
// the warp's last thread give zeros).
void gather(const uint64_t *mine, int n, uint64_t *all);
// Linear thread index in the block, and lane.
uint32_t linear_thread();
inline uint32_t lane() { return linear_thread() & 31u; }
// The launch's dynamic shared memory (`extern __shared__`): one buffer aligned to 256 KiB (so
// the low 18 bits of an address are its shared-window offset), poisoned with 0xff bytes at each
// launch that asks for any.
unsigned char *dynamic_shared();
// Bytes of dynamic shared memory the running launch asked for.
uint32_t dynamic_shared_bytes();
// Most dynamic shared memory a launch may ask for (an H100's opt-in limit).
constexpr uint32_t DYNAMIC_SHARED_MAX = 227u << 10;
// mbarriers (the 8 shared bytes at `bar`; their state is kept aside): init with the arrivals a
// phase waits for; an arrival that also expects `tx_bytes` of transactions; transactions
// completing (TMA); whether the phase of parity `parity` has completed (if not, the thread
// yields to the others first: a caller polls in a loop, and a block whose threads all poll
// without any barrier moving is reported as a deadlock).
// SINEW_EMU_LOSE_TMA set: TMA copies land but never complete their bytes on the mbarrier (a
// pipeline that stalls, to check that a kernel's bounded waits end it), and threads may poll
// without end.
bool lose_tma();
void mbarrier_init(void *bar, uint32_t count);
void mbarrier_arrive(void *bar, uint32_t tx_bytes);
void mbarrier_complete_tx(void *bar, uint32_t bytes);
bool mbarrier_try_wait(void *bar, uint32_t parity);
// One global lock for atomics.
void lock_atomics();
void unlock_atomics();
}  // namespace emu

// A TMA tensor map as the emulated cuTensorMapEncodeTiled writes it into CUtensorMap's 128
// opaque bytes: global address, sizes and byte strides (innermost first; strides[0] is the
// element size), box sizes, the 16-byte-chunk swizzle span in bytes (0, 32, 64 or 128).
constexpr uint64_t EMU_TENSOR_MAP_MAGIC = 0x70616d726f736e74ull;  // "tnsormap"
struct EmuTensorMap {
    uint64_t magic;
    uint64_t address;
    uint64_t dims[5];
    uint64_t strides[5];
    uint32_t box[5];
    uint32_t rank, elem_bytes, swizzle_bytes;
};
static_assert(sizeof(EmuTensorMap) == 128, "a CUtensorMap is 128 bytes");

#define __grid_constant__
#define threadIdx (emu::thread_idx)
#define blockIdx (emu::block_idx)
#define blockDim (emu::block_dim)
#define gridDim (emu::grid_dim)

inline void __syncthreads() { emu::sync_block(); }
inline void __syncwarp(unsigned = 0xffffffffu) { emu::sync_warp(); }
// Loads past L1 are plain loads here (one memory).
template <typename T> inline T __ldcg(const T *p) { return *p; }
// Blocks run one after another on one OS thread: a fence only has to stop compiler reordering.
inline void __threadfence() { std::atomic_signal_fence(std::memory_order_seq_cst); }

template <typename T> inline uint64_t emu_bits(T v) {
    static_assert(sizeof(T) <= 8, "shuffles move at most 8 bytes");
    uint64_t b = 0;
    std::memcpy(&b, &v, sizeof(T));
    return b;
}
template <typename T> inline T emu_from_bits(uint64_t b) {
    T v;
    std::memcpy(&v, &b, sizeof(T));
    return v;
}
template <typename T> inline T __shfl_sync(unsigned, T v, int src, int width = 32) {
    const int lane = (int)emu::lane();
    const int base = lane - lane % width;
    return emu_from_bits<T>(emu::exchange(emu_bits(v), base + src % width));
}
template <typename T> inline T __shfl_xor_sync(unsigned, T v, int mask, int width = 32) {
    const int lane = (int)emu::lane();
    int src = lane ^ mask;
    if (src / width != lane / width) src = lane;
    return emu_from_bits<T>(emu::exchange(emu_bits(v), src));
}
template <typename T> inline T __shfl_down_sync(unsigned, T v, unsigned delta, int width = 32) {
    const int lane = (int)emu::lane();
    int src = lane + (int)delta;
    if (src / width != lane / width) src = lane;
    return emu_from_bits<T>(emu::exchange(emu_bits(v), src));
}

template <typename T> inline T emu_atomic(T *p, T v, int op) {
    emu::lock_atomics();
    const T old = *p;
    if (op == 0) *p = (T)(old + v);
    else if (op == 1) *p = v < old ? v : old;
    else *p = v > old ? v : old;
    emu::unlock_atomics();
    return old;
}
template <typename T> inline T atomicAdd(T *p, T v) { return emu_atomic(p, v, 0); }
template <typename T> inline T atomicMin(T *p, T v) { return emu_atomic(p, v, 1); }
template <typename T> inline T atomicMax(T *p, T v) { return emu_atomic(p, v, 2); }

inline float __fmul_rn(float a, float b) { return a * b; }
inline float __fadd_rn(float a, float b) { return a + b; }
inline double __dmul_rn(double a, double b) { return a * b; }
inline double __dadd_rn(double a, double b) { return a + b; }
inline uint32_t __umulhi(uint32_t a, uint32_t b) { return (uint32_t)(((uint64_t)a * b) >> 32); }
inline float rsqrtf(float x) { return 1.0f / std::sqrt(x); }
inline double rsqrt(double x) { return 1.0 / std::sqrt(x); }
using std::erf;
using std::isfinite;
using std::isinf;
using std::isnan;
using std::floor;
using std::ceil;
using std::trunc;
using std::round;
using std::sin;
using std::cos;
using std::fmod;
using std::nearbyint;
using std::rint;
using std::erfc;
using std::exp;
using std::expm1;
using std::fabs;
using std::fmax;
using std::fmin;
using std::log;
using std::log1p;
using std::pow;
using std::sqrt;
using std::tanh;
// Shared-memory addresses are plain host addresses here.
inline uint64_t __cvta_generic_to_shared(const void *p) { return (uint64_t)(uintptr_t)p; }

// Vector types (16-byte ones aligned as on the device, so reinterpret_cast loads match).
struct uint2 {
    uint32_t x, y;
};
struct alignas(16) uint4 {
    uint32_t x, y, z, w;
};
struct alignas(8) float2 {
    float x, y;
};
struct alignas(16) float4 {
    float x, y, z, w;
};
struct alignas(16) int4 {
    int32_t x, y, z, w;
};
inline uint2 make_uint2(uint32_t x, uint32_t y) { return uint2{x, y}; }
inline uint4 make_uint4(uint32_t x, uint32_t y, uint32_t z, uint32_t w) { return uint4{x, y, z, w}; }
inline float2 make_float2(float x, float y) { return float2{x, y}; }
inline float4 make_float4(float x, float y, float z, float w) { return float4{x, y, z, w}; }
inline int4 make_int4(int32_t x, int32_t y, int32_t z, int32_t w) { return int4{x, y, z, w}; }

// CUDA's integer and float min/max overloads.
template <typename T, typename U> inline auto min(T a, U b) -> std::common_type_t<T, U> {
    return b < a ? b : a;
}
template <typename T, typename U> inline auto max(T a, U b) -> std::common_type_t<T, U> {
    return a < b ? b : a;
}
