// Implicit-GEMM 2-d convolution (cross-correlation): for each channel group g,
//   out[n, g*og + o, oy, ox] = sum over (c, ki, kj) of
//       w[g*og + o, c, ki, kj] * x[n, g*cg + c, oy*sh + ki*dh - ph, ox*sw + kj*dw - pw]
// (x is zero outside the image) as the matrix product W [og, taps] @ cols [taps, n*oh*ow] whose
// right operand, the im2col columns, is never stored: each thread reads its column's window taps
// from the input view (any strides) while loading a tile. The output is written straight into a
// contiguous [n, o, oh, ow] (no transposing copy). The weight is contiguous [o, cg, kh, kw]
// from element `w_offset`.
//
// conv_gemm_f32: SIMT, 128x128x8 tiles, 256 threads of 8x8 outputs, register prefetch one tile
//   ahead into double-buffered shared memory (simt_fast_gemm's inner loop), fmaf in k order.
// conv_gemm_f16 / conv_gemm_bf16: tensor cores, mma.sync m16n8k16 with f32 accumulation fed by
//   ldmatrix from XOR-swizzled, double-buffered shared memory (gemm.cuh's tcf layouts), 64x128x32
//   tiles, 4 warps of 32x64. The weight tile comes by cp.async 16 bytes at a time when
//   ConvArgs.vector says its rows allow that (taps a multiple of 8), else element by element; the
//   column tile through registers, fetched before the tile's MMAs and stored after them.
// Grid: (column tiles, output-channel tiles, groups).
#include "conv_gemm.cuh"

__device__ __forceinline__ void conv_simt(const float *X, const float *W, float *Y, const ConvArgs &p) {
    __shared__ __align__(16) float As[2][8][128];
    __shared__ __align__(16) float Bs[2][8][128];
    const int tid = threadIdx.x;
    const uint32_t g = blockIdx.z, m0 = blockIdx.y * 128, n0 = blockIdx.x * 128;
    const float *wg = W + p.w_offset + (uint64_t)g * p.og * p.taps;
    // Loads: weight row m0 + (tid & 127) and column n0 + (tid & 127), taps (tid >> 7) + 2l.
    const int row = tid & 127, k_first = tid >> 7;
    ColumnReader<float> column;
    column.init(X, p, g, n0 + row);
    const bool row_in = m0 + row < p.og;
    float ra[4], rb[4];
    auto fetch = [&](uint32_t k0) {
#pragma unroll
        for (int l = 0; l < 4; ++l) {
            const uint32_t k = k0 + k_first + 2 * l;
            ra[l] = (row_in && k < p.taps) ? wg[(uint64_t)(m0 + row) * p.taps + k] : 0.0f;
            rb[l] = column.at(p, tap_of(p, k));
        }
    };
    auto stash = [&](int buf) {
#pragma unroll
        for (int l = 0; l < 4; ++l) {
            As[buf][k_first + 2 * l][row] = ra[l];
            Bs[buf][k_first + 2 * l][row] = rb[l];
        }
    };
    float acc[8][8];
#pragma unroll
    for (int i = 0; i < 8; ++i)
#pragma unroll
        for (int j = 0; j < 8; ++j) acc[i][j] = 0.0f;
    const int KT = (int)((p.taps + 7) / 8);
    fetch(0);
    stash(0);
    __syncthreads();
    for (int kt = 0; kt < KT; ++kt) {
        const int buf = kt & 1;
        if (kt + 1 < KT) fetch((kt + 1) * 8);
        simt_stage<128>(acc, As[buf], Bs[buf]);
        if (kt + 1 < KT) stash(buf ^ 1);
        __syncthreads();
    }
#pragma unroll
    for (int i = 0; i < 8; ++i)
#pragma unroll
        for (int j = 0; j < 8; ++j) store_out<float>(Y, p, g, m0 + simt_row(i), n0 + simt_col(j), acc[i][j]);
}

