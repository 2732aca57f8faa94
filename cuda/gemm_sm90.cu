// The Hopper GEMM (PTX target sm_90a, loaded only on compute capability 9.0): matmul_sm90_<f16|bf16>
// and their _f32-writing twins, for f16/bf16 operands that TMA can load (16-byte aligned, a unit
// stride on one axis, the other strides multiples of 16 bytes, one regular batch stride or
// none): any m, n and k. Every other shape, and every other GPU, runs gemm_tc.cuh's mma.sync
// kernel.
// 128x256x64 block tiles on a persistent grid, and warp specialisation: warpgroup 0 is the producer, one thread of it
// issuing the TMA loads (cp.async.bulk.tensor) of each k-tile into a 4-stage ring; warpgroups 1
// and 2 are the consumers, each computing 64 rows x 256 columns with wgmma.mma_async m64n256k16
// (f32 accumulation, 128 registers a thread) straight from shared memory. A stage passes
// between them by two mbarriers: `full` (the producer's expected bytes, completed by the TMA
// unit) and `empty` (one arrival per consumer warpgroup once its multiplies of that stage are
// done). TMA writes the canonical 128-byte-swizzled layout wgmma reads: K-major ([rows][64 k],
// the 16-byte chunk c of row r at c ^ (r % 8)) when k is the operand's unit stride, else MN-major
// ([64 k][64 rows] boxes, 64 rows each), read transposed. Loads past the operands' edges are
// zero-filled by TMA, so edges cost nothing but the guarded stores. Every mbarrier wait is
// bounded: a pipeline that never completes (a GPU that disagrees with this file) ends instead of
// hanging, and its outputs are NaN, which the first-use check sees.
#include "gemm_tc.cuh"

// The 128-byte tensor map (CUtensorMap) the host encodes with cuTensorMapEncodeTiled.
struct alignas(64) TensorMap {
    unsigned long long opaque[16];
};

