// cp.async, ldmatrix and mma.sync for the CPU emulator, included by gemm.cuh inside namespace
// tcf under SINEW_EMU (see emu_runtime.h). Shared-memory addresses are the low 32 bits of host
// addresses; the high bits, the same for the one shared array of a kernel, are kept aside.
// ldmatrix and mma.sync are warp-collective: each lane gathers the whole warp's operands and
// computes its own part with the fragment layouts of the PTX ISA (m8n8 .b16 matrices; m16n8k16
// f16/bf16 and m16n8k8 TF32 with row-major A and column-major B, f32 accumulators), accumulating
// in k order.

inline uint64_t &emu_shared_high() {
    static uint64_t high = ~0ull;
    return high;
}
inline uint32_t smem_u32(const void *p) {
    const uint64_t a = (uint64_t)(uintptr_t)p;
    if (emu_shared_high() != (a >> 32)) emu_shared_high() = a >> 32;
    return (uint32_t)a;
}
inline unsigned char *emu_shared_ptr(uint32_t addr) {
    return (unsigned char *)(uintptr_t)((emu_shared_high() << 32) | addr);
}
inline void cp_async16(uint32_t dst, const void *src) { std::memcpy(emu_shared_ptr(dst), src, 16); }
inline void cp_async16_zfill(uint32_t dst, const void *src, bool full) {
    if (full) std::memcpy(emu_shared_ptr(dst), src, 16);
    else std::memset(emu_shared_ptr(dst), 0, 16);
}
inline void cp_async_commit() {}
template <int N> inline void cp_async_wait() {}

inline uint16_t emu_b16_at(const unsigned char *p) {
    uint16_t v;
    std::memcpy(&v, p, 2);
    return v;
}
inline uint32_t emu_pack(uint16_t lo, uint16_t hi) { return (uint32_t)lo | ((uint32_t)hi << 16); }

// Four 8x8 matrices of 16-bit values; lanes 8i..8i+7 give the row addresses of matrix i.
template <bool TRANS> inline void ldmatrix_x4(uint32_t (&r)[4], uint32_t addr) {
    uint64_t mine = addr, rows[32];
    emu::gather(&mine, 1, rows);
    const uint32_t lane = emu::lane(), g = lane >> 2, t = lane & 3u;
    for (int i = 0; i < 4; ++i) {
        if (!TRANS) {
            const unsigned char *row = emu_shared_ptr((uint32_t)rows[i * 8 + g]);
            r[i] = emu_pack(emu_b16_at(row + 4 * t), emu_b16_at(row + 4 * t + 2));
        } else {
            const unsigned char *r0 = emu_shared_ptr((uint32_t)rows[i * 8 + 2 * t]);
            const unsigned char *r1 = emu_shared_ptr((uint32_t)rows[i * 8 + 2 * t + 1]);
            r[i] = emu_pack(emu_b16_at(r0 + 2 * g), emu_b16_at(r1 + 2 * g));
        }
    }
}

template <typename T> inline float emu_b16_value(uint16_t bits) {
    T v;
    std::memcpy(&v, &bits, 2);
    return (float)v;
}

