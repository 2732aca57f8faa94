// Implicit-GEMM weight gradient of a 2-d convolution (the forward is conv_gemm.cu): for each
// channel group g,
//   dw[g*og + o, tap] = sum over output positions r = (n, oy, ox) of dy[n, g*og + o, oy, ox] * cols[tap, r]
// with cols the im2col columns of the input, read from the input view while loading a tile
// (never stored). The positions are split into `splits` ranges of `split_len` (blockIdx.z =
// g * splits + s) so that small weights still fill the GPU; each range's f32 product goes to its
// own slice of the workspace P [splits, o, taps] (split 0's in the output itself when that is f32,
// ConvArgs.first_slice). The last block of a weight tile to arrive
// (tickets.cuh; one counter a tile) adds the tile's slices in order of the split (so the sum does
// not depend on which block finished last) and rounds once to the weight's dtype: one kernel.
// The strided view is the input, the dense operand the contiguous [n, o, oh, ow] output gradient.
//
// conv_wgrad_f32: SIMT 128x128x8 tiles, 32x128x8 with ConvArgs.narrow (conv_gemm.cuh's
//   simt_stage).
// conv_wgrad_tf32_f32 (f32 with TF32 allowed): tensor cores on inputs rounded to TF32, 64x128x16
//   tiles (32-row narrow; tf32_tc.cuh's ctf), both operands through registers.
// conv_wgrad_f16 / conv_wgrad_bf16: tensor cores, 64x128x32 tiles (32-row with ConvArgs.narrow;
//   cgt::mma_stage), both operands fetched into registers before a tile's MMAs and stored to
//   shared memory after.
#include "conv_gemm.cuh"
#include "tickets.cuh"

// The input under tap t at output position r (image, oy, ox); zero past the border.
template <typename T>
__device__ __forceinline__ T input_at(const T *xg, const ConvArgs &p, const Tap &t, uint32_t r) {
    const uint32_t l = p.oh * p.ow, img = r / l, pos = r % l;
    const int64_t y = (int64_t)(pos / p.ow) * p.sh - p.ph + (int64_t)t.i * p.dh;
    const int64_t x = (int64_t)(pos % p.ow) * p.sw - p.pw + (int64_t)t.j * p.dw;
    if (y < 0 || y >= p.h || x < 0 || x >= p.w) return T(0.0f);
    return xg[(uint64_t)img * p.view_strides[0] + (uint64_t)t.c * p.view_strides[1] + (uint64_t)y * p.view_strides[2] +
              (uint64_t)x * p.view_strides[3]];
}

// The output gradient of channel o (within group g: `gg` points at channel g*og of image 0) at
// output position r.
template <typename T> __device__ __forceinline__ T grad_at(const T *gg, const ConvArgs &p, uint32_t o, uint32_t r) {
    const uint32_t l = p.oh * p.ow;
    return gg[((uint64_t)(r / l) * p.og * p.groups + o) * l + r % l];
}

// This block's group, split and position range [r_begin, r_end).
struct Split {
    uint32_t g, s, r_begin, r_end;
};

__device__ __forceinline__ Split split_of(const ConvArgs &p, uint32_t split_len, uint32_t splits) {
    const uint32_t g = blockIdx.z / splits, s = blockIdx.z % splits;
    const uint32_t begin = s * split_len;  // below cols: the host launches ceil(cols / split_len)
    const uint32_t end = begin + split_len < p.cols ? begin + split_len : (begin < p.cols ? p.cols : begin);
    return Split{g, s, begin, end};
}

// Split s's slice [o, taps] of the partial products: at ConvArgs.first_slice for split 0 when set
// (the f32 weight gradient itself: the last block of a tile reads each element's partials before
// it writes the element), the others after it in P; else every slice in P.
__device__ __forceinline__ float *partial_slice(float *P, const ConvArgs &p, uint32_t s) {
    const uint64_t slice = (uint64_t)p.og * p.groups * p.taps;
    if (p.first_slice == 0) return P + s * slice;
    return s == 0 ? reinterpret_cast<float *>(p.first_slice) : P + (s - 1) * slice;
}

// Stores one partial of row o (output channel within the group) and tap column k in the block's
// slice (partial_slice of its split).
__device__ __forceinline__ void store_partial(float *slice, const ConvArgs &p, const Split &sp, uint32_t o,
                                              uint32_t k, float v) {
    if (o < p.og && k < p.taps) slice[((uint64_t)sp.g * p.og + o) * p.taps + k] = v;
}

