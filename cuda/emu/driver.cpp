// A CUDA driver that runs Sinew's kernels on the CPU (`cargo xtask cuda-emu`): the driver API
// entry points cust and sinew-cuda call, over host memory, with every kernel of cuda/ compiled
// for the host (emu_runtime.h) and registered by name (registry.h). Streams and events complete
// at once (work runs when it is queued); a launch runs its blocks in order, each block's threads
// as fibers on the calling thread that meet at __syncthreads and in warp exchanges. Entry points it does not
// implement print their name and fail with CUDA_ERROR_NOT_SUPPORTED (stubs.c, generated).
// Only for checking kernels' logic and the host code around them on a machine without a GPU.
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include <sys/mman.h>

#include "include/emu_runtime.h"
#include "registry.h"

typedef int CUresult;
typedef unsigned long long CUdeviceptr;
enum : CUresult {
    OK = 0,
    INVALID_VALUE = 1,
    OUT_OF_MEMORY = 2,
    NOT_FOUND = 500,
    LAUNCH_FAILED = 719,
};

// Saves the callee-saved registers and the stack pointer into *save, then continues on the
// stack `next` (x86-64 System V; a few instructions instead of ucontext's signal-mask calls).
extern "C" void emu_switch(void **save, void *next);
#if defined(__x86_64__)
asm(R"(
    .text
    .globl emu_switch
    .type emu_switch, @function
emu_switch:
    pushq %rbp
    pushq %rbx
    pushq %r12
    pushq %r13
    pushq %r14
    pushq %r15
    movq %rsp, (%rdi)
    movq %rsi, %rsp
    popq %r15
    popq %r14
    popq %r13
    popq %r12
    popq %rbx
    popq %rbp
    ret
    .size emu_switch, .-emu_switch
)");
#else
#error "cuda-emu switches fibers with x86-64 assembly"
#endif

