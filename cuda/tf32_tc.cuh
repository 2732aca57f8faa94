// What the TF32 kernels share (conv_gemm.cu, conv_wgrad.cu: f32 convolutions; gemm.cu: f32
// matrix products), and the register-staged double buffer that they and the SIMT convolution
// kernels run.
#pragma once
#include "gemm_tc.cuh"

// Runs the `stages` stages of a product whose tiles go through registers into double-buffered
// shared memory: fetch(k0) loads the stage that starts at inner index k0 (first + stage * depth)
// into registers, stash(buf) stores them into buffer buf (0 or 1), multiply(buf) adds buffer
// buf's product to the accumulators. A stage's loads are in flight while the one before it
// multiplies; the barrier after each stage frees its buffer for the stage after next.
template <class Fetch, class Stash, class Multiply>
__device__ __forceinline__ void run_stages(int stages, uint32_t first, uint32_t depth, Fetch fetch, Stash stash,
                                           Multiply multiply) {
    if (stages > 0) {
        fetch(first);
        stash(0);
    }
    __syncthreads();
    for (int kt = 0; kt < stages; ++kt) {
        const bool more = kt + 1 < stages;
        if (more) fetch(first + (kt + 1) * depth);
        multiply(kt & 1);
        if (more) stash((kt + 1) & 1);
        __syncthreads();
    }
}

// The TF32 tensor-core tiles of the f32 kernels (`*_tf32_f32`, when TF32 is allowed): 32*MI rows
// by 128 columns by 16 of the inner size, both operands stored k-inner ([rows][16] and
// [columns][16]) in rows padded to LD = 20 floats, so the 8 row addresses of an ldmatrix (and the
// 16-byte stores of 8 consecutive rows) fall on distinct banks. Values are rounded to TF32 on
// their way into shared memory; mma.sync m16n8k8 with f32 accumulation, 4 warps of 16*MI x 64
// (the accumulators of the f16/bf16 tiles, which tcf::for_each_acc walks).
namespace ctf {
using tcf::BN;
using tcf::NJ;
constexpr int BK = 16, LD = 20, THREADS = 128;
constexpr int B_ELEMS = BN * LD;
template <int MI> struct Rows {
    static constexpr int BM = 32 * MI, A_ELEMS = BM * LD;
    // Left-operand elements each thread fetches per stage: element e = tid + l*THREADS is (row
    // e / BK, inner e % BK), so 16 lanes read 16 consecutive inner elements of a row.
    static constexpr int A_PER = BM * BK / THREADS;
};
// Shared memory for two stages of both operands at the widest tile.
constexpr int SMEM_ELEMS = 2 * (Rows<2>::A_ELEMS + B_ELEMS);

// The left operand's A_PER fetched values, rounded, into a stage's [BM][LD] tile.
template <int MI> __device__ __forceinline__ void stash_a(float *as, const float (&ra)[Rows<MI>::A_PER]) {
#pragma unroll
    for (int l = 0; l < Rows<MI>::A_PER; ++l) {
        const int e = threadIdx.x + l * THREADS;
        as[(e / BK) * LD + e % BK] = tcf::tf32_round(ra[l]);
    }
}

// Column n's BK inner values, rounded, into a stage's [BN][LD] tile (16-byte stores).
__device__ __forceinline__ void stash_column(float *bs, int n, const float (&v)[BK]) {
    float4 *row = reinterpret_cast<float4 *>(bs + n * LD);
#pragma unroll
    for (int q = 0; q < BK / 4; ++q)
        row[q] = make_float4(tcf::tf32_round(v[4 * q]), tcf::tf32_round(v[4 * q + 1]), tcf::tf32_round(v[4 * q + 2]),
                             tcf::tf32_round(v[4 * q + 3]));
}

// acc += one stage's tiles: `as` [BM][LD], `bs` [BN][LD], both k-inner. ldmatrix moves 8x8 b16
// matrices, i.e. 8 rows of 4 f32: lane (g, t) receives (row g, inner t) of each, which is the
// m16n8k8 TF32 fragments' layout (A: rows g, g + 8 at inner t, t + 4; B: column g at inner t,
// t + 4).
template <int MI> __device__ __forceinline__ void mma_stage(float (&acc)[MI][NJ][4], const float *as, const float *bs) {
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    const int wm = warp >> 1, wn = warp & 1;
#pragma unroll
    for (int kk = 0; kk < BK; kk += 8) {
        uint32_t af[MI][4], bf[NJ / 2][4];
#pragma unroll
        for (int i = 0; i < MI; ++i) {  // matrices: rows +0 / +8 (lane bit 3), inner +0 / +4 (bit 4)
            const int row = wm * 16 * MI + i * 16 + (lane & 7) + ((lane >> 3) & 1) * 8;
            tcf::ldmatrix_x4<false>(af[i], tcf::smem_u32(as + row * LD + kk + (lane >> 4) * 4));
        }
#pragma unroll
        for (int j = 0; j < NJ / 2; ++j) {  // matrices: inner +0 / +4 (lane bit 3), columns +0 / +8 (bit 4)
            const int col = wn * 64 + j * 16 + (lane & 7) + (lane >> 4) * 8;
            tcf::ldmatrix_x4<false>(bf[j], tcf::smem_u32(bs + col * LD + kk + ((lane >> 3) & 1) * 4));
        }
#pragma unroll
        for (int i = 0; i < MI; ++i)
#pragma unroll
            for (int j = 0; j < NJ; ++j) tcf::mma_tf32(acc[i][j], af[i], bf[j >> 1][(j & 1) * 2], bf[j >> 1][(j & 1) * 2 + 1]);
    }
}
}  // namespace ctf

