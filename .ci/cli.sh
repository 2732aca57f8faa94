#!/usr/bin/env bash
# Every `sinew` subcommand in a short mode, so none can rot. Expects the release binary built.
set -euo pipefail
cd "$(dirname "$0")/.."
sinew=target/release/sinew
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

$sinew datasets | tee "$out/datasets.txt"
grep -q "spirals .*generated" "$out/datasets.txt"

$sinew summary --model lenet5 --dataset mnist | tee "$out/summary.txt"
grep -q "Total params: 61706" "$out/summary.txt"

$sinew train --dataset xor --epochs 5 --optimizer nesterov --schedule cosine \
    --early-stopping 3 --save "$out/xor.safetensors" --plot "$out/xor.png" \
    --checkpoint-dir "$out/ckpt" | tee "$out/train.txt"
grep -q "^test accuracy: " "$out/train.txt"
test -s "$out/xor.png"

$sinew train --dataset xor --epochs 7 --optimizer nesterov --schedule cosine \
    --early-stopping 3 --checkpoint-dir "$out/ckpt" --resume | tee "$out/resume.txt"
grep -q "^test accuracy: " "$out/resume.txt"

# The 1cycle schedule, stepped per batch, with Adam's beta1 cycled; saved in PyTorch's
# torch.save format (a .pt path), which eval reads back to the same accuracy.
$sinew train --dataset xor --epochs 3 --optimizer adam --schedule one-cycle --lr 0.05 \
    --save "$out/xor.pt" | tee "$out/onecycle.txt"
grep -q "^test accuracy: " "$out/onecycle.txt"
$sinew eval --dataset xor --weights "$out/xor.pt" | tee "$out/eval_pt.txt"
test "$(grep '^test accuracy: ' "$out/eval_pt.txt")" = "$(grep '^test accuracy: ' "$out/onecycle.txt")"
$sinew convert "$out/xor.pt" "$out/xor_pt.safetensors" | tee "$out/convert.txt"
grep -q "^converted 6 tensors" "$out/convert.txt"
# Cyclical rates per batch, with RAdam's beta1 cycled.
$sinew train --dataset xor --epochs 3 --optimizer radam --schedule cyclic --lr 0.05 \
    | tee "$out/cyclic.txt"
grep -q "^test accuracy: " "$out/cyclic.txt"

# L-BFGS (a closure re-evaluating each batch, on full batches): the spirals in three epochs,
# then resumed from its checkpoint (its history kept under the first parameter's name).
$sinew train --dataset spirals --model mlp --epochs 3 --optimizer lbfgs --batch-size 1000 \
    --checkpoint-dir "$out/lbfgs" | tee "$out/lbfgs.txt"
grep -Eq "^test accuracy: (9[5-9]|100)\." "$out/lbfgs.txt"
$sinew train --dataset spirals --model mlp --epochs 4 --optimizer lbfgs --batch-size 1000 \
    --checkpoint-dir "$out/lbfgs" --resume 2>&1 | tee "$out/lbfgs_resume.txt"
grep -q "^resuming at epoch 4" "$out/lbfgs_resume.txt"
grep -Eq "^test accuracy: (9[5-9]|100)\." "$out/lbfgs_resume.txt"

# An exponential moving average of the weights (--ema): its accuracy is printed beside the
# model's, and the saved weights are the average's, which eval reads back to that accuracy.
$sinew train --dataset xor --epochs 3 --ema 0.9 --save "$out/xor_ema.safetensors" \
    | tee "$out/ema.txt"
grep -q "^test accuracy: " "$out/ema.txt"
$sinew eval --dataset xor --weights "$out/xor_ema.safetensors" | tee "$out/eval_ema.txt"
test "EMA $(grep '^test accuracy: ' "$out/eval_ema.txt")" = "$(grep '^EMA test accuracy: ' "$out/ema.txt")"
# Checkpoints keep the average: 2 epochs, then resumed to 4, end where 4 uninterrupted ones do.
$sinew train --dataset xor --epochs 2 --ema 0.9 --checkpoint-dir "$out/ckpt_ema" > "$out/ema_2.txt"
$sinew train --dataset xor --epochs 4 --ema 0.9 --checkpoint-dir "$out/ckpt_ema" --resume \
    > "$out/ema_resumed.txt"
$sinew train --dataset xor --epochs 4 --ema 0.9 > "$out/ema_4.txt"
test "$(grep '^EMA test accuracy: ' "$out/ema_resumed.txt")" = "$(grep '^EMA test accuracy: ' "$out/ema_4.txt")"

$sinew eval --dataset xor --weights "$out/xor.safetensors" | tee "$out/eval.txt"
grep -q "^test accuracy: " "$out/eval.txt"

printf 'x,y\n0.5,0.5\n-0.5,0.5\n' > "$out/points.csv"
$sinew predict --dataset xor --weights "$out/xor.safetensors" "$out/points.csv" | tee "$out/predict.txt"
test "$(grep -c "class " "$out/predict.txt")" -eq 2

# A real dataset with augmentation, and the perceptron's own training rule.
$sinew train --model lenet5 --dataset mnist --limit 512 --epochs 1 --augment crop,rotate \
    | tee "$out/mnist.txt"
grep -q "^test accuracy: " "$out/mnist.txt"
$sinew train --model perceptron --dataset moons --epochs 5 | tee "$out/perceptron.txt"
grep -q "^test accuracy: " "$out/perceptron.txt"
# Mixed precision (bf16 autocast on the CPU) through the same command, gradients clipped.
$sinew train --model lenet5 --dataset mnist --limit 256 --epochs 1 --precision mixed \
    --clip-grad-norm 1.0 | tee "$out/mixed.txt"
grep -q "^test accuracy: " "$out/mixed.txt"
# Into a file, not `| grep -q`: grep exits at the match and the writer would meet a closed
# pipe, which `pipefail` counts as a failure.
$sinew summary --model alexnet --dataset cifar10 > "$out/alexnet.txt"
grep -q "Total params: 57044810" "$out/alexnet.txt"

# Errors are one line and a non-zero status, never a panic.
if $sinew eval --dataset xor --weights "$out/missing.safetensors" 2> "$out/err.txt"; then
    echo "eval of a missing file succeeded"; exit 1
fi
grep -q "missing.safetensors" "$out/err.txt"
! grep -q "panicked" "$out/err.txt"
echo "cli: all subcommands ran"
