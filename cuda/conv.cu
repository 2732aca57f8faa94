// Sliding windows of [n, c, h, w] images: im2col (unfold2d) and its adjoint col2im (fold2d), and
// max pooling.
//
// unfold2d_b<bytes>(total, win, src, out, pad): one thread per output element of the contiguous
//   [n, c*kh*kw, oh*ow] columns; reads the input through its four strides (win.strides = n, c, h,
//   w; win.offset) and writes the low <bytes> bytes of `pad` (the padding value already converted
//   to the dtype by the host) where the window hangs over the border.
// fold2d_<dtype>(total, win, cols, out): one thread per pixel of the contiguous [n, c, h, w]
//   output; gathers every (window tap, position) that reads the pixel from the columns view
//   (win.strides = batch, row, column; win.offset), summing in tap order (ki, then kj) in the
//   element type for f32 and f64 and in f64 (rounded once) for the others: the CPU backend's
//   order and arithmetic, so results match it bit for bit. No atomics.
// max_pool2d_<dtype>(total, win, src, values, indices): one thread per output of the contiguous
//   [n, c, oh, ow]; scans the window's in-bounds taps in row-major order (the CPU backend's):
//   the first maximum wins, a NaN replaces it (the last NaN wins), and a window of -inf keeps its
//   first in-bounds tap; writes the value and the tap's flat index y * w + x in its plane.
// max_pool2d_backward_<dtype>(total, win, grad, indices, out): one thread per input pixel of the
//   contiguous [n, c, h, w] gradient; adds the gradient of every window whose index names the
//   pixel, in row-major window order and in the CPU backend's arithmetic (each sum computed in
//   f64 and rounded to the element type), so results match it bit for bit. A gather: no
//   atomics, deterministic. grad and indices are contiguous [n, c, oh, ow].
// avg_pool2d_<dtype>(total, win, src, out, include_pad): one thread per output of the
//   contiguous [n, c, oh, ow]: the sum of the window's in-bounds taps (in f32, f64 for f64)
//   divided by kh*kw (include_pad) or by the number of in-bounds taps; dilation 1.
// avg_pool2d_backward_<dtype>(total, win, grad, out, include_pad): one thread per input pixel
//   of the contiguous [n, c, h, w] gradient: the sum of grad / count over the windows that
//   cover it (grad contiguous [n, c, oh, ow]). A gather: no atomics.
// max_pool2d_check(total, win, indices, bad): one thread per index; records (record_bad) the
//   first position whose index, and that index, is not an in-bounds tap of its own window (max_pool2d's indices
//   always are; the gather above would drop any other), reported at the next synchronisation.
#include "common.cuh"

// Mirrors `Window` in crates/sinew-cuda/src/ops/conv.rs (#[repr(C)]).
struct Window {
    uint32_t c, h, w, kh;
    uint32_t kw, oh, ow, sh;
    uint32_t sw, ph, pw, dh;
    uint32_t dw, unused0, unused1, unused2;
    uint64_t strides[4];
    uint64_t offset;
};

#define UNFOLD_KERNEL(BYTES, T)                                                                   \
    extern "C" __global__ void unfold2d_b##BYTES(uint32_t total, Window win, const T *src, T *out, \
                                                 uint64_t pad) {                                  \
        const T pad_value = (T)pad;                                                               \
        GRID_STRIDE(i, total) {                                                                   \
            uint32_t rest = i;                                                                    \
            const uint32_t ox = rest % win.ow;                                                    \
            rest /= win.ow;                                                                       \
            const uint32_t oy = rest % win.oh;                                                    \
            rest /= win.oh;                                                                       \
            const uint32_t kj = rest % win.kw;                                                    \
            rest /= win.kw;                                                                       \
            const uint32_t ki = rest % win.kh;                                                    \
            rest /= win.kh;                                                                       \
            const uint32_t ci = rest % win.c, ni = rest / win.c;                                  \
            const int64_t y = (int64_t)oy * win.sh + (int64_t)ki * win.dh - win.ph;               \
            const int64_t x = (int64_t)ox * win.sw + (int64_t)kj * win.dw - win.pw;               \
            if (y < 0 || y >= win.h || x < 0 || x >= win.w) {                                     \
                out[i] = pad_value;                                                               \
            } else {                                                                              \
                out[i] = src[win.offset + ni * win.strides[0] + ci * win.strides[1] +             \
                             (uint64_t)y * win.strides[2] + (uint64_t)x * win.strides[3]];        \
            }                                                                                     \
        }                                                                                         \
    }

