// matmul_f16 / matmul_bf16 (and their _f32-writing twins): the tensor-core GEMM.
// mma.sync m16n8k16 (f32 accumulation) fed by ldmatrix from a 3-stage pipeline, 128x128x32 block
// tiles, 4 warps of 64x64 (64x128 tiles and warps of 32x64 when GemmArgs.small_m says the shape
// has edges or 128-row tiles would not fill the GPU), XOR swizzled shared memory (no padding, no
// bank conflicts). Each operand is staged in its own orientation: k-inner ([rows][32], when k is
// the unit stride) or k-outer ([32][128]).
// An operand with its GemmArgs.vector bit arrives by cp.async, 16 bytes at a time along its unit
// stride; one without it (small_m only: an odd k, a misaligned view, a stride on both axes) is
// loaded element by element through both strides into the same stage layout. 128-row tiles
// (small_m == 0) need m a multiple of 128, n of 128, k of 32 and both operands vector-loaded;
// 64-row tiles take any shape: loads past the edges are zero-filled and stores guarded.
#pragma once
#include "gemm.cuh"

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
// x rounded to TF32 (10 mantissa bits; to nearest, ties away from zero), kept in an f32.
__device__ __forceinline__ float tf32_round(float x) {
    uint32_t r;
    asm("cvt.rna.tf32.f32 %0, %1;\n" : "=r"(r) : "f"(x));
    return __uint_as_float(r);
}
// d (16x8, f32) += a (16x8 TF32, row-major) * b (8x8 TF32, column-major): mma.sync m16n8k8.
__device__ __forceinline__ void mma_tf32(float (&d)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
    asm volatile("mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
                 "{%0,%1,%2,%3};\n"
                 : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}
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

// Zeroes a warp's accumulators (MI 16-row by NJ 8-column MMA tiles).
template <int MI> __device__ __forceinline__ void zero(float (&acc)[MI][NJ][4]) {
#pragma unroll
    for (int i = 0; i < MI; ++i)
#pragma unroll
        for (int j = 0; j < NJ; ++j)
#pragma unroll
            for (int t = 0; t < 4; ++t) acc[i][j][t] = 0.0f;
}

// Calls f(row, col, value) for each of this thread's accumulators (row within the block's BM
// rows, column within its BN columns): a warp tile of 16*MI x 64 per warp, warps 2 wide.
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

// Element offsets inside one stage tile of R rows. k-inner: [R rows][32 k], 4 chunks of 8 per row,
// chunk swizzled by bits 1..2 of the row. k-outer: [32 k][R], R/8 chunks per row, swizzled by k.
__device__ __forceinline__ int inner_off(int row, int chunk) { return row * 32 + ((chunk ^ ((row >> 1) & 3)) << 3); }
template <int R> __device__ __forceinline__ int outer_off(int k, int chunk) { return k * R + ((chunk ^ (k & 7)) << 3); }

// One operand's Rx32 tile (rows r0.., k k0..) into a stage: element (r, k) at
// g[r * stride + k * other] (K_INNER) or g[k * stride + r * other]. With `vec` (always without
// EDGE), `other` is 1 and chunks of 8 go by cp.async; EDGE zero-fills the chunks past `rows` or
// `k` (each chunk is wholly inside or outside: the host sets `vec` only then). Without `vec`, each
// element is loaded alone, zero past the edges.
template <bool K_INNER, int R, bool EDGE, typename T>
__device__ __forceinline__ void load_tile(T *s, const T *g, uint64_t stride, uint64_t other, bool vec, uint32_t r0,
                                          uint32_t k0, uint32_t rows, uint32_t k) {
    const int tid = threadIdx.x;
#pragma unroll
    for (int l = 0; l < R * 4 / NT; ++l) {
        const int e = tid + l * NT;
        // This thread's chunk: 8 elements along k (K_INNER) or along the rows, from (row, kk).
        const int row = K_INNER ? e >> 2 : (e % (R / 8)) * 8, kk = K_INNER ? (e & 3) * 8 : e / (R / 8);
        const int off = K_INNER ? inner_off(row, kk >> 3) : outer_off<R>(kk, row >> 3);
        if (EDGE && !vec) {
#pragma unroll
            for (int t = 0; t < 8; ++t) {
                const uint32_t gr = r0 + row + (K_INNER ? 0 : t), gk = k0 + kk + (K_INNER ? t : 0);
                s[off + t] = (gr < rows && gk < k) ? g[(uint64_t)gr * (K_INNER ? stride : other) +
                                                       (uint64_t)gk * (K_INNER ? other : stride)]
                                                   : T(0.0f);
            }
            continue;
        }
        const T *src = K_INNER ? g + (uint64_t)(r0 + row) * stride + k0 + kk : g + (uint64_t)(k0 + kk) * stride + r0 + row;
        const uint32_t dst = smem_u32(s + off);
        if (EDGE) {
            const bool full = r0 + row < rows && k0 + kk < k;
            cp_async16_zfill(dst, full ? src : g, full);
        } else {
            cp_async16(dst, src);
        }
    }
}

// acc += one stage's tiles: `as` the A tile of BM = 32*MI rows, `bs` the B tile of 128 columns,
// each k-inner ([rows][32]) or k-outer ([32][rows]) in the swizzles above; warps of 16*MI x 64.
template <int MI, bool A_KIN, bool B_KIN, typename T>
__device__ __forceinline__ void mma_stage(float (&acc)[MI][NJ][4], const T *as, const T *bs) {
    constexpr int BM = 32 * MI;
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    const int wm = warp >> 1, wn = warp & 1;  // warp tile: rows wm*16*MI..+16*MI, cols wn*64..+64
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

// MI: 16-row MMA tiles per warp (4: 128-row block tiles, 2: 64-row). EDGE: m, n and k need not be
// tile multiples: loads past the edges are zero-filled and stores are guarded.
template <typename T, typename TO, bool A_KIN, bool B_KIN, int MI, bool EDGE>
__device__ __forceinline__ void gemm(T *smem, const T *A, const T *B, TO *C, const GemmArgs &p) {
    constexpr int BM = 32 * MI, A_ELEMS = BM * BK;
    T *As = smem;
    T *Bs = smem + STAGES * A_ELEMS;
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    const int wm = warp >> 1, wn = warp & 1;  // warp tile: rows wm*16*MI..+16*MI, cols wn*64..+64
    const uint32_t m0 = (blockIdx.y + p.row_tile0) * BM, n0 = blockIdx.x * BN;
    const uint64_t a_st = A_KIN ? p.a_rs : p.a_cs, a_other = A_KIN ? p.a_cs : p.a_rs;
    const uint64_t b_st = B_KIN ? p.b_cs : p.b_rs, b_other = B_KIN ? p.b_rs : p.b_cs;
    const bool a_vec = p.vector & 1u, b_vec = p.vector & 2u;
    const int KT = EDGE ? (int)((p.k + BK - 1) / BK) : (int)(p.k / BK);
    for (uint32_t batch = blockIdx.z; batch < p.batch; batch += gridDim.z) {
        uint64_t off[2];
        element_offsets<2>(p.batch_geom, batch, off);
        const T *a = A + off[0];
        const T *b = B + off[1];
        float acc[MI][NJ][4];
        zero<MI>(acc);
#pragma unroll
        for (int s = 0; s < STAGES - 1; ++s) {
            if (s < KT) {
                load_tile<A_KIN, BM, EDGE>(As + s * A_ELEMS, a, a_st, a_other, a_vec, m0, s * BK, p.m, p.k);
                load_tile<B_KIN, BN, EDGE>(Bs + s * TILE_ELEMS, b, b_st, b_other, b_vec, n0, s * BK, p.n, p.k);
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
                    load_tile<A_KIN, BM, EDGE>(As + st * A_ELEMS, a, a_st, a_other, a_vec, m0, nk * BK, p.m, p.k);
                    load_tile<B_KIN, BN, EDGE>(Bs + st * TILE_ELEMS, b, b_st, b_other, b_vec, n0, nk * BK, p.n, p.k);
                }
                cp_async_commit();
            }
            const T *as = As + (kt % STAGES) * A_ELEMS;
            const T *bs = Bs + (kt % STAGES) * TILE_ELEMS;
            mma_stage<MI, A_KIN, B_KIN>(acc, as, bs);
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
                            c[(uint64_t)r * p.n + cl] = Num<TO>::down(p.epilogue ? epilogue<TO, T>(v[t], p, cl) : v[t]);
                    }
                    continue;
                }
                if (p.epilogue) {
#pragma unroll
                    for (int t = 0; t < 4; ++t) v[t] = epilogue<TO, T>(v[t], p, col + (t & 1));
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
    if (p.small_m) {  // 64-row tiles, with edges and element-wise loads
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
