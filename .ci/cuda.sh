#!/usr/bin/env bash
# CUDA checks that need no GPU: committed PTX up to date (nvcc 13.0 from PyPI wheels, ptxas for
# sm_80 and sm_90, sm_90a for the Hopper GEMM), then build, lint and host-test the `cuda`
# feature against a stub libcuda, and run sinew-cuda's GPU tests on the CPU emulator of
# `cargo xtask cuda-emu`.
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
# The GPU tests on the CPU: every kernel of cuda/ compiled for the host and run by an emulated
# driver (cargo xtask cuda-emu), which checks the kernels' logic and the host code around them
# without a GPU. gpu_custom is left out: it runs a test's own PTX, which only a GPU can.
if ! command -v c++ >/dev/null; then
    sudo=""
    [ "$(id -u)" -ne 0 ] && sudo=sudo
    $sudo apt-get update -q
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q g++
fi
cargo xtask cuda-emu
gpu_tests=$(find crates/sinew-cuda/tests -maxdepth 1 -name 'gpu_*.rs' ! -name gpu_custom.rs \
    -printf '--test %f\n' | sed 's/\.rs$//' | sort)
# shellcheck disable=SC2086 # one word per option
LD_LIBRARY_PATH="$PWD/target/cuda-emu/lib64" cargo test -p sinew-cuda --features "$features" \
    $gpu_tests -- --include-ignored --test-threads=1
# The kernels whose blocks meet (the last block of a channel, a weight tile or the batch adds
# the others' partial sums: tickets.cuh; the first bad index wins a failure slot) with their
# blocks run in shuffled and in reverse order, as a GPU may run them: the emulator otherwise
# runs them in grid order, where the last to arrive is always the last in the grid.
for order in shuffle reverse; do
    SINEW_EMU_BLOCK_ORDER=$order LD_LIBRARY_PATH="$PWD/target/cuda-emu/lib64" cargo test -p sinew-cuda \
        --features "$features" --test gpu_channel --test gpu_xent --test gpu_index --test gpu_conv_epilogue \
        --test gpu_running_stats -- --include-ignored --test-threads=1
    SINEW_EMU_BLOCK_ORDER=$order LD_LIBRARY_PATH="$PWD/target/cuda-emu/lib64" cargo test -p sinew-cuda \
        --features "$features" --test gpu_conv -- --include-ignored --test-threads=1 weight_gradient
done
# The fused optimizer steps through sinew-optim, and batch norm through sinew-nn (the facade's
# GPU tests that the emulator runs in seconds; gpu_models' whole-model curves are for a real GPU).
LD_LIBRARY_PATH="$PWD/target/cuda-emu/lib64" cargo test -p sinew --features "$features" \
    --test gpu_optim --test gpu_layers -- --include-ignored --test-threads=1
# The exact-shape GEMM tests again as on an A100 (compute capability 8.0; the emulator reports
# 9.0, an H100's): those shapes then take the mma.sync kernel's 128-row tiles instead of the
# wgmma kernel (gpu_matmul's other shapes run the same kernels either way).
SINEW_EMU_COMPUTE_CAPABILITY=8.0 LD_LIBRARY_PATH="$PWD/target/cuda-emu/lib64" cargo test -p sinew-cuda \
    --features "$features" --test gpu_matmul_spec --test gpu_matmul_sm90 -- \
    --include-ignored --test-threads=1
# The Hopper GEMM with its pipeline stalled (the emulator's TMA copies never complete), then with
# its launches failing: it must end, not hang, fail its first-use check and leave the product to
# the mma.sync kernel.
for fault in SINEW_EMU_LOSE_TMA=1 SINEW_EMU_FAIL_LAUNCH=matmul_sm90; do
    env "$fault" LD_LIBRARY_PATH="$PWD/target/cuda-emu/lib64" cargo test -p sinew-cuda \
        --features "$features" --test gpu_matmul_sm90 -- --include-ignored --test-threads=1 a_failing
done
# sinew-dist's NCCL backend: it links the CUDA driver (stub here); libnccl.so.2 loads at run time.
cargo clippy -p sinew-dist --features nccl --all-targets -- -D warnings
cargo test -p sinew-dist --features nccl --lib
# Its GPU test (a world of one rank: every collective, DDP's gradients) on the emulator, with the
# emulator's NCCL (worlds of one rank).
LD_LIBRARY_PATH="$PWD/target/cuda-emu/lib64" SINEW_NCCL_LIB="$PWD/target/cuda-emu/lib64/libnccl.so.2" \
    cargo test -p sinew-dist --features nccl --test nccl -- --include-ignored --test-threads=1
