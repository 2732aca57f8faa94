// What the implicit-GEMM convolution kernels share (conv_gemm.cu: forward and input gradient;
// conv_wgrad.cu: weight gradient): the argument struct, window taps, and the tile stages of the
// SIMT (f32) and f16/bf16 tensor-core products (the TF32 ones are tf32_tc.cuh's).
#pragma once
#include "tf32_tc.cuh"

// One phase of an input gradient (ConvArgs.phase): its first input row and column, first tap
// row and column, positions and taps per axis.
struct DgradPhase {
    uint32_t py, px, ry, rx, hp, wp, kh, kw;
};
// Phases per input-gradient launch: a stride of 2 (a ResNet's downsampling 3x3) in one.
constexpr uint32_t MAX_PHASES = 4;

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
    // The input gradient's phases (conv_gemm_dgrad; one identity phase elsewhere): input
    // positions y = py + yy*step_y (yy < hp) and x = px + xx*step_x (xx < wp), whose taps are the
    // kernel rows ry + i*step_y (i < kh) and columns rx + j*step_x (j < kw) of the weight's
    // window. With dilation 1 the host groups the phases (y mod sh, x mod sw) with taps, steps =
    // the stride, up to MAX_PHASES a launch (blockIdx.z = group * phases + phase), so no tap that
    // the stride skips is multiplied; with dilation, one phase of every position and tap.
    uint32_t step_y, step_x;
    uint32_t phases;              // phases in this launch (1 to MAX_PHASES)
    uint32_t relu;                // 1: ReLU after the bias (the forward's epilogue)
    // 1 (conv_gemm_dgrad): the phase starting at (0, 0) is the only one with taps (a 1x1
    // stride-2 shortcut's), so the kernel also writes the zeros of the other positions of each
    // step_y x step_x block it writes, instead of the host zero-filling the gradient first.
    uint32_t zero_rest;
    DgradPhase phase[MAX_PHASES];
    uint32_t unused;              // keeps the 8-byte fields aligned
    uint64_t view_strides[4];     // the strided view's n, c, h, w strides
    uint64_t view_offset;         // and its first element
    uint64_t dense_offset;        // the dense operand's first element
    uint64_t bias;                // the forward's bias [o] (the operands' type), or 0 for none
    uint64_t add;                 // conv_gemm_dgrad: a dense [n, c, h, w] added to the gradient, or 0
    uint64_t first_slice;         // conv_wgrad: split 0's partials (the f32 weight gradient itself), or 0
};

// A tap of an inner sum: channel (within the group) and kernel row and column.
struct Tap {
    uint32_t c, i, j;
};

// The taps a product's inner index runs over: per channel, kh x kw kernel rows and columns (the
// weight's window, or an input-gradient phase's taps).
struct Window {
    uint32_t kh, kw;
};

__device__ __forceinline__ Tap tap_of(const Window &w, uint32_t k) {
    const uint32_t area = w.kh * w.kw, r = k % area;
    return Tap{k / area, r / w.kw, r % w.kw};
}

// The tap after `t` (k + 1).
__device__ __forceinline__ void advance(const Window &w, Tap &t) {
    if (++t.j == w.kw) {
        t.j = 0;
        if (++t.i == w.kh) {
            t.i = 0;
            ++t.c;
        }
    }
}

// The tensor-core kernels' tiles: 32*MI rows (k-inner, swizzled) by 128 columns (k-outer,
// swizzled) by 32 of the inner size, 4 warps of 16*MI x 64 outputs. MI = 2 (64 rows), or 1
// (32 rows, ConvArgs.narrow) when the rows (channels) are few, so less of a tile is wasted.
namespace cgt {
using tcf::BK;
using tcf::BN;
using tcf::NJ;
using tcf::for_each_acc;
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

}  // namespace cgt

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
