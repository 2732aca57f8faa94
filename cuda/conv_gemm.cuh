// What the implicit-GEMM convolution kernels share (conv_gemm.cu: forward and input gradient;
// conv_wgrad.cu: weight gradient): the argument struct, window taps, and the tile stages of the
// SIMT (f32), TF32 tensor-core (f32, when allowed) and f16/bf16 tensor-core products.
#pragma once
#include "gemm_tc.cuh"

// Mirrors `ConvArgs` in crates/sinew-cuda/src/ops/conv_gemm.rs (#[repr(C)]). Sizes are the
// forward convolution's; the kernels read two operands: a strided view (the input for the forward
// and the weight gradient, the output gradient for the input gradient) and a dense one (the
// weight, contiguous [o, cg, kh, kw], or, for the weight gradient, the output gradient,
// contiguous [n, o, oh, ow]).
struct ConvArgs {
    uint32_t n, cg, h, w;         // images, input channels per group, input height and width
    uint32_t kh, kw, oh, ow;      // window, output height and width
    uint32_t sh, sw, ph, pw;      // stride, padding
    uint32_t dh, dw, og, groups;  // dilation, output channels per group, groups
    uint32_t taps;                // cg * kh * kw
    uint32_t cols;                // n * oh * ow
    uint32_t vector;              // 1: the dense operand's rows may be loaded 16 bytes at a time
    uint32_t narrow;              // 1: 32-row block tiles (cgt::Rows<1>, SIMT RM = 2)
    // The input gradient's phase (conv_gemm_dgrad; the identity elsewhere): the input positions
    // y = py + yy*step_y (yy < hp) and x = px + xx*step_x (xx < wp), whose taps are the kernel
    // rows ry + i*step_y (i < kh) and columns rx + j*step_x (j < kw) of the weight's wkh x wkw
    // window. With dilation 1 the host runs one phase per (y mod sh, x mod sw) with steps = the
    // stride, so no tap that the stride skips is multiplied; kh, kw are then the phase's tap
    // counts (`taps` stays the weight's cg * wkh * wkw).
    uint32_t py, px, ry, rx, step_y, step_x, hp, wp, wkh, wkw;
    uint64_t view_strides[4];     // the strided view's n, c, h, w strides
    uint64_t view_offset;         // and its first element
    uint64_t dense_offset;        // the dense operand's first element
};

// A tap of an inner sum: channel (within the group) and kernel row and column.
struct Tap {
    uint32_t c, i, j;
};

__device__ __forceinline__ Tap tap_of(const ConvArgs &p, uint32_t k) {
    const uint32_t area = p.kh * p.kw, r = k % area;
    return Tap{k / area, r / p.kw, r % p.kw};
}

// The tap after `t` (k + 1).
__device__ __forceinline__ void advance(const ConvArgs &p, Tap &t) {
    if (++t.j == p.kw) {
        t.j = 0;
        if (++t.i == p.kh) {
            t.i = 0;
            ++t.c;
        }
    }
}

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