namespace emu {
thread_local dim3 thread_idx;
thread_local dim3 block_idx;
dim3 block_dim;
dim3 grid_dim;

namespace {
// A block's threads are fibers run one at a time on the launching OS thread; a fiber runs until
// it waits (at __syncthreads, a warp barrier or exchange) or returns, then the scheduler runs
// the next. A wait ends when every thread of the block (or warp) that has not returned waits
// at the same kind of barrier.
enum class Wait { Running, Block, Warp, Done };
struct Fiber {
    void *sp = nullptr;  // saved stack pointer while switched out
    Wait wait = Wait::Running;
};
constexpr size_t STACK_BYTES = 256 << 10;
constexpr uint32_t MAX_THREADS = 1024;

thread_local void *scheduler = nullptr;
thread_local Fiber fibers[MAX_THREADS];
thread_local char *stacks[MAX_THREADS];
thread_local uint32_t running = 0;
thread_local KernelFn current_kernel = nullptr;
thread_local void **current_params = nullptr;
thread_local uint64_t warp_slots[MAX_THREADS / 32][32];
constexpr int MAX_GATHER = 8;
thread_local uint64_t gather_slots[MAX_THREADS / 32][32][MAX_GATHER];
std::mutex atomics;

void yield(Wait w) {
    fibers[running].wait = w;
    emu_switch(&fibers[running].sp, scheduler);
}

[[noreturn]] void fiber_entry() {
    current_kernel(current_params);
    fibers[running].wait = Wait::Done;
    emu_switch(&fibers[running].sp, scheduler);
    std::abort();  // a finished fiber is never resumed
}

// A fresh fiber's stack: emu_switch pops six callee-saved registers and returns into
// fiber_entry, which then sees the stack of a function just called (rsp % 16 == 8).
void *fresh_stack(char *stack) {
    uintptr_t top = ((uintptr_t)stack + STACK_BYTES) & ~(uintptr_t)15;
    void **sp = (void **)top;
    *--sp = nullptr;                                  // fiber_entry's (unused) return address
    *--sp = reinterpret_cast<void *>(&fiber_entry);  // where emu_switch returns
    for (int r = 0; r < 6; ++r) *--sp = nullptr;      // rbp, rbx, r12..r15
    return sp;
}

[[noreturn]] void deadlock(const char *why) {
    std::fprintf(stderr, "cuda-emu: %s (block %u,%u,%u)\n", why, block_idx.x, block_idx.y, block_idx.z);
    std::abort();
}

// Runs one block to completion.
void run_block(uint32_t threads) {
    for (uint32_t t = 0; t < threads; ++t) {
        if (stacks[t] == nullptr) {
            void *mem = mmap(nullptr, STACK_BYTES, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
            if (mem == MAP_FAILED) deadlock("cannot map a fiber stack");
            stacks[t] = static_cast<char *>(mem);
        }
        fibers[t].sp = fresh_stack(stacks[t]);
        fibers[t].wait = Wait::Running;
    }
    const uint32_t warps = (threads + 31) / 32;
    // Rounds alternate between ascending and descending thread order, so that a missing
    // barrier shows whichever thread's write the kernel reads too early.
    for (uint32_t round = 0;; ++round) {
        for (uint32_t i = 0; i < threads; ++i) {
            const uint32_t t = (round & 1u) ? threads - 1 - i : i;
            if (fibers[t].wait != Wait::Running) continue;
            running = t;
            thread_idx = dim3{t % block_dim.x, (t / block_dim.x) % block_dim.y, t / (block_dim.x * block_dim.y)};
            emu_switch(&scheduler, fibers[t].sp);
        }
        bool live = false, released = false;
        for (uint32_t w = 0; w < warps; ++w) {
            bool any = false, all_warp = true;
            for (uint32_t t = w * 32; t < std::min(threads, w * 32 + 32); ++t) {
                if (fibers[t].wait == Wait::Done) continue;
                any = true;
                all_warp &= fibers[t].wait == Wait::Warp;
            }
            live |= any;
            if (any && all_warp) {
                for (uint32_t t = w * 32; t < std::min(threads, w * 32 + 32); ++t)
                    if (fibers[t].wait == Wait::Warp) fibers[t].wait = Wait::Running;
                released = true;
            }
        }
        if (!live) return;
        if (released) continue;
        for (uint32_t t = 0; t < threads; ++t) {
            if (fibers[t].wait == Wait::Warp) deadlock("a warp waits at a warp barrier while others wait at __syncthreads");
            if (fibers[t].wait == Wait::Block) fibers[t].wait = Wait::Running;
        }
    }
}
}  // namespace

uint32_t linear_thread() { return running; }
void sync_block() { yield(Wait::Block); }
void sync_warp() { yield(Wait::Warp); }
uint64_t exchange(uint64_t bits, int src) {
    const uint32_t warp = running >> 5;
    const uint32_t size = std::min(32u, block_dim.x * block_dim.y * block_dim.z - warp * 32u);
    warp_slots[warp][running & 31u] = bits;
    yield(Wait::Warp);
    const uint64_t got = (src >= 0 && (uint32_t)src < size) ? warp_slots[warp][src] : bits;
    yield(Wait::Warp);
    return got;
}
void gather(const uint64_t *mine, int n, uint64_t *all) {
    if (n > MAX_GATHER) deadlock("gather of too many words");
    const uint32_t warp = running >> 5;
    const uint32_t size = std::min(32u, block_dim.x * block_dim.y * block_dim.z - warp * 32u);
    std::memcpy(gather_slots[warp][running & 31u], mine, sizeof(uint64_t) * (size_t)n);
    yield(Wait::Warp);
    for (uint32_t l = 0; l < 32; ++l)
        for (int i = 0; i < n; ++i) all[l * (uint32_t)n + (uint32_t)i] = l < size ? gather_slots[warp][l][i] : 0;
    yield(Wait::Warp);
}
void lock_atomics() { atomics.lock(); }
void unlock_atomics() { atomics.unlock(); }

// Runs `kernel(params)` over the grid: blocks in order, each block's threads as fibers.
void launch(KernelFn kernel, dim3 grid, dim3 block, void **params) {
    static std::mutex one_launch;
    std::lock_guard<std::mutex> guard(one_launch);
    const uint32_t threads = block.x * block.y * block.z;
    block_dim = block;
    grid_dim = grid;
    current_kernel = kernel;
    current_params = params;
    for (uint32_t bz = 0; bz < grid.z; ++bz)
        for (uint32_t by = 0; by < grid.y; ++by)
            for (uint32_t bx = 0; bx < grid.x; ++bx) {
                block_idx = dim3{bx, by, bz};
                run_block(threads);
            }
}
}  // namespace emu

namespace emu {
namespace {
std::map<std::string, KernelFn> &kernels() {
    static std::map<std::string, KernelFn> table;
    return table;
}
}  // namespace
void register_kernel(const char *name, KernelFn f) { kernels()[name] = f; }
KernelFn find_kernel(const char *name) {
    auto it = kernels().find(name);
    return it == kernels().end() ? nullptr : it->second;
}
}  // namespace emu

// ---------------------------------------------------------------------------------------------
// The driver API.

namespace {
struct Allocation {
    size_t bytes;
};
std::mutex memory_lock;
std::map<uintptr_t, Allocation> allocations;

int fake_handle_value = 1;
void *fake_handle() { return &fake_handle_value; }

CUresult alloc(void **out, size_t bytes) {
    void *p = nullptr;
    if (posix_memalign(&p, 256, bytes == 0 ? 256 : bytes) != 0) return OUT_OF_MEMORY;
    std::memset(p, 0xcd, bytes);  // poison: kernels must not read memory they did not write
    std::lock_guard<std::mutex> l(memory_lock);
    allocations[(uintptr_t)p] = Allocation{bytes};
    *out = p;
    return OK;
}
CUresult release(void *p) {
    std::lock_guard<std::mutex> l(memory_lock);
    auto it = allocations.find((uintptr_t)p);
    if (it == allocations.end()) return INVALID_VALUE;
    allocations.erase(it);
    std::free(p);
    return OK;
}

struct Event {
    float time_ms = 0.0f;
};
}  // namespace

extern "C" {
CUresult cuInit(unsigned) { return OK; }
CUresult cuDriverGetVersion(int *v) {
    *v = 12080;
    return OK;
}
CUresult cuDeviceGetCount(int *n) {
    *n = 1;
    return OK;
}
CUresult cuDeviceGet(int *dev, int ordinal) {
    if (ordinal != 0) return INVALID_VALUE;
    *dev = 0;
    return OK;
}
CUresult cuDeviceGetName(char *name, int len, int) {
    std::snprintf(name, (size_t)len, "Sinew CPU emulator");
    return OK;
}
CUresult cuDeviceTotalMem_v2(size_t *bytes, int) {
    *bytes = (size_t)8 << 30;
    return OK;
}
CUresult cuDeviceGetAttribute(int *v, int attr, int) {
    switch (attr) {
    case 1: *v = 1024; break;               // max threads per block
    case 2: case 3: *v = 1024; break;      // max block dims x, y
    case 4: *v = 64; break;                // max block dim z
    case 5: *v = 2147483647; break;        // max grid x
    case 6: case 7: *v = 65535; break;     // max grid y, z
    case 8: *v = 48 << 10; break;          // shared memory per block
    case 10: *v = 32; break;               // warp size
    case 16: *v = 4; break;                // multiprocessors
    case 75: *v = 9; break;                // compute capability major
    case 76: *v = 0; break;                // minor
    default: *v = 0;
    }
    return OK;
}
CUresult cuDevicePrimaryCtxRetain(void **ctx, int) {
    *ctx = fake_handle();
    return OK;
}
CUresult cuDevicePrimaryCtxRelease_v2(int) { return OK; }
CUresult cuDevicePrimaryCtxRelease(int) { return OK; }
CUresult cuCtxSetCurrent(void *) { return OK; }
CUresult cuCtxGetCurrent(void **ctx) {
    *ctx = fake_handle();
    return OK;
}
CUresult cuCtxPushCurrent_v2(void *) { return OK; }
CUresult cuCtxPopCurrent_v2(void **ctx) {
    if (ctx) *ctx = fake_handle();
    return OK;
}
CUresult cuCtxGetDevice(int *dev) {
    *dev = 0;
    return OK;
}
CUresult cuCtxSynchronize() { return OK; }
CUresult cuCtxGetApiVersion(void *, unsigned *v) {
    *v = 3020;
    return OK;
}

CUresult cuStreamCreate(void **s, unsigned) {
    *s = new int(0);
    return OK;
}
CUresult cuStreamCreateWithPriority(void **s, unsigned, int) { return cuStreamCreate(s, 0); }
CUresult cuStreamDestroy_v2(void *s) {
    delete static_cast<int *>(s);
    return OK;
}
CUresult cuStreamSynchronize(void *) { return OK; }
CUresult cuStreamQuery(void *) { return OK; }
CUresult cuStreamWaitEvent(void *, void *, unsigned) { return OK; }

CUresult cuEventCreate(void **e, unsigned) {
    *e = new Event();
    return OK;
}
CUresult cuEventDestroy_v2(void *e) {
    delete static_cast<Event *>(e);
    return OK;
}
CUresult cuEventRecord(void *, void *) { return OK; }
CUresult cuEventQuery(void *) { return OK; }
CUresult cuEventSynchronize(void *) { return OK; }
CUresult cuEventElapsedTime(float *ms, void *, void *) {
    *ms = 0.0f;
    return OK;
}

CUresult cuMemAlloc_v2(CUdeviceptr *p, size_t bytes) {
    void *q = nullptr;
    const CUresult r = alloc(&q, bytes);
    *p = (CUdeviceptr)(uintptr_t)q;
    return r;
}
CUresult cuMemFree_v2(CUdeviceptr p) { return release((void *)(uintptr_t)p); }
CUresult cuMemAllocHost_v2(void **p, size_t bytes) { return alloc(p, bytes); }
CUresult cuMemHostAlloc(void **p, size_t bytes, unsigned) { return alloc(p, bytes); }
CUresult cuMemFreeHost(void *p) { return release(p); }
CUresult cuMemGetInfo_v2(size_t *free_bytes, size_t *total) {
    *free_bytes = (size_t)8 << 30;
    *total = (size_t)8 << 30;
    return OK;
}
CUresult cuMemcpyHtoDAsync_v2(CUdeviceptr dst, const void *src, size_t n, void *) {
    std::memcpy((void *)(uintptr_t)dst, src, n);
    return OK;
}
CUresult cuMemcpyHtoD_v2(CUdeviceptr dst, const void *src, size_t n) { return cuMemcpyHtoDAsync_v2(dst, src, n, nullptr); }
CUresult cuMemcpyDtoHAsync_v2(void *dst, CUdeviceptr src, size_t n, void *) {
    std::memcpy(dst, (const void *)(uintptr_t)src, n);
    return OK;
}
CUresult cuMemcpyDtoH_v2(void *dst, CUdeviceptr src, size_t n) { return cuMemcpyDtoHAsync_v2(dst, src, n, nullptr); }
CUresult cuMemcpyDtoDAsync_v2(CUdeviceptr dst, CUdeviceptr src, size_t n, void *) {
    std::memmove((void *)(uintptr_t)dst, (const void *)(uintptr_t)src, n);
    return OK;
}
CUresult cuMemsetD8Async(CUdeviceptr dst, unsigned char v, size_t n, void *) {
    std::memset((void *)(uintptr_t)dst, v, n);
    return OK;
}
CUresult cuMemsetD32Async(CUdeviceptr dst, unsigned v, size_t n, void *) {
    uint32_t *p = (uint32_t *)(uintptr_t)dst;
    for (size_t i = 0; i < n; ++i) p[i] = v;
    return OK;
}

CUresult cuModuleLoadData(void **m, const void *) {
    *m = fake_handle();
    return OK;
}
CUresult cuModuleLoadDataEx(void **m, const void *, unsigned, void *, void **) {
    *m = fake_handle();
    return OK;
}
CUresult cuModuleUnload(void *) { return OK; }
CUresult cuModuleGetFunction(void **f, void *, const char *name) {
    const emu::KernelFn k = emu::find_kernel(name);
    if (k == nullptr) {
        std::fprintf(stderr, "cuda-emu: no emulated kernel named %s\n", name);
        return NOT_FOUND;
    }
    *f = reinterpret_cast<void *>(k);
    return OK;
}
CUresult cuFuncSetAttribute(void *, int, int) { return OK; }
CUresult cuFuncGetAttribute(int *v, int, void *) {
    *v = 0;
    return OK;
}
CUresult cuLaunchKernel(void *f, unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by, unsigned bz,
                        unsigned, void *, void **params, void **extra) {
    if (extra != nullptr || f == nullptr || bx * by * bz == 0 || bx * by * bz > 1024) return INVALID_VALUE;
    emu::launch(reinterpret_cast<emu::KernelFn>(f), dim3{gx, gy, gz}, dim3{bx, by, bz}, params);
    return OK;
}

CUresult cuGetErrorString(CUresult e, const char **s) {
    *s = e == OK ? "no error" : "CUDA emulator error";
    return OK;
}
CUresult cuGetErrorName(CUresult e, const char **s) {
    *s = e == OK ? "CUDA_SUCCESS" : "CUDA_ERROR_EMULATOR";
    return OK;
}
}
