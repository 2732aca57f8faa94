// The GEMM kernels' arguments, epilogue and SIMT bodies; the tensor-core body is in gemm_tc.cuh.
// Instantiated by gemm.cu (output = operands' dtype) and gemm_mixed.cu (f16/bf16 operands writing
// f32; a separate module so its JIT cost is paid only when used).
// Batched matrix products C[b] = act(A[b] @ B[b] + bias) with A [m, k], B [k, n] read through
// arbitrary row and column strides (so transposed views need no copy) and C contiguous
// [batch, m, n]. The epilogue (GemmArgs.epilogue: bias [n] added to every row, then ReLU) runs in
// every kernel's store stage on the f32/f64 accumulator, before the one rounding to the output
// type. matmul_<f16|bf16>_f32 write f32 (the accumulator) instead.
// One kernel per dtype takes every shape and layout: matmul_f32 (simt_fast_gemm below),
// matmul_f16/bf16 (tcf::gemm, gemm_tc.cuh) and matmul_f64 (simt_gemm). Batches past gridDim.z
// (65535) are looped over; row tiles past gridDim.y take further launches (GemmArgs.row_tile0).
#pragma once
#include "common.cuh"

// Mirrors `sinew_cuda::ops::gemm::GemmArgs` (#[repr(C)]).
struct GemmArgs {
    uint32_t m, n, k, batch;
    uint64_t a_rs, a_cs, b_rs, b_cs;
    // Bit 0: A is loaded 16 bytes at a time along its unit-stride axis (aligned, and each load
    // wholly inside or outside A); bit 1: B. A clear bit: that operand is loaded element by
    // element through both strides (any layout, any size). f32/f16/bf16 only.
    uint32_t vector;
    // matmul_f16/bf16 only: 1 = 64-row block tiles that handle edges (m, n or k not a tile
    // multiple, an operand loaded element-wise, m not a multiple of 128, or a small problem),
    // 0 = 128-row tiles of exact shapes.
    uint32_t small_m;
    // Epilogue: bias address (its element 0; output dtype) and its stride in elements; bit 0 of
    // `epilogue` = add bias[col], bit 1 = ReLU (NaN kept, like the unary relu), bit 2 = round
    // to the operands' type last (f16/bf16 operands writing f32).
    uint64_t bias;
    uint64_t bias_stride;
    uint32_t epilogue;
    // matmul_f32 only: 1 = m, n or k is not a tile multiple or an operand is loaded element-wise
    // (loads past the edges read zeros, stores are guarded).
    uint32_t edge;
    // The first row tile of this launch (blockIdx.y counts from it): shapes with more row tiles
    // than a grid's 65535 take several launches.
    uint32_t row_tile0;
    // Batch dims: operand 0 = A's offsets, 1 = B's (strides in elements; no contiguous bits).
    Geometry batch_geom;
};

// The epilogue on one accumulator value of output column `col` (TO = the output type, which
// is also the bias type; T = the operands' type; A = the accumulator type). Bit 2 (set only
// where T is narrower than TO): the value rounded to T last, so a wider output holds the
// product in T widened.
template <typename TO, typename T = TO, typename A>
__device__ __forceinline__ A epilogue(A v, const GemmArgs &p, uint32_t col) {
    if (p.epilogue & 1u) v += (A)Num<TO>::up(reinterpret_cast<const TO *>(p.bias)[(uint64_t)col * p.bias_stride]);
    if (p.epilogue & 2u) v = (v > (A)0 || v != v) ? v : (A)0;
    if (!SameType<T, TO>::value && (p.epilogue & 4u)) v = (A)Num<T>::up(Num<T>::down(v));
    return v;
}

