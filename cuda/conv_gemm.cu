// Implicit-GEMM 2-d convolution (cross-correlation) and its input gradient, per channel group g:
//
// conv_gemm_<dtype> (forward):
//   y[n, g*og + o, oy, ox] = sum over (c, ki, kj) of
//       w[g*og + o, c, ki, kj] * x[n, g*cg + c, oy*sh + ki*dh - ph, ox*sw + kj*dw - pw]
//   the product W [og, cg*kh*kw] @ cols [cg*kh*kw, n*oh*ow];
// conv_gemm_dgrad_<dtype> (input gradient; also conv_transpose2d's forward):
//   dx[n, g*cg + c, y, x] = sum over (o, ki, kj) of
//       w[g*og + o, c, ki, kj] * dy[n, g*og + o, (y + ph - ki*dh) / sh, (x + pw - kj*dw) / sw]
//   over the taps whose division is exact and inside the output: W^T [cg, og*kh*kw] @
//   [og*kh*kw, n*h*w]; with dilation 1, per phase (y mod sh, x mod sw), over that phase's
//   positions and the taps the division leaves (ConvArgs.phase, up to MAX_PHASES a launch): a
//   3x3 stride-2 convolution's input gradient, one launch, multiplies 9/4 taps per position
//   instead of 9.
// The right operand (the im2col columns, or their adjoint's) is never stored: each thread reads its
// column's taps from the strided view (x or dy, any strides) while loading a tile, with zeros
// outside. The result is written straight into a contiguous [n, channels, height, width]. The
// weight is the dense operand (contiguous [o, cg, kh, kw]).
//
// f32: SIMT, 128x128x8 tiles (32x128x8 for 32 rows or fewer: ConvArgs.narrow), 256 threads,
//   register prefetch one tile ahead into double-buffered shared memory (conv_gemm.cuh's
//   simt_stage), fmaf in k order.
// f32 with TF32 allowed (conv_gemm_tf32_f32, conv_gemm_dgrad_tf32_f32; PyTorch's default for
//   convolutions): tensor cores, mma.sync m16n8k8 on inputs rounded to TF32, f32 accumulation,
//   64x128x16 tiles (32x128x16 narrow), 4 warps, both operands through registers (tf32_tc.cuh's
//   ctf).
// f16 / bf16: tensor cores, mma.sync m16n8k16 with f32 accumulation fed by ldmatrix from
//   XOR-swizzled, double-buffered shared memory (cgt::mma_stage), 64x128x32 tiles, 4 warps of
//   32x64 (32x128x32 tiles, warps of 16x64, for 32 rows or fewer: ConvArgs.narrow). The forward's weight tile comes by cp.async 16 bytes at a time when ConvArgs.vector
//   says its rows allow that (cg*kh*kw a multiple of 8), else element by element; the column tile
//   through registers, fetched before the tile's MMAs and stored after them.
// Grid: (column tiles, row tiles, groups), times the phases in z for the input gradient (its
// blocks past their phase's columns return at once).
#include "conv_gemm.cuh"

