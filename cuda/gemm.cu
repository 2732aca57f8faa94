// Batched matrix products C[b] = A[b] @ B[b] with A [m, k], B [k, n] read through arbitrary row and
// column strides (so transposed views need no copy) and C contiguous [batch, m, n].
// matmul_f32 / matmul_f64: 128x128x8 shared-memory tiles, 256 threads, 8x8 outputs per thread.
// matmul_f16 / matmul_bf16: tensor cores through WMMA 16x16x16 with f32 accumulation, 128x128x32
// tiles, 8 warps of 32x64; 16-byte loads when an operand's unit-stride axis allows them.
#include "common.cuh"
#include <mma.h>

// Mirrors `sinew_cuda::ops::gemm::GemmArgs` (#[repr(C)]).
struct GemmArgs {
    uint32_t m, n, k, batch;
    uint64_t a_rs, a_cs, b_rs, b_cs;
    // Bit 0: A may be loaded 8 elements at a time along its unit-stride axis; bit 1: B.
    uint32_t vector;
    uint32_t pad;
    // Batch dims: operand 0 = A's offsets, 1 = B's (strides in elements; no contiguous bits).
    Geometry batch_geom;
};

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
                if (col < p.n) c[(uint64_t)row * p.n + col] = acc[i][j];
            }
        }
    }
}

extern "C" __global__ void __launch_bounds__(256) matmul_f32(const float *A, const float *B, float *C, GemmArgs p) {
    simt_gemm<float>(A, B, C, p);
}

extern "C" __global__ void __launch_bounds__(256) matmul_f64(const double *A, const double *B, double *C, GemmArgs p) {
    simt_gemm<double>(A, B, C, p);
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

template <typename T> __device__ __forceinline__ void gemm(const T *A, const T *B, T *C, const GemmArgs &p) {
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
        T *c = C + (uint64_t)batch * p.m * p.n;
#pragma unroll
        for (int i = 0; i < 2; ++i)
#pragma unroll
            for (int j = 0; j < 4; ++j) {
                wmma::store_matrix_sync(scratch[warp], acc[i][j], 16, wmma::mem_row_major);
                __syncwarp();
                for (int t = lane; t < 256; t += 32) {
                    const uint32_t row = m0 + wm * 32 + i * 16 + (t >> 4);
                    const uint32_t col = n0 + wn * 64 + j * 16 + (t & 15);
                    if (row < p.m && col < p.n) c[(uint64_t)row * p.n + col] = Num<T>::down(scratch[warp][t]);
                }
                __syncwarp();
            }
    }
}
}  // namespace tc

// Two blocks per SM (128 registers, no spills) so one block's loads overlap the other's MMAs.
extern "C" __global__ void __launch_bounds__(256, 2) matmul_f16(const __half *A, const __half *B, __half *C, GemmArgs p) {
    tc::gemm<__half>(A, B, C, p);
}

extern "C" __global__ void __launch_bounds__(256, 2)
    matmul_bf16(const __nv_bfloat16 *A, const __nv_bfloat16 *B, __nv_bfloat16 *C, GemmArgs p) {
    tc::gemm<__nv_bfloat16>(A, B, C, p);
}