// The tensor-core kernels' tiles: 32*MI rows (k-inner, swizzled) by 128 columns (k-outer,
// swizzled) by 32 of the inner size, 4 warps of 16*MI x 64 outputs. MI = 2 (64 rows), or 1
// (32 rows, ConvArgs.narrow) when the rows (channels) are few, so less of a tile is wasted.
namespace cgt {
using tcf::BK;
using tcf::BN;
using tcf::NJ;
using tcf::zero;
constexpr int B_ELEMS = BK * BN, THREADS = 128;
// Rows and left-operand stage elements of a block tile of MI 16-row MMA tiles per warp.
template <int MI> struct Rows {
    static constexpr int BM = 32 * MI, A_ELEMS = BM * BK;
};
// Shared memory for two stages of both operands at the widest tile.
constexpr int SMEM_ELEMS = 2 * (Rows<2>::A_ELEMS + B_ELEMS);

// acc += one stage's tiles: `as` [BM][BK] k-inner, `bs` [BK][BN] k-outer (tcf's swizzles).
template <int MI, typename T>
__device__ __forceinline__ void mma_stage(float (&acc)[MI][NJ][4], const T *as, const T *bs) {
    tcf::mma_stage<MI, true, false>(acc, as, bs);
}

// Calls f(row, col, value) for each of this thread's accumulators (row within the block's BM
// rows, column within its BN columns).
template <int MI, typename F> __device__ __forceinline__ void for_each_acc(const float (&acc)[MI][NJ][4], F f) {
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    const int wm = warp >> 1, wn = warp & 1, gq = lane >> 2, t4 = lane & 3;
#pragma unroll
    for (int i = 0; i < MI; ++i)
#pragma unroll
        for (int j = 0; j < NJ; ++j)
#pragma unroll
            for (int t = 0; t < 4; ++t)
                f(wm * 16 * MI + i * 16 + gq + (t >> 1) * 8, wn * 64 + j * 8 + t4 * 2 + (t & 1), acc[i][j][t]);
}

}  // namespace cgt

// The TF32 tensor-core tiles of the f32 kernels (`*_tf32_f32`, when TF32 is allowed): 32*MI rows
// by 128 columns by 16 of the inner size, both operands stored k-inner ([rows][16] and
// [columns][16]) in rows padded to LD = 20 floats, so the 8 row addresses of an ldmatrix (and the
// 16-byte stores of 8 consecutive rows) fall on distinct banks. Values are rounded to TF32 on
// their way into shared memory; mma.sync m16n8k8 with f32 accumulation, 4 warps of 16*MI x 64
// (the accumulators of cgt's tiles, so cgt::for_each_acc walks them).
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

// SIMT f32 tiles: (16*RM)x128x8, 256 threads of RM x 8 outputs: RM = 8 (128 rows: rows ty*4..
// and 64 + ty*4..) or 2 (32 rows, ConvArgs.narrow: rows ty*2..); columns tx*4.. and 64 + tx*4...
// acc += one stage: `as` [8][ALD] (k, row), `bs` [8][128] (k, column).
template <int RM, int ALD>
__device__ __forceinline__ void simt_stage(float (&acc)[RM][8], const float (*as)[ALD], const float (*bs)[128]) {
    const int tx = threadIdx.x & 15, ty = threadIdx.x >> 4;
#pragma unroll
    for (int kk = 0; kk < 8; ++kk) {
        float av[RM], bv[8];
        if (RM == 8) {
            *reinterpret_cast<float4 *>(&av[0]) = *reinterpret_cast<const float4 *>(&as[kk][ty * 4]);
            *reinterpret_cast<float4 *>(&av[RM - 4]) = *reinterpret_cast<const float4 *>(&as[kk][64 + ty * 4]);
        } else {
            *reinterpret_cast<float2 *>(&av[0]) = *reinterpret_cast<const float2 *>(&as[kk][ty * 2]);
        }
        *reinterpret_cast<float4 *>(&bv[0]) = *reinterpret_cast<const float4 *>(&bs[kk][tx * 4]);
        *reinterpret_cast<float4 *>(&bv[4]) = *reinterpret_cast<const float4 *>(&bs[kk][64 + tx * 4]);
#pragma unroll
        for (int i = 0; i < RM; ++i)
#pragma unroll
            for (int j = 0; j < 8; ++j) acc[i][j] = fmaf(av[i], bv[j], acc[i][j]);
    }
}

// The block-relative row of accumulator row i and column of accumulator column j (simt_stage).
template <int RM> __device__ __forceinline__ int simt_row(int i) {
    const int ty = threadIdx.x >> 4;
    return RM == 8 ? (i < 4 ? ty * 4 + i : 64 + ty * 4 + i - 4) : ty * RM + i;
}
__device__ __forceinline__ int simt_col(int j) { return j < 4 ? (threadIdx.x & 15) * 4 + j : 64 + (threadIdx.x & 15) * 4 + j - 4; }