// The forward as a product: rows = output channels, columns = output positions.
template <typename T> struct Forward {
    const T *x, *wg;  // the input view's group g; the group's weight rows
    T *y;
    const ConvArgs &p;
    uint32_t g, rows, inner, cols;
    Window window;  // the inner index's taps per channel: the weight's

    __device__ Forward(const T *X, const T *W, T *Y, const ConvArgs &a, uint32_t group)
        : x(X + a.view_offset + (uint64_t)group * a.cg * a.view_strides[1]),
          wg(W + a.dense_offset + (uint64_t)group * a.og * a.taps), y(Y), p(a), g(group), rows(a.og),
          inner(a.taps), cols(a.cols), window{a.kh, a.kw} {}

    __device__ __forceinline__ T a(uint32_t m, uint32_t k) const { return wg[(uint64_t)m * p.taps + k]; }
    __device__ __forceinline__ const T *a_row(uint32_t m) const { return wg + (uint64_t)m * p.taps; }

    // Output position `col` of the batch: the window's top-left corner in its image.
    struct Column {
        const T *base;
        int64_t y0, x0;
        bool valid;
        const ConvArgs *p;
        __device__ __forceinline__ T at(const Tap &t) const {
            const int64_t yy = y0 + (int64_t)t.i * p->dh, xx = x0 + (int64_t)t.j * p->dw;
            if (!valid || t.c >= p->cg || yy < 0 || yy >= p->h || xx < 0 || xx >= p->w) return T(0.0f);
            return base[(uint64_t)t.c * p->view_strides[1] + (uint64_t)yy * p->view_strides[2] +
                        (uint64_t)xx * p->view_strides[3]];
        }
    };
    __device__ __forceinline__ Column column(uint32_t col) const {
        const bool valid = col < cols;
        const uint32_t c = valid ? col : 0, l = p.oh * p.ow, img = c / l, pos = c % l;
        return Column{x + (uint64_t)img * p.view_strides[0], (int64_t)(pos / p.ow) * p.sh - p.ph,
                      (int64_t)(pos % p.ow) * p.sw - p.pw, valid, &p};
    }

    // The accumulator plus the channel's bias (when given), then ReLU (when asked: NaN kept, as
    // the unary relu; it commutes with the rounding), rounded once.
    __device__ __forceinline__ void store(uint32_t m, uint32_t col, float v) const {
        if (m >= rows || col >= cols) return;
        const uint32_t l = p.oh * p.ow, img = col / l, pos = col % l;
        const uint64_t channel = (uint64_t)g * p.og + m;
        if (p.bias != 0) v += (float)Num<T>::up(reinterpret_cast<const T *>(p.bias)[channel]);
        if (p.relu != 0 && !(v > 0.0f || is_nan(v))) v = 0.0f;
        y[((uint64_t)img * p.og * p.groups + channel) * l + pos] = Num<T>::down(v);
    }
};

// Phase `i` of the launch (uniform branches on the few phases: a dynamic index would copy the
// parameters to local memory).
__device__ __forceinline__ DgradPhase phase_of(const ConvArgs &a, uint32_t i) {
    return i == 0 ? a.phase[0] : i == 1 ? a.phase[1] : i == 2 ? a.phase[2] : a.phase[3];
}

