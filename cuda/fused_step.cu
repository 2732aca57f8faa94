// Fused optimizer steps (Backend::fused_step; Adafactor's, in three launches, in
// adafactor_step.cuh) and the loss scaler's unscale (Backend::amp_unscale). A step updates one
// parameter and its state buffers in one pass over dense runs of n elements, in place of the 2
// to 15 in-place launches sinew-optim's rules take (the unscale: 4 launches a gradient before). Each stage rounds to the dtype where the in-place
// op it replaces writes (round()), with the in-place kernels' formulas and the CPU backend's
// operation order, and no FMA contraction (every product by mul_rn, which is never merged into
// an FMA; tests/ptx_rounding.rs checks the PTX), so f32 and f64 results equal the CPU's
// op-by-op ones bit for bit. Scalars derived from the hyper-parameters (1 - lr wd, the bias
// corrections) come from the host, computed as sinew-optim computes them. In every flags word,
// 4 means maximize (the gradient negated first); L2 decay applies where wd != 0.
//   fused_sgd_<dtype>(n, p, buf, g, lr, wd, momentum, one_minus_dampening, flags)
//     flags: 1 momentum (buf used), 2 nesterov, 8 first step
//   fused_adam_<dtype>(n, p, m, v, vmax, g, shrink, wd, one_minus_b1, b2, one_minus_b2,
//                      step_size, inv_bias2_sqrt, eps, flags)
//     flags: 1 decoupled weight decay (AdamW: p *= shrink, no L2), 2 |1 - b1| < 0.5 (lerp's
//     branch, decided in f64 on the host as the CPU backend decides it), 8 AMSGrad (vmax used)
//   fused_adamax_<dtype>(n, p, m, u, g, wd, one_minus_b1, b2, eps, neg_step_size, flags)
//     flags: 2 lerp's branch
//   fused_adagrad_<dtype>(n, p, sum, g, wd, neg_lr, eps, flags)
//   fused_rmsprop_<dtype>(n, p, v, buf, ga, g, wd, alpha, one_minus_alpha, eps, neg_lr,
//                         momentum, flags)
//     flags: 1 momentum (buf used), 2 centred (ga used), 8 lerp's branch, 16 the direct step
//     (no momentum, not centred: p += -lr d / (sqrt(v) + eps) in one op)
//   fused_adadelta_<dtype>(n, p, v, u, g, wd, rho, one_minus_rho, eps, neg_lr, flags)
//   fused_nadam_<dtype>(n, p, m, v, g, shrink, wd, one_minus_b1, b2, one_minus_b2,
//                       inv_bias2, eps, grad_coef, avg_coef, flags)
//     flags: 1 decoupled weight decay, 2 lerp's branch
//   fused_radam_<dtype>(n, p, m, v, g, shrink, wd, one_minus_b1, b2, one_minus_b2, neg_coef,
//                       eps, flags)
//     flags: 1 decoupled weight decay, 2 lerp's branch, 8 rectified (rho_t > 5: divide by
//     sqrt(v) + eps; neg_coef from RadamStep::update on the host)
//   fused_rprop_<dtype>, fused_asgd_<dtype>: step_sign.cuh
//   fused_<step>_many_<dtype>(table, <the scalars and flags above>): the step over every
//     parameter of a StepTable (below) in one launch, PyTorch's multi-tensor (foreach) form
//   amp_unscale_<dtype>(n, geometry, grad, found, inv_scale): the loss scaler's unscale of one
//     gradient view (grad *= inv_scale, the in-place mul_scalar's values) and its non-finite
//     check: *found = 1 if an element of the result is infinite or NaN (every writer stores the
//     same value, so the order of the stores does not matter)
//   amp_unscale_many_<dtype>(table, found, inv_scale): the same over the dense gradients of a
//     StepTable (its p and n; the slots and g unused)
// Gradient clipping's multi-tensor kernels (torch.nn.utils.clip_grad_norm_'s _foreach_norm and
// _foreach_mul_), over the dense runs of a StepTable (p and n; the slots and g unused):
//   pow_sum_many_<dtype>(table, partials, p, kind): block b of the launch folds its elements x
//     into partials[b] in f64: kind 0 the sum of |x|^p, 1 of |x|, 2 of x * x, 3 the largest |x|
//     (NaN wins); the host reduces the partials
//   mul_many_<dtype>(table, factor): x *= *factor (one element of the dtype; the in-place
//     mul's values)
// Weight averaging's multi-tensor kernel (AveragedModel's update, torch._foreach_lerp_), over
// a StepTable whose p are the averages and g the new values (the slots unused):
//   average_many_<dtype>(table, value, flags): flags 1: a = lerp_(a, x, value) (2: lerp's
//     first branch); else a += (x - a) / value (value = count + 1), each op rounded
#include "common.cuh"
#include "step_table.cuh"

