// The GEMM kernels' bodies, instantiated by gemm.cu (output = operands' dtype) and gemm_mixed.cu
// (f16/bf16 operands writing f32; a separate module so its JIT cost is paid only when used).
// Batched matrix products C[b] = act(A[b] @ B[b] + bias) with A [m, k], B [k, n] read through
// arbitrary row and column strides (so transposed views need no copy) and C contiguous
// [batch, m, n]. The epilogue (GemmArgs.epilogue: bias [n] added to every row, then ReLU) runs in
// every kernel's store stage on the f32/f64 accumulator, before the one rounding to the output
// type. matmul_<f16|bf16>_f32 / matmul_fast_<f16|bf16>_f32 write f32 (the accumulator) instead.
// matmul_f32 / matmul_f64: 128x128x8 shared-memory tiles, 256 threads, 8x8 outputs per thread.
// matmul_fast_f32/f16/bf16 (further down): fast paths for tile-multiple shapes; the general
// kernels listed here are the fallback for everything else.
// matmul_f16 / matmul_bf16: tensor cores through WMMA 16x16x16 with f32 accumulation, 128x128x32
// tiles, 8 warps of 32x64; 16-byte loads when an operand's unit-stride axis allows them.
#pragma once
#include "common.cuh"
#include <mma.h>

// Mirrors `sinew_cuda::ops::gemm::GemmArgs` (#[repr(C)]).
struct GemmArgs {
    uint32_t m, n, k, batch;
    uint64_t a_rs, a_cs, b_rs, b_cs;
    // Bit 0: A may be loaded 8 elements at a time along its unit-stride axis; bit 1: B.
    uint32_t vector;
    // matmul_fast_f16/bf16 only: 1 = 64-row block tiles that handle edges (m, n or k not a tile
    // multiple, m not a multiple of 128, or a small problem), 0 = 128-row tiles of exact shapes.
    uint32_t small_m;
    // Epilogue: bias address (its element 0; output dtype) and its stride in elements; bit 0 of
    // `epilogue` = add bias[col], bit 1 = ReLU (NaN kept, like the unary relu).
    uint64_t bias;
    uint64_t bias_stride;
    uint32_t epilogue;
    // matmul_fast_f32 only: 1 = m, n or k is not a tile multiple (loads past the edges read
    // zeros, stores are guarded).
    uint32_t edge;
    // Batch dims: operand 0 = A's offsets, 1 = B's (strides in elements; no contiguous bits).
    Geometry batch_geom;
};

// The epilogue on one accumulator value of output column `col` (TO = the output type, which
// is also the bias type; A = the accumulator type).
template <typename TO, typename A>
__device__ __forceinline__ A epilogue(A v, const GemmArgs &p, uint32_t col) {
    if (p.epilogue & 1u) v += (A)Num<TO>::up(reinterpret_cast<const TO *>(p.bias)[(uint64_t)col * p.bias_stride]);
    if (p.epilogue & 2u) v = (v > (A)0 || v != v) ? v : (A)0;
    return v;
}

