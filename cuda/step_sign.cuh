// The fused steps of Rprop and ASGD (included by fused_step.cu, after its helpers in fs::):
//   fused_rprop_<dtype>(n, p, prev, size, g, etaminus, etaplus, size_min, size_max, flags)
//   fused_asgd_<dtype>(n, p, ax, g, keep, wd, neg_eta, mu, flags)
//     flags: 8 mu is 1 (ax = p)
// and their _many_ forms over a StepTable (prev, size or ax in its slots), as the other steps.

// Rprop: d = ±g (maximize); s = sign(d * prev) (mul, sign); the step-size factor etaplus,
// etaminus or 1 where s is positive, negative or zero (masked_fill each, NaN kept); size =
// clamp_(size * factor); d = 0 where s < 0 (masked_fill); p = addcmul_(p, -1, sign(d), size);
// prev = d.
template <typename T>
__device__ void rprop(Span s, T *p, T *prev, T *size, const T *g, double etaminus, double etaplus,
                      double size_min, double size_max, uint32_t flags) {
    typedef typename Num<T>::C C;
    const bool maximize = flags & 4u;
    const C zero = (C)0.0, one = (C)1.0;
    const C minus = fs::round<T>((C)etaminus), plus = fs::round<T>((C)etaplus);
    const C low = fs::round<T>((C)size_min), high = fs::round<T>((C)size_max);
    SPAN_LOOP(i, s) {
        const C x = Num<T>::up(p[i]);
        C d = fs::effective_grad<T>(Num<T>::up(g[i]), x, zero, false, maximize);
        const C prod = fs::round<T>(mul_rn(d, Num<T>::up(prev[i])));
        const C factor = prod > zero ? plus : prod < zero ? minus : prod == zero ? one : prod;
        C step = fs::round<T>(mul_rn(Num<T>::up(size[i]), factor));
        if (!is_nan(step)) step = m_min(m_max(step, low), high);
        if (prod < zero) d = zero;
        const C sign = d > zero ? one : d < zero ? -one : mul_rn(d, zero);
        size[i] = Num<T>::down(step);
        prev[i] = Num<T>::down(d);
        p[i] = Num<T>::down(add_rn(x, mul_rn(mul_rn(-one, sign), step)));
    }
}

// ASGD: effective_grad; p *= 1 - lambd eta (mul_scalar_, keep from the host); p = axpy_(p,
// -eta, d); ax = p (copy_) when mu is 1, else ax += (p - ax) * mu (copy_, sub_, mul_scalar_,
// add_).
template <typename T>
__device__ void asgd(Span s, T *p, T *ax, const T *g, double keep, double wd, double neg_eta,
                     double mu, uint32_t flags) {
    typedef typename Num<T>::C C;
    const bool maximize = flags & 4u, plain = flags & 8u;
    const C k = (C)keep, decay = (C)wd, value = (C)neg_eta, weight = (C)mu;
    SPAN_LOOP(i, s) {
        C x = Num<T>::up(p[i]);
        const C d = fs::effective_grad<T>(Num<T>::up(g[i]), x, decay, wd != 0.0, maximize);
        x = fs::round<T>(mul_rn(x, k));
        x = fs::round<T>(add_rn(x, mul_rn(value, d)));
        p[i] = Num<T>::down(x);
        if (plain) {
            ax[i] = Num<T>::down(x);
        } else {
            const C a = Num<T>::up(ax[i]);
            const C step = fs::round<T>(mul_rn(fs::round<T>(x - a), weight));
            ax[i] = Num<T>::down(add_rn(a, step));
        }
    }
}

#define SIGN_STEPS(S, T)                                                                                 \
    extern "C" __global__ void fused_rprop_##S(uint32_t n, T *p, T *prev, T *size, const T *g,           \
                                               double minus, double plus, double low, double high,       \
                                               uint32_t flags) {                                         \
        rprop<T>(whole(n), p, prev, size, g, minus, plus, low, high, flags);                             \
    }                                                                                                    \
    extern "C" __global__ void fused_rprop_many_##S(StepTable t, double minus, double plus, double low,  \
                                                    double high, uint32_t flags) {                       \
        uint32_t j;                                                                                      \
        const Span s = in_table(t, j);                                                                   \
        rprop<T>(s, TABLE_PTR(T, p), TABLE_PTR(T, slot0), TABLE_PTR(T, slot1), TABLE_PTR(T, g), minus,   \
                 plus, low, high, flags);                                                                \
    }                                                                                                    \
    extern "C" __global__ void fused_asgd_##S(uint32_t n, T *p, T *ax, const T *g, double keep,          \
                                              double wd, double value, double mu, uint32_t flags) {      \
        asgd<T>(whole(n), p, ax, g, keep, wd, value, mu, flags);                                         \
    }                                                                                                    \
    extern "C" __global__ void fused_asgd_many_##S(StepTable t, double keep, double wd, double value,   \
                                                   double mu, uint32_t flags) {                          \
        uint32_t j;                                                                                      \
        const Span s = in_table(t, j);                                                                   \
        asgd<T>(s, TABLE_PTR(T, p), TABLE_PTR(T, slot0), TABLE_PTR(T, g), keep, wd, value, mu, flags);   \
    }

SIGN_STEPS(f32, float)
SIGN_STEPS(f64, double)
SIGN_STEPS(f16, __half)
SIGN_STEPS(bf16, __nv_bfloat16)
