#!/usr/bin/env bash
# CUDA checks that need no GPU: committed PTX up to date (nvcc 13.0 from PyPI wheels; the PTX
# was assembled by ptxas for sm_80 and sm_90, sm_90a for the Hopper GEMM, when
# `cargo xtask kernels` wrote it), then build, lint and host-test the `cuda`
# feature against a stub libcuda, and run the GPU tests on the CPU emulator of
# `cargo xtask cuda-emu` (.ci/cuda_emu.sh).
# Idempotent; fast once the wheels are cached under target/cuda-toolchain.
# Under CI=true a missing python3/pip/network fails the run; elsewhere the kernel step is skipped.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "${CI:-}" != "true" ] && ! python3 -m pip --version >/dev/null 2>&1 \
    && [ ! -x target/cuda-toolchain/13.0.88/nvidia/cu13/bin/nvcc ] && ! command -v nvcc >/dev/null; then
    echo "SKIP: cargo xtask kernels --check (no nvcc and no python3 -m pip to fetch it)"
else
    cargo xtask kernels --check
fi

cargo xtask cuda-stub
export CUDA_LIBRARY_PATH="$PWD/target/cuda-stub"
export LD_LIBRARY_PATH="$PWD/target/cuda-stub/lib64${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
# `sinew-autograd/testing` as in the workspace test build, so it and sinew-tensor are reused.
features=cuda,sinew-autograd/testing
cargo clippy -p sinew-cuda --features "$features" --all-targets -- -D warnings
# The GPU bench and the whole-model GPU tests live above sinew-cuda (devtools, the facade).
cargo clippy -p sinew -p sinew-devtools --features sinew/cuda,sinew-devtools/cuda,sinew-autograd/testing \
    --all-targets -- -D warnings
cargo test -p sinew-cuda --features "$features"
# The GPU tests on the CPU, on the emulated driver that `cargo xtask cuda-emu` builds (it
# compiles cuda/ for the host with g++): .ci/cuda_emu.sh.
bash .ci/packages.sh
cargo xtask cuda-emu
features="$features" bash .ci/cuda_emu.sh
# sinew-dist's NCCL backend: it links the CUDA driver (stub here); libnccl.so.2 loads at run time.
cargo clippy -p sinew-dist --features nccl --all-targets -- -D warnings
cargo test -p sinew-dist --features nccl --lib
# Its GPU test (a world of one rank: every collective, DDP's gradients) on the emulator, with the
# emulator's NCCL (worlds of one rank).
LD_LIBRARY_PATH="$PWD/target/cuda-emu/lib64" SINEW_NCCL_LIB="$PWD/target/cuda-emu/lib64/libnccl.so.2" \
    cargo test -p sinew-dist --features nccl --test nccl -- --include-ignored --test-threads=1