UNFOLD_KERNEL(1, uint8_t)
UNFOLD_KERNEL(2, uint16_t)
UNFOLD_KERNEL(4, uint32_t)
UNFOLD_KERNEL(8, uint64_t)

// fold2d's accumulator: the element type for f32 and f64, f64 for the rest (as the CPU backend).
template <typename T> struct FoldAcc {
    typedef double A;
};
template <> struct FoldAcc<float> {
    typedef float A;
};

template <typename T> __device__ void fold_pixels(uint32_t total, const Window &win, const T *cols, T *out) {
    typedef typename FoldAcc<T>::A A;
    GRID_STRIDE(i, total) {
        const uint32_t x = i % win.w, y = (i / win.w) % win.h;
        const uint32_t plane = i / (win.w * win.h);
        const uint32_t ci = plane % win.c, ni = plane / win.c;
        const T *base = cols + win.offset + ni * win.strides[0];
        A acc = (A)0;
        for (uint32_t ki = 0; ki < win.kh; ++ki) {
            const int64_t ty = (int64_t)y + win.ph - (int64_t)ki * win.dh;
            if (ty < 0 || ty % win.sh != 0 || ty / win.sh >= win.oh) continue;
            const uint64_t oy = (uint64_t)(ty / win.sh);
            for (uint32_t kj = 0; kj < win.kw; ++kj) {
                const int64_t tx = (int64_t)x + win.pw - (int64_t)kj * win.dw;
                if (tx < 0 || tx % win.sw != 0 || tx / win.sw >= win.ow) continue;
                const uint64_t ox = (uint64_t)(tx / win.sw);
                const uint64_t row = ((uint64_t)ci * win.kh + ki) * win.kw + kj;
                acc += (A)to_f64(base[row * win.strides[1] + (oy * win.ow + ox) * win.strides[2]]);
            }
        }
        out[i] = from_f64<T>((double)acc);
    }
}

#define FOLD_KERNEL(SUFFIX, T)                                                                    \
    extern "C" __global__ void fold2d_##SUFFIX(uint32_t total, Window win, const T *cols, T *out) { \
        fold_pixels<T>(total, win, cols, out);                                                    \
    }

FOLD_KERNEL(f32, float)
FOLD_KERNEL(f64, double)
FOLD_KERNEL(f16, __half)
FOLD_KERNEL(bf16, __nv_bfloat16)
FOLD_KERNEL(i64, int64_t)

// The plane's flat index of window (oy, ox)'s tap (ki, kj), or -1 outside the image.
__device__ __forceinline__ int64_t window_tap(const Window &win, uint32_t oy, uint32_t ox, uint32_t ki, uint32_t kj) {
    const int64_t y = (int64_t)oy * win.sh + (int64_t)ki * win.dh - win.ph;
    const int64_t x = (int64_t)ox * win.sw + (int64_t)kj * win.dw - win.pw;
    return (y < 0 || y >= win.h || x < 0 || x >= win.w) ? -1 : y * win.w + x;
}