namespace fs {
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

// lerp_(a, d, w): PyTorch's two-sided formula, the branch (|w| < 0.5) chosen on the host.
template <typename T, typename C> __device__ __forceinline__ C lerp(C a, C d, C w, bool small) {
    const C diff = d - a;
    return round<T>(small ? add_rn(a, mul_rn(w, diff)) : d - mul_rn(diff, (C)1.0 - w));
}

// mul_addcmul_(x, scale, value, y, y): scale * x + value * y * y (squared-gradient averages).
template <typename T, typename C> __device__ __forceinline__ C decay_square(C x, C scale, C value, C y) {
    return round<T>(add_rn(mul_rn(x, scale), mul_rn(mul_rn(value, y), y)));
}

// addcdiv_(x, value, y, z): x + value * (y / z).
template <typename T, typename C> __device__ __forceinline__ C addcdiv(C x, C value, C y, C z) {
    return round<T>(add_rn(x, mul_rn(value, y / z)));
}

// maximum_'s maximum: NaN when either side is NaN.
template <typename C> __device__ __forceinline__ C max_nan(C a, C b) {
    return (is_nan(a) || is_nan(b)) ? a + b : m_max(a, b);
}

// The Adam family's first stage (Adam/AdamW, NAdam, RAdam) at element i: decoupled decay
// p *= shrink (mul_scalar_, when decoupled and wd != 0), effective_grad (L2 otherwise),
// m = lerp_(m, d, 1 - b1) and v = mul_addcmul_(v, b2, 1 - b2, d, d), both stored. Leaves the
// decayed parameter in x, the effective gradient in d and the moments in mi, vi.
template <typename T> struct Moments {
    typedef typename Num<T>::C C;
    C x, d, mi, vi;
};
template <typename T, typename C>
__device__ __forceinline__ Moments<T> adam_moments(uint32_t i, const T *p, T *m, T *v, const T *g, C keep, C decay,
                                                   C w, C beta2, C fresh, bool decoupled, bool has_decay,
                                                   bool small, bool maximize) {
    Moments<T> r;
    r.x = Num<T>::up(p[i]);
    if (decoupled && has_decay) r.x = round<T>(mul_rn(r.x, keep));
    r.d = effective_grad<T>(Num<T>::up(g[i]), r.x, decay, !decoupled && has_decay, maximize);
    r.mi = lerp<T>(Num<T>::up(m[i]), r.d, w, small);
    r.vi = decay_square<T>(Num<T>::up(v[i]), beta2, fresh, r.d);
    m[i] = Num<T>::down(r.mi);
    v[i] = Num<T>::down(r.vi);
    return r;
}
}  // namespace fs

// SGD: effective_grad; with momentum, buf = d at the first step (zero_ + add_), else mul_axpy_
// (buf * momentum + (1 - dampening) * d); Nesterov's d + momentum * buf (assign + axpy_) or buf;
// p += -lr * that (axpy_).
template <typename T>
__device__ void sgd(Span s, T *p, T *buf, const T *g, double lr, double wd, double momentum,
                    double one_minus_dampening, uint32_t flags) {
    typedef typename Num<T>::C C;
    const C neg_lr = (C)(-lr), decay = (C)wd, mu = (C)momentum, keep = (C)one_minus_dampening;
    const bool has_momentum = flags & 1u, nesterov = flags & 2u, maximize = flags & 4u,
               first = flags & 8u;
    SPAN_LOOP(i, s) {
        const C x = Num<T>::up(p[i]);
        C d = fs::effective_grad<T>(Num<T>::up(g[i]), x, decay, wd != 0.0, maximize);
        if (has_momentum) {
            const C b = first ? d : fs::round<T>(add_rn(mul_rn(Num<T>::up(buf[i]), mu), mul_rn(keep, d)));
            buf[i] = Num<T>::down(b);
            d = nesterov ? fs::round<T>(add_rn(d, mul_rn(mu, b))) : b;
        }
        p[i] = Num<T>::down(add_rn(x, mul_rn(neg_lr, d)));
    }
}

