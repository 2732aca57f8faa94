// The Hopper GEMM (PTX target sm_90a, loaded only on compute capability 9.0): matmul_sm90_<f16|bf16>
// and their _f32-writing twins, for the exact f16/bf16 shapes: m and n multiples of 128, k of 64,
// both operands 16-byte loaded (GemmArgs.vector == 3). Every other shape, and every other GPU,
// runs gemm_tc.cuh's mma.sync kernel.
// 128x128x64 block tiles, 2 warpgroups of 64x128 each issuing wgmma.mma_async m64n128k16 (f32
// accumulation) straight from shared memory, a 6-stage cp.async ring in dynamic shared memory
// (193 KiB; loads run 4 k-tiles ahead of the multiplies). Each operand is staged in the
// 128-byte-swizzled canonical layout of its orientation: K-major ([128 rows][64 k], the 16-byte
// chunk c of row r at c ^ (r % 8)) when k is its unit stride, else MN-major (two [64 k][64 rows]
// halves, the chunk c of k-row kk at c ^ (kk % 8)), which wgmma reads transposed. The store
// stage (epilogue, rounding) is gemm_tc.cuh's.
#include "gemm_tc.cuh"

namespace wg {
constexpr int BM = 128, BN = 128, BK = 64, STAGES = 6, NT = 256;
constexpr int TILE = 128 * BK;  // elements of one operand's stage tile
// Dynamic shared memory: STAGES * 2 * TILE * 2 + 1024 = 197632 bytes (both operands' rings and
// 1 KiB to align them), `ops::gemm_sm90::SHARED_BYTES` on the host.

#ifdef SINEW_EMU
// The CPU emulator's wgmma and fences (`cargo xtask cuda-emu`).
#include "emu_wgmma.h"
#else
__device__ __forceinline__ void fence_proxy_async() { asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory"); }
__device__ __forceinline__ void wgmma_fence() { asm volatile("wgmma.fence.sync.aligned;\n" ::: "memory"); }
__device__ __forceinline__ void wgmma_commit() { asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory"); }
template <int N> __device__ __forceinline__ void wgmma_wait() {
    asm volatile("wgmma.wait_group.sync.aligned %0;\n" ::"n"(N) : "memory");
}

// Pins the accumulators in place around the asynchronous multiplies: the compiler sees each
// register read and written here, so it cannot move the epilogue's reads above wgmma_wait<0>.
__device__ __forceinline__ void fence_acc(float (&d)[64]) {
#pragma unroll
    for (int i = 0; i < 64; ++i) asm volatile("" : "+f"(d[i])::"memory");
}

#define WG_D4(i) "+f"(d[i]), "+f"(d[i + 1]), "+f"(d[i + 2]), "+f"(d[i + 3])
#define WG_D16(i) WG_D4(i), WG_D4(i + 4), WG_D4(i + 8), WG_D4(i + 12)
#define WG_REGS8(a, b, c, e, f, g, h, k)                                                                      \
    "%" #a ", %" #b ", %" #c ", %" #e ", %" #f ", %" #g ", %" #h ", %" #k
#define WG_ACC                                                                                                 \
    "{" WG_REGS8(0, 1, 2, 3, 4, 5, 6, 7) ", " WG_REGS8(8, 9, 10, 11, 12, 13, 14, 15) ", "                     \
        WG_REGS8(16, 17, 18, 19, 20, 21, 22, 23) ", " WG_REGS8(24, 25, 26, 27, 28, 29, 30, 31) ", "          \
        WG_REGS8(32, 33, 34, 35, 36, 37, 38, 39) ", " WG_REGS8(40, 41, 42, 43, 44, 45, 46, 47) ", "          \
        WG_REGS8(48, 49, 50, 51, 52, 53, 54, 55) ", " WG_REGS8(56, 57, 58, 59, 60, 61, 62, 63) "}"

// d (this thread's 64 accumulators of the warpgroup's 64x128 f32 tile) += A (64x16) * B (16x128),
// both read from shared memory through descriptors; TA / TB: the operand is MN-major.
template <typename T> struct Wgmma;
#define WG_MMA(T, PTX_TYPE)                                                                                    \
    template <> struct Wgmma<T> {                                                                              \
        template <int TA, int TB>                                                                              \
        static __device__ __forceinline__ void run(float (&d)[64], uint64_t a, uint64_t b) {                  \
            asm volatile("{\n.reg .pred p;\nsetp.ne.b32 p, %66, 0;\n"                                          \
                         "wgmma.mma_async.sync.aligned.m64n128k16.f32." PTX_TYPE "." PTX_TYPE " " WG_ACC        \
                         ", %64, %65, p, 1, 1, %67, %68;\n}\n"                                                  \
                         : WG_D16(0), WG_D16(16), WG_D16(32), WG_D16(48)                                       \
                         : "l"(a), "l"(b), "r"(1), "n"(TA), "n"(TB));                                          \
        }                                                                                                      \
    };
WG_MMA(__half, "f16")
WG_MMA(__nv_bfloat16, "bf16")
#endif

// A shared-memory matrix descriptor with 128-byte swizzling: start address, leading and stride
// byte offsets (each encoded as (x & 0x3FFFF) >> 4), base offset 0 (stage tiles are 1 KiB
// aligned).
__device__ __forceinline__ uint64_t desc(uint32_t addr, uint32_t lbo, uint32_t sbo) {
    return (uint64_t)((addr & 0x3FFFFu) >> 4) | ((uint64_t)((lbo & 0x3FFFFu) >> 4) << 16) |
           ((uint64_t)((sbo & 0x3FFFFu) >> 4) << 32) | (1ull << 62);
}

// Element offsets in a stage tile. K-major: row r (of 128), chunk c (k / 8, of 8). MN-major: k-row
// kk (of 64), chunk c (row / 8, of 16): the half c / 8, then the swizzled chunk c % 8.
__device__ __forceinline__ int kmajor_off(int r, int c) { return r * BK + ((c ^ (r & 7)) << 3); }
__device__ __forceinline__ int mnmajor_off(int kk, int c) {
    return (c >> 3) * (64 * BK) + kk * 64 + (((c & 7) ^ (kk & 7)) << 3);
}

// One operand's 128x64 tile (rows r0.., k k0..) into a stage by cp.async, 4 chunks of 16 bytes per
// thread: element (r, k) at g[r * stride + k] (K_MAJOR) or g[k * stride + r].
template <bool K_MAJOR, typename T>
__device__ __forceinline__ void load_tile(T *s, const T *g, uint64_t stride, uint32_t r0, uint32_t k0) {
#pragma unroll
    for (int l = 0; l < TILE / 8 / NT; ++l) {
        const int e = threadIdx.x + l * NT;
        if (K_MAJOR) {
            const int r = e >> 3, c = e & 7;
            tcf::cp_async16(tcf::smem_u32(s + kmajor_off(r, c)), g + (uint64_t)(r0 + r) * stride + k0 + c * 8);
        } else {
            const int kk = e >> 4, c = e & 15;
            tcf::cp_async16(tcf::smem_u32(s + mnmajor_off(kk, c)), g + (uint64_t)(k0 + kk) * stride + r0 + c * 8);
        }
    }
}

// The descriptor of k-step j (16 k) of a stage tile at shared address `tile`: for A, the 64 rows
// of warpgroup `group`; for B, all 128 columns. K-major: rows 8 apart are 1 KiB apart (SBO; LBO is
// unused); MN-major: k-rows 8 apart are 1 KiB apart (SBO), 64-row halves 8 KiB (LBO).
template <bool K_MAJOR> __device__ __forceinline__ uint64_t tile_desc(uint32_t tile, int group, int j) {
    if (K_MAJOR) return desc(tile + group * 64 * BK * 2 + j * 32, 16, 1024);
    return desc(tile + group * 64 * BK * 2 + j * 16 * 64 * 2, 64 * BK * 2, 1024);
}

template <typename T, typename TO, bool A_KM, bool B_KM>
__device__ __forceinline__ void gemm(unsigned char *dyn, const T *A, const T *B, TO *C, const GemmArgs &p) {
    // The stage tiles start on a 1 KiB boundary (the swizzle pattern's period).
    T *smem = reinterpret_cast<T *>(dyn + ((1024u - (tcf::smem_u32(dyn) & 1023u)) & 1023u));
    T *As = smem;
    T *Bs = smem + STAGES * TILE;
    const uint32_t as0 = tcf::smem_u32(As), bs0 = tcf::smem_u32(Bs);
    const int group = threadIdx.x >> 7, warp = (threadIdx.x >> 5) & 3, lane = threadIdx.x & 31;
    const uint32_t m0 = (blockIdx.y + p.row_tile0) * BM, n0 = blockIdx.x * BN;
    const uint64_t a_st = A_KM ? p.a_rs : p.a_cs, b_st = B_KM ? p.b_cs : p.b_rs;
    const int KT = (int)(p.k / BK);
    for (uint32_t batch = blockIdx.z; batch < p.batch; batch += gridDim.z) {
        uint64_t off[2];
        element_offsets<2>(p.batch_geom, batch, off);
        const T *a = A + off[0];
        const T *b = B + off[1];
        float acc[64];
#pragma unroll
        for (int i = 0; i < 64; ++i) acc[i] = 0.0f;
        fence_acc(acc);
        // STAGES - 2 k-tiles ahead: at k-tile kt the loads go to the buffer of kt - 2, which
        // every warpgroup's wgmma has finished reading (wgmma_wait<1> in iteration kt - 1, then
        // the barrier below).
#pragma unroll
        for (int s = 0; s < STAGES - 2; ++s) {
            if (s < KT) {
                load_tile<A_KM>(As + s * TILE, a, a_st, m0, s * BK);
                load_tile<B_KM>(Bs + s * TILE, b, b_st, n0, s * BK);
            }
            tcf::cp_async_commit();
        }
        for (int kt = 0; kt < KT; ++kt) {
            tcf::cp_async_wait<STAGES - 3>();  // this thread's copies of k-tile kt have landed
            fence_proxy_async();               // ... and are visible to wgmma's (async proxy) reads
            __syncthreads();                   // everyone's copies; every wgmma of kt - 2 done
            {
                const int nk = kt + STAGES - 2;
                if (nk < KT) {
                    load_tile<A_KM>(As + (nk % STAGES) * TILE, a, a_st, m0, nk * BK);
                    load_tile<B_KM>(Bs + (nk % STAGES) * TILE, b, b_st, n0, nk * BK);
                }
                tcf::cp_async_commit();
            }
            const uint32_t at = as0 + (kt % STAGES) * TILE * 2, bt = bs0 + (kt % STAGES) * TILE * 2;
            wgmma_fence();
#pragma unroll
            for (int j = 0; j < BK / 16; ++j)
                Wgmma<T>::template run<!A_KM, !B_KM>(acc, tile_desc<A_KM>(at, group, j), tile_desc<B_KM>(bt, 0, j));
            wgmma_commit();
            wgmma_wait<1>();
        }
        wgmma_wait<0>();
        fence_acc(acc);
        tcf::cp_async_wait<0>();
        __syncthreads();  // the next batch's prologue reuses the stages
        // Accumulator i of this thread: row 16 * warp + lane / 4 (+ 8 for i % 4 >= 2) of the
        // warpgroup's 64, column 8 * (i / 4) + 2 * (lane % 4) + i % 2.
        TO *c = C + (uint64_t)batch * p.m * p.n;
        const uint32_t row = m0 + group * 64 + warp * 16 + (lane >> 2);
#pragma unroll
        for (int j = 0; j < BN / 8; ++j) {
            const uint32_t col = n0 + j * 8 + (lane & 3) * 2;
            float v[4] = {acc[4 * j], acc[4 * j + 1], acc[4 * j + 2], acc[4 * j + 3]};
            if (p.epilogue) {
#pragma unroll
                for (int t = 0; t < 4; ++t) v[t] = epilogue<TO>(v[t], p, col + (t & 1));
            }
            tcf::Pair<TO>::store(c + (uint64_t)row * p.n + col, v[0], v[1]);
            tcf::Pair<TO>::store(c + (uint64_t)(row + 8) * p.n + col, v[2], v[3]);
        }
    }
}

template <typename T, typename TO>
__device__ __forceinline__ void dispatch(const T *A, const T *B, TO *C, const GemmArgs &p) {
#ifdef SINEW_EMU
    unsigned char *dyn = emu::dynamic_shared();
#else
    extern __shared__ __align__(1024) unsigned char dyn[];
#endif
    const bool a_km = p.a_cs == 1, b_km = p.b_cs != 1;
    if (a_km) {
        if (b_km)
            gemm<T, TO, true, true>(dyn, A, B, C, p);
        else
            gemm<T, TO, true, false>(dyn, A, B, C, p);
    } else {
        if (b_km)
            gemm<T, TO, false, true>(dyn, A, B, C, p);
        else
            gemm<T, TO, false, false>(dyn, A, B, C, p);
    }
}
}  // namespace wg

extern "C" __global__ void __launch_bounds__(256, 1)
    matmul_sm90_f16(const __half *A, const __half *B, __half *C, GemmArgs p) {
    wg::dispatch<__half, __half>(A, B, C, p);
}

extern "C" __global__ void __launch_bounds__(256, 1)
    matmul_sm90_bf16(const __nv_bfloat16 *A, const __nv_bfloat16 *B, __nv_bfloat16 *C, GemmArgs p) {
    wg::dispatch<__nv_bfloat16, __nv_bfloat16>(A, B, C, p);
}

extern "C" __global__ void __launch_bounds__(256, 1)
    matmul_sm90_f16_f32(const __half *A, const __half *B, float *C, GemmArgs p) {
    wg::dispatch<__half, float>(A, B, C, p);
}

extern "C" __global__ void __launch_bounds__(256, 1)
    matmul_sm90_bf16_f32(const __nv_bfloat16 *A, const __nv_bfloat16 *B, float *C, GemmArgs p) {
    wg::dispatch<__nv_bfloat16, float>(A, B, C, p);
}
