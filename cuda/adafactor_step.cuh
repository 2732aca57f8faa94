// Adafactor's step (MultiTensorOps::fused_adafactor, sinew-tensor's
// ops/fused_step/adafactor.rs) in three launches and no read back to the host, where
// sinew-optim's AdafactorRule takes about twenty ops a parameter and reads two norms back. The
// parameter is read as [batch, rows, cols] (factored: row_var [batch * rows], col_var
// [batch * cols]) or as [1, 1, n] (variance [n]). Every value is rounded to the dtype where the
// rule's tensor ops round it; the sums (of squares, of row_var) are taken in f64 in a fixed
// order (no FMA contraction), so they may differ from the reduce kernels' in the last bits. flags: 1 factored,
// 2 lerp's first branch (|beta| < 0.5, decided on the host), 4 maximize, 8 decay (p *= shrink).
// sums[0] is the sum of p^2, sums[1] the step's coefficient; floors[b] is batch b's
// max(mean(row_var), eps1); partials holds a partial sum a block.
//   adafactor_moments_<dtype>(batch, rows, cols, flags, p, g, row_var, col_var, variance, beta,
//                             eps1, sums, floors, partials, tickets)
//     one thread a row (its mean square; the row's p^2 into the block's partial sum; the last
//     row of a batch to finish sets the batch's floor: tickets[b]) and one a column (factored),
//     or one an element (variance); the last block to finish adds the partials into sums[0]
//     (tickets[batch])
//   adafactor_norm_<dtype>(batch, rows, cols, flags, g, row_var, col_var, variance, eps1, eps2,
//                          rho, d, sums, floors, partials, tickets)
//     the update u's sum of squares, by the partials of the blocks and the last one to finish
//     (tickets[0]), which writes sums[1] = -max(eps2, rms(p)) * rho / max(1, rms(u) / d)
//     (Python's max: its first argument unless the second is larger)
//   adafactor_apply_<dtype>(batch, rows, cols, flags, p, g, row_var, col_var, variance, eps1,
//                           shrink, sums, floors)
//     p = p * shrink (decay) + sums[1] * u
#pragma once
#include "tickets.cuh"