namespace wg {
constexpr int BM = 128, BN = 256, BK = 64, STAGES = 4;
constexpr uint32_t A_BYTES = BM * BK * 2, B_BYTES = BN * BK * 2;  // one stage's operand tiles
// Dynamic shared memory: STAGES * (A_BYTES + B_BYTES) for the ring, 2 * STAGES mbarriers of 8
// bytes, 1 KiB to align the ring to the swizzle pattern's period: 197696 bytes,
// `ops::gemm_sm90::SHARED_BYTES` on the host.
#ifdef SINEW_EMU
// The CPU emulator's wgmma, mbarriers, TMA and fences (`cargo xtask cuda-emu`).
#include "emu_wgmma.h"
#else
#include "gemm_sm90_ptx.cuh"
#endif

// A shared-memory matrix descriptor with 128-byte swizzling: start address, leading and stride
// byte offsets (each encoded as (x & 0x3FFFF) >> 4), base offset 0 (stage tiles are 1 KiB
// aligned).
__device__ __forceinline__ uint64_t desc(uint32_t addr, uint32_t lbo, uint32_t sbo) {
    return (uint64_t)((addr & 0x3FFFFu) >> 4) | ((uint64_t)((lbo & 0x3FFFFu) >> 4) << 16) |
           ((uint64_t)((sbo & 0x3FFFFu) >> 4) << 32) | (1ull << 62);
}

// The descriptor of k-step j (16 k) of a stage tile at shared address `tile`, from its row (or
// column) `x0`, a multiple of 64. K-major: rows 8 apart are 1 KiB apart (SBO; LBO is unused);
// MN-major: k-rows 8 apart are 1 KiB apart (SBO), 64-row boxes 8 KiB (LBO).
template <bool K_MAJOR> __device__ __forceinline__ uint64_t tile_desc(uint32_t tile, int x0, int j) {
    if (K_MAJOR) return desc(tile + x0 * BK * 2 + j * 32, 16, 1024);
    return desc(tile + x0 * BK * 2 + j * 16 * 64 * 2, 64 * BK * 2, 1024);
}

// One operand's rows x0..x0+ROWS of k-tile kt into the stage at `dst`, completing on `bar`: one
// box when k is the unit stride (K_MAJOR, [k, rows, batch] map), else ROWS / 64 boxes of
// [64 rows][64 k] ([rows, k, batch] map).
template <bool K_MAJOR, int ROWS>
__device__ __forceinline__ void load_operand(uint32_t dst, const TensorMap &map, uint32_t x0, int kt, uint32_t z,
                                             uint32_t bar) {
    if (K_MAJOR) {
        tma_load_3d(dst, &map, kt * BK, x0, z, bar);
    } else {
#pragma unroll
        for (int h = 0; h < ROWS / 64; ++h) tma_load_3d(dst + h * 64 * BK * 2, &map, x0 + h * 64, kt * BK, z, bar);
    }
}

// The product's output tiles, (batch, row tile, column tile) with column tiles fastest. The grid
// is persistent (one block per SM, each taking every gridDim.x-th tile from blockIdx.x), so the
// producer loads a block's next tile while its consumers store the last one.
struct Tile {
    uint32_t batch, m0, n0;
};
__device__ __forceinline__ uint32_t tile_count(const GemmArgs &p) {
    return p.batch * ((p.m + BM - 1) / BM) * ((p.n + BN - 1) / BN);
}
__device__ __forceinline__ Tile tile_at(const GemmArgs &p, uint32_t t) {
    const uint32_t cols = (p.n + BN - 1) / BN, per_batch = cols * ((p.m + BM - 1) / BM);
    const uint32_t r = t % per_batch;
    return Tile{t / per_batch, r / cols * BM, r % cols * BN};
}

// The producer: one thread queues every k-tile of this block's tiles, a stage at a time, once
// both consumers have released it and its previous loads have completed. It stops at a wait
// that gives up (so it never arrives on a phase still waiting for bytes); the consumers' waits
// for the stages it did not fill then give up too.
template <bool A_KM, bool B_KM>
__device__ __forceinline__ void produce(const TensorMap &ta, const TensorMap &tb, uint32_t ring, uint32_t bars,
                                        const GemmArgs &p, uint32_t batched) {
    const int KT = (int)((p.k + BK - 1) / BK);
    const uint32_t tiles = tile_count(p);
    uint32_t it = 0;
    for (uint32_t t = blockIdx.x; t < tiles; t += gridDim.x) {
        const Tile tile = tile_at(p, t);
        const uint32_t za = (batched & 1u) ? tile.batch : 0, zb = (batched & 2u) ? tile.batch : 0;
        for (int kt = 0; kt < KT; ++kt, ++it) {
            const uint32_t s = it % STAGES;
            const uint32_t full = bars + s * 8, empty = bars + (STAGES + s) * 8;
            // A fresh barrier counts as having completed the phase before its first: the first
            // pass over the ring does not wait.
            const uint32_t before = ((it / STAGES) & 1u) ^ 1u;
            if (!wait_phase(empty, before, true) || (it >= STAGES && !wait_phase(full, before, true))) return;
            mbar_arrive_expect_tx(full, A_BYTES + B_BYTES);
            const uint32_t a_dst = ring + s * A_BYTES, b_dst = ring + STAGES * A_BYTES + s * B_BYTES;
            load_operand<A_KM, BM>(a_dst, ta, tile.m0, kt, za, full);
            load_operand<B_KM, BN>(b_dst, tb, tile.n0, kt, zb, full);
        }
    }
}

// A consumer warpgroup (`group` 0 or 1: rows 64 * group.. of the block tile): multiplies each
// stage once it is full, releases it once those multiplies are done, then stores its 64x256
// tile. A wait that gives up does not change the warpgroup's instructions (wgmma needs all its
// threads), only what it stores: NaN everywhere.
template <typename T, typename TO, bool A_KM, bool B_KM>
__device__ __forceinline__ void consume(TO *C, uint32_t ring, uint32_t bars, const GemmArgs &p, int group) {
    const int warp = (threadIdx.x >> 5) & 3, lane = threadIdx.x & 31;
    const bool leader = (threadIdx.x & 127) == 0;
    const int KT = (int)((p.k + BK - 1) / BK);
    const uint32_t tiles = tile_count(p);
    bool ok = true;
    uint32_t it = 0;
    for (uint32_t t = blockIdx.x; t < tiles; t += gridDim.x) {
        const Tile tile = tile_at(p, t);
        float acc[128];
#pragma unroll
        for (int i = 0; i < 128; ++i) acc[i] = 0.0f;
        fence_acc(acc);
        for (int kt = 0; kt < KT; ++kt, ++it) {
            const uint32_t s = it % STAGES;
            // After one wait has given up, the rest only look (the pipeline is broken).
            ok &= wait_phase(bars + s * 8, (it / STAGES) & 1u, ok);
            const uint32_t at = ring + s * A_BYTES, bt = ring + STAGES * A_BYTES + s * B_BYTES;
            wgmma_fence();
#pragma unroll
            for (int j = 0; j < BK / 16; ++j)
                Wgmma<T>::template run<!A_KM, !B_KM>(acc, tile_desc<A_KM>(at, group * 64, j), tile_desc<B_KM>(bt, 0, j));
            wgmma_commit();
            // The multiplies of the previous k-tile are done: its stage goes back to the producer.
            wgmma_wait<1>();
            if (kt > 0 && leader) mbar_arrive(bars + (STAGES + (it - 1) % STAGES) * 8);
        }
        wgmma_wait<0>();
        fence_acc(acc);
        if (KT > 0 && leader) mbar_arrive(bars + (STAGES + (it - 1) % STAGES) * 8);
        // Accumulator i of this thread: row 16 * warp + lane / 4 (+ 8 for i % 4 >= 2) of the
        // warpgroup's 64, column 8 * (i / 4) + 2 * (lane % 4) + i % 2.
        TO *c = C + (uint64_t)tile.batch * p.m * p.n;
        const uint32_t row0 = tile.m0 + group * 64 + warp * 16 + (lane >> 2);
        const bool pairs = (p.n & 1u) == 0;  // every even column's output 4- or 8-byte aligned
#pragma unroll
        for (int j = 0; j < BN / 8; ++j) {
            const uint32_t col = tile.n0 + j * 8 + (lane & 3) * 2;
#pragma unroll
            for (int h = 0; h < 2; ++h) {
                const uint32_t row = row0 + h * 8;
                if (row >= p.m || col >= p.n) continue;
                float v[2] = {acc[4 * j + 2 * h], acc[4 * j + 2 * h + 1]};
#pragma unroll
                for (int t = 0; t < 2; ++t) {
                    if (p.epilogue) v[t] = epilogue<TO, T>(v[t], p, col + t);
                    if (!ok) v[t] = quiet_nan();
                }
                TO *out = c + (uint64_t)row * p.n + col;
                if (pairs && col + 1 < p.n) {
                    tcf::Pair<TO>::store(out, v[0], v[1]);
                } else {
                    out[0] = Num<TO>::down(v[0]);
                    if (col + 1 < p.n) out[1] = Num<TO>::down(v[1]);
                }
            }
        }
    }
}

template <typename T, typename TO, bool A_KM, bool B_KM>
__device__ __forceinline__ void gemm(unsigned char *dyn, const TensorMap &ta, const TensorMap &tb, TO *C,
                                     const GemmArgs &p, uint32_t batched) {
    // The ring starts on a 1 KiB boundary (the swizzle pattern's period); the mbarriers follow.
    const uint32_t ring = tcf::smem_u32(dyn + ((1024u - (tcf::smem_u32(dyn) & 1023u)) & 1023u));
    const uint32_t bars = ring + STAGES * (A_BYTES + B_BYTES);
    if (threadIdx.x == 0) {
        for (int s = 0; s < STAGES; ++s) {
            mbar_init(bars + s * 8, 1);                 // full: the producer's arrival + the bytes
            mbar_init(bars + (STAGES + s) * 8, 2);      // empty: one arrival per consumer warpgroup
        }
        mbar_init_fence();
    }
    __syncthreads();
    // No block-wide barrier past this point: the producer warpgroup's other threads leave now.
    const int role = threadIdx.x >> 7;
    if (role == 0) {
        setmaxnreg_dec<40>();
        if (threadIdx.x == 0) produce<A_KM, B_KM>(ta, tb, ring, bars, p, batched);
    } else {
        setmaxnreg_inc<232>();
        consume<T, TO, A_KM, B_KM>(C, ring, bars, p, role - 1);
    }
}

template <typename T, typename TO>
__device__ __forceinline__ void dispatch(const TensorMap &ta, const TensorMap &tb, TO *C, const GemmArgs &p,
                                         uint32_t batched) {
#ifdef SINEW_EMU
    unsigned char *dyn = emu::dynamic_shared();
#else
    extern __shared__ __align__(1024) unsigned char dyn[];
#endif
    const bool a_km = p.a_cs == 1, b_km = p.b_cs != 1;
    if (a_km) {
        if (b_km)
            gemm<T, TO, true, true>(dyn, ta, tb, C, p, batched);
        else
            gemm<T, TO, true, false>(dyn, ta, tb, C, p, batched);
    } else {
        if (b_km)
            gemm<T, TO, false, true>(dyn, ta, tb, C, p, batched);
        else
            gemm<T, TO, false, false>(dyn, ta, tb, C, p, batched);
    }
}
}  // namespace wg