// Adam/AdamW: AdamW's p *= 1 - lr wd first (mul_scalar_); effective_grad (Adam's decay in it);
// m = lerp_(m, d, 1 - b1); v = mul_addcmul_(v, b2, 1 - b2, d, d); AMSGrad's vmax =
// maximum_(vmax, v), used for v below; p = addcdiv_sqrt_(p, -lr / bias1, m, v, 1 / sqrt(bias2), eps).
template <typename T>
__device__ void adam(Span s, T *p, T *m, T *v, T *vmax, const T *g, double shrink, double wd,
                     double one_minus_b1, double b2, double one_minus_b2, double step_size,
                     double inv_bias2_sqrt, double eps, uint32_t flags) {
    typedef typename Num<T>::C C;
    const bool decoupled = flags & 1u, small = flags & 2u, maximize = flags & 4u, amsgrad = flags & 8u;
    const C keep = (C)shrink, decay = (C)wd, w = (C)one_minus_b1, beta2 = (C)b2;
    const C fresh = (C)one_minus_b2, value = (C)(-step_size), scale = (C)inv_bias2_sqrt, e = (C)eps;
    SPAN_LOOP(i, s) {
        const fs::Moments<T> r =
            fs::adam_moments<T>(i, p, m, v, g, keep, decay, w, beta2, fresh, decoupled, wd != 0.0, small, maximize);
        C second = r.vi;
        if (amsgrad) {
            second = fs::round<T>(fs::max_nan(Num<T>::up(vmax[i]), r.vi));
            vmax[i] = Num<T>::down(second);
        }
        const C den = add_rn(mul_rn(m_sqrt(second), scale), e);
        p[i] = Num<T>::down(add_rn(r.x, mul_rn(value, r.mi / den)));
    }
}

// Adamax: effective_grad; m = lerp_(m, d, 1 - b1); u = mul_max_abs_(u, b2, eps, d);
// p = addcdiv_(p, -lr / bias1, m, u).
template <typename T>
__device__ void adamax(Span s, T *p, T *m, T *u, const T *g, double wd, double one_minus_b1,
                       double b2, double eps, double neg_step_size, uint32_t flags) {
    typedef typename Num<T>::C C;
    const bool small = flags & 2u, maximize = flags & 4u;
    const C decay = (C)wd, w = (C)one_minus_b1, beta2 = (C)b2, e = (C)eps, value = (C)neg_step_size;
    SPAN_LOOP(i, s) {
        const C x = Num<T>::up(p[i]);
        const C d = fs::effective_grad<T>(Num<T>::up(g[i]), x, decay, wd != 0.0, maximize);
        const C mi = fs::lerp<T>(Num<T>::up(m[i]), d, w, small);
        const C ui = fs::round<T>(fs::max_nan(mul_rn(Num<T>::up(u[i]), beta2), add_rn(m_fabs(d), e)));
        m[i] = Num<T>::down(mi);
        u[i] = Num<T>::down(ui);
        p[i] = Num<T>::down(fs::addcdiv<T>(x, value, mi, ui));
    }
}

// Adagrad: effective_grad; sum = addcmul_(sum, 1, d, d); p = addcdiv_sqrt_(p, -clr, d, sum, 1, eps).
template <typename T>
__device__ void adagrad(Span s, T *p, T *sum, const T *g, double wd, double neg_lr, double eps,
                        uint32_t flags) {
    typedef typename Num<T>::C C;
    const bool maximize = flags & 4u;
    const C decay = (C)wd, value = (C)neg_lr, e = (C)eps, one = (C)1.0;
    SPAN_LOOP(i, s) {
        const C x = Num<T>::up(p[i]);
        const C d = fs::effective_grad<T>(Num<T>::up(g[i]), x, decay, wd != 0.0, maximize);
        const C si = fs::round<T>(add_rn(Num<T>::up(sum[i]), mul_rn(mul_rn(one, d), d)));
        sum[i] = Num<T>::down(si);
        const C den = add_rn(mul_rn(m_sqrt(si), one), e);
        p[i] = Num<T>::down(add_rn(x, mul_rn(value, d / den)));
    }
}