// The input gradient as a product: rows = input channels, columns = the input positions of
// the block's phase (blockIdx.z = group * phases + phase; every position with the identity
// phase).
template <typename T> struct InputGrad {
    const T *dy, *wg;  // the output gradient view's group g; the group's weight
    T *dx;
    const ConvArgs &p;
    DgradPhase ph;
    uint32_t g, rows, inner, cols;
    Window window;  // the inner index's taps per channel: the phase's

    __device__ InputGrad(const T *DY, const T *W, T *DX, const ConvArgs &a, uint32_t z)
        : dy(DY + a.view_offset + (uint64_t)(z / a.phases) * a.og * a.view_strides[1]),
          wg(W + a.dense_offset + (uint64_t)(z / a.phases) * a.og * a.taps), dx(DX), p(a),
          ph(phase_of(a, z % a.phases)), g(z / a.phases), rows(a.cg), inner(a.og * ph.kh * ph.kw),
          cols(a.n * ph.hp * ph.wp), window{ph.kh, ph.kw} {}

    // Whether the block's columns (every variant's tiles are tcf::BN = 128 wide) lie past its
    // phase's, leaving it nothing to do (the grid is as wide as the launch's widest phase).
    __device__ __forceinline__ bool idle() const { return blockIdx.x * (uint32_t)tcf::BN >= cols; }

    // Element (c, k = (o, i, j)) of W^T: w[o, c, ry + i*step_y, rx + j*step_x].
    __device__ __forceinline__ T a(uint32_t m, uint32_t k) const {
        const uint32_t area = ph.kh * ph.kw, r = k % area;
        const uint32_t ki = ph.ry + r / ph.kw * p.step_y, kj = ph.rx + r % ph.kw * p.step_x;
        return wg[(((uint64_t)(k / area) * p.cg + m) * p.kh + ki) * p.kw + kj];
    }
    __device__ __forceinline__ const T *a_row(uint32_t) const { return wg; }  // never vector-loaded

    // Input position `col` of the phase: its image and row and column in the input.
    struct Position {
        uint32_t img, y, x;
    };
    __device__ __forceinline__ Position position(uint32_t col) const {
        const uint32_t l = ph.hp * ph.wp, img = col / l, pos = col % l;
        return Position{img, ph.py + pos / ph.wp * p.step_y, ph.px + pos % ph.wp * p.step_x};
    }

    // The position, shifted by the padding; ry, rx: the phase's first tap.
    struct Column {
        const T *base;
        int64_t yp, xp;
        bool valid;
        uint32_t ry, rx;
        const ConvArgs *p;
        __device__ __forceinline__ T at(const Tap &t) const {
            const int64_t ty = yp - (int64_t)(ry + t.i * p->step_y) * p->dh;
            const int64_t tx = xp - (int64_t)(rx + t.j * p->step_x) * p->dw;
            if (!valid || t.c >= p->og || ty < 0 || tx < 0 || ty % p->sh || tx % p->sw) return T(0.0f);
            const int64_t oy = ty / p->sh, ox = tx / p->sw;
            if (oy >= p->oh || ox >= p->ow) return T(0.0f);
            return base[(uint64_t)t.c * p->view_strides[1] + (uint64_t)oy * p->view_strides[2] +
                        (uint64_t)ox * p->view_strides[3]];
        }
    };
    __device__ __forceinline__ Column column(uint32_t col) const {
        const bool valid = col < cols;
        const Position at = position(valid ? col : 0);
        return Column{dy + (uint64_t)at.img * p.view_strides[0], (int64_t)at.y + p.ph, (int64_t)at.x + p.pw,
                      valid, ph.ry, ph.rx, &p};
    }

    // The rounded gradient `v` of element `i`, plus ConvArgs.add's element `i` when given (in
    // the compute type, rounded once: binary add's values).
    __device__ __forceinline__ T plus_add(uint64_t i, T v) const {
        if (p.add == 0) return v;
        const T a = reinterpret_cast<const T *>(p.add)[i];
        return Num<T>::down((float)Num<T>::up(a) + (float)Num<T>::up(v));
    }

    // The value at its position and, with ConvArgs.zero_rest, zeros at the other positions of
    // its step_y x step_x block (inside the input), which no tap reaches; each plus
    // ConvArgs.add's element there when given.
    __device__ __forceinline__ void store(uint32_t m, uint32_t col, float v) const {
        if (m >= rows || col >= cols) return;
        const Position at = position(col);
        const uint64_t plane = ((uint64_t)at.img * p.cg * p.groups + (uint64_t)g * p.cg + m) * p.h * p.w;
        const uint64_t i = plane + (uint64_t)at.y * p.w + at.x;
        dx[i] = plus_add(i, Num<T>::down(v));
        if (p.zero_rest == 0u) return;
        for (uint32_t by = 0; by < p.step_y && at.y + by < p.h; ++by)
            for (uint32_t bx = 0; bx < p.step_x && at.x + bx < p.w; ++bx)
                if ((by | bx) != 0u) {
                    const uint64_t j = plane + (uint64_t)(at.y + by) * p.w + at.x + bx;
                    dx[j] = plus_add(j, Num<T>::down(0.0f));
                }
    }
};