template <typename T>
__device__ __forceinline__ void simt_gemm(const T *A, const T *B, T *C, const GemmArgs &p) {
    constexpr int BM = 128, BN = 128, BK = 8;
    __shared__ __align__(16) T As[BK][BM];
    __shared__ __align__(16) T Bs[BK][BN];
    const int tid = threadIdx.x, tx = tid & 15, ty = tid >> 4;
    const uint32_t m0 = blockIdx.y * BM, n0 = blockIdx.x * BN;
    for (uint32_t batch = blockIdx.z; batch < p.batch; batch += gridDim.z) {
        uint64_t off[2];
        element_offsets<2>(p.batch_geom, batch, off);
        const T *a = A + off[0];
        const T *b = B + off[1];
        T acc[8][8];
#pragma unroll
        for (int i = 0; i < 8; ++i)
#pragma unroll
            for (int j = 0; j < 8; ++j) acc[i][j] = T(0);
        for (uint32_t k0 = 0; k0 < p.k; k0 += BK) {
#pragma unroll
            for (int l = 0; l < 4; ++l) {
                const int e = tid + l * 256;
                int mm, kk;
                if (p.a_cs == 1) {
                    kk = e & 7;
                    mm = e >> 3;
                } else {
                    mm = e & 127;
                    kk = e >> 7;
                }
                const uint32_t gm = m0 + mm, gk = k0 + kk;
                As[kk][mm] = (gm < p.m && gk < p.k) ? a[gm * p.a_rs + gk * p.a_cs] : T(0);
            }
#pragma unroll
            for (int l = 0; l < 4; ++l) {
                const int e = tid + l * 256;
                int nn, kk;
                if (p.b_cs == 1) {
                    nn = e & 127;
                    kk = e >> 7;
                } else {
                    kk = e & 7;
                    nn = e >> 3;
                }
                const uint32_t gn = n0 + nn, gk = k0 + kk;
                Bs[kk][nn] = (gn < p.n && gk < p.k) ? b[gk * p.b_rs + gn * p.b_cs] : T(0);
            }
            __syncthreads();
#pragma unroll
            for (int kk = 0; kk < BK; ++kk) {
                T av[8], bv[8];
#pragma unroll
                for (int i = 0; i < 4; ++i) {
                    av[i] = As[kk][ty * 4 + i];
                    av[i + 4] = As[kk][64 + ty * 4 + i];
                    bv[i] = Bs[kk][tx * 4 + i];
                    bv[i + 4] = Bs[kk][64 + tx * 4 + i];
                }
#pragma unroll
                for (int i = 0; i < 8; ++i)
#pragma unroll
                    for (int j = 0; j < 8; ++j) acc[i][j] += av[i] * bv[j];
            }
            __syncthreads();
        }
        T *c = C + (uint64_t)batch * p.m * p.n;
#pragma unroll
        for (int i = 0; i < 8; ++i) {
            const uint32_t row = m0 + (i < 4 ? ty * 4 + i : 64 + ty * 4 + i - 4);
            if (row >= p.m) continue;
#pragma unroll
            for (int j = 0; j < 8; ++j) {
                const uint32_t col = n0 + (j < 4 ? tx * 4 + j : 64 + tx * 4 + j - 4);
                if (col < p.n) c[(uint64_t)row * p.n + col] = epilogue<T>(acc[i][j], p, col);
            }
        }
    }
}