template <int RM>
__device__ __forceinline__ void wgrad_simt(const float *X, const float *G, float *P, const ConvArgs &p,
                                           uint32_t split_len, uint32_t splits) {
    constexpr int BM = 16 * RM, A_PER = BM / 32;
    // As rows padded by 4: the k-major stores of 4 rows x 8 positions per warp hit 32 banks.
    __shared__ __align__(16) float As[2][8][BM + 4];
    __shared__ __align__(16) float Bs[2][8][128];
    const int tid = threadIdx.x;
    const Split sp = split_of(p, split_len, splits);
    float *const slice = partial_slice(P, p, sp.s);
    const uint32_t m0 = blockIdx.y * BM, n0 = blockIdx.x * 128;
    const float *gg = G + p.dense_offset + (uint64_t)sp.g * p.og * p.oh * p.ow;
    const float *xg = X + p.view_offset + (uint64_t)sp.g * p.cg * p.view_strides[1];
    // Loads: gradient rows m0 + (tid >> 3) + 32l at position tid & 7; tap n0 + (tid & 127) at
    // positions (tid >> 7) + 2l.
    const int a_row = tid >> 3, a_k = tid & 7, b_col = tid & 127, b_k = tid >> 7;
    const bool tap_in = n0 + b_col < p.taps;
    const Tap tap = tap_of(Window{p.kh, p.kw}, tap_in ? n0 + b_col : 0);
    float ra[A_PER], rb[4];
    auto fetch = [&](uint32_t r0) {
#pragma unroll
        for (int l = 0; l < A_PER; ++l) {
            const uint32_t o = m0 + a_row + 32 * l, r = r0 + a_k;
            ra[l] = (o < p.og && r < sp.r_end) ? grad_at(gg, p, o, r) : 0.0f;
        }
#pragma unroll
        for (int l = 0; l < 4; ++l) {
            const uint32_t rk = r0 + b_k + 2 * l;
            rb[l] = (tap_in && rk < sp.r_end) ? input_at(xg, p, tap, rk) : 0.0f;
        }
    };
    auto stash = [&](int buf) {
#pragma unroll
        for (int l = 0; l < A_PER; ++l) As[buf][a_k][a_row + 32 * l] = ra[l];
#pragma unroll
        for (int l = 0; l < 4; ++l) Bs[buf][b_k + 2 * l][b_col] = rb[l];
    };
    float acc[RM][8];
#pragma unroll
    for (int i = 0; i < RM; ++i)
#pragma unroll
        for (int j = 0; j < 8; ++j) acc[i][j] = 0.0f;
    run_stages((int)((sp.r_end - sp.r_begin + 7) / 8), sp.r_begin, 8, fetch, stash,
               [&](int buf) { simt_stage<RM, BM + 4>(acc, As[buf], Bs[buf]); });
#pragma unroll
    for (int i = 0; i < RM; ++i)
#pragma unroll
        for (int j = 0; j < 8; ++j) store_partial(slice, p, sp, m0 + simt_row<RM>(i), n0 + simt_col(j), acc[i][j]);
}

// The weight gradient in f32 on the tensor cores with TF32 inputs (tf32_tc.cuh's ctf): both
// operands fetched into registers before a stage's MMAs and stored (rounded) after them.
template <int MI>
__device__ __forceinline__ void wgrad_tf32(float *smem, const float *X, const float *G, float *P, const ConvArgs &p,
                                           uint32_t split_len, uint32_t splits) {
    using ctf::BK;
    using R = ctf::Rows<MI>;
    float *As = smem;
    float *Bs = smem + 2 * R::A_ELEMS;
    const Split sp = split_of(p, split_len, splits);
    float *const slice = partial_slice(P, p, sp.s);
    const uint32_t m0 = blockIdx.y * R::BM, n0 = blockIdx.x * ctf::BN;
    const float *gg = G + p.dense_offset + (uint64_t)sp.g * p.og * p.oh * p.ow;
    const float *xg = X + p.view_offset + (uint64_t)sp.g * p.cg * p.view_strides[1];
    // Gradient tile: element e = tid + l*THREADS at row e / BK, position e % BK. Column tile:
    // thread n holds tap n0 + n at the BK positions.
    const int n = threadIdx.x;
    const bool tap_in = n0 + n < p.taps;
    const Tap tap = tap_of(Window{p.kh, p.kw}, tap_in ? n0 + n : 0);
    float ra[R::A_PER], rb[BK];
    auto fetch = [&](uint32_t r0) {
#pragma unroll
        for (int l = 0; l < R::A_PER; ++l) {
            const int e = n + l * ctf::THREADS;
            const uint32_t o = m0 + e / BK, r = r0 + e % BK;
            ra[l] = (o < p.og && r < sp.r_end) ? grad_at(gg, p, o, r) : 0.0f;
        }
#pragma unroll
        for (int kk = 0; kk < BK; ++kk) {
            const uint32_t r = r0 + kk;
            rb[kk] = (tap_in && r < sp.r_end) ? input_at(xg, p, tap, r) : 0.0f;
        }
    };
    auto stash = [&](int buf) {
        ctf::stash_a<MI>(As + buf * R::A_ELEMS, ra);
        ctf::stash_column(Bs + buf * ctf::B_ELEMS, n, rb);
    };
    float acc[MI][ctf::NJ][4];
    cgt::zero<MI>(acc);
    run_stages((int)((sp.r_end - sp.r_begin + BK - 1) / BK), sp.r_begin, BK, fetch, stash,
               [&](int buf) { ctf::mma_stage<MI>(acc, As + buf * R::A_ELEMS, Bs + buf * ctf::B_ELEMS); });
    cgt::for_each_acc<MI>(acc, [&](int row, int col, float v) { store_partial(slice, p, sp, m0 + row, n0 + col, v); });
}