// ta, tb: A's and B's tensor maps ([k, m, batch] / [m, k, batch] for A by its unit stride, and
// likewise for B with n); C: the contiguous [batch, m, n] output; `batched`: bit 0 = A has a
// batch stride (else every batch reads its batch 0), bit 1 = B.
extern "C" __global__ void __launch_bounds__(384, 1)
    matmul_sm90_f16(const __grid_constant__ TensorMap ta, const __grid_constant__ TensorMap tb, __half *C,
                    GemmArgs p, uint32_t batched) {
    wg::dispatch<__half, __half>(ta, tb, C, p, batched);
}

extern "C" __global__ void __launch_bounds__(384, 1)
    matmul_sm90_bf16(const __grid_constant__ TensorMap ta, const __grid_constant__ TensorMap tb,
                     __nv_bfloat16 *C, GemmArgs p, uint32_t batched) {
    wg::dispatch<__nv_bfloat16, __nv_bfloat16>(ta, tb, C, p, batched);
}

extern "C" __global__ void __launch_bounds__(384, 1)
    matmul_sm90_f16_f32(const __grid_constant__ TensorMap ta, const __grid_constant__ TensorMap tb, float *C,
                        GemmArgs p, uint32_t batched) {
    wg::dispatch<__half, float>(ta, tb, C, p, batched);
}

extern "C" __global__ void __launch_bounds__(384, 1)
    matmul_sm90_bf16_f32(const __grid_constant__ TensorMap ta, const __grid_constant__ TensorMap tb, float *C,
                         GemmArgs p, uint32_t batched) {
    wg::dispatch<__nv_bfloat16, float>(ta, tb, C, p, batched);
}