// matmul_fast_f32: m, n multiples of 128, k of 8, both operands 16-byte loadable (vector == 3).
// 128x128x8 tiles, 8x8 outputs per thread, float4 global loads prefetched into registers one tile
// ahead, double-buffered shared memory ([k][m] and [k][n], so the inner loop reads float4s).
// EDGE (GemmArgs.edge): any m, n and k a multiple of 4 (m or n too when A or B is read along it):
// float4 loads past the edges read zeros and stores are guarded.
template <bool EDGE>
__device__ __forceinline__ void simt_fast_gemm(const float *A, const float *B, float *C, const GemmArgs &p) {
    __shared__ __align__(16) float As[2][8][128];
    __shared__ __align__(16) float Bs[2][8][128];
    const int tid = threadIdx.x, tx = tid & 15, ty = tid >> 4;
    const uint32_t m0 = blockIdx.y * 128, n0 = blockIdx.x * 128;
    const bool a_kin = p.a_cs == 1, b_nin = p.b_cs == 1;
    // Per-thread load coordinates: k-inner operands take rows tid/2, k chunk (tid&1)*4; others
    // take k row tid/32, chunk (tid&31)*4 along m or n.
    const int r_in = tid >> 1, k_in = (tid & 1) * 4, k_out = tid >> 5, c_out = (tid & 31) * 4;
    const int KT = EDGE ? (int)((p.k + 7) / 8) : (int)(p.k / 8);
    // Whether this thread's float4 of A (of B) in k-tile kt lies inside the operand.
    auto a_inside = [&](int kt) {
        return a_kin ? (m0 + r_in < p.m && kt * 8 + k_in < (int)p.k) : (kt * 8 + k_out < (int)p.k && m0 + c_out < p.m);
    };
    auto b_inside = [&](int kt) {
        return b_nin ? (kt * 8 + k_out < (int)p.k && n0 + c_out < p.n) : (n0 + r_in < p.n && kt * 8 + k_in < (int)p.k);
    };
    const float4 zero4 = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
    for (uint32_t batch = blockIdx.z; batch < p.batch; batch += gridDim.z) {
        uint64_t off[2];
        element_offsets<2>(p.batch_geom, batch, off);
        const float *a = A + off[0];
        const float *b = B + off[1];
        const float *ga = a_kin ? a + (uint64_t)(m0 + r_in) * p.a_rs + k_in : a + (uint64_t)k_out * p.a_cs + m0 + c_out;
        const uint64_t a_step = a_kin ? 8 : 8 * p.a_cs;
        const float *gb = b_nin ? b + (uint64_t)k_out * p.b_rs + n0 + c_out : b + (uint64_t)(n0 + r_in) * p.b_cs + k_in;
        const uint64_t b_step = b_nin ? 8 * p.b_rs : 8;
        float acc[8][8];
#pragma unroll
        for (int i = 0; i < 8; ++i)
#pragma unroll
            for (int j = 0; j < 8; ++j) acc[i][j] = 0.0f;
        float4 ra = (!EDGE || a_inside(0)) ? *reinterpret_cast<const float4 *>(ga) : zero4;
        float4 rb = (!EDGE || b_inside(0)) ? *reinterpret_cast<const float4 *>(gb) : zero4;
        auto store = [&](int buf) {
            if (a_kin) {
                As[buf][k_in + 0][r_in] = ra.x;
                As[buf][k_in + 1][r_in] = ra.y;
                As[buf][k_in + 2][r_in] = ra.z;
                As[buf][k_in + 3][r_in] = ra.w;
            } else {
                *reinterpret_cast<float4 *>(&As[buf][k_out][c_out]) = ra;
            }
            if (b_nin) {
                *reinterpret_cast<float4 *>(&Bs[buf][k_out][c_out]) = rb;
            } else {
                Bs[buf][k_in + 0][r_in] = rb.x;
                Bs[buf][k_in + 1][r_in] = rb.y;
                Bs[buf][k_in + 2][r_in] = rb.z;
                Bs[buf][k_in + 3][r_in] = rb.w;
            }
        };
        store(0);
        __syncthreads();
        for (int kt = 0; kt < KT; ++kt) {
            const int buf = kt & 1;
            if (kt + 1 < KT) {
                ga += a_step;
                gb += b_step;
                ra = (!EDGE || a_inside(kt + 1)) ? *reinterpret_cast<const float4 *>(ga) : zero4;
                rb = (!EDGE || b_inside(kt + 1)) ? *reinterpret_cast<const float4 *>(gb) : zero4;
            }
#pragma unroll
            for (int kk = 0; kk < 8; ++kk) {
                float av[8], bv[8];
                *reinterpret_cast<float4 *>(&av[0]) = *reinterpret_cast<const float4 *>(&As[buf][kk][ty * 4]);
                *reinterpret_cast<float4 *>(&av[4]) = *reinterpret_cast<const float4 *>(&As[buf][kk][64 + ty * 4]);
                *reinterpret_cast<float4 *>(&bv[0]) = *reinterpret_cast<const float4 *>(&Bs[buf][kk][tx * 4]);
                *reinterpret_cast<float4 *>(&bv[4]) = *reinterpret_cast<const float4 *>(&Bs[buf][kk][64 + tx * 4]);
#pragma unroll
                for (int i = 0; i < 8; ++i)
#pragma unroll
                    for (int j = 0; j < 8; ++j) acc[i][j] = fmaf(av[i], bv[j], acc[i][j]);
            }
            if (kt + 1 < KT) store(buf ^ 1);
            __syncthreads();
        }
        float *c = C + (uint64_t)batch * p.m * p.n;
#pragma unroll
        for (int i = 0; i < 8; ++i) {
            const uint32_t row = m0 + (i < 4 ? ty * 4 + i : 64 + ty * 4 + i - 4);
            float *cr = c + (uint64_t)row * p.n + n0;
            if (EDGE) {
                if (row >= p.m) continue;
#pragma unroll
                for (int j = 0; j < 8; ++j) {
                    const uint32_t col = n0 + (j < 4 ? tx * 4 + j : 64 + tx * 4 + j - 4);
                    if (col < p.n) c[(uint64_t)row * p.n + col] = p.epilogue ? epilogue<float>(acc[i][j], p, col) : acc[i][j];
                }
                continue;
            }
            if (p.epilogue) {
#pragma unroll
                for (int j = 0; j < 8; ++j) acc[i][j] = epilogue<float>(acc[i][j], p, n0 + (j < 4 ? tx * 4 + j : 64 + tx * 4 + j - 4));
            }
            *reinterpret_cast<float4 *>(cr + tx * 4) = make_float4(acc[i][0], acc[i][1], acc[i][2], acc[i][3]);
            *reinterpret_cast<float4 *>(cr + 64 + tx * 4) = make_float4(acc[i][4], acc[i][5], acc[i][6], acc[i][7]);
        }
    }
}

