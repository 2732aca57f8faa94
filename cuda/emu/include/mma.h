// nvcuda::wmma for the CPU emulator (see emu_runtime.h): each lane's fragment holds the whole
// 16x16 tile, loaded and stored by every lane alike (lanes run one at a time, so the identical
// stores do not race); mma_sync multiplies in f32 in k order.
#pragma once
#include <cstring>

namespace nvcuda {
namespace wmma {
struct matrix_a {};
struct matrix_b {};
struct accumulator {};
struct row_major {};
struct col_major {};
enum layout_t { mem_row_major, mem_col_major };

template <typename Use, int M, int N, int K, typename T, typename Layout = void> struct fragment {
    float x[16][16];
};

template <typename Use, int M, int N, int K, typename T, typename Layout>
inline void fill_fragment(fragment<Use, M, N, K, T, Layout> &f, float v) {
    for (int i = 0; i < 16; ++i)
        for (int j = 0; j < 16; ++j) f.x[i][j] = v;
}

template <typename Use, int M, int N, int K, typename T, typename E>
inline void load_matrix_sync(fragment<Use, M, N, K, T, row_major> &f, const E *p, unsigned ldm) {
    for (int i = 0; i < 16; ++i)
        for (int j = 0; j < 16; ++j) f.x[i][j] = (float)p[(size_t)i * ldm + j];
}

template <typename TA, typename TB>
inline void mma_sync(fragment<accumulator, 16, 16, 16, float> &d, const fragment<matrix_a, 16, 16, 16, TA, row_major> &a,
                     const fragment<matrix_b, 16, 16, 16, TB, row_major> &b,
                     const fragment<accumulator, 16, 16, 16, float> &c) {
    float out[16][16];
    for (int i = 0; i < 16; ++i)
        for (int j = 0; j < 16; ++j) {
            float acc = c.x[i][j];
            for (int k = 0; k < 16; ++k) acc += a.x[i][k] * b.x[k][j];
            out[i][j] = acc;
        }
    std::memcpy(d.x, out, sizeof out);
}

inline void store_matrix_sync(float *p, const fragment<accumulator, 16, 16, 16, float> &f, unsigned ldm, layout_t layout) {
    for (int i = 0; i < 16; ++i)
        for (int j = 0; j < 16; ++j) {
            if (layout == mem_row_major) p[(size_t)i * ldm + j] = f.x[i][j];
            else p[(size_t)j * ldm + i] = f.x[i][j];
        }
}
}  // namespace wmma
}  // namespace nvcuda