namespace cgt {
template <int MI, typename T>
__device__ __forceinline__ void wgrad(T *smem, const T *X, const T *G, float *P, const ConvArgs &p,
                                      uint32_t split_len, uint32_t splits) {
    constexpr int BM = Rows<MI>::BM, A_ELEMS = Rows<MI>::A_ELEMS;
    T *As = smem;
    T *Bs = smem + 2 * A_ELEMS;
    const Split sp = split_of(p, split_len, splits);
    float *const slice = partial_slice(P, p, sp.s);
    const uint32_t m0 = blockIdx.y * BM, n0 = blockIdx.x * BN;
    const T *gg = G + p.dense_offset + (uint64_t)sp.g * p.og * p.oh * p.ow;
    const T *xg = X + p.view_offset + (uint64_t)sp.g * p.cg * p.view_strides[1];
    // Gradient tile [BM][BK]: element e = tid + l*THREADS at row e >> 5, position e & 31 (a warp
    // reads 32 consecutive positions of one channel). Column tile [BK][BN]: thread n holds tap
    // n0 + n at the BK positions.
    const int n = threadIdx.x;
    const bool tap_in = n0 + n < p.taps;
    const Tap tap = tap_of(Window{p.kh, p.kw}, tap_in ? n0 + n : 0);
    constexpr int A_PER = BM * BK / THREADS;
    T ra[A_PER], rb[BK];
    auto fetch = [&](uint32_t r0) {
#pragma unroll
        for (int l = 0; l < A_PER; ++l) {
            const int e = n + l * THREADS;
            const uint32_t o = m0 + (e >> 5), r = r0 + (e & 31);
            ra[l] = (o < p.og && r < sp.r_end) ? grad_at(gg, p, o, r) : T(0.0f);
        }
#pragma unroll
        for (int kk = 0; kk < BK; ++kk) {
            const uint32_t r = r0 + kk;
            rb[kk] = (tap_in && r < sp.r_end) ? input_at(xg, p, tap, r) : T(0.0f);
        }
    };
    auto stash = [&](int buf) {
        T *as = As + buf * A_ELEMS, *bs = Bs + buf * B_ELEMS;
#pragma unroll
        for (int l = 0; l < A_PER; ++l) {
            const int e = n + l * THREADS, kk = e & 31;
            as[tcf::inner_off(e >> 5, kk >> 3) + (kk & 7)] = ra[l];
        }
#pragma unroll
        for (int kk = 0; kk < BK; ++kk) bs[tcf::outer_off<BN>(kk, n >> 3) + (n & 7)] = rb[kk];
    };
    float acc[MI][NJ][4];
    zero<MI>(acc);
    run_stages((int)((sp.r_end - sp.r_begin + BK - 1) / BK), sp.r_begin, BK, fetch, stash,
               [&](int buf) { mma_stage<MI, T>(acc, As + buf * A_ELEMS, Bs + buf * B_ELEMS); });
    for_each_acc<MI>(acc, [&](int row, int col, float v) { store_partial(slice, p, sp, m0 + row, n0 + col, v); });
}

template <typename T>
__device__ __forceinline__ void wgrad_tc(const T *X, const T *G, float *P, const ConvArgs &p, uint32_t split_len,
                                         uint32_t splits) {
    __shared__ __align__(128) T smem[SMEM_ELEMS];
    if (p.narrow)
        wgrad<1>(smem, X, G, P, p, split_len, splits);
    else
        wgrad<2>(smem, X, G, P, p, split_len, splits);
}
}  // namespace cgt