namespace tc {
constexpr int BM = 128, BN = 128, BK = 32, APAD = 8, BPAD = 8;
constexpr int LDA = BK + APAD, LDB = BN + BPAD;

// Copies 8 consecutive elements (16 bytes) of a 2-byte type.
template <typename T> __device__ __forceinline__ uint4 load8(const T *p) {
    return *reinterpret_cast<const uint4 *>(p);
}

// A tile [BM][BK] of A[m, k] into As (row-major, padded rows).
template <typename T>
__device__ __forceinline__ void load_a(T (*As)[LDA], const T *a, const GemmArgs &p, uint32_t m0, uint32_t k0) {
    const int tid = threadIdx.x;
    if (p.vector & 1u) {
#pragma unroll
        for (int l = 0; l < 2; ++l) {
            const int e = tid + l * 256;
            if (p.a_cs == 1) {  // k contiguous: 4 chunks of 8 along k per row
                const int mm = e >> 2, kc = (e & 3) * 8;
                const uint32_t gm = m0 + mm, gk = k0 + kc;
                if (gm < p.m && gk + 8 <= p.k) {
                    *reinterpret_cast<uint4 *>(&As[mm][kc]) = load8(a + gm * p.a_rs + gk);
                } else {
#pragma unroll
                    for (int t = 0; t < 8; ++t)
                        As[mm][kc + t] = (gm < p.m && gk + t < p.k) ? a[gm * p.a_rs + gk + t] : T(0.0f);
                }
            } else {  // m contiguous: 16 chunks of 8 along m per k
                const int kk = e >> 4, mc = (e & 15) * 8;
                const uint32_t gm = m0 + mc, gk = k0 + kk;
                if (gk < p.k && gm + 8 <= p.m) {
                    const uint4 v = load8(a + gm + gk * p.a_cs);
                    const T *vt = reinterpret_cast<const T *>(&v);
#pragma unroll
                    for (int t = 0; t < 8; ++t) As[mc + t][kk] = vt[t];
                } else {
#pragma unroll
                    for (int t = 0; t < 8; ++t)
                        As[mc + t][kk] = (gk < p.k && gm + t < p.m) ? a[gm + t + gk * p.a_cs] : T(0.0f);
                }
            }
        }
        return;
    }
#pragma unroll 4
    for (int l = 0; l < 16; ++l) {
        const int e = tid + l * 256;
        int mm, kk;
        if (p.a_cs == 1) {
            kk = e & 31;
            mm = e >> 5;
        } else {
            mm = e & 127;
            kk = e >> 7;
        }
        const uint32_t gm = m0 + mm, gk = k0 + kk;
        As[mm][kk] = (gm < p.m && gk < p.k) ? a[gm * p.a_rs + gk * p.a_cs] : T(0.0f);
    }
}

// A tile [BK][BN] of B[k, n] into Bs (row-major, padded rows).
template <typename T>
__device__ __forceinline__ void load_b(T (*Bs)[LDB], const T *b, const GemmArgs &p, uint32_t n0, uint32_t k0) {
    const int tid = threadIdx.x;
    if (p.vector & 2u) {
#pragma unroll
        for (int l = 0; l < 2; ++l) {
            const int e = tid + l * 256;
            if (p.b_cs == 1) {  // n contiguous: 16 chunks of 8 along n per k
                const int kk = e >> 4, nc = (e & 15) * 8;
                const uint32_t gk = k0 + kk, gn = n0 + nc;
                if (gk < p.k && gn + 8 <= p.n) {
                    *reinterpret_cast<uint4 *>(&Bs[kk][nc]) = load8(b + gk * p.b_rs + gn);
                } else {
#pragma unroll
                    for (int t = 0; t < 8; ++t)
                        Bs[kk][nc + t] = (gk < p.k && gn + t < p.n) ? b[gk * p.b_rs + gn + t] : T(0.0f);
                }
            } else {  // k contiguous: 4 chunks of 8 along k per column
                const int nn = e >> 2, kc = (e & 3) * 8;
                const uint32_t gk = k0 + kc, gn = n0 + nn;
                if (gn < p.n && gk + 8 <= p.k) {
                    const uint4 v = load8(b + gk + gn * p.b_cs);
                    const T *vt = reinterpret_cast<const T *>(&v);
#pragma unroll
                    for (int t = 0; t < 8; ++t) Bs[kc + t][nn] = vt[t];
                } else {
#pragma unroll
                    for (int t = 0; t < 8; ++t)
                        Bs[kc + t][nn] = (gn < p.n && gk + t < p.k) ? b[gk + t + gn * p.b_cs] : T(0.0f);
                }
            }
        }
        return;
    }
#pragma unroll 4
    for (int l = 0; l < 16; ++l) {
        const int e = tid + l * 256;
        int nn, kk;
        if (p.b_cs == 1) {
            nn = e & 127;
            kk = e >> 7;
        } else {
            kk = e & 31;
            nn = e >> 5;
        }
        const uint32_t gn = n0 + nn, gk = k0 + kk;
        Bs[kk][nn] = (gn < p.n && gk < p.k) ? b[gk * p.b_rs + gn * p.b_cs] : T(0.0f);
    }
}

template <typename T, typename TO>
__device__ __forceinline__ void gemm(const T *A, const T *B, TO *C, const GemmArgs &p) {
    using namespace nvcuda;
    __shared__ __align__(32) T As[BM][LDA];
    __shared__ __align__(32) T Bs[BK][LDB];
    __shared__ __align__(32) float scratch[8][16 * 16];
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    const int wm = warp >> 1, wn = warp & 1;  // warp tile: rows wm*32..+32, cols wn*64..+64
    const uint32_t m0 = blockIdx.y * BM, n0 = blockIdx.x * BN;
    for (uint32_t batch = blockIdx.z; batch < p.batch; batch += gridDim.z) {
        uint64_t off[2];
        element_offsets<2>(p.batch_geom, batch, off);
        wmma::fragment<wmma::accumulator, 16, 16, 16, float> acc[2][4];
#pragma unroll
        for (int i = 0; i < 2; ++i)
#pragma unroll
            for (int j = 0; j < 4; ++j) wmma::fill_fragment(acc[i][j], 0.0f);
        for (uint32_t k0 = 0; k0 < p.k; k0 += BK) {
            load_a<T>(As, A + off[0], p, m0, k0);
            load_b<T>(Bs, B + off[1], p, n0, k0);
            __syncthreads();
#pragma unroll
            for (int kk = 0; kk < BK; kk += 16) {
                wmma::fragment<wmma::matrix_a, 16, 16, 16, T, wmma::row_major> af[2];
                wmma::fragment<wmma::matrix_b, 16, 16, 16, T, wmma::row_major> bf[4];
#pragma unroll
                for (int i = 0; i < 2; ++i) wmma::load_matrix_sync(af[i], &As[wm * 32 + i * 16][kk], LDA);
#pragma unroll
                for (int j = 0; j < 4; ++j) wmma::load_matrix_sync(bf[j], &Bs[kk][wn * 64 + j * 16], LDB);
#pragma unroll
                for (int i = 0; i < 2; ++i)
#pragma unroll
                    for (int j = 0; j < 4; ++j) wmma::mma_sync(acc[i][j], af[i], bf[j], acc[i][j]);
            }
            __syncthreads();
        }
        TO *c = C + (uint64_t)batch * p.m * p.n;
#pragma unroll
        for (int i = 0; i < 2; ++i)
#pragma unroll
            for (int j = 0; j < 4; ++j) {
                wmma::store_matrix_sync(scratch[warp], acc[i][j], 16, wmma::mem_row_major);
                __syncwarp();
                for (int t = lane; t < 256; t += 32) {
                    const uint32_t row = m0 + wm * 32 + i * 16 + (t >> 4);
                    const uint32_t col = n0 + wn * 64 + j * 16 + (t & 15);
                    if (row < p.m && col < p.n)
                        c[(uint64_t)row * p.n + col] = Num<TO>::down(epilogue<TO>(scratch[warp][t], p, col));
                }
                __syncwarp();
            }
    }
}
}  // namespace tc