// The product of a problem (Forward or InputGrad) in f32 on the SIMT cores, in block tiles of
// 16*RM rows (RM = 8 or 2).
template <int RM, class Prob> __device__ __forceinline__ void gemm_simt(const Prob &pr) {
    constexpr int BM = 16 * RM, A_PER = BM * 8 / 256;
    __shared__ __align__(16) float As[2][8][BM];
    __shared__ __align__(16) float Bs[2][8][128];
    const int tid = threadIdx.x;
    const uint32_t m0 = blockIdx.y * BM, n0 = blockIdx.x * 128;
    // Loads: left row m0 + (tid % BM) at inner tid / BM + (256 / BM) l; column n0 + (tid &
    // 127) at inner (tid >> 7) + 2l.
    constexpr int A_STEP = 256 / BM;
    const int row = tid % BM, a_k = tid / BM, col = tid & 127, k_first = tid >> 7;
    const bool row_in = m0 + row < pr.rows;
    const auto column = pr.column(n0 + col);
    float ra[A_PER], rb[4];
    auto fetch = [&](uint32_t k0) {
#pragma unroll
        for (int l = 0; l < A_PER; ++l) {
            const uint32_t k = k0 + a_k + A_STEP * l;
            ra[l] = (row_in && k < pr.inner) ? pr.a(m0 + row, k) : 0.0f;
        }
#pragma unroll
        for (int l = 0; l < 4; ++l) rb[l] = column.at(tap_of(pr.window, k0 + k_first + 2 * l));
    };
    auto stash = [&](int buf) {
#pragma unroll
        for (int l = 0; l < A_PER; ++l) As[buf][a_k + A_STEP * l][row] = ra[l];
#pragma unroll
        for (int l = 0; l < 4; ++l) Bs[buf][k_first + 2 * l][col] = rb[l];
    };
    float acc[RM][8];
#pragma unroll
    for (int i = 0; i < RM; ++i)
#pragma unroll
        for (int j = 0; j < 8; ++j) acc[i][j] = 0.0f;
    run_stages((int)((pr.inner + 7) / 8), 0, 8, fetch, stash,
               [&](int buf) { simt_stage<RM, BM>(acc, As[buf], Bs[buf]); });
#pragma unroll
    for (int i = 0; i < RM; ++i)
#pragma unroll
        for (int j = 0; j < 8; ++j) pr.store(m0 + simt_row<RM>(i), n0 + simt_col(j), acc[i][j]);
}

// The f32 product at the block height the host chose.
template <class Prob> __device__ __forceinline__ void simt(const Prob &pr) {
    if (pr.p.narrow)
        gemm_simt<2>(pr);
    else
        gemm_simt<8>(pr);
}

// The product of a problem in f32 on the tensor cores with TF32 inputs (ctf's tiles): like
// cgt::gemm_tc, both operands through registers, fetched before a stage's MMAs and stored
// (rounded to TF32) after them.
template <int MI, class Prob> __device__ __forceinline__ void gemm_tf32(float *smem, const Prob &pr) {
    using ctf::BK;
    using R = ctf::Rows<MI>;
    float *As = smem;
    float *Bs = smem + 2 * R::A_ELEMS;
    const uint32_t m0 = blockIdx.y * R::BM, n0 = blockIdx.x * ctf::BN;
    const int n = threadIdx.x;
    const auto column = pr.column(n0 + n);
    float ra[R::A_PER], rb[BK];
    auto fetch = [&](uint32_t k0) {
#pragma unroll
        for (int l = 0; l < R::A_PER; ++l) {
            const int e = n + l * ctf::THREADS;
            const uint32_t gm = m0 + e / BK, gk = k0 + e % BK;
            ra[l] = (gm < pr.rows && gk < pr.inner) ? pr.a(gm, gk) : 0.0f;
        }
        Tap t = tap_of(pr.window, k0);
#pragma unroll
        for (int kk = 0; kk < BK; ++kk) {
            rb[kk] = column.at(t);
            advance(pr.window, t);
        }
    };
    auto stash = [&](int buf) {
        ctf::stash_a<MI>(As + buf * R::A_ELEMS, ra);
        ctf::stash_column(Bs + buf * ctf::B_ELEMS, n, rb);
    };
    float acc[MI][ctf::NJ][4];
    cgt::zero<MI>(acc);
    run_stages((int)((pr.inner + BK - 1) / BK), 0, BK, fetch, stash,
               [&](int buf) { ctf::mma_stage<MI>(acc, As + buf * R::A_ELEMS, Bs + buf * ctf::B_ELEMS); });
    cgt::for_each_acc<MI>(acc, [&](int row, int col, float v) { pr.store(m0 + row, n0 + col, v); });
}