// RMSprop: effective_grad; v = mul_addcmul_(v, a, 1 - a, d, d); the direct step is
// addcdiv_sqrt_(p, -lr, d, v, 1, eps); otherwise avg = v (copy_), centred ga = lerp_(ga, d, 1 - a)
// and avg = addcmul_(avg, -1, ga, ga); avg = sqrt (unary_), + eps (add_scalar_); with momentum
// buf = buf * mu (mul_scalar_), addcdiv_(buf, 1, d, avg), p = axpy_(p, -lr, buf); else
// p = addcdiv_(p, -lr, d, avg).
template <typename T>
__device__ void rmsprop(Span s, T *p, T *v, T *buf, T *ga, const T *g, double wd, double alpha,
                        double one_minus_alpha, double eps, double neg_lr, double momentum,
                        uint32_t flags) {
    typedef typename Num<T>::C C;
    const bool has_momentum = flags & 1u, centered = flags & 2u, maximize = flags & 4u,
               small = flags & 8u, direct = flags & 16u;
    const C decay = (C)wd, a = (C)alpha, fresh = (C)one_minus_alpha, e = (C)eps, value = (C)neg_lr;
    const C mu = (C)momentum, one = (C)1.0;
    SPAN_LOOP(i, s) {
        const C x = Num<T>::up(p[i]);
        const C d = fs::effective_grad<T>(Num<T>::up(g[i]), x, decay, wd != 0.0, maximize);
        const C vi = fs::decay_square<T>(Num<T>::up(v[i]), a, fresh, d);
        v[i] = Num<T>::down(vi);
        if (direct) {
            const C den = add_rn(mul_rn(m_sqrt(vi), one), e);
            p[i] = Num<T>::down(add_rn(x, mul_rn(value, d / den)));
            continue;
        }
        C avg = vi;
        if (centered) {
            const C gi = fs::lerp<T>(Num<T>::up(ga[i]), d, fresh, small);
            ga[i] = Num<T>::down(gi);
            avg = fs::round<T>(add_rn(avg, mul_rn(mul_rn((C)-1.0, gi), gi)));
        }
        avg = fs::round<T>(fs::round<T>(m_sqrt(avg)) + e);
        if (has_momentum) {
            C b = fs::round<T>(mul_rn(Num<T>::up(buf[i]), mu));
            b = fs::addcdiv<T>(b, one, d, avg);
            buf[i] = Num<T>::down(b);
            p[i] = Num<T>::down(add_rn(x, mul_rn(value, b)));
        } else {
            p[i] = Num<T>::down(fs::addcdiv<T>(x, value, d, avg));
        }
    }
}

// Adadelta: effective_grad; v = mul_addcmul_(v, rho, 1 - rho, d, d); std = sqrt(v + eps) and
// delta = sqrt(u + eps) (copy_, add_scalar_, unary_ each); delta = delta / std * d (div_, mul_);
// u = mul_addcmul_(u, rho, 1 - rho, delta, delta); p = axpy_(p, -lr, delta).
template <typename T>
__device__ void adadelta(Span s, T *p, T *v, T *u, const T *g, double wd, double rho,
                         double one_minus_rho, double eps, double neg_lr, uint32_t flags) {
    typedef typename Num<T>::C C;
    const bool maximize = flags & 4u;
    const C decay = (C)wd, r = (C)rho, fresh = (C)one_minus_rho, e = (C)eps, value = (C)neg_lr;
    SPAN_LOOP(i, s) {
        const C x = Num<T>::up(p[i]);
        const C d = fs::effective_grad<T>(Num<T>::up(g[i]), x, decay, wd != 0.0, maximize);
        const C vi = fs::decay_square<T>(Num<T>::up(v[i]), r, fresh, d);
        const C ui = Num<T>::up(u[i]);
        const C std = fs::round<T>(m_sqrt(fs::round<T>(vi + e)));
        C delta = fs::round<T>(m_sqrt(fs::round<T>(ui + e)));
        delta = fs::round<T>(mul_rn(fs::round<T>(delta / std), d));
        v[i] = Num<T>::down(vi);
        u[i] = Num<T>::down(fs::decay_square<T>(ui, r, fresh, delta));
        p[i] = Num<T>::down(add_rn(x, mul_rn(value, delta)));
    }
}