namespace adafactor {
// The sum of `acc` over the block, in thread 0.
__device__ __forceinline__ double block_total(double acc) {
    __shared__ double warps[32];
    for (int o = 16; o > 0; o >>= 1) acc += __shfl_down_sync(0xffffffffu, acc, o);
    const unsigned lane = threadIdx.x & 31u, warp = threadIdx.x >> 5;
    if (lane == 0) warps[warp] = acc;
    __syncthreads();
    if (warp == 0) {
        acc = lane < (blockDim.x >> 5) ? warps[lane] : 0.0;
        for (int o = 16; o > 0; o >>= 1) acc += __shfl_down_sync(0xffffffffu, acc, o);
    }
    return acc;
}

// Writes the block's `acc` to partials[block]; in the last block of the launch to finish
// (tickets[group]), returns true in its thread 0 with `total` the partials' sum in block order.
__device__ __forceinline__ bool grid_total(double acc, double *partials, unsigned long long *tickets,
                                           uint32_t group, double &total) {
    acc = block_total(acc);
    if (threadIdx.x == 0) partials[blockIdx.x] = acc;
    if (!last_to_arrive(tickets, group, gridDim.x)) return false;
    reset_ticket(tickets, group);
    total = 0.0;
    if (threadIdx.x != 0) return false;
    for (uint32_t b = 0; b < gridDim.x; ++b) total += fresh_load(&partials[b]);
    return true;
}

// vector_norm(g, dim).square_().div_(count) from the f64 sum of squares s: each op rounded.
template <typename T> __device__ __forceinline__ typename Num<T>::C mean_square(double s, uint32_t count) {
    typedef typename Num<T>::C C;
    const C norm = fs::round<T>((C)sqrt(s));
    return fs::round<T>(fs::round<T>(mul_rn(norm, norm)) / (C)count);
}

// Python's max(a, b): b only when b > a.
__device__ __forceinline__ double py_max(double a, double b) { return b > a ? b : a; }

// The operands every kernel reads the update from.
template <typename T> struct Update {
    uint32_t rows, cols, flags;
    const T *g, *row_var, *col_var, *variance;
    const double *floors;
    typename Num<T>::C floor_sq;  // eps1^2, the estimate's floor

    // u = g / sqrt(max(estimate, eps1^2)) at element i (-g when maximizing).
    __device__ __forceinline__ typename Num<T>::C at(uint32_t i) const {
        typedef typename Num<T>::C C;
        C est;
        if (flags & 1u) {
            const uint32_t per = rows * cols, b = i / per, r = (i % per) / cols, c = i % cols;
            const C outer = mul_rn(Num<T>::up(row_var[b * rows + r]), Num<T>::up(col_var[b * cols + c]));
            est = fs::round<T>(fs::round<T>(outer) / (C)floors[b]);
        } else {
            est = Num<T>::up(variance[i]);
        }
        const C clamped = est < floor_sq ? floor_sq : est;
        const C inv = fs::round<T>((C)1 / m_sqrt(fs::round<T>(clamped)));
        const C gi = Num<T>::up(g[i]);
        return fs::round<T>(mul_rn(inv, (flags & 4u) ? -gi : gi));
    }
};

template <typename T>
__device__ void moments(uint32_t batch, uint32_t rows, uint32_t cols, uint32_t flags, const T *p, const T *g,
                        T *row_var, T *col_var, T *variance, double beta, double eps1, double *sums,
                        double *floors, double *partials, unsigned long long *tickets) {
    typedef typename Num<T>::C C;
    const bool factored = flags & 1u, small = flags & 2u;
    const C w = (C)beta, lo = fs::round<T>((C)eps1);
    const uint32_t row_tasks = factored ? batch * rows : 0u;
    const uint32_t tasks = factored ? row_tasks + batch * cols : cols;
    double p_sq = 0.0;
    GRID_STRIDE(k, tasks) {
        if (!factored) {
            const C x = Num<T>::up(g[k]);
            const C sq = fs::round<T>(mul_rn(x, x));
            variance[k] = Num<T>::down(fs::lerp<T>(Num<T>::up(variance[k]), sq, w, small));
            const double y = (double)Num<T>::up(p[k]);
            p_sq = add_rn(p_sq, mul_rn(y, y));
        } else if (k < row_tasks) {
            const T *gr = g + (size_t)k * cols, *pr = p + (size_t)k * cols;
            double s = 0.0;
            for (uint32_t c = 0; c < cols; ++c) {
                const double x = (double)Num<T>::up(gr[c]), y = (double)Num<T>::up(pr[c]);
                s = add_rn(s, mul_rn(x, x));
                p_sq = add_rn(p_sq, mul_rn(y, y));
            }
            row_var[k] = Num<T>::down(fs::lerp<T>(Num<T>::up(row_var[k]), mean_square<T>(s, cols), w, small));
            // The batch's last row to finish sets its floor (max(mean over rows, eps1)).
            const uint32_t b = k / rows;
            __threadfence();
            if (atomicAdd(&tickets[b], 1ull) == (unsigned long long)rows - 1ull) {
                __threadfence();
                double total = 0.0;
                for (uint32_t r = 0; r < rows; ++r) total += (double)Num<T>::up(fresh_load(&row_var[b * rows + r]));
                const C mean = fs::round<T>((C)(total / (double)rows));
                floors[b] = (double)(mean < lo ? lo : mean);
                tickets[b] = 0ull;
            }
        } else {
            const uint32_t j = k - row_tasks, b = j / cols, c = j % cols;
            const T *gc = g + (size_t)b * rows * cols + c;
            double s = 0.0;
            for (uint32_t r = 0; r < rows; ++r) {
                const double x = (double)Num<T>::up(gc[(size_t)r * cols]);
                s = add_rn(s, mul_rn(x, x));
            }
            col_var[j] = Num<T>::down(fs::lerp<T>(Num<T>::up(col_var[j]), mean_square<T>(s, rows), w, small));
        }
    }
    double total;
    if (grid_total(p_sq, partials, tickets, batch, total)) sums[0] = total;
}

template <typename T>
__device__ void norm(Update<T> u, uint32_t n, double eps2, double rho, double d, double *sums, double *partials,
                     unsigned long long *tickets) {
    double u_sq = 0.0;
    GRID_STRIDE(i, n) {
        const double x = (double)u.at(i);
        u_sq = add_rn(u_sq, mul_rn(x, x));
    }
    double total;
    if (!grid_total(u_sq, partials, tickets, 0u, total)) return;
    typedef typename Num<T>::C C;
    const double root_n = sqrt((double)n);
    const double p_norm = (double)fs::round<T>((C)sqrt(sums[0]));
    const double u_norm = (double)fs::round<T>((C)sqrt(total));
    const double alpha = mul_rn(py_max(eps2, p_norm / root_n), rho);
    sums[1] = -alpha / py_max(1.0, u_norm / mul_rn(root_n, d));
}

template <typename T> __device__ void apply(Update<T> u, uint32_t n, T *p, double shrink, const double *sums) {
    typedef typename Num<T>::C C;
    const C coef = (C)sums[1], keep = (C)shrink;
    const bool decay = u.flags & 8u;
    GRID_STRIDE(i, n) {
        C x = Num<T>::up(p[i]);
        if (decay) x = fs::round<T>(mul_rn(x, keep));
        p[i] = Num<T>::down(add_rn(x, mul_rn(coef, u.at(i))));
    }
}
}  // namespace adafactor