// After the block's partials are stored: in the last block of this weight tile (BM rows x 128
// taps of group g) to arrive, dw = the sum of the tile's slices of P in order of the split,
// rounded once to T; with `wide`, dw is f32 and holds that rounded value (the gradient of an f32
// weight cast to T for the product, without the cast's own kernel).
template <typename T>
__device__ __forceinline__ void finish_tile(float *P, void *dw, uint32_t wide, const ConvArgs &p, uint32_t bm,
                                            uint32_t splits, unsigned long long *tickets) {
    const uint32_t g = blockIdx.z / splits;
    const uint64_t tile = ((uint64_t)g * gridDim.y + blockIdx.y) * gridDim.x + blockIdx.x;
    if (!last_to_arrive(tickets, tile, splits)) return;
    const uint32_t m0 = blockIdx.y * bm, n0 = blockIdx.x * 128u;
    for (uint32_t e = threadIdx.x; e < bm * 128u; e += blockDim.x) {
        const uint32_t o = m0 + e / 128u, k = n0 + e % 128u;
        if (o >= p.og || k >= p.taps) continue;
        const uint64_t i = ((uint64_t)g * p.og + o) * p.taps + k;
        float acc = 0.0f;
#pragma unroll 8
        for (uint32_t s = 0; s < splits; ++s) acc += fresh_load(partial_slice(P, p, s) + i);
        const T rounded = Num<T>::down(acc);
        if (wide)
            static_cast<float *>(dw)[i] = (float)Num<T>::up(rounded);
        else
            static_cast<T *>(dw)[i] = rounded;
    }
    reset_ticket(tickets, tile);
}

extern "C" __global__ void __launch_bounds__(256, 2)
    conv_wgrad_f32(const float *X, const float *G, float *P, ConvArgs p, uint32_t split_len, uint32_t splits,
                   void *dw, uint32_t wide, unsigned long long *tickets) {
    if (p.narrow)
        wgrad_simt<2>(X, G, P, p, split_len, splits);
    else
        wgrad_simt<8>(X, G, P, p, split_len, splits);
    finish_tile<float>(P, dw, wide, p, p.narrow ? 32u : 128u, splits, tickets);
}

extern "C" __global__ void __launch_bounds__(128, 2)
    conv_wgrad_tf32_f32(const float *X, const float *G, float *P, ConvArgs p, uint32_t split_len, uint32_t splits,
                        void *dw, uint32_t wide, unsigned long long *tickets) {
    __shared__ __align__(128) float smem[ctf::SMEM_ELEMS];
    if (p.narrow)
        wgrad_tf32<1>(smem, X, G, P, p, split_len, splits);
    else
        wgrad_tf32<2>(smem, X, G, P, p, split_len, splits);
    finish_tile<float>(P, dw, wide, p, p.narrow ? (uint32_t)ctf::Rows<1>::BM : (uint32_t)ctf::Rows<2>::BM, splits,
                       tickets);
}

extern "C" __global__ void __launch_bounds__(128, 2)
    conv_wgrad_f16(const __half *X, const __half *G, float *P, ConvArgs p, uint32_t split_len, uint32_t splits,
                   void *dw, uint32_t wide, unsigned long long *tickets) {
    cgt::wgrad_tc<__half>(X, G, P, p, split_len, splits);
    finish_tile<__half>(P, dw, wide, p, p.narrow ? (uint32_t)cgt::Rows<1>::BM : (uint32_t)cgt::Rows<2>::BM, splits,
                        tickets);
}

extern "C" __global__ void __launch_bounds__(128, 2) conv_wgrad_bf16(const __nv_bfloat16 *X, const __nv_bfloat16 *G,
                                                                     float *P, ConvArgs p, uint32_t split_len,
                                                                     uint32_t splits, void *dw, uint32_t wide,
                                                                     unsigned long long *tickets) {
    cgt::wgrad_tc<__nv_bfloat16>(X, G, P, p, split_len, splits);
    finish_tile<__nv_bfloat16>(P, dw, wide, p, p.narrow ? (uint32_t)cgt::Rows<1>::BM : (uint32_t)cgt::Rows<2>::BM,
                               splits, tickets);
}