// d (16x8, f32) += a (16x16) * b (16x8) over the warp; this lane's d holds rows g, g + 8 and
// columns 2t, 2t + 1. Lane l holds A's rows l / 4 (+ 8) at columns 2 (l % 4) (+ 1) (+ 8), and
// B's column l / 4 at rows 2 (l % 4) (+ 1) (+ 8); a lane decodes only the rows and columns its
// own outputs read (the 4 lanes of its row group, the 8 of its two columns).
template <typename T> struct Mma {
    static inline void run(float (&d)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
        uint64_t mine[3] = {(uint64_t)a[0] | ((uint64_t)a[1] << 32), (uint64_t)a[2] | ((uint64_t)a[3] << 32),
                            (uint64_t)b0 | ((uint64_t)b1 << 32)};
        uint64_t all[32 * 3];
        emu::gather(mine, 3, all);
        const uint32_t lane = emu::lane(), g = lane >> 2, t = lane & 3u;
        // A[h][k]: row g + 8 h; B[e][k]: column 2 t + e.
        float A[2][16], B[2][16];
        for (uint32_t l = 0; l < 32; ++l) {
            const uint32_t lg = l >> 2, lt = l & 3u;
            if (lg == g) {
                const uint32_t regs[4] = {(uint32_t)all[l * 3], (uint32_t)(all[l * 3] >> 32),
                                          (uint32_t)all[l * 3 + 1], (uint32_t)(all[l * 3 + 1] >> 32)};
                for (int j = 0; j < 4; ++j) {
                    const uint32_t h = j & 1 ? 1 : 0, col = 2 * lt + (j & 2 ? 8 : 0);
                    A[h][col] = emu_b16_value<T>((uint16_t)regs[j]);
                    A[h][col + 1] = emu_b16_value<T>((uint16_t)(regs[j] >> 16));
                }
            }
            if (lg >> 1 == t) {
                const uint32_t e = lg & 1u;
                const uint32_t bregs[2] = {(uint32_t)all[l * 3 + 2], (uint32_t)(all[l * 3 + 2] >> 32)};
                for (int j = 0; j < 2; ++j) {
                    const uint32_t k = 2 * lt + (j ? 8 : 0);
                    B[e][k] = emu_b16_value<T>((uint16_t)bregs[j]);
                    B[e][k + 1] = emu_b16_value<T>((uint16_t)(bregs[j] >> 16));
                }
            }
        }
        for (int j = 0; j < 4; ++j) {
            const uint32_t h = j & 2 ? 1 : 0, e = j & 1;
            float acc = d[j];
            for (int k = 0; k < 16; ++k) acc += A[h][k] * B[e][k];
            d[j] = acc;
        }
    }
};

// cvt.rna.tf32.f32: the 13 low mantissa bits rounded off (to nearest, ties away from zero: half
// a TF32 unit added to the magnitude, then truncated); infinities and NaNs unchanged.
inline float tf32_round(float x) {
    uint32_t b;
    std::memcpy(&b, &x, 4);
    if ((b & 0x7f800000u) != 0x7f800000u) b = (b + 0x1000u) & 0xffffe000u;
    std::memcpy(&x, &b, 4);
    return x;
}

inline float emu_f32_of(uint32_t bits) {
    float v;
    std::memcpy(&v, &bits, 4);
    return v;
}

// d (16x8, f32) += a (16x8 TF32) * b (8x8 TF32) over the warp: a0..a3 hold (g, t), (g + 8, t),
// (g, t + 4), (g + 8, t + 4); b0, b1 hold (k t, n g), (k t + 4, n g); d as in Mma above.
inline void mma_tf32(float (&d)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
    uint64_t mine[3] = {(uint64_t)a[0] | ((uint64_t)a[1] << 32), (uint64_t)a[2] | ((uint64_t)a[3] << 32),
                        (uint64_t)b0 | ((uint64_t)b1 << 32)};
    uint64_t all[32 * 3];
    emu::gather(mine, 3, all);
    float A[16][8], B[8][8];
    for (uint32_t l = 0; l < 32; ++l) {
        const uint32_t g = l >> 2, t = l & 3u;
        const uint32_t regs[4] = {(uint32_t)all[l * 3], (uint32_t)(all[l * 3] >> 32), (uint32_t)all[l * 3 + 1],
                                  (uint32_t)(all[l * 3 + 1] >> 32)};
        for (int j = 0; j < 4; ++j) A[g + (j & 1 ? 8 : 0)][t + (j & 2 ? 4 : 0)] = emu_f32_of(regs[j]);
        B[t][g] = emu_f32_of((uint32_t)all[l * 3 + 2]);
        B[t + 4][g] = emu_f32_of((uint32_t)(all[l * 3 + 2] >> 32));
    }
    const uint32_t lane = emu::lane(), g = lane >> 2, t = lane & 3u;
    for (int j = 0; j < 4; ++j) {
        const uint32_t row = g + (j & 2 ? 8 : 0), col = 2 * t + (j & 1);
        float acc = d[j];
        for (int k = 0; k < 8; ++k) acc += A[row][k] * B[k][col];
        d[j] = acc;
    }
}