namespace cgt {

// The weight tile [BM rows][BK taps] (k-inner, swizzled) of rows m0.., taps k0.. of `wg`.
template <bool VEC, typename T>
__device__ __forceinline__ void load_weight(T *as, const T *wg, const ConvArgs &p, uint32_t m0, uint32_t k0) {
    const int tid = threadIdx.x;
    if (VEC) {  // taps % 8 == 0: every 8-tap chunk is wholly inside or outside
#pragma unroll
        for (int l = 0; l < BM * 4 / THREADS; ++l) {
            const int e = tid + l * THREADS, row = e >> 2, ch = e & 3;
            const bool full = m0 + row < p.og && k0 + ch * 8 < p.taps;
            const T *src = wg + (uint64_t)(m0 + row) * p.taps + k0 + ch * 8;
            tcf::cp_async16_zfill(tcf::smem_u32(as + tcf::inner_off(row, ch)), full ? src : wg, full);
        }
    } else {
#pragma unroll 4
        for (int l = 0; l < BM * BK / THREADS; ++l) {
            const int e = tid + l * THREADS, row = e >> 5, kk = e & 31;
            const uint32_t gm = m0 + row, gk = k0 + kk;
            as[tcf::inner_off(row, kk >> 3) + (kk & 7)] =
                (gm < p.og && gk < p.taps) ? wg[(uint64_t)gm * p.taps + gk] : T(0.0f);
        }
    }
}

template <bool VEC, typename T>
__device__ __forceinline__ void conv(T *smem, const T *X, const T *W, T *Y, const ConvArgs &p) {
    T *As = smem;
    T *Bs = smem + 2 * A_ELEMS;
    const uint32_t g = blockIdx.z, m0 = blockIdx.y * BM, n0 = blockIdx.x * BN;
    const T *wg = W + p.w_offset + (uint64_t)g * p.og * p.taps;
    // Each thread fetches the BK taps of column n0 + threadIdx.x.
    const int n = threadIdx.x;
    ColumnReader<T> column;
    column.init(X, p, g, n0 + n);
    T rb[BK];
    auto fetch = [&](uint32_t k0) {
        Tap t = tap_of(p, k0);
#pragma unroll
        for (int kk = 0; kk < BK; ++kk) {
            rb[kk] = column.at(p, t);
            advance(p, t);
        }
    };
    auto stash = [&](T *bs) {
#pragma unroll
        for (int kk = 0; kk < BK; ++kk) bs[tcf::outer_off<BN>(kk, n >> 3) + (n & 7)] = rb[kk];
    };
    float acc[MI][NJ][4];
    zero(acc);
    const int KT = (int)((p.taps + BK - 1) / BK);
    load_weight<VEC>(As, wg, p, m0, 0);
    tcf::cp_async_commit();
    fetch(0);
    stash(Bs);
    tcf::cp_async_wait<0>();
    __syncthreads();
    for (int kt = 0; kt < KT; ++kt) {
        const int cur = kt & 1;
        const bool more = kt + 1 < KT;
        if (more) {
            load_weight<VEC>(As + (cur ^ 1) * A_ELEMS, wg, p, m0, (kt + 1) * BK);
            tcf::cp_async_commit();
            fetch((kt + 1) * BK);
        }
        mma_stage<T>(acc, As + cur * A_ELEMS, Bs + cur * B_ELEMS);
        if (more) {
            stash(Bs + (cur ^ 1) * B_ELEMS);
            tcf::cp_async_wait<0>();
        }
        __syncthreads();
    }
    for_each_acc(acc, [&](int row, int col, float v) { store_out<T>(Y, p, g, m0 + row, n0 + col, v); });
}

// One shared-memory block for both variants (two stages of each operand's tile).
template <typename T> __device__ __forceinline__ void dispatch(const T *X, const T *W, T *Y, const ConvArgs &p) {
    __shared__ __align__(128) T smem[2 * (A_ELEMS + B_ELEMS)];
    if (p.vector)
        conv<true>(smem, X, W, Y, p);
    else
        conv<false>(smem, X, W, Y, p);
}
}  // namespace cgt

extern "C" __global__ void __launch_bounds__(256, 2) conv_gemm_f32(const float *X, const float *W, float *Y, ConvArgs p) {
    conv_simt(X, W, Y, p);
}

extern "C" __global__ void __launch_bounds__(128, 2) conv_gemm_f16(const __half *X, const __half *W, __half *Y, ConvArgs p) {
    cgt::dispatch<__half>(X, W, Y, p);
}

extern "C" __global__ void __launch_bounds__(128, 2)
    conv_gemm_bf16(const __nv_bfloat16 *X, const __nv_bfloat16 *W, __nv_bfloat16 *Y, ConvArgs p) {
    cgt::dispatch<__nv_bfloat16>(X, W, Y, p);
}
