// Sliding windows of [n, c, h, w] images: im2col (unfold2d) and its adjoint col2im (fold2d).
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