// matmul_f64: 128x128x8 shared-memory tiles, 256 threads, 8x8 outputs per thread.
template <typename T>
__device__ __forceinline__ void simt_gemm(const T *A, const T *B, T *C, const GemmArgs &p) {
    constexpr int BM = 128, BN = 128, BK = 8;
    __shared__ __align__(16) T As[BK][BM];
    __shared__ __align__(16) T Bs[BK][BN];
    const int tid = threadIdx.x, tx = tid & 15, ty = tid >> 4;
    const uint32_t m0 = (blockIdx.y + p.row_tile0) * BM, n0 = blockIdx.x * BN;
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

// Four consecutive elements along k, x[t * step] for t = 0..3 at k0 + t of k; zeros past k or
// when the row (column) is outside the operand (!inside).
__device__ __forceinline__ float4 gather_k4(const float *x, uint64_t step, bool inside, uint32_t k0, uint32_t k) {
    float v[4];
#pragma unroll
    for (int t = 0; t < 4; ++t) v[t] = (inside && k0 + t < k) ? x[t * step] : 0.0f;
    return make_float4(v[0], v[1], v[2], v[3]);
}

// matmul_f32: 128x128x8 tiles, 256 threads, 8x8 outputs per thread, global loads prefetched into
// registers one tile ahead, double-buffered shared memory ([k][m] and [k][n], so the inner loop
// reads float4s). An operand whose GemmArgs.vector bit is set is read a float4 at a time along its
// unit stride; one without it (EDGE only) element by element through both strides. Without EDGE,
// m and n are multiples of 128, k of 8 and both operands vector-loaded. EDGE (GemmArgs.edge): any
// shape and layout; loads past the edges read zeros and stores are guarded.
template <bool EDGE>
__device__ __forceinline__ void simt_fast_gemm(const float *A, const float *B, float *C, const GemmArgs &p) {
    __shared__ __align__(16) float As[2][8][128];
    __shared__ __align__(16) float Bs[2][8][128];
    const int tid = threadIdx.x, tx = tid & 15, ty = tid >> 4;
    const uint32_t m0 = (blockIdx.y + p.row_tile0) * 128, n0 = blockIdx.x * 128;
    const bool a_vec = !EDGE || (p.vector & 1u), b_vec = !EDGE || (p.vector & 2u);
    // How threads take an operand: 4 elements along k (k-inner) or along m (n). Element-wise
    // operands always go along k.
    const bool a_kin = !a_vec || p.a_cs == 1, b_nin = b_vec && p.b_cs == 1;
    // Per-thread load coordinates: k-inner operands take rows tid/2, k (tid&1)*4..+4; others take
    // k row tid/32, (tid&31)*4..+4 along m or n.
    const int r_in = tid >> 1, k_in = (tid & 1) * 4, k_out = tid >> 5, c_out = (tid & 31) * 4;
    const int KT = EDGE ? (int)((p.k + 7) / 8) : (int)(p.k / 8);
    const float4 zero4 = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
    for (uint32_t batch = blockIdx.z; batch < p.batch; batch += gridDim.z) {
        uint64_t off[2];
        element_offsets<2>(p.batch_geom, batch, off);
        const float *a = A + off[0];
        const float *b = B + off[1];
        // This thread's first element of A and of B: row or column, and k.
        const uint32_t a_row = m0 + (a_kin ? r_in : c_out), a_k = a_kin ? k_in : k_out;
        const uint32_t b_col = n0 + (b_nin ? c_out : r_in), b_k = b_nin ? k_out : k_in;
        // Those elements' addresses, advanced one k-tile at a time.
        const float *ga = a + (uint64_t)a_row * p.a_rs + (uint64_t)a_k * p.a_cs;
        const float *gb = b + (uint64_t)b_k * p.b_rs + (uint64_t)b_col * p.b_cs;
        const uint64_t a_step = 8 * p.a_cs, b_step = 8 * p.b_rs;
        const bool a_inside = a_row < p.m, b_inside = b_col < p.n;
        // This thread's 4 elements of A (of B) in k-tile kt, from ga (gb): a float4 along the unit
        // stride (wholly inside or outside the operand: the host checks), zeros past the edges, or
        // 4 guarded loads along k for an operand without its vector bit.
        auto load_a = [&](int kt) -> float4 {
            if (!a_vec) return gather_k4(ga, p.a_cs, a_inside, kt * 8 + a_k, p.k);
            return (!EDGE || (a_inside && kt * 8 + a_k < p.k)) ? *reinterpret_cast<const float4 *>(ga) : zero4;
        };
        auto load_b = [&](int kt) -> float4 {
            if (!b_vec) return gather_k4(gb, p.b_rs, b_inside, kt * 8 + b_k, p.k);
            return (!EDGE || (b_inside && kt * 8 + b_k < p.k)) ? *reinterpret_cast<const float4 *>(gb) : zero4;
        };
        float acc[8][8];
#pragma unroll
        for (int i = 0; i < 8; ++i)
#pragma unroll
            for (int j = 0; j < 8; ++j) acc[i][j] = 0.0f;
        float4 ra = KT > 0 ? load_a(0) : zero4;
        float4 rb = KT > 0 ? load_b(0) : zero4;
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
                ra = load_a(kt + 1);
                rb = load_b(kt + 1);
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
                    if (col < p.n)
                        c[(uint64_t)row * p.n + col] = p.epilogue ? epilogue<float>(acc[i][j], p, col) : acc[i][j];
                }
                continue;
            }
            if (p.epilogue) {
#pragma unroll
                for (int j = 0; j < 8; ++j)
                    acc[i][j] = epilogue<float>(acc[i][j], p, n0 + (j < 4 ? tx * 4 + j : 64 + tx * 4 + j - 4));
            }
            *reinterpret_cast<float4 *>(cr + tx * 4) = make_float4(acc[i][0], acc[i][1], acc[i][2], acc[i][3]);
            *reinterpret_cast<float4 *>(cr + 64 + tx * 4) = make_float4(acc[i][4], acc[i][5], acc[i][6], acc[i][7]);
        }
    }
}