// NAdam: decoupled p *= 1 - lr wd (mul_scalar_); effective_grad (L2 otherwise); m = lerp_(m, d,
// 1 - b1); v = mul_addcmul_(v, b2, 1 - b2, d, d); den = v / bias2 (copy_, mul_scalar_), sqrt
// (unary_), + eps (add_scalar_); p = addcdiv_(p, grad_coef, d, den), then addcdiv_(p, avg_coef,
// m, den).
template <typename T>
__device__ void nadam(Span s, T *p, T *m, T *v, const T *g, double shrink, double wd,
                      double one_minus_b1, double b2, double one_minus_b2, double inv_bias2,
                      double eps, double grad_coef, double avg_coef, uint32_t flags) {
    typedef typename Num<T>::C C;
    const bool decoupled = flags & 1u, small = flags & 2u, maximize = flags & 4u;
    const C keep = (C)shrink, decay = (C)wd, w = (C)one_minus_b1, beta2 = (C)b2, fresh = (C)one_minus_b2;
    const C unbias = (C)inv_bias2, e = (C)eps, cg = (C)grad_coef, cm = (C)avg_coef;
    SPAN_LOOP(i, s) {
        // sinew-optim's NAdam scales by 1 - lr wd even when wd is 0: a product by 1, which
        // changes no value, so the shared stage skips it then.
        const fs::Moments<T> r =
            fs::adam_moments<T>(i, p, m, v, g, keep, decay, w, beta2, fresh, decoupled, wd != 0.0, small, maximize);
        const C den = fs::round<T>(fs::round<T>(m_sqrt(fs::round<T>(mul_rn(r.vi, unbias)))) + e);
        const C x = fs::addcdiv<T>(r.x, cg, r.d, den);
        p[i] = Num<T>::down(fs::addcdiv<T>(x, cm, r.mi, den));
    }
}

// RAdam: decoupled p *= 1 - lr wd (mul_scalar_, when wd != 0); effective_grad (L2 otherwise);
// m = lerp_(m, d, 1 - b1); v = mul_addcmul_(v, b2, 1 - b2, d, d); rectified,
// p = addcdiv_sqrt_(p, neg_coef, m, v, 1, eps), else p = axpy_(p, neg_coef, m).
template <typename T>
__device__ void radam(Span s, T *p, T *m, T *v, const T *g, double shrink, double wd,
                      double one_minus_b1, double b2, double one_minus_b2, double neg_coef,
                      double eps, uint32_t flags) {
    typedef typename Num<T>::C C;
    const bool decoupled = flags & 1u, small = flags & 2u, maximize = flags & 4u, rectified = flags & 8u;
    const C keep = (C)shrink, decay = (C)wd, w = (C)one_minus_b1, beta2 = (C)b2, fresh = (C)one_minus_b2;
    const C value = (C)neg_coef, e = (C)eps, one = (C)1.0;
    SPAN_LOOP(i, s) {
        const fs::Moments<T> r =
            fs::adam_moments<T>(i, p, m, v, g, keep, decay, w, beta2, fresh, decoupled, wd != 0.0, small, maximize);
        if (rectified) {
            const C den = add_rn(mul_rn(m_sqrt(r.vi), one), e);
            p[i] = Num<T>::down(add_rn(r.x, mul_rn(value, r.mi / den)));
        } else {
            p[i] = Num<T>::down(add_rn(r.x, mul_rn(value, r.mi)));
        }
    }
}

// grad *= inv_scale over a span of a dense gradient, with the non-finite check.
template <typename T> __device__ void amp_unscale_dense(Span s, T *grad, float *found, double inv_scale) {
    typedef typename Num<T>::C C;
    const C k = (C)inv_scale;
    SPAN_LOOP(i, s) {
        const T v = Num<T>::down(mul_rn(Num<T>::up(grad[i]), k));
        grad[i] = v;
        const C back = Num<T>::up(v);
        if (!(back - back == (C)0)) *found = 1.0f;
    }
}

