// The device side of the CPU emulator (`cargo xtask cuda-emu`): a launch runs its blocks one
// after another (in grid order, or as SINEW_EMU_BLOCK_ORDER says), each block's threads as
// fibers on the calling thread that meet at __syncthreads, warp barriers and warp exchanges
// (emu_runtime.h), and the kernels registered by name (registry.h).
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <numeric>
#include <string>
#include <vector>

#include <sys/mman.h>

#include "include/emu_runtime.h"
#include "registry.h"

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
// it waits (at __syncthreads, a warp barrier or exchange, an mbarrier poll) or returns, then the
// scheduler runs the next. A wait ends when every thread of the block (or warp) that has not
// returned waits at the same kind of barrier; a poll (Spin) is retried the next round.
enum class Wait { Running, Block, Warp, Spin, Done };
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

// The emulated mbarriers of the running block, by host address: arrivals a phase waits for,
// arrivals still pending, transaction bytes still pending, phases completed. Every change bumps
// `barrier_moves`, which tells a poll that may now succeed from a deadlock.
struct Barrier {
    uint32_t count = 0, pending = 0;
    int64_t tx = 0;
    uint32_t phase = 0;
};
constexpr uint64_t BARRIER_MAGIC = 0x7265697272616272ull;  // written where a barrier is initialised
thread_local std::map<uintptr_t, Barrier> barriers;
thread_local uint64_t barrier_moves = 0;

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
    barriers.clear();
    // Rounds alternate between ascending and descending thread order, so that a missing
    // barrier shows whichever thread's write the kernel reads too early.
    for (uint32_t round = 0;; ++round) {
        const uint64_t moves = barrier_moves;
        bool settled = false;  // a fiber stopped at something other than a poll
        for (uint32_t i = 0; i < threads; ++i) {
            const uint32_t t = (round & 1u) ? threads - 1 - i : i;
            if (fibers[t].wait == Wait::Spin) fibers[t].wait = Wait::Running;
            if (fibers[t].wait != Wait::Running) continue;
            running = t;
            thread_idx = dim3{t % block_dim.x, (t / block_dim.x) % block_dim.y, t / (block_dim.x * block_dim.y)};
            emu_switch(&scheduler, fibers[t].sp);
            settled |= fibers[t].wait != Wait::Spin;
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
        bool polling = false;
        for (uint32_t t = 0; t < threads; ++t) polling |= fibers[t].wait == Wait::Spin;
        if (polling) {
            if (settled || barrier_moves != moves || lose_tma()) continue;
            deadlock("threads poll mbarriers that no thread or copy can complete any more");
        }
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
namespace {
Barrier &barrier_at(void *bar, const char *what) {
    uint64_t magic;
    std::memcpy(&magic, bar, sizeof magic);
    auto it = barriers.find((uintptr_t)bar);
    if (magic != BARRIER_MAGIC || it == barriers.end()) {
        std::fprintf(stderr, "cuda-emu: %s on shared byte %ld, which mbarrier.init has not set up\n", what,
                     (long)((unsigned char *)bar - dynamic_shared()));
        std::abort();
    }
    return it->second;
}
// Completes the phase once its arrivals and transactions are all in.
void advance(Barrier &b) {
    ++barrier_moves;
    if (b.pending == 0 && b.tx == 0) {
        ++b.phase;
        b.pending = b.count;
    }
}
}  // namespace
bool lose_tma() {
    static const bool lose = std::getenv("SINEW_EMU_LOSE_TMA") != nullptr;
    return lose;
}
void mbarrier_init(void *bar, uint32_t count) {
    if (count == 0 || count >= (1u << 20) || (uintptr_t)bar % 8 != 0) deadlock("mbarrier.init: bad count or address");
    std::memcpy(bar, &BARRIER_MAGIC, sizeof BARRIER_MAGIC);
    barriers[(uintptr_t)bar] = Barrier{count, count, 0, 0};
    ++barrier_moves;
}
void mbarrier_arrive(void *bar, uint32_t tx_bytes) {
    Barrier &b = barrier_at(bar, "mbarrier.arrive");
    if (b.pending == 0) deadlock("mbarrier.arrive: more arrivals than the phase expects");
    b.tx += tx_bytes;
    --b.pending;
    advance(b);
}
void mbarrier_complete_tx(void *bar, uint32_t bytes) {
    Barrier &b = barrier_at(bar, "a TMA copy's completion");
    b.tx -= bytes;
    advance(b);
}
bool mbarrier_try_wait(void *bar, uint32_t parity) {
    // The phase of parity `parity` has completed when the current (incomplete) one has the other.
    if ((barrier_at(bar, "mbarrier.try_wait").phase & 1u) != (parity & 1u)) return true;
    yield(Wait::Spin);
    return false;
}
void lock_atomics() { atomics.lock(); }
void unlock_atomics() { atomics.unlock(); }

unsigned char *dynamic_shared() {
    static unsigned char *buffer = static_cast<unsigned char *>(std::aligned_alloc(1u << 18, 1u << 18));
    return buffer;
}
namespace {
uint32_t shared_bytes_now = 0;
}  // namespace
uint32_t dynamic_shared_bytes() { return shared_bytes_now; }

// The order a launch runs its blocks in. SINEW_EMU_BLOCK_ORDER=reverse: last to first;
// =shuffle: a pseudo-random permutation, another for each launch (the same sequence on every
// run of a process); unset: grid order. A GPU runs blocks concurrently in any order, so a
// kernel's results must not depend on it: the last block to arrive at a cross-block reduction
// (tickets.cuh) is then not the one with the highest index, and every partial it adds must
// already be there.
enum class BlockOrder { Grid, Reverse, Shuffle };

BlockOrder block_order() {
    static const BlockOrder order = [] {
        const char *s = std::getenv("SINEW_EMU_BLOCK_ORDER");
        if (s == nullptr || std::strcmp(s, "") == 0 || std::strcmp(s, "grid") == 0) return BlockOrder::Grid;
        if (std::strcmp(s, "reverse") == 0) return BlockOrder::Reverse;
        if (std::strcmp(s, "shuffle") == 0) return BlockOrder::Shuffle;
        std::fprintf(stderr, "cuda-emu: SINEW_EMU_BLOCK_ORDER=%s is not grid, reverse or shuffle\n", s);
        std::abort();
    }();
    return order;
}

// The linear block indices (x fastest) of a grid of `blocks`, in the order to run them.
std::vector<uint64_t> blocks_in_order(uint64_t blocks, BlockOrder order) {
    static uint64_t state = 0x9e3779b97f4a7c15ull;
    std::vector<uint64_t> out(blocks);
    std::iota(out.begin(), out.end(), 0ull);
    if (order == BlockOrder::Reverse) std::reverse(out.begin(), out.end());
    if (order == BlockOrder::Shuffle)
        for (uint64_t k = blocks; k > 1; --k) {
            // splitmix64, then Fisher-Yates.
            uint64_t z = (state += 0x9e3779b97f4a7c15ull);
            z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
            z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
            std::swap(out[k - 1], out[(z ^ (z >> 31)) % k]);
        }
    return out;
}

// Runs `kernel(params)` over the grid: blocks one after another (block_order), each block's
// threads as fibers, with `shared_bytes` (at most DYNAMIC_SHARED_MAX) of dynamic shared memory.
void launch(KernelFn kernel, dim3 grid, dim3 block, void **params, uint32_t shared_bytes) {
    static std::mutex one_launch;
    std::lock_guard<std::mutex> guard(one_launch);
    shared_bytes_now = shared_bytes;
    if (shared_bytes > 0) {
        if (dynamic_shared() == nullptr) deadlock("cannot allocate dynamic shared memory");
        std::memset(dynamic_shared(), 0xff, shared_bytes);
    }
    const uint32_t threads = block.x * block.y * block.z;
    block_dim = block;
    grid_dim = grid;
    current_kernel = kernel;
    current_params = params;
    const BlockOrder order = block_order();
    if (order == BlockOrder::Grid) {
        for (uint32_t bz = 0; bz < grid.z; ++bz)
            for (uint32_t by = 0; by < grid.y; ++by)
                for (uint32_t bx = 0; bx < grid.x; ++bx) {
                    block_idx = dim3{bx, by, bz};
                    run_block(threads);
                }
        return;
    }
    const uint64_t plane = (uint64_t)grid.x * grid.y;
    for (const uint64_t k : blocks_in_order(plane * grid.z, order)) {
        block_idx = dim3{(uint32_t)(k % grid.x), (uint32_t)(k / grid.x % grid.y), (uint32_t)(k / plane)};
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
// Each kernel's name (the first in order of the names registered for it), for every launch to
// look up in logarithmic time.
std::map<KernelFn, const char *> &names() {
    static std::map<KernelFn, const char *> table;
    return table;
}
}  // namespace
void register_kernel(const char *name, KernelFn f) {
    const auto entry = kernels().insert_or_assign(name, f).first;
    const char *&known = names()[f];
    if (known == nullptr || std::strcmp(entry->first.c_str(), known) < 0) known = entry->first.c_str();
}
const char *kernel_name(KernelFn f) {
    const auto it = names().find(f);
    return it == names().end() ? "" : it->second;
}
KernelFn find_kernel(const char *name) {
    auto it = kernels().find(name);
    return it == kernels().end() ? nullptr : it->second;
}
}  // namespace emu
