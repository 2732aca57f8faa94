#!/usr/bin/env bash
# Runs on the GPU machine once every part of target/cifar-bundle (cifar_bundle.sh) is there:
# unpacks them into /tmp/sinew-cifar and trains issue 14's CIFAR-10 ResNet-20 (augmentation:
# flips and padded crops; SGD with Nesterov momentum 0.9 from learning rate 0.1, weight decay
# 5e-4, cosine schedule, batch 128, mixed precision), logging to $OUT. EPOCHS (default 60) sets
# its length; the run stops after 9 minutes, a device call's limit less the unpacking.
# Usage, from the repository root: OUT=$OUT bash crates/sinew-cuda/scripts/cifar_run.sh
set -euo pipefail
parts=${PARTS:-target/cifar-bundle}
OUT=${OUT:-/tmp/sinew-gpu-out}
epochs=${EPOCHS:-60}
dir=/tmp/sinew-cifar
mkdir -p "$OUT"
ls -l "$parts" | tee "$OUT/cifar_parts.txt"
rm -rf "$dir"
mkdir -p "$dir"
cat "$parts"/part* | xz -d | tar -C "$dir" -xf -
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv | tee "$OUT/gpu.txt" || true
start=$(date +%s)
timeout 540 "$dir/sinew" train --model resnet20 --dataset cifar10 --data "$dir/data" --device cuda \
    --precision mixed --augment flip,crop --optimizer nesterov --lr 0.1 --schedule cosine \
    --weight-decay 5e-4 --batch-size 128 --val-split 0 --epochs "$epochs" 2>&1 |
    tee "$OUT/cifar_resnet20.log"
echo "epochs $epochs, wall time $(($(date +%s) - start)) s" | tee -a "$OUT/cifar_resnet20.log"
