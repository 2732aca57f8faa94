// Fused optimizer steps (Backend::fused_step) and the loss scaler's unscale
// (Backend::amp_unscale). A step updates one parameter and its state buffers in one pass over
// dense runs of n elements, in place of the 2 to 7 in-place launches sinew-optim's rules take
// (the unscale: 4 launches a gradient before). Each stage rounds to the dtype where the in-place op it replaces writes (round()),
// with the in-place kernels' formulas and the CPU backend's operation order, and no FMA
// contraction (products by mul_rn, which is never merged into an FMA; sums of two products by
// add_rn), so f32 and f64 results equal the CPU's op-by-op ones bit for bit.
//   fused_sgd_<dtype>(n, p, buf, g, lr, wd, momentum, one_minus_dampening, flags)
//     flags: 1 momentum (buf used), 2 nesterov, 4 maximize, 8 first step
//   fused_adam_<dtype>(n, p, m, v, g, lr, wd, one_minus_b1, b2, one_minus_b2, step_size,
//                      inv_bias2_sqrt, eps, flags)
//     flags: 1 decoupled weight decay (AdamW), 2 |1 - b1| < 0.5 (lerp's branch, decided in f64
//     on the host as the CPU backend decides it), 4 maximize
//   amp_unscale_<dtype>(n, geometry, grad, found, inv_scale): the loss scaler's unscale of one
//     gradient view (grad *= inv_scale, the in-place mul_scalar's values) and its non-finite
//     check: *found = 1 if an element of the result is infinite or NaN (every writer stores the
//     same value, so the order of the stores does not matter)
#include "common.cuh"

namespace fs {
__device__ __forceinline__ float mul_rn(float a, float b) { return __fmul_rn(a, b); }
__device__ __forceinline__ double mul_rn(double a, double b) { return __dmul_rn(a, b); }
__device__ __forceinline__ float add_rn(float a, float b) { return __fadd_rn(a, b); }
__device__ __forceinline__ double add_rn(double a, double b) { return __dadd_rn(a, b); }

// The value an in-place op stores: the compute-type result rounded to T and read back.
template <typename T> __device__ __forceinline__ typename Num<T>::C round(typename Num<T>::C x) {
    return Num<T>::up(Num<T>::down(x));
}

// sinew-optim's effective_grad: g, negated (mul_scalar_(-1)) when maximizing, plus wd * p
// (axpy_) when decaying; each write rounded.
template <typename T, typename C> __device__ __forceinline__ C effective_grad(C g, C p, C wd, bool decay, bool maximize) {
    C d = g;
    if (maximize) d = round<T>(mul_rn(d, (C)-1.0));
    if (decay) d = round<T>(add_rn(d, mul_rn(wd, p)));
    return d;
}
}  // namespace fs

// SGD: effective_grad; with momentum, buf = d at the first step (zero_ + add_), else mul_axpy_
// (buf * momentum + (1 - dampening) * d); Nesterov's d + momentum * buf (assign + axpy_) or buf;
// p += -lr * that (axpy_).
#define FUSED_SGD(SUFFIX, T)                                                                               \
    extern "C" __global__ void fused_sgd_##SUFFIX(uint32_t n, T *p, T *buf, const T *g, double lr,        \
                                                  double wd, double momentum, double one_minus_dampening, \
                                                  uint32_t flags) {                                        \
        typedef Num<T>::C C;                                                                               \
        const C neg_lr = (C)(-lr), decay = (C)wd, mu = (C)momentum, keep = (C)one_minus_dampening;         \
        const bool has_momentum = flags & 1u, nesterov = flags & 2u, maximize = flags & 4u,                \
                   first = flags & 8u;                                                                     \
        GRID_STRIDE(i, n) {                                                                                \
            const C x = Num<T>::up(p[i]);                                                                  \
            C d = fs::effective_grad<T>(Num<T>::up(g[i]), x, decay, wd != 0.0, maximize);                  \
            if (has_momentum) {                                                                            \
                const C b = first ? d : fs::round<T>(fs::add_rn(fs::mul_rn(Num<T>::up(buf[i]), mu),        \
                                                                  fs::mul_rn(keep, d)));                   \
                buf[i] = Num<T>::down(b);                                                                  \
                d = nesterov ? fs::round<T>(fs::add_rn(d, fs::mul_rn(mu, b))) : b;                         \
            }                                                                                              \
            p[i] = Num<T>::down(fs::add_rn(x, fs::mul_rn(neg_lr, d)));                                     \
        }                                                                                                  \
    }

