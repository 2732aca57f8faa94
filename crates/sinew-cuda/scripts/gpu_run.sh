#!/usr/bin/env bash
# Runs on a GPU machine, with the real driver, everything that target/gpu-bundle holds (built
# elsewhere by gpu_bundle.sh): the GPU tests with --include-ignored, the GEMM example, and issue
# 14's event-timer trace of a ResNet-18 step (and an Nsight Systems summary when nsys exists) and
# bench table against PyTorch eager when `import torch` works. Logs go to $OUT.
# Usage: bash gpu_run.sh [quick]   (quick: the bench in --quick mode, to check it runs)
set -u
cd "$(dirname "$0")"
OUT=${OUT:-/tmp/sinew-gpu-out}
mkdir -p "$OUT"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv | tee "$OUT/gpu.txt"
ldd ./gpu_mlp | grep libcuda | tee -a "$OUT/gpu.txt"
# NCCL for sinew-dist's test: the copy that PyTorch's wheels install, unless SINEW_NCCL_LIB is set.
if [ -z "${SINEW_NCCL_LIB:-}" ] && command -v python3 >/dev/null; then
    lib=$(python3 -c "import nvidia.nccl, os; print(os.path.join(list(nvidia.nccl.__path__)[0], 'lib', 'libnccl.so.2'))" 2>/dev/null || true)
    if [ -n "$lib" ] && [ -f "$lib" ]; then export SINEW_NCCL_LIB="$lib"; fi
fi
echo "SINEW_NCCL_LIB=${SINEW_NCCL_LIB:-}" | tee -a "$OUT/gpu.txt"
status=0
# Every GPU test binary of the bundle (so none is forgotten), the whole-model curves last.
kernels=$(ls gpu_* | grep -v -e '^gpu_run\.sh$' -e '^gpu_models$' | sort)
for t in no_device $kernels gpu_models nccl; do
    [ -x "./$t" ] || { echo "=== $t: missing"; status=1; continue; }
    echo "=== $t"
    timeout 300 "./$t" --include-ignored --test-threads=1 --nocapture >"$OUT/$t.log" 2>&1 || status=1
    grep -E "max error|wgmma|^test |test result|panicked|GPU:|allocation|loss|memory|nccl|keep_mask|philox|deferred" "$OUT/$t.log" | head -60
done
echo "=== gemm_tflops"
timeout 200 ./gemm_tflops 2>&1 | tee "$OUT/gemm.log" || status=1
torch=()
if command -v python3 >/dev/null && python3 -c "import torch" 2>/dev/null; then
    torch=(--vs-torch python3 --torch-script ./torch_gpu_bench.py)
    echo "=== torch matmul"
    timeout 200 python3 torch_matmul.py 2>&1 | tee "$OUT/torch.log"
fi
quick=()
[ "${1:-}" = quick ] && quick=(--quick)
echo "=== trace (one ResNet-18 step, phases timed with CUDA events)"
for m in "" --mixed; do
    timeout 120 ./sinew-devtools trace --model resnet18 --batch 128 $m 2>&1 | tee -a "$OUT/trace.log" || status=1
done
if command -v nsys >/dev/null; then
    echo "=== nsys"
    timeout 180 nsys profile --stats=true -o "$OUT/resnet18" ./sinew-devtools trace --steps 2 \
        >"$OUT/nsys.log" 2>&1 || status=1
    grep -A25 "cuda_gpu_kern_sum\|CUDA Kernel Statistics" "$OUT/nsys.log" | head -40
fi
echo "=== bench"
timeout 400 ./sinew-devtools bench "${quick[@]}" "${torch[@]}" 2>&1 | tee "$OUT/bench.log" || status=1
exit $status
