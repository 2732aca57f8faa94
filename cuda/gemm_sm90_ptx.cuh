// The sm_90a instructions of gemm_sm90.cu, included inside namespace wg (the CPU emulator has its
// own, emu_wgmma.h): wgmma.mma_async m64n256k16 and its fences, mbarriers, TMA tensor loads and
// setmaxnreg. Shared-memory operands are 32-bit shared-window addresses.
#pragma once

__device__ __forceinline__ void wgmma_fence() { asm volatile("wgmma.fence.sync.aligned;\n" ::: "memory"); }
__device__ __forceinline__ void wgmma_commit() { asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory"); }
template <int N> __device__ __forceinline__ void wgmma_wait() {
    asm volatile("wgmma.wait_group.sync.aligned %0;\n" ::"n"(N) : "memory");
}

// Pins the accumulators in place around the asynchronous multiplies: the compiler sees each
// register read and written here, so it cannot move the epilogue's reads above wgmma_wait<0>.
__device__ __forceinline__ void fence_acc(float (&d)[128]) {
#pragma unroll
    for (int i = 0; i < 128; ++i) asm volatile("" : "+f"(d[i])::"memory");
}

#define WG_D4(i) "+f"(d[i]), "+f"(d[i + 1]), "+f"(d[i + 2]), "+f"(d[i + 3])
#define WG_D16(i) WG_D4(i), WG_D4(i + 4), WG_D4(i + 8), WG_D4(i + 12)
#define WG_ACC                                                                                                 \
    "{%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, %20, %21, "    \
    "%22, %23, %24, %25, %26, %27, %28, %29, %30, %31, %32, %33, %34, %35, %36, %37, %38, %39, %40, %41, "      \
    "%42, %43, %44, %45, %46, %47, %48, %49, %50, %51, %52, %53, %54, %55, %56, %57, %58, %59, %60, %61, "      \
    "%62, %63, %64, %65, %66, %67, %68, %69, %70, %71, %72, %73, %74, %75, %76, %77, %78, %79, %80, %81, "      \
    "%82, %83, %84, %85, %86, %87, %88, %89, %90, %91, %92, %93, %94, %95, %96, %97, %98, %99, %100, %101, "    \
    "%102, %103, %104, %105, %106, %107, %108, %109, %110, %111, %112, %113, %114, %115, %116, %117, %118, "    \
    "%119, %120, %121, %122, %123, %124, %125, %126, %127}"

// d (this thread's 128 accumulators of the warpgroup's 64x256 f32 tile) += A (64x16) * B (16x256),
// both read from shared memory through descriptors; TA / TB: the operand is MN-major.
template <typename T> struct Wgmma;
#define WG_MMA(T, PTX_TYPE)                                                                                    \
    template <> struct Wgmma<T> {                                                                              \
        template <int TA, int TB>                                                                              \
        static __device__ __forceinline__ void run(float (&d)[128], uint64_t a, uint64_t b) {                 \
            asm volatile("{\n.reg .pred p;\nsetp.ne.b32 p, %130, 0;\n"                                         \
                         "wgmma.mma_async.sync.aligned.m64n256k16.f32." PTX_TYPE "." PTX_TYPE " " WG_ACC        \
                         ", %128, %129, p, 1, 1, %131, %132;\n}\n"                                              \
                         : WG_D16(0), WG_D16(16), WG_D16(32), WG_D16(48), WG_D16(64), WG_D16(80), WG_D16(96),  \
                           WG_D16(112)                                                                         \
                         : "l"(a), "l"(b), "r"(1), "n"(TA), "n"(TB));                                          \
        }                                                                                                      \
    };
WG_MMA(__half, "f16")
WG_MMA(__nv_bfloat16, "bf16")

// mbarriers (8 bytes of shared memory each, at shared address `bar`).
__device__ __forceinline__ void mbar_init(uint32_t bar, uint32_t count) {
    asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;\n" ::"r"(bar), "r"(count) : "memory");
}
// Makes the initialisations visible to the other threads and to the TMA unit.
__device__ __forceinline__ void mbar_init_fence() {
    asm volatile("fence.mbarrier_init.release.cluster;\n" ::: "memory");
}
__device__ __forceinline__ void mbar_arrive(uint32_t bar) {
    asm volatile("{\n.reg .b64 state;\nmbarrier.arrive.shared::cta.b64 state, [%0];\n}\n" ::"r"(bar) : "memory");
}
// Arrives and adds `bytes` to the transactions the current phase waits for.
__device__ __forceinline__ void mbar_arrive_expect_tx(uint32_t bar, uint32_t bytes) {
    asm volatile("{\n.reg .b64 state;\nmbarrier.arrive.expect_tx.shared::cta.b64 state, [%0], %1;\n}\n" ::"r"(bar),
                 "r"(bytes)
                 : "memory");
}
// Whether the phase of parity `parity` has completed (after a bounded wait in hardware).
__device__ __forceinline__ bool mbar_try_wait(uint32_t bar, uint32_t parity) {
    uint32_t done;
    asm volatile("{\n.reg .pred p;\nmbarrier.try_wait.parity.shared::cta.b64 p, [%1], %2;\nselp.b32 %0, 1, 0, p;\n}\n"
                 : "=r"(done)
                 : "r"(bar), "r"(parity)
                 : "memory");
    return done != 0;
}

// Waits for the phase of parity `parity` of the mbarrier at `bar` to complete; false when it has
// not after 2 seconds (a working pipeline waits microseconds; a GPU that disagrees with the
// kernel would otherwise hang it), or at once when not `patient`.
__device__ __forceinline__ bool wait_phase(uint32_t bar, uint32_t parity, bool patient) {
    constexpr uint64_t LIMIT_NS = 2000000000ull;
    uint64_t start;
    asm volatile("mov.u64 %0, %%globaltimer;\n" : "=l"(start));
#pragma unroll 1
    for (;;) {
        if (mbar_try_wait(bar, parity)) return true;
        uint64_t now;
        asm volatile("mov.u64 %0, %%globaltimer;\n" : "=l"(now));
        if (!patient || now - start > LIMIT_NS) return false;
    }
}

// The box of `map` at coordinates (c0, c1, c2) into shared memory at `dst`, completing its bytes
// on the mbarrier at `bar`; elements outside the tensor arrive as zeros.
__device__ __forceinline__ void tma_load_3d(uint32_t dst, const TensorMap *map, uint32_t c0, uint32_t c1,
                                            uint32_t c2, uint32_t bar) {
    asm volatile(
        "cp.async.bulk.tensor.3d.shared::cluster.global.tile.mbarrier::complete_tx::bytes [%0], [%1, {%2, %3, "
        "%4}], [%5];\n" ::"r"(dst),
        "l"(reinterpret_cast<uint64_t>(map)), "r"(c0), "r"(c1), "r"(c2), "r"(bar)
        : "memory");
}

// Hands registers back to the SM (the producer) or takes them (the consumers' accumulators).
template <int N> __device__ __forceinline__ void setmaxnreg_dec() {
    asm volatile("setmaxnreg.dec.sync.aligned.u32 %0;\n" ::"n"(N));
}
template <int N> __device__ __forceinline__ void setmaxnreg_inc() {
    asm volatile("setmaxnreg.inc.sync.aligned.u32 %0;\n" ::"n"(N));
}

// A quiet NaN (what a consumer writes when its pipeline gave up).
__device__ __forceinline__ float quiet_nan() { return __int_as_float(0x7fc00000); }