// matmul_fast_f16 / matmul_fast_bf16: fast path with both operands 16-byte loadable
// (GemmArgs.vector == 3): 128-row tiles for m, n multiples of 128 and k of 32; with
// GemmArgs.small_m, 64-row tiles for any m, n and k a multiple of 8 (and m or n too when A or B is
// read k-outer), whose loads past the edges are zero-filled and stores guarded.
// mma.sync m16n8k16 (f32 accumulation) fed by ldmatrix from a 3-stage cp.async pipeline,
// 128x128x32 block tiles, 4 warps of 64x64 (64x128 tiles and warps of 32x64 when
// GemmArgs.small_m says the shape has edges or 128-row tiles would not fill the GPU), XOR
// swizzled shared memory (no padding, no bank conflicts). Each operand is staged in its own
// orientation: k-inner ([rows][32], when k is the unit stride) or k-outer ([32][128]).
namespace tcf {
constexpr int BN = 128, BK = 32, STAGES = 3, NT = 128, NJ = 8;
constexpr int TILE_ELEMS = 128 * 32;  // the largest stage tile of either operand

#ifdef SINEW_EMU
// The CPU emulator's cp.async, ldmatrix and mma.sync (`cargo xtask cuda-emu`).
#include "emu_tensor_core.h"
#else
__device__ __forceinline__ uint32_t smem_u32(const void *p) {
    return static_cast<uint32_t>(__cvta_generic_to_shared(p));
}
__device__ __forceinline__ void cp_async16(uint32_t dst, const void *src) {
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16;\n" ::"r"(dst), "l"(src));
}
// 16 bytes from `src` when `full`, else 16 zero bytes (src-size 0: nothing is read).
__device__ __forceinline__ void cp_async16_zfill(uint32_t dst, const void *src, bool full) {
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(dst), "l"(src), "r"(full ? 16 : 0));
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::); }
template <int N> __device__ __forceinline__ void cp_async_wait() {
    asm volatile("cp.async.wait_group %0;\n" ::"n"(N));
}
template <bool TRANS> __device__ __forceinline__ void ldmatrix_x4(uint32_t (&r)[4], uint32_t addr) {
    if (TRANS)
        asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];\n"
                     : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                     : "r"(addr));
    else
        asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
                     : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                     : "r"(addr));
}
template <typename T> struct Mma;
template <> struct Mma<__half> {
    static __device__ __forceinline__ void run(float (&d)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
        asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
                     "{%0,%1,%2,%3};\n"
                     : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
                     : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
    }
};
template <> struct Mma<__nv_bfloat16> {
    static __device__ __forceinline__ void run(float (&d)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
        asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
                     "{%0,%1,%2,%3};\n"
                     : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
                     : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
    }
};
#endif