#define MAX_POOL_KERNEL(SUFFIX, T)                                                                \
    extern "C" __global__ void max_pool2d_##SUFFIX(uint32_t total, Window win, const T *src, T *values, \
                                                   int64_t *indices) {                            \
        GRID_STRIDE(i, total) {                                                                   \
            const uint32_t ox = i % win.ow, oy = (i / win.ow) % win.oh, plane = i / (win.ow * win.oh); \
            const uint32_t ci = plane % win.c, ni = plane / win.c;                                \
            const T *base = src + win.offset + ni * win.strides[0] + ci * win.strides[1];         \
            typename Num<T>::C best = -INFINITY;                                                  \
            int64_t at = -1;                                                                      \
            for (uint32_t ki = 0; ki < win.kh; ++ki)                                              \
                for (uint32_t kj = 0; kj < win.kw; ++kj) {                                        \
                    const int64_t t = window_tap(win, oy, ox, ki, kj);                            \
                    if (t < 0) continue;                                                          \
                    const typename Num<T>::C v =                                                  \
                        Num<T>::up(base[(uint64_t)(t / win.w) * win.strides[2] + (uint64_t)(t % win.w) * win.strides[3]]); \
                    if (at < 0) at = t;                                                           \
                    if (v > best || v != v) {                                                     \
                        best = v;                                                                 \
                        at = t;                                                                   \
                    }                                                                             \
                }                                                                                 \
            values[i] = Num<T>::down(best);                                                       \
            indices[i] = at < 0 ? 0 : at;                                                         \
        }                                                                                         \
    }

MAX_POOL_KERNEL(f32, float)
MAX_POOL_KERNEL(f64, double)
MAX_POOL_KERNEL(f16, __half)
MAX_POOL_KERNEL(bf16, __nv_bfloat16)

#define MAX_POOL_BACKWARD_KERNEL(SUFFIX, T)                                                       \
    extern "C" __global__ void max_pool2d_backward_##SUFFIX(uint32_t total, Window win, const T *grad, \
                                                            const int64_t *indices, T *out) {     \
        GRID_STRIDE(i, total) {                                                                   \
            const uint32_t x = i % win.w, y = (i / win.w) % win.h, plane = i / (win.w * win.h);   \
            const uint64_t first = (uint64_t)plane * win.oh * win.ow;                             \
            const int64_t me = (int64_t)y * win.w + x;                                            \
            T acc = from_f64<T>(0.0);                                                             \
            /* Taps from the last to the first: windows in row-major order. */                    \
            for (uint32_t ki = win.kh; ki-- > 0;) {                                               \
                const int64_t ty = (int64_t)y + win.ph - (int64_t)ki * win.dh;                    \
                if (ty < 0 || ty % win.sh != 0 || ty / win.sh >= win.oh) continue;                \
                const uint64_t oy = (uint64_t)(ty / win.sh);                                      \
                for (uint32_t kj = win.kw; kj-- > 0;) {                                           \
                    const int64_t tx = (int64_t)x + win.pw - (int64_t)kj * win.dw;                \
                    if (tx < 0 || tx % win.sw != 0 || tx / win.sw >= win.ow) continue;            \
                    const uint64_t o = first + oy * win.ow + (uint64_t)(tx / win.sw);             \
                    if (indices[o] == me) acc = from_f64<T>(to_f64(acc) + to_f64(grad[o]));      \
                }                                                                                 \
            }                                                                                     \
            out[i] = acc;                                                                         \
        }                                                                                         \
    }

MAX_POOL_BACKWARD_KERNEL(f32, float)
MAX_POOL_BACKWARD_KERNEL(f64, double)
MAX_POOL_BACKWARD_KERNEL(f16, __half)
MAX_POOL_BACKWARD_KERNEL(bf16, __nv_bfloat16)

extern "C" __global__ void max_pool2d_check(uint32_t total, Window win, const int64_t *indices,
                                            unsigned long long *bad) {
    GRID_STRIDE(i, total) {
        const uint32_t ox = i % win.ow, oy = (i / win.ow) % win.oh;
        const int64_t j = indices[i];
        bool ok = false;
        if (j >= 0 && j < (int64_t)win.h * win.w) {
            const int64_t ry = j / win.w + win.ph - (int64_t)oy * win.sh;
            const int64_t rx = j % win.w + win.pw - (int64_t)ox * win.sw;
            ok = ry >= 0 && rx >= 0 && ry % win.dh == 0 && rx % win.dw == 0 && ry / win.dh < win.kh &&
                 rx / win.dw < win.kw;
        }
        if (!ok) record_bad(bad, i, j);
    }
}

