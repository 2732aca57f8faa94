// wgmma.mma_async m64nNk16 and its fences, mbarriers and TMA tensor loads for the CPU emulator,
// included by gemm_sm90.cu inside namespace wg under SINEW_EMU. The multiply runs when it is
// issued (fences, commits and waits have nothing to order); each thread computes its own N / 2
// accumulators, reading both
// operands from shared memory through their descriptors with the PTX ISA's canonical 128-byte
// swizzled layouts (K-major: ((8,m),(T,2k)):((8T,SBO),(1,T)); MN-major:
// ((T,8,m),(8,k)):((1,T,LBO),(8T,SBO)); then Swizzle<3,4,3> on the byte address). Descriptor
// addresses are 18-bit shared-window offsets: the emulator's dynamic shared memory is one 256 KiB
// aligned buffer, so the low 18 bits of a host address are its offset there.

inline void wgmma_fence() {}
inline void wgmma_commit() {}
template <int N> inline void wgmma_wait() {}
template <size_t R> inline void fence_acc(float (&)[R]) {}
template <int N> inline void setmaxnreg_dec() {}
template <int N> inline void setmaxnreg_inc() {}
inline float quiet_nan() { return std::nanf(""); }

// mbarriers live in fibers.cpp (a waiting thread yields to the others until the phase completes).
inline void mbar_init(uint32_t bar, uint32_t count) { emu::mbarrier_init(tcf::emu_shared_ptr(bar), count); }
inline void mbar_init_fence() {}
inline void mbar_arrive(uint32_t bar) { emu::mbarrier_arrive(tcf::emu_shared_ptr(bar), 0); }
inline void mbar_arrive_expect_tx(uint32_t bar, uint32_t bytes) {
    emu::mbarrier_arrive(tcf::emu_shared_ptr(bar), bytes);
}
inline bool mbar_try_wait(uint32_t bar, uint32_t parity) {
    return emu::mbarrier_try_wait(tcf::emu_shared_ptr(bar), parity);
}
// gemm_sm90_ptx.cuh's bounded wait, counted in polls (a poll is a round of the block's threads:
// a working pipeline waits a few).
inline bool wait_phase(uint32_t bar, uint32_t parity, bool patient) {
    for (int i = 0; i < (patient ? 64 : 1); ++i)
        if (mbar_try_wait(bar, parity)) return true;
    return false;
}

// The host address of element (x, k) of a 16-bit operand: x along M (or N), k along K.
inline const unsigned char *emu_wgmma_elem(uint64_t desc, bool mn_major, uint32_t x, uint32_t k) {
    if ((desc >> 62) != 1 || ((desc >> 49) & 7) != 0) {
        std::fprintf(stderr, "cuda-emu: wgmma descriptor %#llx: only 128-byte swizzling, base offset 0\n",
                     (unsigned long long)desc);
        std::abort();
    }
    const uint32_t start = (uint32_t)(desc & 0x3FFF) << 4;
    const uint32_t lbo = (uint32_t)((desc >> 16) & 0x3FFF) << 4, sbo = (uint32_t)((desc >> 32) & 0x3FFF) << 4;
    uint32_t addr;
    // MN-major: 64 elements (128 bytes) along x per k-row, blocks of 64 x at LBO; k-rows 128
    // bytes apart, groups of 8 k-rows at SBO. K-major: k contiguous (16 elements in 32 bytes),
    // x-rows 128 bytes apart, groups of 8 x-rows at SBO.
    if (mn_major)
        addr = start + (x % 64) * 2 + (x / 64) * lbo + (k % 8) * 128 + (k / 8) * sbo;
    else
        addr = start + k * 2 + (x % 8) * 128 + (x / 8) * sbo;
    addr ^= ((addr >> 7) & 7u) << 4;  // the 16-byte chunk XOR the row within the 1 KiB pattern
    addr &= 0x3FFFFu;
    if (addr + 2 > emu::dynamic_shared_bytes()) {
        std::fprintf(stderr, "cuda-emu: wgmma reads shared byte %u of the launch's %u\n", addr,
                     emu::dynamic_shared_bytes());
        std::abort();
    }
    return emu::dynamic_shared() + addr;
}