// Stores two adjacent outputs (an even column, so 4- or 8-byte aligned) of type TO.
template <typename TO> struct Pair;
template <> struct Pair<__half> {
    static __device__ __forceinline__ void store(__half *p, float x, float y) {
        *reinterpret_cast<__half2 *>(p) = __floats2half2_rn(x, y);
    }
};
template <> struct Pair<__nv_bfloat16> {
    static __device__ __forceinline__ void store(__nv_bfloat16 *p, float x, float y) {
        *reinterpret_cast<__nv_bfloat162 *>(p) = __floats2bfloat162_rn(x, y);
    }
};
template <> struct Pair<float> {
    static __device__ __forceinline__ void store(float *p, float x, float y) {
        *reinterpret_cast<float2 *>(p) = make_float2(x, y);
    }
};

// Element offsets inside one stage tile of R rows. k-inner: [R rows][32 k], 4 chunks of 8 per row,
// chunk swizzled by bits 1..2 of the row. k-outer: [32 k][R], R/8 chunks per row, swizzled by k.
__device__ __forceinline__ int inner_off(int row, int chunk) { return row * 32 + ((chunk ^ ((row >> 1) & 3)) << 3); }
template <int R> __device__ __forceinline__ int outer_off(int k, int chunk) { return k * R + ((chunk ^ (k & 7)) << 3); }