namespace ctf {
// matmul_tf32_f32 (f32 matrix products while CudaBackend::set_matmul_tf32 allows TF32): the
// GemmArgs product C = act(A @ B + bias) on 64x128x16 block tiles (MI = 2) for any shape and
// strides. Each operand element is loaded alone, lanes walking the axis that is its unit stride
// (k when K_INNER, else A's rows or B's columns) so a warp's loads coalesce; loads past the
// edges read zeros, stores are guarded.
template <bool A_KIN, bool B_KIN>
__device__ __forceinline__ void gemm(float *smem, const float *A, const float *B, float *C, const GemmArgs &p) {
    constexpr int MI = 2, B_PER = BN * BK / THREADS;
    using R = Rows<MI>;
    float *As = smem;
    float *Bs = smem + 2 * R::A_ELEMS;
    const int tid = threadIdx.x;
    const uint32_t m0 = (blockIdx.y + p.row_tile0) * R::BM, n0 = blockIdx.x * BN;
    // A stage's element e: A's (row, k) and B's (column, k) within the tile.
    auto a_at = [](int e, int &row, int &k) {
        row = A_KIN ? e / BK : e % R::BM;
        k = A_KIN ? e % BK : e / R::BM;
    };
    auto b_at = [](int e, int &col, int &k) {
        col = B_KIN ? e / BK : e % BN;
        k = B_KIN ? e % BK : e / BN;
    };
    for (uint32_t batch = blockIdx.z; batch < p.batch; batch += gridDim.z) {
        uint64_t off[2];
        element_offsets<2>(p.batch_geom, batch, off);
        const float *a = A + off[0];
        const float *b = B + off[1];
        float ra[R::A_PER], rb[B_PER];
        auto fetch = [&](uint32_t k0) {
#pragma unroll
            for (int l = 0; l < R::A_PER; ++l) {
                int row, k;
                a_at(tid + l * THREADS, row, k);
                const uint32_t gr = m0 + row, gk = k0 + k;
                ra[l] = (gr < p.m && gk < p.k) ? a[gr * p.a_rs + gk * p.a_cs] : 0.0f;
            }
#pragma unroll
            for (int l = 0; l < B_PER; ++l) {
                int col, k;
                b_at(tid + l * THREADS, col, k);
                const uint32_t gc = n0 + col, gk = k0 + k;
                rb[l] = (gc < p.n && gk < p.k) ? b[gk * p.b_rs + gc * p.b_cs] : 0.0f;
            }
        };
        auto stash = [&](int buf) {
            float *as = As + buf * R::A_ELEMS, *bs = Bs + buf * B_ELEMS;
#pragma unroll
            for (int l = 0; l < R::A_PER; ++l) {
                int row, k;
                a_at(tid + l * THREADS, row, k);
                as[row * LD + k] = tcf::tf32_round(ra[l]);
            }
#pragma unroll
            for (int l = 0; l < B_PER; ++l) {
                int col, k;
                b_at(tid + l * THREADS, col, k);
                bs[col * LD + k] = tcf::tf32_round(rb[l]);
            }
        };
        float acc[MI][NJ][4];
        tcf::zero<MI>(acc);
        run_stages((int)((p.k + BK - 1) / BK), 0, BK, fetch, stash,
                   [&](int buf) { mma_stage<MI>(acc, As + buf * R::A_ELEMS, Bs + buf * B_ELEMS); });
        float *c = C + (uint64_t)batch * p.m * p.n;
        tcf::for_each_acc<MI>(acc, [&](int row, int col, float v) {
            const uint32_t r = m0 + row, cl = n0 + col;
            if (r < p.m && cl < p.n) c[(uint64_t)r * p.n + cl] = p.epilogue ? epilogue<float>(v, p, cl) : v;
        });
    }
}

// Shared memory and the operands' orientations (as tcf::dispatch decides them).
__device__ __forceinline__ void dispatch(const float *A, const float *B, float *C, const GemmArgs &p) {
    __shared__ __align__(128) float smem[SMEM_ELEMS];
    const bool a_kin = p.a_cs == 1, b_kin = p.b_cs != 1;
    if (a_kin) {
        if (b_kin)
            gemm<true, true>(smem, A, B, C, p);
        else
            gemm<true, false>(smem, A, B, C, p);
    } else {
        if (b_kin)
            gemm<false, true>(smem, A, B, C, p);
        else
            gemm<false, false>(smem, A, B, C, p);
    }
}
}  // namespace ctf