#define ADAFACTOR_STEPS(S, T)                                                                            \
    extern "C" __global__ void adafactor_moments_##S(uint32_t batch, uint32_t rows, uint32_t cols,      \
                                                     uint32_t flags, const T *p, const T *g, T *row_var, \
                                                     T *col_var, T *variance, double beta, double eps1,  \
                                                     double *sums, double *floors, double *partials,     \
                                                     unsigned long long *tickets) {                      \
        adafactor::moments<T>(batch, rows, cols, flags, p, g, row_var, col_var, variance, beta, eps1,   \
                              sums, floors, partials, tickets);                                          \
    }                                                                                                    \
    extern "C" __global__ void adafactor_norm_##S(uint32_t batch, uint32_t rows, uint32_t cols,         \
                                                  uint32_t flags, const T *g, const T *row_var,          \
                                                  const T *col_var, const T *variance, double eps1,      \
                                                  double eps2, double rho, double d, double *sums,       \
                                                  const double *floors, double *partials,                \
                                                  unsigned long long *tickets) {                         \
        const adafactor::Update<T> u{rows, cols, flags, g, row_var, col_var, variance, floors,          \
                                     fs::round<T>((Num<T>::C)mul_rn(eps1, eps1))};                        \
        adafactor::norm<T>(u, batch * rows * cols, eps2, rho, d, sums, partials, tickets);               \
    }                                                                                                    \
    extern "C" __global__ void adafactor_apply_##S(uint32_t batch, uint32_t rows, uint32_t cols,        \
                                                   uint32_t flags, T *p, const T *g, const T *row_var,   \
                                                   const T *col_var, const T *variance, double eps1,     \
                                                   double shrink, const double *sums,                    \
                                                   const double *floors) {                               \
        const adafactor::Update<T> u{rows, cols, flags, g, row_var, col_var, variance, floors,          \
                                     fs::round<T>((Num<T>::C)mul_rn(eps1, eps1))};                        \
        adafactor::apply<T>(u, batch * rows * cols, p, shrink, sums);                                    \
    }

ADAFACTOR_STEPS(f32, float)
ADAFACTOR_STEPS(f64, double)
ADAFACTOR_STEPS(f16, __half)
ADAFACTOR_STEPS(bf16, __nv_bfloat16)
