// A libnccl.so.2 for the CPU emulator (`cargo xtask cuda-emu`): communicators of one rank, over
// the emulated driver's host memory. Every collective of a world of one is a copy from the send
// to the receive buffer (nothing when they are the same), which is what NCCL computes for one
// rank, so sinew-dist's NCCL backend (its in-place device path, waits and error handling) runs
// without a GPU. A world of several ranks is refused: the emulator has no transport.
#include <cstdint>
#include <cstdio>
#include <cstring>

typedef int ncclResult_t;
enum : ncclResult_t { ncclSuccess = 0, ncclInvalidArgument = 4, ncclInvalidUsage = 5 };

struct ncclUniqueId {
    char internal[128];
};

struct Comm {
    int ranks;
    bool aborted;
};

static size_t dtype_bytes(int dtype) {
    switch (dtype) {
    case 0: case 1: return 1;          // int8, uint8
    case 2: case 3: return 4;          // int32, uint32
    case 4: case 5: return 8;          // int64, uint64
    case 6: case 9: return 2;          // float16, bfloat16
    case 7: return 4;                  // float32
    case 8: return 8;                  // float64
    default: return 0;
    }
}

static ncclResult_t copy(const void *send, void *recv, size_t count, int dtype, void *comm) {
    const size_t bytes = dtype_bytes(dtype);
    if (bytes == 0 || comm == nullptr || static_cast<Comm *>(comm)->aborted) return ncclInvalidArgument;
    if (send != recv) std::memmove(recv, send, count * bytes);
    return ncclSuccess;
}

extern "C" {
ncclResult_t ncclGetVersion(int *version) {
    *version = 22707;  // reported as 2.27.7, the wheel's version
    return ncclSuccess;
}
ncclResult_t ncclGetUniqueId(ncclUniqueId *id) {
    std::memset(id->internal, 0, sizeof id->internal);
    std::snprintf(id->internal, sizeof id->internal, "sinew cuda-emu nccl");
    return ncclSuccess;
}
const char *ncclGetErrorString(ncclResult_t r) {
    switch (r) {
    case ncclSuccess: return "no error";
    case ncclInvalidArgument: return "invalid argument (cuda-emu)";
    case ncclInvalidUsage: return "invalid usage: the CUDA emulator's NCCL has worlds of one rank";
    default: return "unknown error (cuda-emu)";
    }
}
ncclResult_t ncclCommInitRank(void **comm, int ranks, ncclUniqueId, int rank) {
    if (ranks != 1 || rank != 0) return ncclInvalidUsage;
    *comm = new Comm{ranks, false};
    return ncclSuccess;
}
ncclResult_t ncclCommDestroy(void *comm) {
    delete static_cast<Comm *>(comm);
    return ncclSuccess;
}
ncclResult_t ncclCommAbort(void *comm) {
    delete static_cast<Comm *>(comm);
    return ncclSuccess;
}
ncclResult_t ncclCommGetAsyncError(void *, ncclResult_t *error) {
    *error = ncclSuccess;
    return ncclSuccess;
}
ncclResult_t ncclAllReduce(const void *send, void *recv, size_t count, int dtype, int, void *comm, void *) {
    return copy(send, recv, count, dtype, comm);
}
ncclResult_t ncclBroadcast(const void *send, void *recv, size_t count, int dtype, int root, void *comm, void *) {
    if (root != 0) return ncclInvalidArgument;
    return copy(send, recv, count, dtype, comm);
}
ncclResult_t ncclAllGather(const void *send, void *recv, size_t count, int dtype, void *comm, void *) {
    return copy(send, recv, count, dtype, comm);
}
}
