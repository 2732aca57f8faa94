#!/usr/bin/env bash
# Builds, on a machine without a GPU (against the stub driver), everything the GPU machine runs:
# the release GPU test binaries (sinew-cuda's, the facade's whole-model and optimizer tests,
# sinew-dist's NCCL test), the bench binary and gemm_tflops with the cuda feature, the PyTorch
# scripts and gpu_run.sh, stripped,
# into target/gpu-bundle, and packs it as target/gpu-bundle.tar.xz (about 21 MB; the folder is
# about 1 GB, as every test binary embeds the kernels' PTX, about 24 MB, which xz's 128 MiB
# dictionary stores once: with xz's default 8 MiB the archive was 89 MB, more than a device call
# carries). Carry the archive to the GPU machine, unpack it and run `bash gpu_run.sh` in it, in
# two calls of at most 10 minutes (the figures, then the tests):
#   tar xJf target/gpu-bundle.tar.xz -C /tmp && OUT=$OUT bash /tmp/gpu-bundle/gpu_run.sh figures
#   tar xJf target/gpu-bundle.tar.xz -C /tmp && OUT=$OUT bash /tmp/gpu-bundle/gpu_run.sh tests
# (see crates/sinew-cuda/src/lib.rs and ../shared/docs/cuda-toolchain.md).
set -euo pipefail
cd "$(dirname "$0")/../../.."
cargo xtask cuda-stub
export CUDA_LIBRARY_PATH="$PWD/target/cuda-stub"
export LD_LIBRARY_PATH="$PWD/target/cuda-stub/lib64${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
out=target/gpu-bundle
rm -rf "$out"
mkdir -p "$out"
features=cuda,sinew-autograd/testing
# Test binaries: their paths come from cargo's JSON messages ("executable" of each test target).
{
    cargo test --release -p sinew-cuda --features "$features" --no-run --message-format=json
    cargo test --release -p sinew --features sinew/cuda,sinew-autograd/testing --test gpu_models \
        --test gpu_optim --test gpu_layers --test gpu_loss --test gpu_step --test gpu_scaler \
        --test gpu_trainer --test gpu_functional --no-run \
        --message-format=json
    cargo test --release -p sinew-dist --features nccl --test nccl --no-run --message-format=json
} | grep -o '"executable":"[^"]*/deps/[^"]*"' | sed 's/"executable":"\(.*\)"/\1/' | while read -r exe; do
    name=$(basename "$exe" | sed 's/-[0-9a-f]*$//')
    cp "$exe" "$out/$name"
done
cargo build --release -p sinew-devtools --features cuda,sinew-autograd/testing
cargo build --release -p sinew-cuda --features cuda --example gemm_tflops
cp target/release/sinew-devtools target/release/examples/gemm_tflops "$out/"
strip "$out"/* 2>/dev/null || true
cp crates/sinew-cuda/scripts/gpu_run.sh crates/sinew-cuda/scripts/torch_matmul.py \
    crates/sinew-devtools/scripts/torch_gpu_bench.py "$out/"
du -sh "$out"
tar -C target -cf - gpu-bundle |
    xz -T0 --memlimit-compress=16GiB --lzma2=preset=2,dict=128MiB >target/gpu-bundle.tar.xz
ls -l target/gpu-bundle.tar.xz
# A device call carries 64 MiB with the working tree (about 26 MB).
size=$(stat -c %s target/gpu-bundle.tar.xz)
if [ "$size" -gt $((36 * 1024 * 1024)) ]; then
    echo "target/gpu-bundle.tar.xz is $size bytes: more than the 36 MiB a device call can carry beside the tree"
    exit 1
fi