// One operand's Rx32 tile (rows r0.., k k0..) into a stage. K_INNER: element (r, k) at
// g[r * rs + k]; else at g[k * ks + r]. EDGE: chunks of 8 past `rows` or `k` are zero-filled
// (every chunk is wholly inside or outside: k, and `rows` of a k-outer operand, are multiples of
// 8, which the host checks).
template <bool K_INNER, int R, bool EDGE, typename T>
__device__ __forceinline__ void load_tile(T *s, const T *g, uint64_t stride, uint32_t r0, uint32_t k0, uint32_t rows,
                                          uint32_t k) {
    const int tid = threadIdx.x;
#pragma unroll
    for (int l = 0; l < R * 4 / NT; ++l) {
        const int e = tid + l * NT;
        if (K_INNER) {
            const int row = e >> 2, ch = e & 3;
            const T *src = g + (uint64_t)(r0 + row) * stride + k0 + ch * 8;
            const uint32_t dst = smem_u32(s + inner_off(row, ch));
            if (EDGE) {
                const bool full = r0 + row < rows && k0 + ch * 8 < k;
                cp_async16_zfill(dst, full ? src : g, full);
            } else {
                cp_async16(dst, src);
            }
        } else {
            const int kk = e / (R / 8), ch = e % (R / 8);
            const T *src = g + (uint64_t)(k0 + kk) * stride + r0 + ch * 8;
            const uint32_t dst = smem_u32(s + outer_off<R>(kk, ch));
            if (EDGE) {
                const bool full = k0 + kk < k && r0 + ch * 8 < rows;
                cp_async16_zfill(dst, full ? src : g, full);
            } else {
                cp_async16(dst, src);
            }
        }
    }
}