template <typename T>
__device__ void amp_unscale(uint32_t n, Geometry g, T *grad, float *found, double inv_scale) {
    typedef typename Num<T>::C C;
    const C s = (C)inv_scale;
    GRID_STRIDE(i, n) {
        uint64_t off[1];
        element_offsets<1>(g, i, off);
        const T v = Num<T>::down(mul_rn(Num<T>::up(grad[off[0]]), s));
        grad[off[0]] = v;
        const C back = Num<T>::up(v);
        if (!(back - back == (C)0)) *found = 1.0f;
    }
}

// A fold of |x| (see pow_sum_many above) over this thread's elements, then over the block;
// thread 0 writes the block's result to partials[blockIdx.x].
template <typename T> __device__ void pow_sum_dense(Span s, const T *x, double *partials, double p, uint32_t kind) {
    const auto fold = [kind](double a, double b) { return kind == 3 ? fs::max_nan(a, b) : add_rn(a, b); };
    double acc = 0.0;
    SPAN_LOOP(i, s) {
        const double a = fabs((double)Num<T>::up(x[i]));
        acc = fold(acc, kind == 2 ? mul_rn(a, a) : kind == 0 ? pow(a, p) : a);
    }
    __shared__ double warps[32];
    for (int o = 16; o > 0; o >>= 1) acc = fold(acc, __shfl_down_sync(0xffffffffu, acc, o));
    const unsigned lane = threadIdx.x & 31u, warp = threadIdx.x >> 5;
    if (lane == 0) warps[warp] = acc;
    __syncthreads();
    if (warp == 0) {
        acc = lane < (blockDim.x >> 5) ? warps[lane] : 0.0;
        for (int o = 16; o > 0; o >>= 1) acc = fold(acc, __shfl_down_sync(0xffffffffu, acc, o));
        if (lane == 0) partials[blockIdx.x] = acc;
    }
}

// Weight averaging (average_many): flags 1 lerp (a = lerp_(a, x, value), 2 its first branch),
// else the running mean (a = add_(a, div_scalar(sub(x, a), value)), value = count + 1).
template <typename T> __device__ void average_dense(Span s, T *a, const T *x, double value, uint32_t flags) {
    typedef typename Num<T>::C C;
    const C v = (C)value;
    const bool lerp = flags & 1u, small = flags & 2u;
    SPAN_LOOP(i, s) {
        const C ai = Num<T>::up(a[i]), xi = Num<T>::up(x[i]);
        const C out = lerp ? fs::lerp<T>(ai, xi, v, small) : add_rn(ai, fs::round<T>(fs::round<T>(xi - ai) / v));
        a[i] = Num<T>::down(out);
    }
}

template <typename T> __device__ void mul_dense(Span s, T *x, const T *factor) {
    typedef typename Num<T>::C C;
    const C f = Num<T>::up(*factor);
    SPAN_LOOP(i, s) x[i] = Num<T>::down(mul_rn(Num<T>::up(x[i]), f));
}

