#!/usr/bin/env bash
# Builds, on a machine without a GPU (against the stub driver), what issue 14's CIFAR-10
# ResNet-20 run needs on the GPU machine: the `sinew` CLI with the cuda feature (stripped) and
# CIFAR-10's binary batches (from $SINEW_DATA, default ../shared/data), packed as one xz stream
# split into target/cifar-bundle/part0, part1, ... of at most 36 MiB each (about 150 MB in
# five parts), since a device call carries 64 MiB with the working tree (about 26 MB) and the
# GPU machine reaches no network. Carry one part a call, naming only that part (parts carried
# earlier stay while the machine is warm), then run cifar_run.sh there with the last part:
#   run(carry=["target/cifar-bundle/part0"], command="ls -l target/cifar-bundle")
#   ... one call a part ...
#   run(carry=["target/cifar-bundle/part4"], command="OUT=$OUT bash crates/sinew-cuda/scripts/cifar_run.sh")
set -euo pipefail
cd "$(dirname "$0")/../../.."
data=${SINEW_DATA:-../shared/data}/cifar-10
[ -f "$data/data_batch_1.bin" ] || { echo "no CIFAR-10 binary batches in $data"; exit 1; }
cargo xtask cuda-stub
export CUDA_LIBRARY_PATH="$PWD/target/cuda-stub"
export LD_LIBRARY_PATH="$PWD/target/cuda-stub/lib64${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
cargo build --release -p sinew-cli --features cuda
out=target/cifar-bundle
rm -rf "$out"
mkdir -p "$out/stage/data/cifar-10"
cp target/release/sinew "$out/stage/"
strip "$out/stage/sinew"
cp "$data"/*.bin "$data"/batches.meta.txt "$out/stage/data/cifar-10/"
tar -C "$out/stage" -cf - . | xz -T0 -6 | split -b 36M -d -a 1 - "$out/part"
rm -rf "$out/stage"
ls -l "$out"