// MI: 16-row MMA tiles per warp (4: 128-row block tiles, 2: 64-row). EDGE: m, n and k need not be
// tile multiples: loads past the edges are zero-filled and stores are guarded.
template <typename T, typename TO, bool A_KIN, bool B_KIN, int MI, bool EDGE>
__device__ __forceinline__ void gemm(T *smem, const T *A, const T *B, TO *C, const GemmArgs &p) {
    constexpr int BM = 32 * MI, A_ELEMS = BM * BK;
    T *As = smem;
    T *Bs = smem + STAGES * A_ELEMS;
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    const int wm = warp >> 1, wn = warp & 1;  // warp tile: rows wm*16*MI..+16*MI, cols wn*64..+64
    const uint32_t m0 = blockIdx.y * BM, n0 = blockIdx.x * BN;
    const uint64_t a_st = A_KIN ? p.a_rs : p.a_cs;
    const uint64_t b_st = B_KIN ? p.b_cs : p.b_rs;
    const int KT = EDGE ? (int)((p.k + BK - 1) / BK) : (int)(p.k / BK);
    for (uint32_t batch = blockIdx.z; batch < p.batch; batch += gridDim.z) {
        uint64_t off[2];
        element_offsets<2>(p.batch_geom, batch, off);
        const T *a = A + off[0];
        const T *b = B + off[1];
        float acc[MI][NJ][4];
#pragma unroll
        for (int i = 0; i < MI; ++i)
#pragma unroll
            for (int j = 0; j < NJ; ++j)
#pragma unroll
                for (int t = 0; t < 4; ++t) acc[i][j][t] = 0.0f;
#pragma unroll
        for (int s = 0; s < STAGES - 1; ++s) {
            if (s < KT) {
                load_tile<A_KIN, BM, EDGE>(As + s * A_ELEMS, a, a_st, m0, s * BK, p.m, p.k);
                load_tile<B_KIN, BN, EDGE>(Bs + s * TILE_ELEMS, b, b_st, n0, s * BK, p.n, p.k);
            }
            cp_async_commit();
        }
        for (int kt = 0; kt < KT; ++kt) {
            cp_async_wait<STAGES - 2>();
            __syncthreads();
            {
                const int nk = kt + STAGES - 1;
                if (nk < KT) {
                    const int st = nk % STAGES;
                    load_tile<A_KIN, BM, EDGE>(As + st * A_ELEMS, a, a_st, m0, nk * BK, p.m, p.k);
                    load_tile<B_KIN, BN, EDGE>(Bs + st * TILE_ELEMS, b, b_st, n0, nk * BK, p.n, p.k);
                }
                cp_async_commit();
            }
            const T *as = As + (kt % STAGES) * A_ELEMS;
            const T *bs = Bs + (kt % STAGES) * TILE_ELEMS;
#pragma unroll
            for (int kk = 0; kk < BK; kk += 16) {
                uint32_t af[MI][4], bf[NJ / 2][4];
#pragma unroll
                for (int i = 0; i < MI; ++i) {
                    const int mb = wm * 16 * MI + i * 16;
                    int o;
                    if (A_KIN) {  // lanes: rows mb + (l & 15), k chunk kk/8 + (l >> 4)
                        o = inner_off(mb + (lane & 15), (kk >> 3) + (lane >> 4));
                    } else {  // lanes: k = kk + (l & 7) + (l >> 4) * 8, m chunk (mb >> 3) + ((l >> 3) & 1)
                        o = outer_off<BM>(kk + (lane & 7) + ((lane >> 4) << 3), (mb >> 3) + ((lane >> 3) & 1));
                    }
                    ldmatrix_x4<!A_KIN>(af[i], smem_u32(as + o));
                }
#pragma unroll
                for (int j = 0; j < NJ / 2; ++j) {
                    const int nb = wn * 64 + j * 16;
                    int o;
                    if (B_KIN) {  // lanes: n = nb + (l & 7) + (l >> 4) * 8, k chunk kk/8 + ((l >> 3) & 1)
                        o = inner_off(nb + (lane & 7) + ((lane >> 4) << 3), (kk >> 3) + ((lane >> 3) & 1));
                    } else {  // lanes: k = kk + (l & 15), n chunk (nb >> 3) + (l >> 4)
                        o = outer_off<BN>(kk + (lane & 15), (nb >> 3) + (lane >> 4));
                    }
                    ldmatrix_x4<!B_KIN>(bf[j], smem_u32(bs + o));
                }
#pragma unroll
                for (int i = 0; i < MI; ++i)
#pragma unroll
                    for (int j = 0; j < NJ; ++j)
                        Mma<T>::run(acc[i][j], af[i], bf[j >> 1][(j & 1) * 2], bf[j >> 1][(j & 1) * 2 + 1]);
            }
        }
        cp_async_wait<0>();
        __syncthreads();  // the next batch's prologue reuses the stages
        TO *c = C + (uint64_t)batch * p.m * p.n;
        const int g = lane >> 2, t4 = lane & 3;
#pragma unroll
        for (int i = 0; i < MI; ++i)
#pragma unroll
            for (int j = 0; j < NJ; ++j) {
                const uint32_t row = m0 + wm * 16 * MI + i * 16 + g;
                const uint32_t col = n0 + wn * 64 + j * 8 + t4 * 2;
                float v[4] = {acc[i][j][0], acc[i][j][1], acc[i][j][2], acc[i][j][3]};
                if (EDGE) {
#pragma unroll
                    for (int t = 0; t < 4; ++t) {
                        const uint32_t r = row + (t >> 1) * 8, cl = col + (t & 1);
                        if (r < p.m && cl < p.n)
                            c[(uint64_t)r * p.n + cl] = Num<TO>::down(p.epilogue ? epilogue<TO>(v[t], p, cl) : v[t]);
                    }
                    continue;
                }
                if (p.epilogue) {
#pragma unroll
                    for (int t = 0; t < 4; ++t) v[t] = epilogue<TO>(v[t], p, col + (t & 1));
                }
                Pair<TO>::store(c + (uint64_t)row * p.n + col, v[0], v[1]);
                Pair<TO>::store(c + (uint64_t)(row + 8) * p.n + col, v[2], v[3]);
            }
    }
}

template <typename T, typename TO>
__device__ __forceinline__ void dispatch(const T *A, const T *B, TO *C, const GemmArgs &p) {
    __shared__ __align__(128) T smem[2 * STAGES * TILE_ELEMS];
    const bool a_kin = p.a_cs == 1, b_kin = p.b_cs != 1;
    if (p.small_m) {  // 64-row tiles, with edges
        if (a_kin) {
            if (b_kin)
                gemm<T, TO, true, true, 2, true>(smem, A, B, C, p);
            else
                gemm<T, TO, true, false, 2, true>(smem, A, B, C, p);
        } else {
            if (b_kin)
                gemm<T, TO, false, true, 2, true>(smem, A, B, C, p);
            else
                gemm<T, TO, false, false, 2, true>(smem, A, B, C, p);
        }
    } else if (a_kin) {
        if (b_kin)
            gemm<T, TO, true, true, 4, false>(smem, A, B, C, p);
        else
            gemm<T, TO, true, false, 4, false>(smem, A, B, C, p);
    } else {
        if (b_kin)
            gemm<T, TO, false, true, 4, false>(smem, A, B, C, p);
        else
            gemm<T, TO, false, false, 4, false>(smem, A, B, C, p);
    }
}
}  // namespace tcf