// Adam/AdamW: AdamW's p * (1 - lr wd) first (mul_scalar_); effective_grad (Adam's decay in it);
// m = lerp_(m, d, 1 - b1) (PyTorch's two-sided lerp); v = mul_addcmul_(v, b2, 1 - b2, d, d);
// p = addcdiv_sqrt_(p, -lr / bias1, m, v, 1 / sqrt(bias2), eps).
#define FUSED_ADAM(SUFFIX, T)                                                                              \
    extern "C" __global__ void fused_adam_##SUFFIX(uint32_t n, T *p, T *m, T *v, const T *g, double lr,   \
                                                   double wd, double one_minus_b1, double b2,              \
                                                   double one_minus_b2, double step_size,                  \
                                                   double inv_bias2_sqrt, double eps, uint32_t flags) {    \
        typedef Num<T>::C C;                                                                               \
        const bool decoupled = flags & 1u, small = flags & 2u, maximize = flags & 4u;                      \
        const C shrink = (C)(1.0 - lr * wd), decay = (C)wd, w = (C)one_minus_b1, beta2 = (C)b2;            \
        const C fresh = (C)one_minus_b2, value = (C)(-step_size), scale = (C)inv_bias2_sqrt, e = (C)eps;   \
        GRID_STRIDE(i, n) {                                                                                \
            C x = Num<T>::up(p[i]);                                                                        \
            if (decoupled && wd != 0.0) x = fs::round<T>(fs::mul_rn(x, shrink));                            \
            const C d = fs::effective_grad<T>(Num<T>::up(g[i]), x, decay, !decoupled && wd != 0.0,         \
                                               maximize);                                                  \
            const C a = Num<T>::up(m[i]);                                                                  \
            const C diff = d - a;                                                                          \
            const C mi = fs::round<T>(small ? fs::add_rn(a, fs::mul_rn(w, diff))                            \
                                             : d - fs::mul_rn(diff, (C)1.0 - w));                          \
            const C vi = fs::round<T>(fs::add_rn(fs::mul_rn(Num<T>::up(v[i]), beta2),                       \
                                                 fs::mul_rn(fs::mul_rn(fresh, d), d)));                    \
            const C den = fs::add_rn(fs::mul_rn(m_sqrt(vi), scale), e);                                    \
            m[i] = Num<T>::down(mi);                                                                       \
            v[i] = Num<T>::down(vi);                                                                       \
            p[i] = Num<T>::down(fs::add_rn(x, fs::mul_rn(value, mi / den)));                               \
        }                                                                                                  \
    }

#define AMP_UNSCALE(SUFFIX, T)                                                                          \
    extern "C" __global__ void amp_unscale_##SUFFIX(uint32_t n, Geometry g, T *grad, float *found,      \
                                                    double inv_scale) {                                 \
        typedef Num<T>::C C;                                                                            \
        const C s = (C)inv_scale;                                                                       \
        GRID_STRIDE(i, n) {                                                                             \
            uint64_t off[1];                                                                            \
            element_offsets<1>(g, i, off);                                                              \
            const T v = Num<T>::down(Num<T>::up(grad[off[0]]) * s);                                     \
            grad[off[0]] = v;                                                                           \
            const C back = Num<T>::up(v);                                                               \
            if (!(back - back == (C)0)) *found = 1.0f;                                                  \
        }                                                                                               \
    }

#define FUSED_STEPS(SUFFIX, T) \
    FUSED_SGD(SUFFIX, T)       \
    FUSED_ADAM(SUFFIX, T)      \
    AMP_UNSCALE(SUFFIX, T)

FUSED_STEPS(f32, float)
FUSED_STEPS(f64, double)
FUSED_STEPS(f16, __half)
FUSED_STEPS(bf16, __nv_bfloat16)