// The f32 product on the tensor cores (TF32) at the block height the host chose.
template <class Prob> __device__ __forceinline__ void tf32(const Prob &pr) {
    __shared__ __align__(128) float smem[ctf::SMEM_ELEMS];
    if (pr.p.narrow)
        gemm_tf32<1>(smem, pr);
    else
        gemm_tf32<2>(smem, pr);
}

namespace cgt {

// The left operand's tile [BM rows][BK] (k-inner, swizzled) of rows m0.., inner k0...
template <bool VEC, int MI, class Prob, typename T>
__device__ __forceinline__ void load_a(T *as, const Prob &pr, uint32_t m0, uint32_t k0) {
    constexpr int BM = Rows<MI>::BM;
    const int tid = threadIdx.x;
    if (VEC) {  // inner % 8 == 0: every 8-element chunk is wholly inside or outside
#pragma unroll
        for (int l = 0; l < BM * 4 / THREADS; ++l) {
            const int e = tid + l * THREADS, row = e >> 2, ch = e & 3;
            const bool full = m0 + row < pr.rows && k0 + ch * 8 < pr.inner;
            const T *src = full ? pr.a_row(m0 + row) + k0 + ch * 8 : pr.a_row(0);
            tcf::cp_async16_zfill(tcf::smem_u32(as + tcf::inner_off(row, ch)), src, full);
        }
    } else {
#pragma unroll 4
        for (int l = 0; l < BM * BK / THREADS; ++l) {
            const int e = tid + l * THREADS, row = e >> 5, kk = e & 31;
            const uint32_t gm = m0 + row, gk = k0 + kk;
            as[tcf::inner_off(row, kk >> 3) + (kk & 7)] = (gm < pr.rows && gk < pr.inner) ? pr.a(gm, gk) : T(0.0f);
        }
    }
}

// The product of a problem in f16/bf16 on the tensor cores.
template <bool VEC, int MI, typename T, class Prob> __device__ __forceinline__ void gemm_tc(T *smem, const Prob &pr) {
    constexpr int A_ELEMS = Rows<MI>::A_ELEMS;
    T *As = smem;
    T *Bs = smem + 2 * A_ELEMS;
    const uint32_t m0 = blockIdx.y * Rows<MI>::BM, n0 = blockIdx.x * BN;
    // Each thread fetches the BK inner elements of column n0 + threadIdx.x.
    const int n = threadIdx.x;
    const auto column = pr.column(n0 + n);
    T rb[BK];
    auto fetch = [&](uint32_t k0) {
        Tap t = tap_of(pr.window, k0);
#pragma unroll
        for (int kk = 0; kk < BK; ++kk) {
            rb[kk] = column.at(t);
            advance(pr.window, t);
        }
    };
    auto stash = [&](T *bs) {
#pragma unroll
        for (int kk = 0; kk < BK; ++kk) bs[tcf::outer_off<BN>(kk, n >> 3) + (n & 7)] = rb[kk];
    };
    float acc[MI][NJ][4];
    zero<MI>(acc);
    const int KT = (int)((pr.inner + BK - 1) / BK);
    load_a<VEC, MI>(As, pr, m0, 0);
    tcf::cp_async_commit();
    fetch(0);
    stash(Bs);
    tcf::cp_async_wait<0>();
    __syncthreads();
    for (int kt = 0; kt < KT; ++kt) {
        const int cur = kt & 1;
        const bool more = kt + 1 < KT;
        if (more) {
            load_a<VEC, MI>(As + (cur ^ 1) * A_ELEMS, pr, m0, (kt + 1) * BK);
            tcf::cp_async_commit();
            fetch((kt + 1) * BK);
        }
        mma_stage<MI, T>(acc, As + cur * A_ELEMS, Bs + cur * B_ELEMS);
        if (more) {
            stash(Bs + (cur ^ 1) * B_ELEMS);
            tcf::cp_async_wait<0>();
        }
        __syncthreads();
    }
    for_each_acc<MI>(acc, [&](int row, int col, float v) { pr.store(m0 + row, n0 + col, v); });
}

// One shared-memory block for every variant (two stages of each operand's tile).
template <typename T> __device__ __forceinline__ void forward(const T *X, const T *W, T *Y, const ConvArgs &p) {
    __shared__ __align__(128) T smem[SMEM_ELEMS];
    const Forward<T> pr(X, W, Y, p, blockIdx.z);
    if (p.vector)
        p.narrow ? gemm_tc<true, 1>(smem, pr) : gemm_tc<true, 2>(smem, pr);
    else
        p.narrow ? gemm_tc<false, 1>(smem, pr) : gemm_tc<false, 2>(smem, pr);
}

template <typename T> __device__ __forceinline__ void input_grad(const T *DY, const T *W, T *DX, const ConvArgs &p) {
    __shared__ __align__(128) T smem[SMEM_ELEMS];
    const InputGrad<T> pr(DY, W, DX, p, blockIdx.z);
    if (pr.idle()) return;
    p.narrow ? gemm_tc<false, 1>(smem, pr) : gemm_tc<false, 2>(smem, pr);
}
}  // namespace cgt