// The entry points, one per step and dtype, each in two forms: fused_<step>_<dtype> over one
// parameter and fused_<step>_many_<dtype> over a StepTable of them (the same scalars after the
// pointers); each forwards to the template above.
#define TABLE_PTR(T, slot) ((T *)t.slot[j])
#define FUSED_STEPS(S, T)                                                                                \
    extern "C" __global__ void fused_sgd_##S(uint32_t n, T *p, T *buf, const T *g, double lr, double wd, \
                                             double mu, double keep, uint32_t flags) {                  \
        sgd<T>(whole(n), p, buf, g, lr, wd, mu, keep, flags);                                            \
    }                                                                                                    \
    extern "C" __global__ void fused_sgd_many_##S(StepTable t, double lr, double wd, double mu,          \
                                                  double keep, uint32_t flags) {                         \
        uint32_t j;                                                                                      \
        const Span s = in_table(t, j);                                                                   \
        sgd<T>(s, TABLE_PTR(T, p), TABLE_PTR(T, slot0), TABLE_PTR(T, g), lr, wd, mu, keep, flags);       \
    }                                                                                                    \
    extern "C" __global__ void fused_adam_##S(uint32_t n, T *p, T *m, T *v, T *vmax, const T *g,         \
                                              double shrink, double wd, double w, double b2,             \
                                              double fresh, double step, double scale, double eps,       \
                                              uint32_t flags) {                                          \
        adam<T>(whole(n), p, m, v, vmax, g, shrink, wd, w, b2, fresh, step, scale, eps, flags);          \
    }                                                                                                    \
    extern "C" __global__ void fused_adam_many_##S(StepTable t, double shrink, double wd, double w,     \
                                                   double b2, double fresh, double step, double scale,   \
                                                   double eps, uint32_t flags) {                         \
        uint32_t j;                                                                                      \
        const Span s = in_table(t, j);                                                                   \
        adam<T>(s, TABLE_PTR(T, p), TABLE_PTR(T, slot0), TABLE_PTR(T, slot1), TABLE_PTR(T, slot2),       \
                TABLE_PTR(T, g), shrink, wd, w, b2, fresh, step, scale, eps, flags);                     \
    }                                                                                                    \
    extern "C" __global__ void fused_adamax_##S(uint32_t n, T *p, T *m, T *u, const T *g, double wd,     \
                                                double w, double b2, double eps, double value,           \
                                                uint32_t flags) {                                        \
        adamax<T>(whole(n), p, m, u, g, wd, w, b2, eps, value, flags);                                   \
    }                                                                                                    \
    extern "C" __global__ void fused_adamax_many_##S(StepTable t, double wd, double w, double b2,       \
                                                     double eps, double value, uint32_t flags) {         \
        uint32_t j;                                                                                      \
        const Span s = in_table(t, j);                                                                   \
        adamax<T>(s, TABLE_PTR(T, p), TABLE_PTR(T, slot0), TABLE_PTR(T, slot1), TABLE_PTR(T, g), wd, w,  \
                  b2, eps, value, flags);                                                                \
    }                                                                                                    \
    extern "C" __global__ void fused_adagrad_##S(uint32_t n, T *p, T *sum, const T *g, double wd,        \
                                                 double value, double eps, uint32_t flags) {             \
        adagrad<T>(whole(n), p, sum, g, wd, value, eps, flags);                                          \
    }                                                                                                    \
    extern "C" __global__ void fused_adagrad_many_##S(StepTable t, double wd, double value, double eps, \
                                                      uint32_t flags) {                                  \
        uint32_t j;                                                                                      \
        const Span s = in_table(t, j);                                                                   \
        adagrad<T>(s, TABLE_PTR(T, p), TABLE_PTR(T, slot0), TABLE_PTR(T, g), wd, value, eps, flags);     \
    }                                                                                                    \
    extern "C" __global__ void fused_rmsprop_##S(uint32_t n, T *p, T *v, T *buf, T *ga, const T *g,     \
                                                 double wd, double a, double fresh, double eps,          \
                                                 double value, double mu, uint32_t flags) {              \
        rmsprop<T>(whole(n), p, v, buf, ga, g, wd, a, fresh, eps, value, mu, flags);                     \
    }                                                                                                    \
    extern "C" __global__ void fused_rmsprop_many_##S(StepTable t, double wd, double a, double fresh,   \
                                                      double eps, double value, double mu,               \
                                                      uint32_t flags) {                                  \
        uint32_t j;                                                                                      \
        const Span s = in_table(t, j);                                                                   \
        rmsprop<T>(s, TABLE_PTR(T, p), TABLE_PTR(T, slot0), TABLE_PTR(T, slot1), TABLE_PTR(T, slot2),    \
                   TABLE_PTR(T, g), wd, a, fresh, eps, value, mu, flags);                                \
    }                                                                                                    \
    extern "C" __global__ void fused_adadelta_##S(uint32_t n, T *p, T *v, T *u, const T *g, double wd,  \
                                                  double rho, double fresh, double eps, double value,    \
                                                  uint32_t flags) {                                      \
        adadelta<T>(whole(n), p, v, u, g, wd, rho, fresh, eps, value, flags);                            \
    }                                                                                                    \
    extern "C" __global__ void fused_adadelta_many_##S(StepTable t, double wd, double rho, double fresh,\
                                                       double eps, double value, uint32_t flags) {       \
        uint32_t j;                                                                                      \
        const Span s = in_table(t, j);                                                                   \
        adadelta<T>(s, TABLE_PTR(T, p), TABLE_PTR(T, slot0), TABLE_PTR(T, slot1), TABLE_PTR(T, g), wd,   \
                    rho, fresh, eps, value, flags);                                                      \
    }                                                                                                    \
    extern "C" __global__ void fused_nadam_##S(uint32_t n, T *p, T *m, T *v, const T *g, double shrink, \
                                               double wd, double w, double b2, double fresh,             \
                                               double unbias, double eps, double cg, double cm,          \
                                               uint32_t flags) {                                         \
        nadam<T>(whole(n), p, m, v, g, shrink, wd, w, b2, fresh, unbias, eps, cg, cm, flags);            \
    }                                                                                                    \
    extern "C" __global__ void fused_nadam_many_##S(StepTable t, double shrink, double wd, double w,    \
                                                    double b2, double fresh, double unbias, double eps,  \
                                                    double cg, double cm, uint32_t flags) {              \
        uint32_t j;                                                                                      \
        const Span s = in_table(t, j);                                                                   \
        nadam<T>(s, TABLE_PTR(T, p), TABLE_PTR(T, slot0), TABLE_PTR(T, slot1), TABLE_PTR(T, g), shrink,  \
                 wd, w, b2, fresh, unbias, eps, cg, cm, flags);                                          \
    }                                                                                                    \
    extern "C" __global__ void fused_radam_##S(uint32_t n, T *p, T *m, T *v, const T *g, double shrink, \
                                               double wd, double w, double b2, double fresh,             \
                                               double value, double eps, uint32_t flags) {               \
        radam<T>(whole(n), p, m, v, g, shrink, wd, w, b2, fresh, value, eps, flags);                     \
    }                                                                                                    \
    extern "C" __global__ void fused_radam_many_##S(StepTable t, double shrink, double wd, double w,    \
                                                    double b2, double fresh, double value, double eps,   \
                                                    uint32_t flags) {                                    \
        uint32_t j;                                                                                      \
        const Span s = in_table(t, j);                                                                   \
        radam<T>(s, TABLE_PTR(T, p), TABLE_PTR(T, slot0), TABLE_PTR(T, slot1), TABLE_PTR(T, g), shrink,  \
                 wd, w, b2, fresh, value, eps, flags);                                                   \
    }                                                                                                    \
    extern "C" __global__ void amp_unscale_##S(uint32_t n, Geometry g, T *grad, float *found,            \
                                               double inv_scale) {                                       \
        amp_unscale<T>(n, g, grad, found, inv_scale);                                                    \
    }                                                                                                    \
    extern "C" __global__ void amp_unscale_many_##S(StepTable t, float *found, double inv_scale) {       \
        uint32_t j;                                                                                      \
        const Span s = in_table(t, j);                                                                   \
        amp_unscale_dense<T>(s, TABLE_PTR(T, p), found, inv_scale);                                      \
    }                                                                                                    \
    extern "C" __global__ void pow_sum_many_##S(StepTable t, double *partials, double p, uint32_t kind) {  \
        uint32_t j;                                                                                      \
        const Span s = in_table(t, j);                                                                   \
        pow_sum_dense<T>(s, TABLE_PTR(const T, p), partials, p, kind);                                   \
    }                                                                                                    \
    extern "C" __global__ void mul_many_##S(StepTable t, const T *factor) {                              \
        uint32_t j;                                                                                      \
        const Span s = in_table(t, j);                                                                   \
        mul_dense<T>(s, TABLE_PTR(T, p), factor);                                                        \
    }                                                                                                    \
    extern "C" __global__ void average_many_##S(StepTable t, double value, uint32_t flags) {            \
        uint32_t j;                                                                                      \
        const Span s = in_table(t, j);                                                                   \
        average_dense<T>(s, TABLE_PTR(T, p), TABLE_PTR(const T, g), value, flags);                       \
    }

FUSED_STEPS(f32, float)
FUSED_STEPS(f64, double)
FUSED_STEPS(f16, __half)
FUSED_STEPS(bf16, __nv_bfloat16)

// Rprop's and ASGD's steps.
#include "step_sign.cuh"

// Adafactor's step.
#include "adafactor_step.cuh"