// How many taps window (oy, ox) has inside the image (dilation 1).
__device__ __forceinline__ uint32_t taps_inside(const Window &win, uint32_t oy, uint32_t ox) {
    const int64_t y0 = (int64_t)oy * win.sh - win.ph, x0 = (int64_t)ox * win.sw - win.pw;
    const int64_t y1 = y0 + win.kh < win.h ? y0 + win.kh : win.h, x1 = x0 + win.kw < win.w ? x0 + win.kw : win.w;
    const int64_t rows = y1 - (y0 > 0 ? y0 : 0), cols = x1 - (x0 > 0 ? x0 : 0);
    return rows > 0 && cols > 0 ? (uint32_t)(rows * cols) : 0;
}

#define AVG_POOL_KERNELS(SUFFIX, T)                                                               \
    extern "C" __global__ void avg_pool2d_##SUFFIX(uint32_t total, Window win, const T *src, T *out, \
                                                   uint32_t include_pad) {                        \
        typedef typename Num<T>::C C;                                                             \
        GRID_STRIDE(i, total) {                                                                   \
            const uint32_t ox = i % win.ow, oy = (i / win.ow) % win.oh, plane = i / (win.ow * win.oh); \
            const uint32_t ci = plane % win.c, ni = plane / win.c;                                \
            const T *base = src + win.offset + ni * win.strides[0] + ci * win.strides[1];         \
            C sum = (C)0;                                                                         \
            for (uint32_t ki = 0; ki < win.kh; ++ki)                                              \
                for (uint32_t kj = 0; kj < win.kw; ++kj) {                                        \
                    const int64_t t = window_tap(win, oy, ox, ki, kj);                            \
                    if (t >= 0)                                                                   \
                        sum += Num<T>::up(base[(uint64_t)(t / win.w) * win.strides[2] +           \
                                               (uint64_t)(t % win.w) * win.strides[3]]);          \
                }                                                                                 \
            const uint32_t count = include_pad ? win.kh * win.kw : taps_inside(win, oy, ox);      \
            out[i] = Num<T>::down(count ? sum / (C)count : (C)0);                                 \
        }                                                                                         \
    }                                                                                             \
    extern "C" __global__ void avg_pool2d_backward_##SUFFIX(uint32_t total, Window win, const T *grad, \
                                                            T *out, uint32_t include_pad) {       \
        typedef typename Num<T>::C C;                                                             \
        GRID_STRIDE(i, total) {                                                                   \
            const uint32_t x = i % win.w, y = (i / win.w) % win.h, plane = i / (win.w * win.h);   \
            const uint64_t first = (uint64_t)plane * win.oh * win.ow;                             \
            C acc = (C)0;                                                                         \
            for (uint32_t ki = win.kh; ki-- > 0;) {                                               \
                const int64_t ty = (int64_t)y + win.ph - ki;                                      \
                if (ty < 0 || ty % win.sh != 0 || ty / win.sh >= win.oh) continue;                \
                const uint32_t oy = (uint32_t)(ty / win.sh);                                      \
                for (uint32_t kj = win.kw; kj-- > 0;) {                                           \
                    const int64_t tx = (int64_t)x + win.pw - kj;                                  \
                    if (tx < 0 || tx % win.sw != 0 || tx / win.sw >= win.ow) continue;            \
                    const uint32_t ox = (uint32_t)(tx / win.sw);                                  \
                    const uint32_t count = include_pad ? win.kh * win.kw : taps_inside(win, oy, ox); \
                    acc += Num<T>::up(grad[first + (uint64_t)oy * win.ow + ox]) / (C)count;       \
                }                                                                                 \
            }                                                                                     \
            out[i] = Num<T>::down(acc);                                                           \
        }                                                                                         \
    }

AVG_POOL_KERNELS(f32, float)
AVG_POOL_KERNELS(f64, double)
AVG_POOL_KERNELS(f16, __half)
AVG_POOL_KERNELS(bf16, __nv_bfloat16)