extern "C" __global__ void __launch_bounds__(256, 2) conv_gemm_f32(const float *X, const float *W, float *Y, ConvArgs p) {
    simt(Forward<float>(X, W, Y, p, blockIdx.z));
}

extern "C" __global__ void __launch_bounds__(128, 2)
    conv_gemm_tf32_f32(const float *X, const float *W, float *Y, ConvArgs p) {
    tf32(Forward<float>(X, W, Y, p, blockIdx.z));
}

extern "C" __global__ void __launch_bounds__(128, 2) conv_gemm_f16(const __half *X, const __half *W, __half *Y, ConvArgs p) {
    cgt::forward<__half>(X, W, Y, p);
}

extern "C" __global__ void __launch_bounds__(128, 2)
    conv_gemm_bf16(const __nv_bfloat16 *X, const __nv_bfloat16 *W, __nv_bfloat16 *Y, ConvArgs p) {
    cgt::forward<__nv_bfloat16>(X, W, Y, p);
}

extern "C" __global__ void __launch_bounds__(256, 2)
    conv_gemm_dgrad_f32(const float *DY, const float *W, float *DX, ConvArgs p) {
    const InputGrad<float> pr(DY, W, DX, p, blockIdx.z);
    if (!pr.idle()) simt(pr);
}

extern "C" __global__ void __launch_bounds__(128, 2)
    conv_gemm_dgrad_tf32_f32(const float *DY, const float *W, float *DX, ConvArgs p) {
    const InputGrad<float> pr(DY, W, DX, p, blockIdx.z);
    if (!pr.idle()) tf32(pr);
}

extern "C" __global__ void __launch_bounds__(128, 2)
    conv_gemm_dgrad_f16(const __half *DY, const __half *W, __half *DX, ConvArgs p) {
    cgt::input_grad<__half>(DY, W, DX, p);
}

extern "C" __global__ void __launch_bounds__(128, 2)
    conv_gemm_dgrad_bf16(const __nv_bfloat16 *DY, const __nv_bfloat16 *W, __nv_bfloat16 *DX, ConvArgs p) {
    cgt::input_grad<__nv_bfloat16>(DY, W, DX, p);
}