// d += A (64x16) * B (16xN), N = 4 R: this thread holds rows 16 * warp + lane / 4 (+ 8) of the
// warpgroup's tile and columns 8 * j + 2 * (lane % 4) (+ 1); TA / TB: the operand is MN-major.
template <typename T> struct Wgmma {
    template <int TA, int TB, size_t R> static inline void run(float (&d)[R], uint64_t a, uint64_t b) {
        const uint32_t lane = emu::lane(), warp = (emu::linear_thread() >> 5) & 3u;
        const uint32_t rows[2] = {warp * 16 + lane / 4, warp * 16 + lane / 4 + 8};
        float A[2][16];
        for (int h = 0; h < 2; ++h)
            for (uint32_t k = 0; k < 16; ++k)
                A[h][k] = tcf::emu_b16_value<T>(tcf::emu_b16_at(emu_wgmma_elem(a, TA, rows[h], k)));
        for (uint32_t j = 0; j < R / 4; ++j)
            for (uint32_t e = 0; e < 2; ++e) {
                const uint32_t col = j * 8 + (lane & 3u) * 2 + e;
                float B[16];
                for (uint32_t k = 0; k < 16; ++k)
                    B[k] = tcf::emu_b16_value<T>(tcf::emu_b16_at(emu_wgmma_elem(b, TB, col, k)));
                for (int h = 0; h < 2; ++h) {
                    float acc = d[4 * j + 2 * h + e];
                    for (int k = 0; k < 16; ++k) acc += A[h][k] * B[k];
                    d[4 * j + 2 * h + e] = acc;
                }
            }
    }
};

// TMA: the box of the tensor map (as the emulated driver encodes it) at coordinates (c0, c1, c2)
// into shared memory at `dst`, row-major within the box, zeros outside the tensor, with the
// map's swizzling on the shared-window address; then its bytes complete on the mbarrier.
inline void tma_load_3d(uint32_t dst, const TensorMap *map, uint32_t c0, uint32_t c1, uint32_t c2, uint32_t bar) {
    EmuTensorMap m;
    std::memcpy(&m, map, sizeof m);
    if (m.magic != EMU_TENSOR_MAP_MAGIC || m.rank != 3) {
        std::fprintf(stderr, "cuda-emu: cp.async.bulk.tensor.3d with a tensor map that is not a rank-3 encoded one\n");
        std::abort();
    }
    const uint32_t window = (uint32_t)(tcf::emu_shared_ptr(dst) - emu::dynamic_shared());
    const uint64_t bytes = (uint64_t)m.box[0] * m.box[1] * m.box[2] * m.elem_bytes;
    if (window % 128 != 0 || window + bytes > emu::dynamic_shared_bytes()) {
        std::fprintf(stderr, "cuda-emu: TMA box of %llu bytes to shared byte %u (of %u; 128-byte aligned)\n",
                     (unsigned long long)bytes, window, emu::dynamic_shared_bytes());
        std::abort();
    }
    const uint64_t c[3] = {c0, c1, c2};
    uint64_t linear = 0;
    for (uint32_t i2 = 0; i2 < m.box[2]; ++i2)
        for (uint32_t i1 = 0; i1 < m.box[1]; ++i1)
            for (uint32_t i0 = 0; i0 < m.box[0]; ++i0, linear += m.elem_bytes) {
                const uint64_t g[3] = {c[0] + i0, c[1] + i1, c[2] + i2};
                uint32_t addr = window + (uint32_t)linear;
                if (m.swizzle_bytes == 128) addr ^= ((addr >> 7) & 7u) << 4;
                unsigned char *to = emu::dynamic_shared() + addr;
                if (g[0] >= m.dims[0] || g[1] >= m.dims[1] || g[2] >= m.dims[2]) {
                    std::memset(to, 0, m.elem_bytes);
                    continue;
                }
                const uint64_t from = m.address + g[0] * m.elem_bytes + g[1] * m.strides[1] + g[2] * m.strides[2];
                std::memcpy(to, (const void *)(uintptr_t)from, m.elem_bytes);
            }
    if (!emu::lose_tma()) emu::mbarrier_complete_tx(tcf::emu_shared_ptr(bar), (uint32_t)bytes);
}
